// The backward's gate gradients and column sums for the generic instruction set (kernels/gate_grads_impl.h).
#include "isa_generic.h"
#include "gate_grads_impl.h"

RNNFAST_DEFINE_GATE_GRADS()
