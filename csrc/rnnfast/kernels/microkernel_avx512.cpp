// AVX-512F micro-kernels (x86-64 only). Compiled with -mavx512f -ffp-contract=fast; reached only when
// the CPU has AVX-512F.
#define RNNFAST_ISA_NAMESPACE avx512
#define RNNFAST_ISA_ENUM Isa::kAvx512
#define RNNFAST_VEC_BYTES 64
#include "microkernel_impl.h"
#include "cells_impl.h"
#include "grad_impl.h"

// float: 12 x 32 tile (24 accumulators + 2 B vectors of 32 zmm registers), double: 12 x 16.
// kc 128 keeps a 128 x 32 B panel (16 KiB) in half of a 32 KiB L1.
RNNFAST_DEFINE_KERNELS(12, 2, 128, 96, 12, 2, 128, 48)
RNNFAST_DEFINE_CELLS()
RNNFAST_DEFINE_GRADS()
