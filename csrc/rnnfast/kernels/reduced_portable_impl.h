// Portable reduced-precision tiles (the Dot policies of kernels/reduced_impl.h) in plain C++, which the
// compiler vectorizes for the file's instruction set: the generic instruction set's kernels. Integer
// sums are exact in any order; the bfloat16 chain runs in the order reduced/reduced_weights.h defines,
// and its products are exact, so a fused multiply-add gives the same bits as a multiply and an add.
#include <cstdint>

#include "reduced_tiles_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// What the two portable tiles share: their shapes, and the switch from a tile's run-time shape to
// Dot::run<G, R, P>.
template <class Dot>
struct PortableShape {
  static constexpr int kOperandBias = 0;
  static constexpr int tile_rows(int) { return 4; }
  static constexpr int row_panels(int gates) { return gates == 1 ? 4 : 2; }
  static constexpr int block_panels(int) { return 1; }
  static constexpr int block_rows(int) { return 1; }
  template <typename Operand, typename Acc>  // Dot's (a template: Dot is incomplete here)
  static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
                   const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    run_tile<Dot>(rows, panels, gates, padded_depth, a, panel, panel_bytes, out);
  }
};

struct PortableInt8Dot : PortableShape<PortableInt8Dot> {
  static constexpr WeightType kType = WeightType::kInt8;
  using Operand = std::uint8_t;
  using Acc = std::int32_t;
  // Not inlined into its callers: alone, the tile keeps every accumulator in a register.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a,
                                            const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    constexpr int kWidth = G * kReducedUnits;
    for (int q = 0; q < P; ++q) {
      const std::int8_t* w = reinterpret_cast<const std::int8_t*>(panel + q * panel_bytes);
      for (int i = 0; i < R; ++i) {
        const std::uint8_t* row = a + i * padded_depth;
        // Unsigned, so that the sums wrap as the vector instructions' do (defined behaviour): the
        // result is exact whenever the true sum fits in 32 bits (reduced_weights.h).
        std::uint32_t acc[kWidth] = {};
        for (std::int64_t k = 0; k < padded_depth; k += 4) {
          const std::int32_t a0 = row[k], a1 = row[k + 1], a2 = row[k + 2], a3 = row[k + 3];
          const std::int8_t* wk = w + k * kWidth;
          for (int c = 0; c < kWidth; ++c)
            acc[c] += static_cast<std::uint32_t>(a0 * wk[4 * c] + a1 * wk[4 * c + 1] + a2 * wk[4 * c + 2] +
                                                 a3 * wk[4 * c + 3]);
        }
        std::memcpy(out + (q * R + i) * kWidth, acc, sizeof(acc));
      }
    }
  }
};

struct PortableBf16Dot : PortableShape<PortableBf16Dot> {
  static constexpr WeightType kType = WeightType::kBf16;
  using Operand = std::uint16_t;
  using Acc = float;
  // Not inlined into its callers: alone, the tile keeps every accumulator in a register.
  template <int G, int R, int P>
  __attribute__((noinline)) static void run(std::int64_t padded_depth, const Operand* a,
                                            const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out) {
    constexpr int kWidth = G * kReducedUnits;
    for (int q = 0; q < P; ++q) {
      const std::uint16_t* w = reinterpret_cast<const std::uint16_t*>(panel + q * panel_bytes);
      for (int i = 0; i < R; ++i) {
        const std::uint16_t* row = a + i * padded_depth;
        float acc[kWidth] = {};
        for (std::int64_t k = 0; k < padded_depth; k += 2) {
          const float odd = bf16_value(row[k + 1]), even = bf16_value(row[k]);
          // Each packed pair read as one 32-bit value and split in two, as the vector tiles do. (Reading
          // the two halves as separate 16-bit values is miscompiled by GCC 12 at -O3, whose vectorizer
          // then pairs the even weight with the odd activation: tests/kernels catch it.)
          const std::uint16_t* wk = w + k * kWidth;
          for (int c = 0; c < kWidth; ++c) {
            std::uint32_t pair;
            std::memcpy(&pair, wk + 2 * c, 4);
            const std::uint32_t odd_bits = pair & 0xffff0000u, even_bits = pair << 16;
            float odd_w, even_w;
            std::memcpy(&odd_w, &odd_bits, 4);
            std::memcpy(&even_w, &even_bits, 4);
            acc[c] = acc[c] + odd * odd_w;
            acc[c] = acc[c] + even * even_w;
          }
        }
        std::memcpy(out + (q * R + i) * kWidth, acc, sizeof(acc));
      }
    }
  }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
