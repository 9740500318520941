// The int8 kernels for the avx2 instruction set without VNNI: exact 16-bit multiply-adds
// (kernels/reduced_madd_impl.h, kernels/reduced_impl.h).
#include "isa_avx2.h"
#include "reduced_impl.h"
#include "reduced_madd_impl.h"

RNNFAST_DEFINE_REDUCED_KERNEL(int8, MaddInt8Dot, "avx2")
