// The int8 kernels with AVX512_VNNI (kernels/reduced_impl.h): vpdpbusd multiplies 64 unsigned bytes by
// 64 signed bytes and adds each group of four products to a 32-bit lane, 64 multiply-adds an
// instruction: the operands of rnnfast's int8 scheme, unsigned activations and signed weights, as they
// are. Sums of four products of at most 255 * 128 cannot overflow a lane, and the lanes wrap as the
// other paths' sums do (reduced/reduced_weights.h).
#include <immintrin.h>

#include "isa_avx512vnni.h"
#include "reduced_impl.h"
#include "reduced_group_tile_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

struct Vpdpbusd {
  static constexpr WeightType kType = WeightType::kInt8;
  using Operand = std::uint8_t;
  using Acc = std::int32_t;
  static constexpr int kGroup = 4;
  using Vec = __m512i;
  static Vec zero() { return _mm512_setzero_si512(); }
  static void store(Acc* out, Vec v) { _mm512_storeu_si512(out, v); }
  // acc += the four-byte dot products of a (unsigned) and w (signed), in place. (GCC 12 compiles
  // _mm512_dpbusd_epi32 into the instruction plus two register copies of the accumulator, which
  // tripled the tile's instructions; the instruction itself accumulates into its destination.)
  static void dot(Vec& acc, __m512i a, __m512i w) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w)); }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(int8, GroupDot<Vpdpbusd>, "avx512_vnni")
