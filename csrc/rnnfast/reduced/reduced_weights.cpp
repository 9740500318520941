// Packing reduced-precision weights, and choosing the kernels for an instruction set (and, within it,
// the extensions the CPU has: VNNI and BF16 on the avx512 tier, the dot product on aarch64).
#include "rnnfast/reduced/reduced_weights.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace rnnfast {

// Each instruction set's kernels (kernels/reduced_<type>_<isa>.cpp), in its own namespace.
namespace generic {
const ReducedKernel& reduced_int8_kernel();
const ReducedKernel& reduced_bf16_kernel();
}  // namespace generic
#if defined(__aarch64__)
namespace neondot {
const ReducedKernel& reduced_int8_kernel();
}  // namespace neondot
#endif
#if defined(RNNFAST_HAS_X86_ISAS)
namespace avx2 {
const ReducedKernel& reduced_int8_kernel();
const ReducedKernel& reduced_bf16_kernel();
}  // namespace avx2
namespace avx512 {
const ReducedKernel& reduced_int8_kernel();
const ReducedKernel& reduced_bf16_kernel();
}  // namespace avx512
namespace avx512vnni {
const ReducedKernel& reduced_int8_kernel();
}  // namespace avx512vnni
namespace avx512bf16 {
const ReducedKernel& reduced_bf16_kernel();
}  // namespace avx512bf16
#endif

const char* weight_type_name(WeightType type) { return type == WeightType::kInt8 ? "int8" : "bf16"; }

WeightType parse_weight_type(const char* name) {
  if (std::strcmp(name, "int8") == 0) return WeightType::kInt8;
  if (std::strcmp(name, "bf16") == 0) return WeightType::kBf16;
  throw std::invalid_argument(std::string("unknown weight type '") + name + "': expected int8 or bf16");
}

ReducedWeights::ReducedWeights(Cell cell, WeightType type, std::int64_t hidden, std::int64_t depth,
                               const void* weights, const float* scales)
    : cell_(cell), type_(type), hidden_(hidden), gates_(gate_count(cell)), depth_(depth) {
  if (hidden < 0 || depth < 0) throw std::invalid_argument("rnnfast: negative size");
  if (type == WeightType::kInt8 && depth > kMaxInt8Depth)
    throw std::invalid_argument("int8 weights of depth " + std::to_string(depth) + " (input or hidden size) exceed " +
                                std::to_string(kMaxInt8Depth) + ", the deepest whose products are exact in int32");
  if ((weights == nullptr && hidden * depth > 0) || (type == WeightType::kInt8 && scales == nullptr && hidden > 0))
    throw std::invalid_argument("rnnfast: ReducedWeights: missing array");
  const std::int64_t group = reduced_group(type), G = gates_, U = kReducedUnits, H = hidden;
  const std::int64_t bytes = type == WeightType::kInt8 ? 1 : 2;
  padded_depth_ = (depth + group - 1) / group * group;
  blocks_ = (hidden + U - 1) / U;
  panel_bytes_ = padded_depth_ * G * U * bytes;
  panels_.resize(blocks_ * panel_bytes_);  // zeroed: the padding
  scales_.resize(blocks_ * G * U);
  sums_.resize(blocks_ * G * U);
  for (std::int64_t p = 0; p < blocks_; ++p) {
    std::uint8_t* panel = panels_.data() + p * panel_bytes_;
    for (std::int64_t g = 0; g < G; ++g) {
      for (std::int64_t j = 0; j < U && p * U + j < H; ++j) {
        const std::int64_t row = g * H + p * U + j, column = g * U + j;
        std::int64_t sum = 0;
        for (std::int64_t k = 0; k < depth; ++k) {
          // ((k / group) * G + g) * U * group + j * group + k % group, in elements
          const std::int64_t at = ((k / group) * G + g) * U * group + j * group + k % group;
          if (type == WeightType::kInt8) {
            const std::int8_t v = static_cast<const std::int8_t*>(weights)[row * depth + k];
            std::memcpy(panel + at, &v, 1);
            sum += v;
          } else {
            std::memcpy(panel + 2 * at, static_cast<const std::uint16_t*>(weights) + row * depth + k, 2);
          }
        }
        if (type == WeightType::kInt8) {
          scales_.data()[p * G * U + column] = scales[row];
          sums_.data()[p * G * U + column] = static_cast<std::int32_t>(sum);
        }
      }
    }
  }
}

namespace {
// RNNFAST_REDUCED_EXTENSIONS=0 in the environment (read at the first use) starts with them off.
bool extensions_from_environment() {
  const char* value = std::getenv("RNNFAST_REDUCED_EXTENSIONS");
  return value == nullptr || std::strcmp(value, "0") != 0;
}
std::atomic<bool> g_reduced_extensions{extensions_from_environment()};

#if defined(__aarch64__)
// FEAT_DotProd (sdot), as the kernel reports it to user space.
bool cpu_has_dotprod() {
#if defined(__linux__)
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20;  // HWCAP_ASIMDDP
  return (getauxval(AT_HWCAP) & kHwcapAsimdDp) != 0;
#else
  return false;
#endif
}
#endif
}  // namespace

void set_reduced_extensions(bool enabled) { g_reduced_extensions.store(enabled, std::memory_order_relaxed); }
bool reduced_extensions() { return g_reduced_extensions.load(std::memory_order_relaxed); }

const ReducedKernel& reduced_kernel(WeightType type, Isa isa) {
  const bool int8 = type == WeightType::kInt8;
#if defined(RNNFAST_HAS_X86_ISAS)
  if (isa == Isa::kAvx512 && cpu_has(X86Feature::kAvx512bw)) {
    if (reduced_extensions()) {
      if (int8 && cpu_has(X86Feature::kAvx512vnni)) return avx512vnni::reduced_int8_kernel();
      if (!int8 && cpu_has(X86Feature::kAvx512bf16)) return avx512bf16::reduced_bf16_kernel();
    }
    return int8 ? avx512::reduced_int8_kernel() : avx512::reduced_bf16_kernel();
  }
  if (isa == Isa::kAvx512 || isa == Isa::kAvx2) return int8 ? avx2::reduced_int8_kernel() : avx2::reduced_bf16_kernel();
#endif
#if defined(__aarch64__)
  if (int8 && reduced_extensions() && cpu_has_dotprod()) return neondot::reduced_int8_kernel();
#endif
  (void)isa;
  return int8 ? generic::reduced_int8_kernel() : generic::reduced_bf16_kernel();
}

}  // namespace rnnfast
