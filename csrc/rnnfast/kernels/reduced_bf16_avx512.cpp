// The bfloat16 kernels for the avx512 instruction set without AVX512_BF16: widened in registers, fused
// multiply-adds (kernels/reduced_fma_bf16_impl.h, kernels/reduced_impl.h).
#include "isa_avx512.h"
#include "reduced_impl.h"
#include "reduced_fma_bf16_impl.h"

RNNFAST_DEFINE_REDUCED_KERNEL(bf16, FmaBf16Dot, "avx512")
