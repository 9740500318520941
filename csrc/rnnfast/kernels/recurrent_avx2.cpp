// The fused recurrent step for the avx2 instruction set (see recurrent_impl.h and CMakeLists.txt for
// its flags).
#define RNNFAST_ISA_NAMESPACE avx2
#define RNNFAST_VEC_BYTES 32
#define RNNFAST_VECTOR_REGISTERS 16
#include "recurrent_impl.h"

RNNFAST_DEFINE_RECURRENT()
