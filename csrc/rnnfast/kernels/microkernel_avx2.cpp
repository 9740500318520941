// AVX2 + FMA micro-kernels (x86-64 only). Compiled with -mavx2 -mfma -ffp-contract=fast, so that the
// multiply-add of the tile becomes one fused instruction; reached only when the CPU has AVX2 and FMA.
#define RNNFAST_ISA_NAMESPACE avx2
#define RNNFAST_ISA_ENUM Isa::kAvx2
#define RNNFAST_VEC_BYTES 32
#include "microkernel_impl.h"
#include "cells_impl.h"
#include "grad_impl.h"

// float: 6 x 16 tile (12 accumulators + 2 B vectors + 1 broadcast of 16 ymm registers), double: 6 x 8.
RNNFAST_DEFINE_KERNELS(6, 2, 256, 96, 6, 2, 256, 48)
RNNFAST_DEFINE_CELLS()
RNNFAST_DEFINE_GRADS()
