// The variant activations for the generic instruction set (kernels/variant_activations_impl.h).
#include "isa_generic.h"
#include "variant_activations_impl.h"

RNNFAST_DEFINE_VARIANT_ACTIVATIONS()
