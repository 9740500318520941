// The generic instruction set's parameters, for the per-ISA kernel files: 16-byte vectors, which every
// supported CPU has (SSE2 on x86-64, NEON on aarch64), compiled with the default flags.
#define RNNFAST_ISA_NAMESPACE generic
#define RNNFAST_ISA_ENUM Isa::kGeneric
#define RNNFAST_VEC_BYTES 16
// x86-64's SSE2 has 16 vector registers, aarch64's NEON 32.
#if defined(__aarch64__)
#define RNNFAST_VECTOR_REGISTERS 32
#else
#define RNNFAST_VECTOR_REGISTERS 16
#endif
