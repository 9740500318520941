// Vectorised activations and per-vector gate updates for float32, shared by every instruction set (the
// fused step, recurrent_impl.h, applies them to its tiles). Include it only from a per-ISA file that
// defines RNNFAST_ISA_NAMESPACE and RNNFAST_VEC_BYTES. Like the micro-kernel, everything lives in the ISA's namespace and calls no inline
// function of another header, so no code built for a wider instruction set can leak into another.
//
// Accuracy (float32, against float64, over a dense sweep of [-100, 100] plus special values, on every
// instruction set; tests/test_activations.py enforces the bounds, the measured maxima are in brackets):
//   exp_v:     relative error <= 1 ulp [0.68] on [-86, 88]; clamps outside that range, so it never
//              returns a denormal or an infinity (exp(-86) ~ 4.5e-38 > FLT_MIN). NaN propagates.
//   sigmoid_v: 1 / (1 + e) or e / (1 + e) with e = exp(-|x|): relative error <= 2 ulp [1.52] for
//              x >= -86; below, exp's clamp gives about 4.5e-38 (absolute error under 5e-38).
//   tanh_v:    odd Taylor polynomial for |x| < 0.25 (truncation below 1e-8 relative), (1 - e) / (1 + e)
//              with e = exp(-2|x|) above: relative error <= 2 ulp [1.42]; tanh(+-0) = +-0 exactly.
#include <cstdint>
#include <cstring>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "rnnfast/microkernel.h"
#include "rnnfast/rnn.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

typedef float FloatVec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
typedef std::int32_t IntVec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
constexpr int kFloatLanes = RNNFAST_VEC_BYTES / sizeof(float);

inline FloatVec splat(float v) { return FloatVec{} + v; }

