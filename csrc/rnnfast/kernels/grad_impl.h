// Vectorised float32 backward kernels (the GradKernels table of grad_kernels.h), shared by every
// instruction set. Include it only from a kernels/microkernel_<isa>.cpp file, after the headers that
// define RNNFAST_ISA_NAMESPACE and RNNFAST_VEC_BYTES, and invoke RNNFAST_DEFINE_GRADS() at the end.
// Like the micro-kernel, everything lives in the ISA's namespace (in its own nested namespace, so it
// needs nothing from cells_impl.h) and calls no inline function of another header, so no code built
// for a wider instruction set can leak into another.
//
// The arithmetic is that of the portable scalar code in grad_kernels.cpp, lane by lane. Tails (H not a
// multiple of the vector width) go through zero-padded stand-in buffers of one vector per block, so
// nothing is read or written out of bounds. Every value depends only on the inputs of its own row and
// hidden unit, so results do not depend on how the batch is split.
#include <cstdint>
#include <cstring>

#include "rnnfast/grad_kernels.h"
#include "rnnfast/rnn.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {
namespace grad {

typedef float Vec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
typedef std::int32_t IVec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(float);

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }

// Copies `blocks` blocks of `count` values, `src_stride` apart, into blocks `dst_stride` apart.
inline void copy_blocks(float* dst, std::int64_t dst_stride, const float* src, std::int64_t src_stride, int blocks,
                        int count) {
  for (int q = 0; q < blocks; ++q) std::memcpy(dst + q * dst_stride, src + q * src_stride, count * sizeof(float));
}

// One vector of hidden units of one row. Blocks of the workspace and of the gate gradients lie `s`
// apart (H in the real rows, kLanes in a tail's stand-ins). d_out may be nullptr.

inline Vec grad_h(const float* dh, const float* d_out) {
  return d_out != nullptr ? load(dh) + load(d_out) : load(dh);
}

inline void rnn_unit(bool relu, const float* dh, const float* d_out, const float* h, float* dg) {
  const Vec hv = load(h);
  Vec deriv;
  if (relu) {
    const IVec positive = hv > 0.0f;
    deriv = positive ? Vec{} + 1.0f : Vec{};
  } else {
    deriv = 1.0f - hv * hv;
  }
  store(dg, grad_h(dh, d_out) * deriv);
}

inline void lstm_unit(std::int64_t s, const float* dh, const float* d_out, float* dc, const float* ws,
                      const float* c_prev, float* dg) {
  const Vec i = load(ws), f = load(ws + s), g = load(ws + 2 * s), o = load(ws + 3 * s), tc = load(ws + 5 * s);
  const Vec dht = grad_h(dh, d_out);
  const Vec dct = load(dc) + dht * o * (1.0f - tc * tc);
  store(dg, dct * g * i * (1.0f - i));
  store(dg + s, dct * load(c_prev) * f * (1.0f - f));
  store(dg + 2 * s, dct * i * (1.0f - g * g));
  store(dg + 3 * s, dht * tc * o * (1.0f - o));
  store(dc, dct * f);  // becomes dc_{t-1}
}

inline void gru_unit(std::int64_t s, const float* dh, const float* d_out, const float* ws, const float* h_prev,
                     float* dg, float* dgh, float* dh_prev) {
  const Vec r = load(ws), z = load(ws + s), n = load(ws + 2 * s), ghn = load(ws + 3 * s);
  const Vec dht = grad_h(dh, d_out);
  const Vec dn = dht * (1.0f - z) * (1.0f - n * n);
  const Vec dz = dht * (load(h_prev) - n) * z * (1.0f - z);
  const Vec dr = dn * ghn * r * (1.0f - r);
  store(dg, dr);
  store(dg + s, dz);
  store(dg + 2 * s, dn);
  store(dgh, dr);
  store(dgh + s, dz);
  store(dgh + 2 * s, dn * r);
  store(dh_prev, dht * z);  // the direct path h_{t-1} -> h_t
}

