// The activation test hooks for the avx2 instruction set (kernels/activations_impl.h).
#include "isa_avx2.h"
#include "activations_impl.h"

RNNFAST_DEFINE_ACTIVATIONS()
