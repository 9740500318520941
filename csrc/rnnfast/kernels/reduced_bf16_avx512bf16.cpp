// The bfloat16 kernels with AVX512_BF16 (kernels/reduced_impl.h): vdpbf16ps adds to each float32 lane
// the products of a pair of bfloat16 values, the odd one first, each sum rounded (the chain
// reduced/reduced_weights.h defines; the hardware flushes denormals), 32 multiply-adds an instruction.
#include <immintrin.h>

#include "isa_avx512bf16.h"
#include "reduced_impl.h"
#include "reduced_tiles_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

struct Avx512Bf16Dot {
  static constexpr WeightType kType = WeightType::kBf16;
  using Operand = std::uint16_t;
  using Acc = float;
  static constexpr int tile_rows(int gates) { return gates == 1 ? 8 : 6; }
  static constexpr int row_panels(int gates) { return gates == 1 ? 8 : 4; }

  template <int G, int R, int P>
  static void run(std::int64_t padded_depth, const Operand* a, const std::uint8_t* panel, std::int64_t panel_bytes,
                  const std::int32_t*, Acc* out) {
    __m512 acc[P][R][G];
    for (int q = 0; q < P; ++q)
      for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) acc[q][r][g] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < padded_depth; k += 2) {
      __m512bh av[R];
      for (int r = 0; r < R; ++r) {
        std::int32_t pair;
        std::memcpy(&pair, a + r * padded_depth + k, 4);
        av[r] = (__m512bh)_mm512_set1_epi32(pair);
      }
      for (int q = 0; q < P; ++q) {
        const std::uint8_t* wk = panel + q * panel_bytes + k * 2 * G * kReducedUnits;
        for (int g = 0; g < G; ++g) {
          const __m512bh w = (__m512bh)_mm512_loadu_si512(wk + g * 64);
          for (int r = 0; r < R; ++r) acc[q][r][g] = _mm512_dpbf16_ps(acc[q][r][g], av[r], w);
        }
      }
    }
    for (int q = 0; q < P; ++q)
      for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) _mm512_storeu_ps(out + ((q * R + r) * G + g) * kReducedUnits, acc[q][r][g]);
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, const std::int32_t* offsets, Acc* out) {
    run_tile<Avx512Bf16Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, offsets, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(bf16, Avx512Bf16Dot, "avx512_bf16")
