// float32 vector math for every instruction set: the activations, and VectorMath, the math policy
// through which the cells (cells/<cell>.h) run on vectors. Include it only from a per-ISA file, after
// its kernels/isa_<isa>.h. Everything lives in the instruction set's namespace and calls no inline
// non-template function of another header, so no code built for a wider instruction set can leak into
// another (the ODR trap, docs/design.md).
//
// Accuracy (float32, against float64, over a dense sweep of [-100, 100] plus special values, on every
// instruction set; tests/kernels/test_activations.py enforces the bounds, the measured maxima are in brackets):
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
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif


namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

typedef float FloatVec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
typedef std::int32_t IntVec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
constexpr int kFloatLanes = RNNFAST_VEC_BYTES / sizeof(float);

inline FloatVec splat(float v) { return FloatVec{} + v; }

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

// The cells' math policy on float32 vectors (the contract in cells/cell_unit.h).
struct VectorMath {
  using Scalar = float;
  using Vec = FloatVec;
  static constexpr int kLanes = kFloatLanes;
  static Vec load(const float* p) {
    Vec v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }
  // a * b + c rounded once where the instruction set has a fused multiply-add (x86-64's generic path
  // has none: rounded twice). Written out for the sums of two products in the cells' lines, where
  // -ffp-contract=fast would leave the choice of the product to fuse to the compiler: GCC and clang
  // choose differently, and the wheels are built with clang (docs/design.md section 10).
  static Vec mul_add(Vec a, Vec b, Vec c) {
#if RNNFAST_VEC_BYTES == 64 && defined(__AVX512F__)
    return (Vec)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif RNNFAST_VEC_BYTES == 32 && defined(__FMA__)
    return (Vec)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif RNNFAST_VEC_BYTES == 16 && defined(__aarch64__)
    return (Vec)vfmaq_f32((float32x4_t)c, (float32x4_t)a, (float32x4_t)b);
#else
    return a * b + c;
#endif
  }
  static Vec sigmoid(Vec x) { return sigmoid_v(x); }
  static Vec tanh(Vec x) { return tanh_v(x); }
  static Vec relu(Vec x) { return select(x < 0.0f, splat(0.0f), x); }  // NaN passes, as np.maximum
  static Vec step(Vec h) {
    const IntVec positive = h > 0.0f;
    return positive ? Vec{} + 1.0f : Vec{};
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
