// The fused step's weights: packing W^T gate-interleaved, and the folded biases. Portable code.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/step/fused_step.h"

namespace rnnfast {

template <typename Scalar>
void RecurrentWeights<Scalar>::allocate(Cell cell, std::int64_t hidden, const Scalar* b_hn, std::int64_t depth) {
  if (hidden < 0) throw std::invalid_argument("rnnfast: negative hidden size");
  const Isa isa = active_isa();
  kernel_ = &kernels_for<FusedStepKernel<Scalar>>(isa);
  projection_chunk_ = micro_kernel<Scalar>(isa).kc;
  cell_ = cell;
  hidden_ = hidden;
  depth_ = depth < 0 ? hidden : depth;
  gates_ = gate_count(cell);
  units_ = kernel_->block_units[static_cast<int>(cell)];
  blocks_ = (hidden + units_ - 1) / units_;
  data_.resize(blocks_ * depth_ * gates_ * units_, /*zeroed=*/false);  // pack_blocks writes it all
  has_b_hn_ = b_hn != nullptr;  // only a cell with a recurrent bias in the step passes one
  b_hn_.resize(has_b_hn_ ? blocks_ * units_ : 0);  // zero-filled past H
  if (has_b_hn_) std::copy(b_hn, b_hn + hidden, b_hn_.data());
}

template <typename Scalar>
void RecurrentWeights<Scalar>::pack_blocks(const Scalar* w_hh, std::int64_t block_begin, std::int64_t block_end) {
  const std::int64_t H = hidden_, D = depth_, G = gates_, U = units_, width = G * U;
  // Row g*H + p*U + j of W_hh (of length D) becomes column g*U + j of panel p. Cut into runs of kDepth
  // k-rows so that the panel rows being written (kDepth x width) stay in L1 while whole rows are read.
  constexpr std::int64_t kDepth = 32;
  for (std::int64_t p = block_begin; p < block_end; ++p) {
    Scalar* panel = data_.data() + p * D * width;
    const std::int64_t units = std::min(U, H - p * U);
    for (std::int64_t k0 = 0; k0 < D; k0 += kDepth) {
      const std::int64_t k1 = std::min(D, k0 + kDepth);
      for (std::int64_t g = 0; g < G; ++g) {
        for (std::int64_t j = 0; j < units; ++j) {
          const Scalar* row = w_hh + (g * H + p * U + j) * D;
          for (std::int64_t k = k0; k < k1; ++k) panel[k * width + g * U + j] = row[k];
        }
        for (std::int64_t j = units; j < U; ++j)  // units past H: zero columns
          for (std::int64_t k = k0; k < k1; ++k) panel[k * width + g * U + j] = Scalar(0);
      }
    }
  }
}

template class RecurrentWeights<float>;
template class RecurrentWeights<double>;

template <typename Scalar>
void fill_bias_rows(Cell cell, std::int64_t hidden, const Scalar* b_ih, const Scalar* b_hh, std::int64_t rows,
                    Scalar* gx) {
  if (b_ih == nullptr && b_hh == nullptr) return;
  const int gates = gate_count(cell), kept_gate = kept_bias_gate(cell);
  const std::int64_t GH = gates * hidden;
  std::vector<Scalar> bias(GH);
  // b_hh is folded in for every gate but the one whose recurrent bias stays in the step.
  for (int g = 0; g < gates; ++g) {
    const bool fold = b_hh != nullptr && g != kept_gate;
    for (std::int64_t j = g * hidden; j < (g + 1) * hidden; ++j)
      bias[j] = (b_ih != nullptr ? b_ih[j] : Scalar(0)) + (fold ? b_hh[j] : Scalar(0));
  }
  for (std::int64_t row = 0; row < rows; ++row) std::copy(bias.begin(), bias.end(), gx + row * GH);
}
template void fill_bias_rows<float>(Cell, std::int64_t, const float*, const float*, std::int64_t, float*);
template void fill_bias_rows<double>(Cell, std::int64_t, const double*, const double*, std::int64_t, double*);

}  // namespace rnnfast
