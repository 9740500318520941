// The fused recurrent step for the generic instruction set (see recurrent_impl.h and CMakeLists.txt for
// its flags).
#define RNNFAST_ISA_NAMESPACE generic
#define RNNFAST_VEC_BYTES 16
// x86-64's SSE2 has 16 vector registers, aarch64's NEON 32.
#if defined(__aarch64__)
#define RNNFAST_VECTOR_REGISTERS 32
#else
#define RNNFAST_VECTOR_REGISTERS 16
#endif
#include "recurrent_impl.h"

RNNFAST_DEFINE_RECURRENT()
