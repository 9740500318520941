// The variant activations for the avx2 instruction set (kernels/variant_activations_impl.h).
#include "isa_avx2.h"
#include "variant_activations_impl.h"

RNNFAST_DEFINE_VARIANT_ACTIVATIONS()