inline FloatVec load(const float* p) {
  FloatVec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store(float* p, FloatVec v) { std::memcpy(p, &v, sizeof(v)); }

inline FloatVec select(IntVec mask, FloatVec yes, FloatVec no) { return mask ? yes : no; }

// Sign-bit operations: |x|, -|x|, and t with the sign of x (one or two bitwise instructions each, in
// place of a compare, a negation and a blend).
// (splat(-0.0f) would not do for the sign mask: it is 0.0f + -0.0f, which is +0.)
constexpr std::int32_t kSignBit = std::int32_t(-2147483647 - 1);
inline FloatVec abs_v(FloatVec x) { return (FloatVec)((IntVec)x & ~kSignBit); }
inline FloatVec negative_abs_v(FloatVec x) { return (FloatVec)((IntVec)x | kSignBit); }
inline FloatVec with_sign_of(FloatVec t, FloatVec x) {  // t >= 0 (or NaN)
  return (FloatVec)((IntVec)t | ((IntVec)x & kSignBit));
}

#if RNNFAST_VEC_BYTES == 64 && defined(__AVX512F__)
// The zero-masking forms with every lane selected compile to the plain instructions; the plain
// intrinsics' _mm512_undefined_ps draws a false -Wmaybe-uninitialized from GCC 12.
constexpr __mmask16 kAllLanes = 0xFFFF;
#endif

// max(x, lo) and min(x, hi) that pass NaN through (x is the max/min instructions' second operand,
// which they return when either is NaN): one instruction where the ISA has them, else a blend.
inline FloatVec at_least(FloatVec x, float lo) {
#if RNNFAST_VEC_BYTES == 64 && defined(__AVX512F__)
  return (FloatVec)_mm512_maskz_max_ps(kAllLanes, (__m512)splat(lo), (__m512)x);
#elif RNNFAST_VEC_BYTES == 32 && defined(__AVX__)
  return (FloatVec)_mm256_max_ps((__m256)splat(lo), (__m256)x);
#else
  return select(x < lo, splat(lo), x);  // NaN compares false and passes through
#endif
}
inline FloatVec at_most(FloatVec x, float hi) {
#if RNNFAST_VEC_BYTES == 64 && defined(__AVX512F__)
  return (FloatVec)_mm512_maskz_min_ps(kAllLanes, (__m512)splat(hi), (__m512)x);
#elif RNNFAST_VEC_BYTES == 32 && defined(__AVX__)
  return (FloatVec)_mm256_min_ps((__m256)splat(hi), (__m256)x);
#else
  return select(x > hi, splat(hi), x);
#endif
}

// e^x for x already in [-86, 88] (or NaN): x = n ln2 + r with |r| <= ln2/2, e^r by Cephes' degree-7
// minimax polynomial, times 2^n. n is rounded with the 1.5 * 2^23 shift, which leaves it in the low
// mantissa bits; 2^n is built from those bits, or applied by vscalefps on AVX-512 (the same exact
// product: p * 2^n is a normal float for every n here).
inline FloatVec exp_in_range_v(FloatVec x) {
  const FloatVec shift = splat(12582912.0f);  // 1.5 * 2^23
  const FloatVec shifted = x * 1.44269504088896341f + shift;
  const FloatVec n = shifted - shift;
  FloatVec r = x - n * 0.693359375f;  // ln2 split in two for an exact first product
  r = r - n * -2.12194440e-4f;
  FloatVec p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
#if RNNFAST_VEC_BYTES == 64 && defined(__AVX512F__)
  return (FloatVec)_mm512_maskz_scalef_ps(kAllLanes, (__m512)p, (__m512)n);
#else
  const IntVec n_int = (IntVec)shifted - 0x4B400000;  // the bits of 1.5 * 2^23
  const IntVec scale = (n_int + 127) << 23;
  return p * (FloatVec)scale;
#endif
}

// e^x, clamped to [-86, 88] first (NaN passes through).
inline FloatVec exp_v(FloatVec x) { return exp_in_range_v(at_most(at_least(x, -86.0f), 88.0f)); }

// e^x for x <= 0 (no upper clamp needed).
inline FloatVec exp_nonpositive_v(FloatVec x) { return exp_in_range_v(at_least(x, -86.0f)); }

inline FloatVec sigmoid_v(FloatVec x) {
  const FloatVec e = exp_nonpositive_v(negative_abs_v(x));  // exp(-|x|) never overflows
  const FloatVec s = 1.0f / (1.0f + e);
  return select(x < 0.0f, e * s, s);
}

inline FloatVec tanh_v(FloatVec x) {
  const FloatVec ax = abs_v(x);
  // Small |x|: Taylor series x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 (next term < 1e-8 relative).
  const FloatVec x2 = ax * ax;
  FloatVec p = splat(62.0f / 2835.0f);
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const FloatVec small = ax + ax * x2 * p;
  const FloatVec e = exp_nonpositive_v(-2.0f * ax);
  const FloatVec large = (1.0f - e) / (1.0f + e);
  return with_sign_of(select(ax < 0.25f, small, large), x);
}

// One vector of hidden units of one row. Gate blocks of the input projection and of the workspace
// lie `gate_stride` apart (H in the real rows, a block's width in the zero-padded stand-ins of a
// tail), those of the recurrent projection `gh_stride` apart (H, or U in a fused step's tile).

inline void lstm_unit(const float* gx, const float* gh, std::int64_t gate_stride, std::int64_t gh_stride,
                      const float* c_prev, float* h, float* c, float* ws) {
  const std::int64_t s = gate_stride, q = gh_stride;
  const FloatVec i = sigmoid_v(load(gx) + load(gh));
  const FloatVec f = sigmoid_v(load(gx + s) + load(gh + q));
  const FloatVec g = tanh_v(load(gx + 2 * s) + load(gh + 2 * q));
  const FloatVec o = sigmoid_v(load(gx + 3 * s) + load(gh + 3 * q));
  const FloatVec cn = f * load(c_prev) + i * g;
  const FloatVec tc = tanh_v(cn);
  store(c, cn);
  store(h, o * tc);
  if (ws != nullptr) {
    store(ws, i);
    store(ws + s, f);
    store(ws + 2 * s, g);
    store(ws + 3 * s, o);
    store(ws + 4 * s, cn);
    store(ws + 5 * s, tc);
  }
}

inline void gru_unit(const float* gx, const float* gh, std::int64_t gate_stride, std::int64_t gh_stride,
                     const float* h_prev, float* h, float* ws) {
  const std::int64_t s = gate_stride, q = gh_stride;
  const FloatVec r = sigmoid_v(load(gx) + load(gh));
  const FloatVec z = sigmoid_v(load(gx + s) + load(gh + q));
  const FloatVec ghn = load(gh + 2 * q);
  const FloatVec n = tanh_v(load(gx + 2 * s) + r * ghn);
  store(h, (1.0f - z) * n + z * load(h_prev));
  if (ws != nullptr) {
    store(ws, r);
    store(ws + s, z);
    store(ws + 2 * s, n);
    store(ws + 3 * s, ghn);
  }
}

inline void rnn_unit(bool relu, const float* gx, const float* gh, std::int64_t /*gate_stride*/, float* h) {
  const FloatVec pre = load(gx) + load(gh);
  store(h, relu ? select(pre < 0.0f, splat(0.0f), pre) : tanh_v(pre));  // NaN passes relu, as np.maximum
}

// Copies `blocks` blocks of `count` values, `src_stride` apart, into blocks `dst_stride` apart.
inline void copy_blocks(float* dst, std::int64_t dst_stride, const float* src, std::int64_t src_stride, int blocks,
                        int count) {
  for (int q = 0; q < blocks; ++q) std::memcpy(dst + q * dst_stride, src + q * src_stride, count * sizeof(float));
}

// Applies an activation to n values (a test hook for the accuracy bounds above).
template <FloatVec (*kFn)(FloatVec)>
void apply(std::int64_t n, const float* in, float* out) {
  const std::int64_t L = kFloatLanes;
  std::int64_t j = 0;
  for (; j + L <= n; j += L) store(out + j, kFn(load(in + j)));
  if (j < n) {
    float t[L] = {};
    std::memcpy(t, in + j, (n - j) * sizeof(float));
    store(t, kFn(load(t)));
    std::memcpy(out + j, t, (n - j) * sizeof(float));
  }
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

// Defines RNNFAST_ISA_NAMESPACE::cells_f32.
#define RNNFAST_DEFINE_CELLS()                                                                             \
  namespace rnnfast {                                                                                      \
  namespace RNNFAST_ISA_NAMESPACE {                                                                        \
  const CellKernels<float>& cells_f32() {                                                                  \
    static const CellKernels<float> k{&apply<exp_v>, &apply<sigmoid_v>, &apply<tanh_v>};                   \
    return k;                                                                                              \
  }                                                                                                        \
  }                                                                                                        \
  }
