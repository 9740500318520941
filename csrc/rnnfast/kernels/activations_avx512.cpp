// The activation test hooks for the avx512 instruction set (kernels/activations_impl.h).
#include "isa_avx512.h"
#include "activations_impl.h"

RNNFAST_DEFINE_ACTIVATIONS()
