// The dispatch of the backward kernels and their portable scalar version (float64 on every
// instruction set; the reference the vectorised float32 kernels of kernels/grad_impl.h follow).
#include "rnnfast/grad_kernels.h"

namespace rnnfast {
namespace {

template <typename Scalar>
void gate_gradients_scalar(Cell cell, std::int64_t rows, std::int64_t H, const Scalar* dh, const Scalar* d_out,
                           Scalar* dc, const Scalar* h_t, const Scalar* h_prev, const Scalar* ws,
                           const Scalar* c_prev, std::int64_t c_prev_stride, Scalar* d_gates, Scalar* d_gates_hh,
                           Scalar* dh_prev) {
  const std::int64_t G = gate_count(cell), GH = G * H, W = workspace_width(cell, H);
  for (std::int64_t b = 0; b < rows; ++b) {
    const Scalar* dhr = dh + b * H;
    const Scalar* dor = d_out != nullptr ? d_out + b * H : nullptr;
    auto grad_h = [&](std::int64_t j) { return dor != nullptr ? dhr[j] + dor[j] : dhr[j]; };
    Scalar* dgr = d_gates + b * GH;
    if (cell == Cell::kRnnTanh || cell == Cell::kRnnRelu) {
      const Scalar* hr = h_t + b * H;
      for (std::int64_t j = 0; j < H; ++j) {
        const Scalar deriv = cell == Cell::kRnnTanh ? Scalar(1) - hr[j] * hr[j] : Scalar(hr[j] > 0);
        dgr[j] = grad_h(j) * deriv;
      }
    } else if (cell == Cell::kLstm) {
      const Scalar* wr = ws + b * W;
      const Scalar* cpr = c_prev + b * c_prev_stride;
      Scalar* dcr = dc + b * H;
      for (std::int64_t j = 0; j < H; ++j) {
        const Scalar i = wr[j], f = wr[H + j], g = wr[2 * H + j], o = wr[3 * H + j], tc = wr[5 * H + j];
        const Scalar dht = grad_h(j);
        const Scalar dct = dcr[j] + dht * o * (Scalar(1) - tc * tc);
        dgr[j] = dct * g * i * (Scalar(1) - i);
        dgr[H + j] = dct * cpr[j] * f * (Scalar(1) - f);
        dgr[2 * H + j] = dct * i * (Scalar(1) - g * g);
        dgr[3 * H + j] = dht * tc * o * (Scalar(1) - o);
        dcr[j] = dct * f;  // becomes dc_{t-1}
      }
    } else {  // GRU
      const Scalar* wr = ws + b * W;
      const Scalar* hpr = h_prev + b * H;
      Scalar* dghr = d_gates_hh + b * GH;
      Scalar* dhp = dh_prev + b * H;
      for (std::int64_t j = 0; j < H; ++j) {
        const Scalar r = wr[j], z = wr[H + j], n = wr[2 * H + j], ghn = wr[3 * H + j];
        const Scalar dht = grad_h(j);
        const Scalar dn = dht * (Scalar(1) - z) * (Scalar(1) - n * n);
        const Scalar dz = dht * (hpr[j] - n) * z * (Scalar(1) - z);
        const Scalar dr = dn * ghn * r * (Scalar(1) - r);
        dgr[j] = dghr[j] = dr;
        dgr[H + j] = dghr[H + j] = dz;
        dgr[2 * H + j] = dn;
        dghr[2 * H + j] = dn * r;
        dhp[j] = dht * z;  // the direct path h_{t-1} -> h_t
      }
    }
  }
}

template <typename Scalar>
void column_sums_scalar(std::int64_t rows, std::int64_t cols, const Scalar* src, std::int64_t ld, Scalar* dst) {
  for (std::int64_t j = 0; j < cols; ++j) dst[j] = Scalar(0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j) dst[j] += src[r * ld + j];
}

}  // namespace

const GradKernels<double>& portable_grads_f64() {
  static const GradKernels<double> k{&gate_gradients_scalar<double>, &column_sums_scalar<double>};
  return k;
}

template <>
const GradKernels<float>& grad_kernels<float>(Isa isa) {
  return RNNFAST_TABLE_FOR_ISA(isa, grads_f32);
}

template <>
const GradKernels<double>& grad_kernels<double>(Isa) {
  return portable_grads_f64();
}

}  // namespace rnnfast
