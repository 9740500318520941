// The int8 kernels for the generic instruction set (portable code; kernels/reduced_impl.h).
#include "isa_generic.h"
#include "reduced_impl.h"
#include "reduced_portable_impl.h"

RNNFAST_DEFINE_REDUCED_KERNEL(int8, PortableInt8Dot, "generic")
