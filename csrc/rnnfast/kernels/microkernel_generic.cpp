// Portable micro-kernels: 16-byte vectors, which every supported CPU has (SSE2 on x86-64, NEON on
// aarch64). Compiled with the default flags.
#define RNNFAST_ISA_NAMESPACE generic
#define RNNFAST_ISA_ENUM Isa::kGeneric
#define RNNFAST_VEC_BYTES 16
#include "microkernel_impl.h"
#include "cells_impl.h"
#include "grad_impl.h"

// float: 6 x 8 tile (12 of 16 registers), double: 6 x 4.
RNNFAST_DEFINE_KERNELS(6, 2, 256, 96, 6, 2, 256, 48)
RNNFAST_DEFINE_CELLS()
RNNFAST_DEFINE_GRADS()
