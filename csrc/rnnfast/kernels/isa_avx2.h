// The avx2 instruction set's parameters, for the per-ISA kernel files (x86-64 only): 32-byte vectors,
// 16 registers. Its files are compiled with -mavx2 -mfma -ffp-contract=fast (CMakeLists.txt), so that a
// multiply-add becomes one fused instruction; reached only when the CPU has AVX2 and FMA.
#define RNNFAST_ISA_NAMESPACE avx2
#define RNNFAST_ISA_ENUM Isa::kAvx2
#define RNNFAST_VEC_BYTES 32
#define RNNFAST_VECTOR_REGISTERS 16
