// A whole layer's inference forward (Model::forward, model.h), composed as python/rnnfast/_rnn_base.py's
// RNNBase.forward composes it, step for step:
//   - x time-major (a batch_first x transposed);
//   - per layer k and direction slot: the slot's input is the layer's input, or for the reverse direction
//     that input reversed in time within each sequence's length (_reverse_time); its rows sorted by
//     length, non-increasing, stably, when the lengths are not sorted already (_length_order.LengthOrder);
//     then ONE kernel call: layer_forward for PyTorch's cells (functional._forward), variant_forward for a
//     cell variant (functional.variant_forward), reduced_layer_forward for a quantized layer
//     (_reduced_native.reduced_forward, which runs no kernel when T or B is 0);
//   - the rows and the time order restored, the directions' outputs side by side (forward first).
// The kernel calls get the same arrays, so the results are the Python layer's bits. Moving values
// (reversing, sorting, transposing) changes no bits.
#include <algorithm>
#include <cstring>

#include "rnnfast/layer/layer.h"
#include "rnnfast/layer/reduced_layer.h"
#include "rnnfast/layer/variant_layer.h"
#include "rnnfast/model/error.h"
#include "rnnfast/model/model.h"

namespace rnnfast::model {
namespace {

// The rows' order for the kernels: sorted by length, non-increasing, ties in their given order (NumPy's
// argsort(-lengths, kind="stable")), or the identity when the lengths are absent or already sorted.
struct RowOrder {
  std::vector<std::int64_t> order;    // kernel row j is the caller's row order[j]; empty: the identity
  std::vector<std::int64_t> inverse;  // the caller's row b is kernel row inverse[b]
  std::vector<std::int64_t> sorted;   // the lengths in kernel row order

  RowOrder(const std::int64_t* lengths, std::int64_t batch) {
    if (lengths == nullptr) return;
    bool is_sorted = true;
    for (std::int64_t b = 1; b < batch; ++b) is_sorted = is_sorted && lengths[b] <= lengths[b - 1];
    if (is_sorted) return;
    order.resize(static_cast<std::size_t>(batch));
    for (std::int64_t b = 0; b < batch; ++b) order[b] = b;
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return lengths[a] > lengths[b]; });
    inverse.resize(order.size());
    sorted.resize(order.size());
    for (std::int64_t j = 0; j < batch; ++j) {
      inverse[order[j]] = j;
      sorted[j] = lengths[order[j]];
    }
  }
  bool identity() const { return order.empty(); }
  std::int64_t caller_row(std::int64_t j) const { return order.empty() ? j : order[j]; }
  std::int64_t kernel_row(std::int64_t b) const { return inverse.empty() ? b : inverse[b]; }
};

// Where step t of the caller's row b comes from in a direction's time order: itself forward; reversed
// within the row's length for the reverse direction (steps past its end stay where they are). Its own
// inverse, so it also brings the reverse direction's outputs back.
struct TimeMap {
  bool reverse;
  std::int64_t seq_len;
  const std::int64_t* lengths;  // the caller's order, or nullptr
  std::int64_t at(std::int64_t t, std::int64_t b) const {
    if (!reverse) return t;
    const std::int64_t n = lengths == nullptr ? seq_len : lengths[b];
    return t < n ? n - 1 - t : t;
  }
};

// The arrays one direction's kernel call reads and writes, in kernel row order.
struct DirectionCall {
  std::int64_t seq_len, batch, input_size;
  const float* x;      // [T, B, I_k]
  const float* h0;     // [B, R] or nullptr
  const float* c0;     // [B, H] or nullptr
  float* out;          // [T, B, R]
  float* h_n;          // [B, R]
  float* c_n;          // [B, H] or nullptr
  const std::int64_t* lengths;
};

