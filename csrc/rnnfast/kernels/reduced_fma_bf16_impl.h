// The bfloat16 tile without AVX512_BF16 (kernels/reduced_impl.h): the packed pairs widened to float32
// in registers (the odd value is the pair's high half with the low half cleared, the even one the low
// half shifted up) and two fused multiply-adds per pair, odd first. The products of bfloat16 values are
// exact in float32, so each fused multiply-add rounds once, as vdpbf16ps does: the same bits (without
// its denormal flushing). Compiled for avx2 and avx512 through the Vec policy below.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "reduced_tiles_impl.h"

// GCC 12 warns that the AVX-512 headers' own placeholder operand (_mm512_undefined_*) may be used
// uninitialized when these tiles are inlined: a known false positive of the intrinsics headers.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning (and warns of the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

#if RNNFAST_VEC_BYTES == 64
struct FmaVec {
  using V = __m512;
  static constexpr int kUnits = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V broadcast(float v) { return _mm512_set1_ps(v); }
  static void widen(const std::uint8_t* p, V& odd, V& even) {
    const __m512i pairs = _mm512_loadu_si512(p);
    odd = _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
    even = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
  }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* out, V v) { _mm512_storeu_ps(out, v); }
};
#else
struct FmaVec {
  using V = __m256;
  static constexpr int kUnits = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V broadcast(float v) { return _mm256_set1_ps(v); }
  static void widen(const std::uint8_t* p, V& odd, V& even) {
    const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    odd = _mm256_castsi256_ps(_mm256_and_si256(pairs, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
    even = _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16));
  }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* out, V v) { _mm256_storeu_ps(out, v); }
};
#endif

struct FmaBf16Dot {
  static constexpr WeightType kType = WeightType::kBf16;
  using Operand = std::uint16_t;
  using Acc = float;
  static constexpr int kOperandBias = 0;
  static constexpr int kVectors = kReducedUnits / FmaVec::kUnits;  // per gate
  // Accumulators P*R*G*kVectors, two broadcasts a row and the widened pair within the registers.
  static constexpr int tile_rows(int gates) {
    return RNNFAST_VECTOR_REGISTERS == 32 ? (gates == 1 ? 8 : gates == 3 ? 5 : 4) : (gates == 1 ? 3 : 1);
  }
  static constexpr int row_panels(int gates) {
    return RNNFAST_VECTOR_REGISTERS == 32 ? (gates == 1 ? 8 : 4) : (gates == 1 ? 2 : 1);
  }
  static constexpr int block_panels(int) { return 1; }
  static constexpr int block_rows(int) { return 1; }

  // Not inlined into its callers: alone, the tile keeps every accumulator in a register.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a,
                                            const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    typename FmaVec::V acc[P][R][G][kVectors];
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g)
          #pragma GCC unroll 16
          for (int v = 0; v < kVectors; ++v) acc[q][r][g][v] = FmaVec::zero();
    for (std::int64_t k = 0; k < padded_depth; k += 2) {
      typename FmaVec::V odd_a[R], even_a[R];
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        odd_a[r] = FmaVec::broadcast(bf16_value(a[r * padded_depth + k + 1]));
        even_a[r] = FmaVec::broadcast(bf16_value(a[r * padded_depth + k]));
      }
      #pragma GCC unroll 16
      for (int q = 0; q < P; ++q) {
        const std::uint8_t* wk = panel + q * panel_bytes + k * 2 * G * kReducedUnits;
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g)
          #pragma GCC unroll 16
          for (int v = 0; v < kVectors; ++v) {
            typename FmaVec::V odd_w, even_w;
            FmaVec::widen(wk + g * 64 + v * 4 * FmaVec::kUnits, odd_w, even_w);
            #pragma GCC unroll 16
            for (int r = 0; r < R; ++r) {
              acc[q][r][g][v] = FmaVec::fma(odd_a[r], odd_w, acc[q][r][g][v]);
              acc[q][r][g][v] = FmaVec::fma(even_a[r], even_w, acc[q][r][g][v]);
            }
          }
      }
    }
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g)
          #pragma GCC unroll 16
          for (int v = 0; v < kVectors; ++v)
            FmaVec::store(out + ((q * R + r) * G + g) * kReducedUnits + v * FmaVec::kUnits, acc[q][r][g][v]);
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<FmaBf16Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
