// The AVX-512 tile of the instructions that add, to each 32-bit lane of a 64-byte accumulator, the
// products of one 4-byte group of an activation row (broadcast) with the lane's group of weights:
// vpdpbusd (int8, kernels/reduced_int8_avx512vnni.cpp) and vdpbf16ps (bf16,
// kernels/reduced_bf16_avx512bf16.cpp). One Dot policy (kernels/reduced_impl.h) over an Op that names
// the instruction:
//   kType, Operand, Acc, kGroup (depths a 4-byte group holds: 4 int8, 2 bfloat16);
//   using Vec (the accumulator vector); static Vec zero(); static void store(Acc* out, Vec v);
//   static void dot(Vec& acc, __m512i broadcast, __m512i weights): acc += the group products, in place.
// Include it only from those files, after their kernels/isa_<isa>.h (the ODR trap).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "reduced_tiles_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

template <class Op>
struct GroupDot {
  static constexpr WeightType kType = Op::kType;
  using Operand = typename Op::Operand;
  using Acc = typename Op::Acc;
  static constexpr int kOperandBias = 0;
  // Accumulators R*G, the G weight vectors and a broadcast within 32 registers (29 for the LSTM).
  static constexpr int tile_rows(int gates) { return gates == 1 ? 8 : 6; }
  static constexpr int row_panels(int gates) { return gates == 1 ? 8 : 4; }
  // The RNN's one-gate tile is one vector wide: four blocks a tile instead, for fewer loads a
  // multiply-add (6 rows x 4 blocks: 24 accumulators).
  static constexpr int block_panels(int gates) { return gates == 1 ? 4 : 1; }
  static constexpr int block_rows(int) { return 6; }

  // Not inlined into its callers: alone, the tile keeps every accumulator in a register. Weights of
  // every gate in registers, then one broadcast a row.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a, const std::uint8_t* panel,
                                            std::int64_t panel_bytes, Acc* out) {
    typename Op::Vec acc[P][R][G];
#pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) acc[q][r][g] = Op::zero();
    for (std::int64_t k = 0; k < padded_depth; k += Op::kGroup) {
#pragma GCC unroll 16
      for (int q = 0; q < P; ++q) {
        const std::uint8_t* wk = panel + q * panel_bytes + (k / Op::kGroup) * G * 64;
        __m512i w[G];
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) w[g] = _mm512_loadu_si512(wk + g * 64);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          std::int32_t group;
          std::memcpy(&group, a + r * padded_depth + k, 4);
          const __m512i broadcast = _mm512_set1_epi32(group);
#pragma GCC unroll 16
          for (int g = 0; g < G; ++g) Op::dot(acc[q][r][g], broadcast, w[g]);
        }
      }
    }
#pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) Op::store(out + ((q * R + r) * G + g) * kReducedUnits, acc[q][r][g]);
  }
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<GroupDot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