void run_direction(const LayerConfig& c, const DirectionWeights& w, int slot, const DirectionCall& d) {
  const std::int64_t H = c.hidden_size, T = d.seq_len, B = d.batch;
  const bool lstm = c.family == Family::kLstm;
  if (c.quantized()) {
    if (T == 0 || B == 0) {  // no kernel call: the state passes through (_reduced_native.reduced_forward)
      std::fill(d.out, d.out + T * B * H, 0.0f);
      for (auto [src, dst] : {std::pair<const float*, float*>{d.h0, d.h_n}, {d.c0, d.c_n}})
        if (dst != nullptr) {
          if (src != nullptr) std::copy(src, src + B * H, dst);
          else std::fill(dst, dst + B * H, 0.0f);
        }
      return;
    }
    ReducedLayerForward a;
    a.seq_len = T, a.batch = B, a.w_ih = w.q_ih.get(), a.w_hh = w.q_hh.get();
    a.x = d.x, a.h0 = d.h0, a.c0 = lstm ? d.c0 : nullptr;
    a.b_ih = w.b_ih.empty() ? nullptr : w.b_ih.data();
    a.b_hh = w.b_hh.empty() ? nullptr : w.b_hh.data();
    a.out = d.out, a.h_n = d.h_n, a.c_n = lstm ? d.c_n : nullptr, a.lengths = d.lengths;
    reduced_layer_forward(a);
  } else if (c.fast(slot)) {
    LayerForward<float> a;
    a.cell = c.kernel_cell(), a.seq_len = T, a.batch = B, a.input_size = d.input_size, a.hidden = H;
    a.x = d.x, a.h0 = d.h0, a.c0 = lstm ? d.c0 : nullptr, a.w_ih = w.w_ih.data(), a.w_hh = w.w_hh.data();
    a.b_ih = w.b_ih.empty() ? nullptr : w.b_ih.data();
    a.b_hh = w.b_hh.empty() ? nullptr : w.b_hh.data();
    a.out = d.out, a.h_n = d.h_n, a.c_n = lstm ? d.c_n : nullptr, a.lengths = d.lengths;
    layer_forward(a);
  } else {
    VariantForward<float> a;
    // The vanilla RNN's kernel cell is rnn_tanh whatever its activation: the variant decides.
    a.cell = c.family == Family::kLstm ? Cell::kLstm : c.family == Family::kGru ? Cell::kGru : Cell::kRnnTanh;
    a.variant = c.variant(slot);
    a.seq_len = T, a.batch = B, a.input_size = d.input_size, a.hidden = H, a.proj = c.proj_size;
    a.x = d.x, a.h0 = d.h0, a.c0 = lstm ? d.c0 : nullptr, a.w_ih = w.w_ih.data(), a.w_hh = w.w_hh.data();
    a.b_ih = w.b_ih.empty() ? nullptr : w.b_ih.data();
    a.b_hh = w.b_hh.empty() ? nullptr : w.b_hh.data();
    a.w_hr = w.w_hr.empty() ? nullptr : w.w_hr.data();
    a.w_ch = w.w_ch.empty() ? nullptr : w.w_ch.data();
    a.out = d.out, a.h_n = d.h_n, a.c_n = lstm ? d.c_n : nullptr, a.lengths = d.lengths;
    variant_forward(a);
  }
}

// `v` resized to n elements, at least 1: the kernels take no null array, even an empty one.
float* sized(std::vector<float>& v, std::int64_t n) {
  v.resize(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)));
  return v.data();
}

// rows [B, width] of `src` in kernel row order (nullptr stays nullptr; the identity order is no copy).
const float* sorted_rows(const RowOrder& rows, const float* src, std::int64_t batch, std::int64_t width,
                         std::vector<float>& buffer) {
  if (src == nullptr || rows.identity()) return src;
  float* dst = sized(buffer, batch * width);
  for (std::int64_t j = 0; j < batch; ++j)
    std::copy(src + rows.caller_row(j) * width, src + (rows.caller_row(j) + 1) * width, dst + j * width);
  return dst;
}

}  // namespace

