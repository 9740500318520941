// The avx512 instruction set with AVX512_VNNI, for the int8 kernels only (kernels/reduced_int8_avx512vnni.cpp):
// compiled with -mavx512f -mavx512bw -mavx512vnni -mfma -ffp-contract=fast; reached only when the CPU
// has them (reduced/reduced_weights.cpp). Its own namespace, so that nothing built with VNNI is shared.
#define RNNFAST_ISA_NAMESPACE avx512vnni
#define RNNFAST_ISA_ENUM Isa::kAvx512
#define RNNFAST_VEC_BYTES 64
#define RNNFAST_VECTOR_REGISTERS 32