void gate_gradients(Cell cell, std::int64_t rows, std::int64_t hidden, const float* dh, const float* d_out,
                    float* dc, const float* h_t, const float* h_prev, const float* ws, const float* c_prev,
                    std::int64_t c_prev_stride, float* d_gates, float* d_gates_hh, float* dh_prev) {
  const std::int64_t H = hidden, L = kLanes;
  if (cell == Cell::kRnnTanh || cell == Cell::kRnnRelu) {
    // Rows are contiguous blocks of H in every array (GH = H): one run of rows * H units.
    const bool relu = cell == Cell::kRnnRelu;
    const std::int64_t total = rows * H;
    std::int64_t j = 0;
    for (; j + L <= total; j += L)
      rnn_unit(relu, dh + j, d_out != nullptr ? d_out + j : nullptr, h_t + j, d_gates + j);
    if (j < total) {
      const int n = static_cast<int>(total - j);
      float tdh[L] = {}, tdo[L] = {}, th[L] = {}, tdg[L];
      copy_blocks(tdh, L, dh + j, 0, 1, n);
      if (d_out != nullptr) copy_blocks(tdo, L, d_out + j, 0, 1, n);
      copy_blocks(th, L, h_t + j, 0, 1, n);
      rnn_unit(relu, tdh, d_out != nullptr ? tdo : nullptr, th, tdg);
      copy_blocks(d_gates + j, 0, tdg, L, 1, n);
    }
    return;
  }
  if (cell == Cell::kLstm) {
    for (std::int64_t b = 0; b < rows; ++b) {
      const float* dhr = dh + b * H;
      const float* dor = d_out != nullptr ? d_out + b * H : nullptr;
      float* dcr = dc + b * H;
      const float* wr = ws + b * 6 * H;
      const float* cpr = c_prev + b * c_prev_stride;
      float* dgr = d_gates + b * 4 * H;
      std::int64_t j = 0;
      for (; j + L <= H; j += L)
        lstm_unit(H, dhr + j, dor != nullptr ? dor + j : nullptr, dcr + j, wr + j, cpr + j, dgr + j);
      if (j < H) {  // the last H - j units, through zero-padded stand-ins of one vector per block
        const int n = static_cast<int>(H - j);
        float tdh[L] = {}, tdo[L] = {}, tdc[L] = {}, tws[6 * L] = {}, tcp[L] = {}, tdg[4 * L];
        copy_blocks(tdh, L, dhr + j, H, 1, n);
        if (dor != nullptr) copy_blocks(tdo, L, dor + j, H, 1, n);
        copy_blocks(tdc, L, dcr + j, H, 1, n);
        copy_blocks(tws, L, wr + j, H, 6, n);
        copy_blocks(tcp, L, cpr + j, H, 1, n);
        lstm_unit(L, tdh, dor != nullptr ? tdo : nullptr, tdc, tws, tcp, tdg);
        copy_blocks(dgr + j, H, tdg, L, 4, n);
        copy_blocks(dcr + j, H, tdc, L, 1, n);
      }
    }
    return;
  }
  // GRU
  for (std::int64_t b = 0; b < rows; ++b) {
    const float* dhr = dh + b * H;
    const float* dor = d_out != nullptr ? d_out + b * H : nullptr;
    const float* wr = ws + b * 4 * H;
    const float* hpr = h_prev + b * H;
    float* dgr = d_gates + b * 3 * H;
    float* dghr = d_gates_hh + b * 3 * H;
    float* dhp = dh_prev + b * H;
    std::int64_t j = 0;
    for (; j + L <= H; j += L)
      gru_unit(H, dhr + j, dor != nullptr ? dor + j : nullptr, wr + j, hpr + j, dgr + j, dghr + j, dhp + j);
    if (j < H) {
      const int n = static_cast<int>(H - j);
      float tdh[L] = {}, tdo[L] = {}, tws[4 * L] = {}, thp[L] = {}, tdg[3 * L], tdgh[3 * L], tdhp[L];
      copy_blocks(tdh, L, dhr + j, H, 1, n);
      if (dor != nullptr) copy_blocks(tdo, L, dor + j, H, 1, n);
      copy_blocks(tws, L, wr + j, H, 4, n);
      copy_blocks(thp, L, hpr + j, H, 1, n);
      gru_unit(L, tdh, dor != nullptr ? tdo : nullptr, tws, thp, tdg, tdgh, tdhp);
      copy_blocks(dgr + j, H, tdg, L, 3, n);
      copy_blocks(dghr + j, H, tdgh, L, 3, n);
      copy_blocks(dhp + j, H, tdhp, L, 1, n);
    }
  }
}

// Column sums, a strip of kStrip vectors of columns at a time (each lane a column, rows added in
// order), then single vectors, then the last columns through a zero-padded stand-in.
constexpr int kStrip = 4;

void column_sums(std::int64_t rows, std::int64_t cols, const float* src, std::int64_t ld, float* dst) {
  const std::int64_t L = kLanes;
  std::int64_t j = 0;
  for (; j + kStrip * L <= cols; j += kStrip * L) {
    Vec acc[kStrip] = {};
    for (std::int64_t r = 0; r < rows; ++r)
      for (int q = 0; q < kStrip; ++q) acc[q] += load(src + r * ld + j + q * L);
    for (int q = 0; q < kStrip; ++q) store(dst + j + q * L, acc[q]);
  }
  for (; j + L <= cols; j += L) {
    Vec acc = {};
    for (std::int64_t r = 0; r < rows; ++r) acc += load(src + r * ld + j);
    store(dst + j, acc);
  }
  if (j < cols) {
    const int n = static_cast<int>(cols - j);
    float t[L] = {};
    Vec acc = {};
    for (std::int64_t r = 0; r < rows; ++r) {
      copy_blocks(t, L, src + r * ld + j, 0, 1, n);
      acc += load(t);
    }
    store(t, acc);
    copy_blocks(dst + j, 0, t, L, 1, n);
  }
}

}  // namespace grad
}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

// Defines RNNFAST_ISA_NAMESPACE::grads_f32.
#define RNNFAST_DEFINE_GRADS()                                                         \
  namespace rnnfast {                                                                  \
  namespace RNNFAST_ISA_NAMESPACE {                                                    \
  const GradKernels<float>& grads_f32() {                                              \
    static const GradKernels<float> k{&grad::gate_gradients, &grad::column_sums};      \
    return k;                                                                          \
  }                                                                                    \
  }                                                                                    \
  }
