// The avx512 instruction set's parameters, for the per-ISA kernel files (x86-64 only): 64-byte
// vectors, 32 registers. Its files are compiled with -mavx512f -mfma -ffp-contract=fast
// (CMakeLists.txt); reached only when the CPU has AVX-512F.
#define RNNFAST_ISA_NAMESPACE avx512
#define RNNFAST_ISA_ENUM Isa::kAvx512
#define RNNFAST_VEC_BYTES 64
#define RNNFAST_VECTOR_REGISTERS 32
