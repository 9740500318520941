// Instruction-set detection and the active instruction set.
#include "rnnfast/core/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace rnnfast {

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
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    // libgcc's checks include the operating system's support (XCR0) for the wider registers.
    case Isa::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f");
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
