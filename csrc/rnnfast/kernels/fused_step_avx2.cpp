// The fused recurrent step for the avx2 instruction set (kernels/fused_step_impl.h).
#include "isa_avx2.h"
#include "fused_step_impl.h"

RNNFAST_DEFINE_FUSED_STEP()
