// The int8 kernels with AVX512_VNNI (kernels/reduced_impl.h): vpdpbusd multiplies 64 unsigned bytes by
// 64 signed bytes and adds each group of four products to a 32-bit lane, 64 multiply-adds an
// instruction: the operands of rnnfast's int8 scheme, unsigned activations and signed weights, as they are.
// Sums of four products of at most 255 * 127 cannot overflow a lane.
#include <immintrin.h>

#include "isa_avx512vnni.h"
#include "reduced_impl.h"
#include "reduced_tiles_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// acc += the four-byte dot products of a (unsigned) and w (signed), in place. (GCC 12 compiles
// _mm512_dpbusd_epi32 into the instruction plus two register copies of the accumulator, which
// tripled the tile's instructions; the instruction itself accumulates into its destination.)
inline void dpbusd(__m512i& acc, __m512i a, __m512i w) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w)); }

struct VnniInt8Dot {
  static constexpr WeightType kType = WeightType::kInt8;
  using Operand = std::uint8_t;
  using Acc = std::int32_t;
  static constexpr int kOperandBias = 0;
  // Accumulators R*G, the G weight vectors and a broadcast within 32 registers.
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
    __m512i acc[P][R][G];
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g) acc[q][r][g] = _mm512_setzero_si512();
    // Weights of every gate in registers, then one broadcast a row: R*G accumulators, G weight
    // vectors and a broadcast (29 of 32 registers for the LSTM's 6 rows), nothing spilled.
    for (std::int64_t k = 0; k < padded_depth; k += 4) {
      #pragma GCC unroll 16
      for (int q = 0; q < P; ++q) {
        const std::uint8_t* wk = panel + q * panel_bytes + k * G * kReducedUnits;
        __m512i w[G];
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g) w[g] = _mm512_loadu_si512(wk + g * 64);
        #pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          std::int32_t four;
          std::memcpy(&four, a + r * padded_depth + k, 4);
          const __m512i av = _mm512_set1_epi32(four);
          #pragma GCC unroll 16
          for (int g = 0; g < G; ++g) dpbusd(acc[q][r][g], av, w[g]);
        }
      }
    }
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        #pragma GCC unroll 16
        for (int g = 0; g < G; ++g) _mm512_storeu_si512(out + ((q * R + r) * G + g) * kReducedUnits, acc[q][r][g]);
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<VnniInt8Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(int8, VnniInt8Dot, "avx512_vnni")
