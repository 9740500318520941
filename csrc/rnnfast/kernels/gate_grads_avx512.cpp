// The backward's gate gradients and column sums for the avx512 instruction set (kernels/gate_grads_impl.h).
#include "isa_avx512.h"
#include "gate_grads_impl.h"

RNNFAST_DEFINE_GATE_GRADS()
