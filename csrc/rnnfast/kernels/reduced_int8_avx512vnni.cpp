// The int8 kernels with AVX512_VNNI (kernels/reduced_impl.h): vpdpbusd multiplies 64 unsigned bytes by
// 64 signed bytes and adds each group of four products to a 32-bit lane, 64 multiply-adds an
// instruction. The activations are signed, so each broadcast is shifted to unsigned (q + 128, an xor
// of the sign bits) and the tile subtracts 128 times each weight row's sum (ReducedWeights'
// column offsets): the exact signed sums.
#include <immintrin.h>

#include "isa_avx512vnni.h"
#include "reduced_impl.h"
#include "reduced_tiles_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

struct VnniInt8Dot {
  static constexpr WeightType kType = WeightType::kInt8;
  using Operand = std::int8_t;
  using Acc = std::int32_t;
  // Accumulators R*G, the R broadcasts, a weight vector and the sign mask within 32 registers.
  static constexpr int tile_rows(int gates) { return gates == 1 ? 8 : 6; }
  static constexpr int row_panels(int gates) { return gates == 1 ? 8 : 4; }

  template <int G, int R, int P>
  static void run(std::int64_t padded_depth, const Operand* a, const std::uint8_t* panel, std::int64_t panel_bytes,
                  const std::int32_t* offsets, Acc* out) {
    __m512i acc[P][R][G];
    for (int q = 0; q < P; ++q)
      for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) acc[q][r][g] = _mm512_setzero_si512();
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80808080u));
    for (std::int64_t k = 0; k < padded_depth; k += 4) {
      __m512i av[R];
      for (int r = 0; r < R; ++r) {
        std::int32_t four;
        std::memcpy(&four, a + r * padded_depth + k, 4);
        av[r] = _mm512_xor_si512(_mm512_set1_epi32(four), sign);
      }
      for (int q = 0; q < P; ++q) {
        const std::uint8_t* wk = panel + q * panel_bytes + k * G * kReducedUnits;
        for (int g = 0; g < G; ++g) {
          const __m512i w = _mm512_loadu_si512(wk + g * 64);
          for (int r = 0; r < R; ++r) acc[q][r][g] = _mm512_dpbusd_epi32(acc[q][r][g], av[r], w);
        }
      }
    }
    for (int q = 0; q < P; ++q)
      for (int g = 0; g < G; ++g) {
        const __m512i offset = _mm512_loadu_si512(offsets + (q * G + g) * kReducedUnits);
        for (int r = 0; r < R; ++r)
          _mm512_storeu_si512(out + ((q * R + r) * G + g) * kReducedUnits, _mm512_sub_epi32(acc[q][r][g], offset));
      }
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, const std::int32_t* offsets, Acc* out) {
    run_tile<VnniInt8Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, offsets, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(int8, VnniInt8Dot, "avx512_vnni")
