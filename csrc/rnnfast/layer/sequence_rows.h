// What the forward and the backward share about a batch of sequences: the argument checks, the rows
// still running at each step (variable lengths), and a copy that may be empty.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "rnnfast/core/cell.h"

namespace rnnfast {

template <typename Args>
void check_sizes(const Args& a) {
  if (a.seq_len < 0 || a.batch < 0 || a.input_size < 0 || a.hidden < 0)
    throw std::invalid_argument("rnnfast: negative size");
  gate_count(a.cell);  // throws on an unknown cell
}

// memcpy with a count that may be zero (memcpy's pointers must be valid even then).
template <typename Scalar>
void copy_n(Scalar* dst, const Scalar* src, std::int64_t count) {
  if (count > 0) std::memcpy(dst, src, sizeof(Scalar) * count);
}

// Rows of the batch still running at step t, given lengths sorted non-increasing: a prefix of the
// batch whose size only shrinks as t grows. Without lengths every row runs all S steps.
class ActiveRows {
 public:
  ActiveRows(const std::int64_t* lengths, std::int64_t batch, std::int64_t seq_len)
      : lengths_(lengths), batch_(batch), seq_len_(seq_len) {}
  std::int64_t at(std::int64_t t) const {
    if (lengths_ == nullptr) return t < seq_len_ ? batch_ : 0;
    // Binary search for the first row whose length is <= t.
    std::int64_t lo = 0, hi = batch_;
    while (lo < hi) {
      const std::int64_t mid = (lo + hi) / 2;
      if (lengths_[mid] > t)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }
  // Rows of the slice [r0, r1) running at step t, counted from r0.
  std::int64_t in_slice(std::int64_t t, std::int64_t r0, std::int64_t r1) const {
    return std::min(std::max(at(t), r0), r1) - r0;
  }
  // Steps that any row runs: the longest length.
  std::int64_t steps() const { return lengths_ == nullptr ? seq_len_ : (batch_ > 0 ? lengths_[0] : 0); }

 private:
  const std::int64_t* lengths_;
  std::int64_t batch_, seq_len_;
};

template <typename Args>
void check_lengths(const Args& a) {
  if (a.lengths == nullptr) return;
  for (std::int64_t b = 0; b < a.batch; ++b) {
    if (a.lengths[b] < 0 || a.lengths[b] > a.seq_len)
      throw std::invalid_argument("rnnfast: a length is outside [0, seq_len]");
    if (b > 0 && a.lengths[b] > a.lengths[b - 1])
      throw std::invalid_argument("rnnfast: lengths must be sorted non-increasing");
  }
}

}  // namespace rnnfast
