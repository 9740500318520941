// The avx512 instruction set with AVX512_BF16, for the bfloat16 kernels only
// (kernels/reduced_bf16_avx512bf16.cpp): compiled with -mavx512f -mavx512bw -mavx512bf16 -mfma
// -ffp-contract=fast; reached only when the CPU has them (reduced/reduced_weights.cpp).
#define RNNFAST_ISA_NAMESPACE avx512bf16
#define RNNFAST_ISA_ENUM Isa::kAvx512
#define RNNFAST_VEC_BYTES 64
#define RNNFAST_VECTOR_REGISTERS 32
