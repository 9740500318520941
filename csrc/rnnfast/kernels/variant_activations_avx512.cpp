// The variant activations for the avx512 instruction set (kernels/variant_activations_impl.h).
#include "isa_avx512.h"
#include "variant_activations_impl.h"

RNNFAST_DEFINE_VARIANT_ACTIVATIONS()
