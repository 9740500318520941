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

// acc += the pair products of a and w, in place (an inline instruction: GCC 12 surrounds
// _mm512_dpbf16_ps with register copies of the accumulator).
inline void dpbf16(__m512& acc, __m512i a, __m512i w) { asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w)); }

struct Avx512Bf16Dot {
  static constexpr WeightType kType = WeightType::kBf16;
  using Operand = std::uint16_t;
  using Acc = float;
  static constexpr int kOperandBias = 0;
  static constexpr int tile_rows(int gates) { return gates == 1 ? 8 : 6; }
  static constexpr int row_panels(int gates) { return gates == 1 ? 8 : 4; }
  // The RNN's one-gate tile is one vector wide: four blocks a tile instead, for fewer loads a
  // multiply-add (6 rows x 4 blocks: 24 accumulators).
  static constexpr int block_panels(int gates) { return gates == 1 ? 4 : 1; }
  static constexpr int block_rows(int) { return 6; }

  // Not inlined into its callers: alone, the tile keeps every accumulator in a register.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a, const std::uint8_t* panel, std::int64_t panel_bytes,
                  Acc* out) {
    __m512 acc[P][R][G];
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g) acc[q][r][g] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < padded_depth; k += 2) {
      #pragma GCC unroll 16
      for (int q = 0; q < P; ++q) {
        const std::uint8_t* wk = panel + q * panel_bytes + k * 2 * G * kReducedUnits;
        __m512i w[G];
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g) w[g] = _mm512_loadu_si512(wk + g * 64);
        #pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          std::int32_t pair;
          std::memcpy(&pair, a + r * padded_depth + k, 4);
          const __m512i av = _mm512_set1_epi32(pair);
          #pragma GCC unroll 16
          for (int g = 0; g < G; ++g) dpbf16(acc[q][r][g], av, w[g]);
        }
      }
    }
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g) _mm512_storeu_ps(out + ((q * R + r) * G + g) * kReducedUnits, acc[q][r][g]);
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<Avx512Bf16Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(bf16, Avx512Bf16Dot, "avx512_bf16")
