// The backward's gate gradients and column sums for the avx2 instruction set (kernels/gate_grads_impl.h).
#include "isa_avx2.h"
#include "gate_grads_impl.h"

RNNFAST_DEFINE_GATE_GRADS()