void Model::forward(const SequenceCall& call) const {
  const LayerConfig& c = config_;
  const std::int64_t T = call.seq_len, B = call.batch, I = c.input_size, H = c.hidden_size, R = c.state_size();
  const std::int64_t L = c.num_layers, D = c.num_directions(), W = D * R;
  const bool lstm = c.family == Family::kLstm;
  sequence_sizes(c, T, B);  // checks T and B
  if (call.lengths != nullptr)
    for (std::int64_t b = 0; b < B; ++b)
      if (call.lengths[b] < 0 || call.lengths[b] > T)
        fail(ErrorKind::kInvalidArgument, "lengths must lie in [0, seq_len] = [0, " + std::to_string(T) + "], got " +
                                              std::to_string(call.lengths[b]) + " at " + std::to_string(b));
  // The input, time-major (a caller's NULL for an empty array: a stand-in the kernels accept).
  static const float kEmpty[1] = {0.0f};
  float empty_out[1];
  std::vector<float> x_time_major;
  const float* input = call.x != nullptr ? call.x : kEmpty;
  float* const out = call.out != nullptr ? call.out : empty_out;
  if (c.batch_first && T * B * I > 0) {
    float* xt = sized(x_time_major, T * B * I);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t) std::memcpy(xt + (t * B + b) * I, call.x + (b * T + t) * I, sizeof(float) * I);
    input = xt;
  }
  const RowOrder rows(call.lengths, B);
  const std::int64_t* kernel_lengths = rows.identity() ? call.lengths : rows.sorted.data();
  const std::vector<int> ids = c.direction_ids();
  // The last layer writes the caller's out directly when it is time-major; the others a buffer each.
  std::vector<float> layer_out[2], x_dir, out_dir, h0_rows, c0_rows;
  std::vector<float> h_n_dir, c_n_dir;
  sized(h_n_dir, B * R);
  sized(c_n_dir, lstm ? B * H : 0);
  std::int64_t in_width = I;
  for (std::int64_t k = 0; k < L; ++k) {
    float* out_k;
    if (k == L - 1 && !c.batch_first)
      out_k = out;
    else
      out_k = sized(layer_out[k % 2], T * B * W);
    for (int slot = 0; slot < static_cast<int>(D); ++slot) {
      const std::int64_t idx = k * D + slot;
      const TimeMap time{ids[slot] == 1, T, call.lengths};
      // The slot's input in its time order and kernel row order (no copy when both are the identity).
      const float* x_k = input;
      if (time.reverse || !rows.identity()) {
        sized(x_dir, T * B * in_width);
        for (std::int64_t t = 0; t < T; ++t)
          for (std::int64_t j = 0; j < B; ++j) {
            const std::int64_t b = rows.caller_row(j);
            const float* src = input + (time.at(t, b) * B + b) * in_width;
            std::copy(src, src + in_width, x_dir.data() + (t * B + j) * in_width);
          }
        x_k = x_dir.data();
      }
      // The output: straight into out_k when it is the only direction in natural order, else a buffer.
      const bool direct = D == 1 && !time.reverse && rows.identity();
      if (!direct) sized(out_dir, T * B * R);
      DirectionCall d;
      d.seq_len = T, d.batch = B, d.input_size = in_width, d.x = x_k;
      d.h0 = sorted_rows(rows, call.h0 == nullptr ? nullptr : call.h0 + idx * B * R, B, R, h0_rows);
      d.c0 = sorted_rows(rows, call.c0 == nullptr || !lstm ? nullptr : call.c0 + idx * B * H, B, H, c0_rows);
      d.out = direct ? out_k : out_dir.data();
      d.h_n = h_n_dir.data(), d.c_n = lstm ? c_n_dir.data() : nullptr, d.lengths = kernel_lengths;
      run_direction(c, weights(k, slot), slot, d);
      if (!direct)  // back to the caller's rows and time order, into this slot's columns
        for (std::int64_t t = 0; t < T; ++t)
          for (std::int64_t b = 0; b < B; ++b) {
            const float* src = out_dir.data() + (time.at(t, b) * B + rows.kernel_row(b)) * R;
            std::copy(src, src + R, out_k + (t * B + b) * W + slot * R);
          }
      for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t j = rows.kernel_row(b);
        if (call.h_n != nullptr) std::copy(&h_n_dir[j * R], &h_n_dir[(j + 1) * R], call.h_n + (idx * B + b) * R);
        if (call.c_n != nullptr && lstm)
          std::copy(&c_n_dir[j * H], &c_n_dir[(j + 1) * H], call.c_n + (idx * B + b) * H);
      }
    }
    input = out_k;
    in_width = W;
  }
  if (c.batch_first)  // the time-major result to the caller's (B, T, D*R)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t) std::memcpy(out + (b * T + t) * W, input + (t * B + b) * W, sizeof(float) * W);
}

}  // namespace rnnfast::model
