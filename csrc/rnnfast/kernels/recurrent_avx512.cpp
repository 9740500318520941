// The fused recurrent step for the avx512 instruction set (see recurrent_impl.h and CMakeLists.txt for
// its flags).
#define RNNFAST_ISA_NAMESPACE avx512
#define RNNFAST_VEC_BYTES 64
#define RNNFAST_VECTOR_REGISTERS 32
#include "recurrent_impl.h"

RNNFAST_DEFINE_RECURRENT()
