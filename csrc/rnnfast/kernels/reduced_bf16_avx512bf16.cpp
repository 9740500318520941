// The bfloat16 kernels with AVX512_BF16 (kernels/reduced_impl.h): vdpbf16ps adds to each float32 lane
// the products of a pair of bfloat16 values, the odd one first, each sum rounded (the chain
// reduced/reduced_weights.h defines; the hardware flushes denormals), 32 multiply-adds an instruction.
#include <immintrin.h>

#include "isa_avx512bf16.h"
#include "reduced_impl.h"
#include "reduced_group_tile_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

struct Vdpbf16ps {
  static constexpr WeightType kType = WeightType::kBf16;
  using Operand = std::uint16_t;
  using Acc = float;
  static constexpr int kGroup = 2;
  using Vec = __m512;
  static Vec zero() { return _mm512_setzero_ps(); }
  static void store(Acc* out, Vec v) { _mm512_storeu_ps(out, v); }
  // acc += the pair products of a and w, in place (an inline instruction: GCC 12 surrounds
  // _mm512_dpbf16_ps with register copies of the accumulator).
  static void dot(Vec& acc, __m512i a, __m512i w) { asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w)); }
};

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

RNNFAST_DEFINE_REDUCED_KERNEL(bf16, GroupDot<Vdpbf16ps>, "avx512_bf16")
