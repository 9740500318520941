// Instruction-set detection and the active instruction set.
#include "rnnfast/core/isa.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(RNNFAST_HAS_X86_ISAS)
#include <cpuid.h>
#endif

namespace rnnfast {

#if defined(RNNFAST_HAS_X86_ISAS)
// CPUID and XGETBV read directly rather than through __builtin_cpu_supports: that builtin needs the
// compiler's runtime to fill in its table of features, and the compiler-rt of zig (the wheels' toolchain,
// docs/design.md section 10) leaves it empty, which would run every CPU on the portable kernels.
namespace {

struct X86Features {
  bool avx2_fma = false, avx512f = false, avx512bw = false, avx512vnni = false, avx512bf16 = false;
};

X86Features read_x86_features() {
  X86Features f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7 || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
  if (!osxsave) return f;  // no XGETBV: the operating system saves no vector state beyond SSE
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));  // (_xgetbv would need -mxsave)
  const std::uint64_t xcr0 = (static_cast<std::uint64_t>(xcr0_high) << 32) | xcr0_low;
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;     // SSE and AVX state
  const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;   // and the opmask, ZMM_Hi256 and Hi16_ZMM state
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned max_subleaf = eax;
  f.avx2_fma = ymm_saved && avx && fma && ((ebx >> 5) & 1);
  // The AVX-512 files are compiled with -mfma too (CMakeLists.txt): their tier needs AVX2 and FMA as well.
  f.avx512f = f.avx2_fma && zmm_saved && ((ebx >> 16) & 1);
  f.avx512bw = f.avx512f && ((ebx >> 30) & 1);
  f.avx512vnni = f.avx512f && ((ecx >> 11) & 1);
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.avx512bf16 = f.avx512f && ((eax >> 5) & 1);
  }
  return f;
}

}  // namespace

bool cpu_has(X86Feature feature) {
  static const X86Features f = read_x86_features();
  switch (feature) {
    case X86Feature::kAvx2Fma:
      return f.avx2_fma;
    case X86Feature::kAvx512f:
      return f.avx512f;
    case X86Feature::kAvx512bw:
      return f.avx512bw;
    case X86Feature::kAvx512vnni:
      return f.avx512vnni;
    case X86Feature::kAvx512bf16:
      return f.avx512bf16;
  }
  return false;
}
#endif

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric:
      return "generic";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const char* name) {
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512})
    if (std::strcmp(name, isa_name(isa)) == 0) return isa;
  throw std::invalid_argument(std::string("unknown instruction set '") + name +
                              "': expected generic, avx2 or avx512");
}

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::kGeneric:
      return true;
#if defined(RNNFAST_HAS_X86_ISAS)
    case Isa::kAvx2:
      return cpu_has(X86Feature::kAvx2Fma);
    case Isa::kAvx512:
      return cpu_has(X86Feature::kAvx512f);
#endif
    default:
      return false;
  }
}

namespace {

Isa detect_isa() {
  if (const char* forced = std::getenv("RNNFAST_ISA"); forced != nullptr && *forced != '\0') {
    const Isa isa = parse_isa(forced);
    if (!isa_available(isa))
      throw std::invalid_argument(std::string("RNNFAST_ISA=") + forced + " but this CPU or build cannot run it");
    return isa;
  }
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2})
    if (isa_available(isa)) return isa;
  return Isa::kGeneric;
}

std::atomic<int> g_active_isa{-1};

}  // namespace

Isa active_isa() {
  int value = g_active_isa.load(std::memory_order_acquire);
  if (value < 0) {
    value = static_cast<int>(detect_isa());
    g_active_isa.store(value, std::memory_order_release);
  }
  return static_cast<Isa>(value);
}

void set_active_isa(Isa isa) {
  if (!isa_available(isa))
    throw std::invalid_argument(std::string("instruction set '") + isa_name(isa) + "' is not available here");
  g_active_isa.store(static_cast<int>(isa), std::memory_order_release);
}

}  // namespace rnnfast
