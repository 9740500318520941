// The activation test hooks for the generic instruction set (kernels/activations_impl.h).
#include "isa_generic.h"
#include "activations_impl.h"

RNNFAST_DEFINE_ACTIVATIONS()
