// Packing for the fused recurrent step, its dispatch, and the portable (float64) gate updates of a
// tile. Portable code: no instruction-set flags.
#include "rnnfast/recurrent.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "rnnfast/activations.h"

namespace rnnfast {

template <>
const RecurrentKernel<float>& recurrent_kernel<float>(Isa isa) {
  return RNNFAST_TABLE_FOR_ISA(isa, recurrent_f32);
}

template <>
const RecurrentKernel<double>& recurrent_kernel<double>(Isa isa) {
  return RNNFAST_TABLE_FOR_ISA(isa, recurrent_f64);
}

template <typename Scalar>
void RecurrentWeights<Scalar>::allocate(Cell cell, std::int64_t hidden, const Scalar* b_hn, std::int64_t depth) {
  if (hidden < 0) throw std::invalid_argument("rnnfast: negative hidden size");
  const Isa isa = active_isa();
  kernel_ = &recurrent_kernel<Scalar>(isa);
  projection_chunk_ = micro_kernel<Scalar>(isa).kc;
  cell_ = cell;
  hidden_ = hidden;
  depth_ = depth < 0 ? hidden : depth;
  gates_ = gate_count(cell);
  units_ = kernel_->block_units[static_cast<int>(cell)];
  blocks_ = (hidden + units_ - 1) / units_;
  data_.resize(blocks_ * depth_ * gates_ * units_, /*zeroed=*/false);  // pack_blocks writes it all
  has_b_hn_ = cell == Cell::kGru && b_hn != nullptr;
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
  const std::int64_t GH = gate_count(cell) * hidden;
  const std::int64_t folded = cell == Cell::kGru ? 2 * hidden : GH;  // the columns of b_hh folded in
  std::vector<Scalar> bias(GH);
  for (std::int64_t j = 0; j < GH; ++j)
    bias[j] = (b_ih != nullptr ? b_ih[j] : Scalar(0)) + (b_hh != nullptr && j < folded ? b_hh[j] : Scalar(0));
  for (std::int64_t row = 0; row < rows; ++row) std::copy(bias.begin(), bias.end(), gx + row * GH);
}
template void fill_bias_rows<float>(Cell, std::int64_t, const float*, const float*, std::int64_t, float*);
template void fill_bias_rows<double>(Cell, std::int64_t, const double*, const double*, std::int64_t, double*);

namespace {

// The portable gate updates of a tile (the contract of GateBlockFns): PyTorch's formulas, with the C
// library's exp and tanh (activations.h).

template <typename Scalar>
void rnn_block(bool relu_cell, std::int64_t rows, int units, int block_units, std::int64_t hidden, const Scalar* gx,
               const Scalar* gh, Scalar* h) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < units; ++j) {
      const Scalar pre = gx[r * hidden + j] + gh[r * block_units + j];
      h[r * hidden + j] = relu_cell ? relu(pre) : tanh_act(pre);
    }
}

template <typename Scalar>
void lstm_block(std::int64_t rows, int units, int block_units, std::int64_t hidden, const Scalar* gx,
                const Scalar* gh, const Scalar* c_prev, Scalar* h, Scalar* c, Scalar* ws) {
  const std::int64_t H = hidden, U = block_units;
  for (std::int64_t r = 0; r < rows; ++r) {
    const Scalar* gxr = gx + r * 4 * H;
    const Scalar* ghr = gh + r * 4 * U;
    Scalar* wr = ws != nullptr ? ws + r * 6 * H : nullptr;
    for (int j = 0; j < units; ++j) {
      const Scalar i = sigmoid(gxr[j] + ghr[j]);
      const Scalar f = sigmoid(gxr[H + j] + ghr[U + j]);
      const Scalar g = tanh_act(gxr[2 * H + j] + ghr[2 * U + j]);
      const Scalar o = sigmoid(gxr[3 * H + j] + ghr[3 * U + j]);
      const Scalar cn = f * c_prev[r * H + j] + i * g;
      const Scalar tc = tanh_act(cn);
      c[r * H + j] = cn;
      h[r * H + j] = o * tc;
      if (wr != nullptr) {
        wr[j] = i;
        wr[H + j] = f;
        wr[2 * H + j] = g;
        wr[3 * H + j] = o;
        wr[4 * H + j] = cn;
        wr[5 * H + j] = tc;
      }
    }
  }
}

template <typename Scalar>
void gru_block(std::int64_t rows, int units, int block_units, std::int64_t hidden, const Scalar* gx,
               const Scalar* gh, const Scalar* h_prev, Scalar* h, Scalar* ws) {
  const std::int64_t H = hidden, U = block_units;
  for (std::int64_t r = 0; r < rows; ++r) {
    const Scalar* gxr = gx + r * 3 * H;
    const Scalar* ghr = gh + r * 3 * U;
    Scalar* wr = ws != nullptr ? ws + r * 4 * H : nullptr;
    for (int j = 0; j < units; ++j) {
      const Scalar rg = sigmoid(gxr[j] + ghr[j]);
      const Scalar z = sigmoid(gxr[H + j] + ghr[U + j]);
      const Scalar ghn = ghr[2 * U + j];
      const Scalar n = tanh_act(gxr[2 * H + j] + rg * ghn);
      h[r * H + j] = (Scalar(1) - z) * n + z * h_prev[r * H + j];
      if (wr != nullptr) {
        wr[j] = rg;
        wr[H + j] = z;
        wr[2 * H + j] = n;
        wr[3 * H + j] = ghn;
      }
    }
  }
}

}  // namespace

const GateBlockFns<double>& portable_gate_blocks_f64() {
  static const GateBlockFns<double> fns{&rnn_block<double>, &lstm_block<double>, &gru_block<double>};
  return fns;
}

}  // namespace rnnfast
