// AVX-512F micro-kernels (x86-64 only). Compiled with -mavx512f -ffp-contract=fast; reached only when
// the CPU has AVX-512F.
#define RNNFAST_ISA_NAMESPACE avx512
#define RNNFAST_ISA_ENUM Isa::kAvx512
#define RNNFAST_VEC_BYTES 64
#include "microkernel_impl.h"
#include "cells_impl.h"
#include "grad_impl.h"

// float: 6 x 64 tile (24 accumulators + 4 B vectors + a broadcast of 32 zmm registers: 10 loads per 24
// FMAs, against 14 for 12 x 32; measured 5-10% faster on Zen 4), double: 12 x 16.
// kc: 256 for float (a 64 KiB B panel streams from L2; fewer passes over C measured faster than an
// L1-resident 128-deep panel), 128 for double (a 128 x 16 panel, 16 KiB, stays in L1).
RNNFAST_DEFINE_KERNELS(6, 4, 256, 96, 12, 2, 128, 48)
RNNFAST_DEFINE_CELLS()
RNNFAST_DEFINE_GRADS()
