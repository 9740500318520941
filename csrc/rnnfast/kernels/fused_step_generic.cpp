// The fused recurrent step for the generic instruction set (kernels/fused_step_impl.h).
#include "isa_generic.h"
#include "fused_step_impl.h"

RNNFAST_DEFINE_FUSED_STEP()
