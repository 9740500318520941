// Instruction sets: which this CPU runs, which the kernels use, and the one way every kernel family is
// dispatched to the copy compiled for it.
//
// Each kernel family is a table type (the GEMM tile of gemm/micro_kernel.h, the fused step of
// step/fused_step.h, the gate gradients of step/gate_grads.h, the activation hooks of
// step/activation_kernels.h), templated on the element type. One templated source per family is compiled
// once per instruction set (kernels/<family>_<isa>.cpp), each copy in that instruction set's namespace
// and translation unit with its own flags, and defines isa_table<Table>() there. kernels_for<Table>(isa)
// returns the copy for `isa`; no code compiled for a wider instruction set is reachable on a CPU
// without it.
#pragma once

namespace rnnfast {

enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

const char* isa_name(Isa isa);
Isa parse_isa(const char* name);  // throws std::invalid_argument for an unknown name

// Whether this CPU (and this build) can run `isa`.
bool isa_available(Isa isa);

// The instruction set the kernels use: the widest available one, unless the environment variable
// RNNFAST_ISA (generic | avx2 | avx512) names another, read at the first call. set_active_isa
// changes it (for tests and benchmarks); it throws std::invalid_argument for an unavailable one.
Isa active_isa();
void set_active_isa(Isa isa);

// The per-instruction-set definitions of every table (explicit specializations, declared by each
// family's header with RNNFAST_DECLARE_ISA_TABLE). The x86 namespaces exist only in x86-64 builds.
namespace generic {
template <typename Table>
const Table& isa_table();
}  // namespace generic
#if defined(__x86_64__) || defined(_M_X64)
#define RNNFAST_HAS_X86_ISAS 1
namespace avx2 {
template <typename Table>
const Table& isa_table();
}  // namespace avx2
namespace avx512 {
template <typename Table>
const Table& isa_table();
}  // namespace avx512

// The x86-64 extensions the kernels use, as the CPU reports them (CPUID) and only where the operating system
// saves their registers (XCR0): AVX2 with FMA, and the AVX-512 foundation and the extensions of the
// reduced-precision kernels. Read once, on the first call.
enum class X86Feature { kAvx2Fma, kAvx512f, kAvx512bw, kAvx512vnni, kAvx512bf16 };
bool cpu_has(X86Feature feature);
#endif

// Declares that every instruction set defines isa_table<Table>() (in kernels/<family>_<isa>.cpp).
#if defined(RNNFAST_HAS_X86_ISAS)
#define RNNFAST_DECLARE_ISA_TABLE(...)                  \
  namespace generic {                                   \
  template <>                                           \
  const __VA_ARGS__& isa_table<__VA_ARGS__>();          \
  }                                                     \
  namespace avx2 {                                      \
  template <>                                           \
  const __VA_ARGS__& isa_table<__VA_ARGS__>();          \
  }                                                     \
  namespace avx512 {                                    \
  template <>                                           \
  const __VA_ARGS__& isa_table<__VA_ARGS__>();          \
  }
#else
#define RNNFAST_DECLARE_ISA_TABLE(...)                  \
  namespace generic {                                   \
  template <>                                           \
  const __VA_ARGS__& isa_table<__VA_ARGS__>();          \
  }
#endif

// The copy of kernel family `Table` compiled for `isa` (elsewhere than x86-64, always the generic one).
template <typename Table>
const Table& kernels_for(Isa isa) {
#if defined(RNNFAST_HAS_X86_ISAS)
  if (isa == Isa::kAvx512) return avx512::isa_table<Table>();
  if (isa == Isa::kAvx2) return avx2::isa_table<Table>();
#endif
  (void)isa;
  return generic::isa_table<Table>();
}

}  // namespace rnnfast
