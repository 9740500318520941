// The int8 kernels for the generic instruction set (portable code; kernels/reduced_impl.h).
#include "isa_generic.h"
#include "reduced_impl.h"
#include "reduced_portable_impl.h"

// Named for what the portable code becomes: NEON vectors on aarch64, SSE2 on x86-64.
#if defined(__aarch64__)
RNNFAST_DEFINE_REDUCED_KERNEL(int8, PortableInt8Dot, "neon")
#else
RNNFAST_DEFINE_REDUCED_KERNEL(int8, PortableInt8Dot, "generic")
#endif
