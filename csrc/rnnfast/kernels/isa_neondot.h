// The generic instruction set on aarch64 with the dot-product extension (FEAT_DotProd: sdot), for the
// int8 kernels only (kernels/reduced_int8_neondot.cpp): compiled with -march=armv8.2-a+dotprod; reached
// only when the CPU reports it (reduced/reduced_weights.cpp, getauxval). Its own namespace, so that
// nothing built with the extension is shared.
#define RNNFAST_ISA_NAMESPACE neondot
#define RNNFAST_ISA_ENUM Isa::kGeneric
#define RNNFAST_VEC_BYTES 16
#define RNNFAST_VECTOR_REGISTERS 32
