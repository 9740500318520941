// The int8 tile without VNNI, exact (kernels/reduced_impl.h): vpmaddwd multiplies pairs of signed
// 16-bit values and adds each pair into a 32-bit lane, so no sum can saturate (vpmaddubsw's 16-bit
// sums of two 255 x 127 products would). Weights are widened (signed) from the packed bytes as they are
// loaded; a tile's activation rows (unsigned bytes) are widened once, a chunk of depth at a time, and
// each group of four is broadcast as one 64-bit value. A lane pair holds one unit's two partial sums
// (depths 4k, 4k+1 and 4k+2, 4k+3), added at the end: integer sums, exact in any order. Compiled for
// avx2 (32-byte vectors) and avx512 (64-byte, AVX-512BW) through the Vec policy below.
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
struct MaddVec {
  using V = __m512i;
  static constexpr int kUnits = 8;  // units per vector: 8 units x 4 depths of int16
  static V zero() { return _mm512_setzero_si512(); }
  static V widen(const std::int8_t* p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V broadcast(std::int64_t four) { return _mm512_set1_epi64(four); }
  static V madd_add(V acc, V w, V a) { return _mm512_add_epi32(acc, _mm512_madd_epi16(w, a)); }
  // The kUnits sums of acc (lane pairs added) into out[0, kUnits).
  static void store_sums(V acc, std::int32_t* out) {
    const __m512i pairs = _mm512_add_epi32(acc, _mm512_srli_epi64(acc, 32));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi64_epi32(pairs));
  }
};
#else
struct MaddVec {
  using V = __m256i;
  static constexpr int kUnits = 4;
  static V zero() { return _mm256_setzero_si256(); }
  static V widen(const std::int8_t* p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V broadcast(std::int64_t four) { return _mm256_set1_epi64x(four); }
  static V madd_add(V acc, V w, V a) { return _mm256_add_epi32(acc, _mm256_madd_epi16(w, a)); }
  static void store_sums(V acc, std::int32_t* out) {
    const __m256i pairs = _mm256_add_epi32(acc, _mm256_srli_epi64(acc, 32));
    const __m256i low = _mm256_permutevar8x32_epi32(pairs, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(low));
  }
};
#endif

struct MaddInt8Dot {
  static constexpr WeightType kType = WeightType::kInt8;
  using Operand = std::uint8_t;
  using Acc = std::int32_t;
  static constexpr int kOperandBias = 0;
  static constexpr int kVectors = kReducedUnits / MaddVec::kUnits;  // per gate
  // One gate at a time: R * kVectors accumulators, kVectors weight vectors and a broadcast.
  static constexpr int tile_rows(int) { return RNNFAST_VECTOR_REGISTERS == 32 ? 8 : 2; }
  static constexpr int row_panels(int) { return 1; }  // one gate at a time already
  static constexpr int block_panels(int) { return 1; }
  static constexpr int block_rows(int) { return 1; }
  static constexpr std::int64_t kChunk = 512;  // depths widened at a time

  // Not inlined into its callers: alone, the tile keeps every accumulator in a register.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a,
                                            const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    alignas(64) std::int16_t wide[R][kChunk];
    typename MaddVec::V acc[P][G][R][kVectors];
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int g = 0; g < G; ++g)
        #pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
          #pragma GCC unroll 16
          for (int v = 0; v < kVectors; ++v) acc[q][g][r][v] = MaddVec::zero();
    for (std::int64_t k0 = 0; k0 < padded_depth; k0 += kChunk) {
      const std::int64_t depth = padded_depth - k0 < kChunk ? padded_depth - k0 : kChunk;
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        for (std::int64_t k = 0; k < depth; ++k) wide[r][k] = a[r * padded_depth + k0 + k];
      #pragma GCC unroll 16
      for (int q = 0; q < P; ++q)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g)
          for (std::int64_t k = 0; k < depth; k += 4) {
            const std::int8_t* wk =
                reinterpret_cast<const std::int8_t*>(panel + q * panel_bytes) + (k0 + k) * G * kReducedUnits + g * 64;
            typename MaddVec::V w[kVectors];
            #pragma GCC unroll 16
            for (int v = 0; v < kVectors; ++v) w[v] = MaddVec::widen(wk + v * 4 * MaddVec::kUnits);
            #pragma GCC unroll 16
            for (int r = 0; r < R; ++r) {
              std::int64_t four;
              std::memcpy(&four, &wide[r][k], 8);
              const typename MaddVec::V av = MaddVec::broadcast(four);
              #pragma GCC unroll 16
              for (int v = 0; v < kVectors; ++v) acc[q][g][r][v] = MaddVec::madd_add(acc[q][g][r][v], w[v], av);
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
            MaddVec::store_sums(acc[q][g][r][v], out + ((q * R + r) * G + g) * kReducedUnits + v * MaddVec::kUnits);
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<MaddInt8Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
