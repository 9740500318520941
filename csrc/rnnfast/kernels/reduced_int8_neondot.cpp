// The int8 kernels for aarch64 with the dot-product extension (kernels/reduced_impl.h): sdot adds to
// each 32-bit lane the four products of signed bytes, 16 multiply-adds an instruction. Both operands
// of sdot are signed, so this kernel's activation bytes are q - 128 (ReducedKernel::operand_bias) and
// the epilogue's zero point is lowered by as much: the exact sums of (q - zero_point) q_w all the same.
// One gate at a time: R rows x 4 vectors of accumulators, 4 weight vectors, one broadcast.
#include <arm_neon.h>

#include "isa_neondot.h"
#include "reduced_impl.h"
#include "reduced_tiles_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

struct NeonDotInt8Dot {
  static constexpr WeightType kType = WeightType::kInt8;
  using Operand = std::uint8_t;
  using Acc = std::int32_t;
  static constexpr int kOperandBias = 128;
  static constexpr int tile_rows(int) { return 6; }
  static constexpr int row_panels(int) { return 1; }
  static constexpr int block_panels(int) { return 1; }
  static constexpr int block_rows(int) { return 1; }

  // Not inlined into its callers: alone, the tile keeps every accumulator in a register.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a, const std::uint8_t* panel,
                                            std::int64_t panel_bytes, Acc* out) {
    #pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
      #pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        int32x4_t acc[R][4];
        #pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
          #pragma GCC unroll 16
          for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
        const std::int8_t* wk = reinterpret_cast<const std::int8_t*>(panel + q * panel_bytes) + g * 64;
        for (std::int64_t k = 0; k < padded_depth; k += 4, wk += G * 64) {
          int8x16_t w[4];
          #pragma GCC unroll 16
          for (int v = 0; v < 4; ++v) w[v] = vld1q_s8(wk + 16 * v);
          #pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            std::int32_t four;
            std::memcpy(&four, a + r * padded_depth + k, 4);
            const int8x16_t av = vreinterpretq_s8_s32(vdupq_n_s32(four));
            #pragma GCC unroll 16
            for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_s32(acc[r][v], av, w[v]);
          }
        }
        #pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
          #pragma GCC unroll 16
          for (int v = 0; v < 4; ++v) vst1q_s32(out + ((q * R + r) * G + g) * kReducedUnits + 4 * v, acc[r][v]);
      }
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<NeonDotInt8Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(int8, NeonDotInt8Dot, "neon_dotprod")
