// The GEMM micro-kernel interface and the instruction-set dispatch.
//
// A micro-kernel computes one tile of C = op(A) op(B) from a packed A micro-panel and a packed B panel
// (see gemm.h for the layouts). One templated source (kernels/microkernel_impl.h) is compiled once per
// instruction set, each copy in its own namespace and translation unit with its own flags, and the
// copy to use is chosen at run time; no code compiled for a wider instruction set is reachable on a
// CPU without it.
#pragma once

#include <cstdint>

#include "rnnfast/rnn.h"

namespace rnnfast {

enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

constexpr int kMaxTileRows = 16;

// One instruction set's micro-kernels for one element type.
template <typename Scalar>
struct MicroKernel {
  // C tile [rows x n] = (accumulate ? C : 0) + A_panel[rows x kc] B_panel[kc x nr], where
  //   a_panel: kc x mr, k-major (a_panel[k*mr + i]); rows <= mr of it are used;
  //   b_panel: kc x nr, k-major (b_panel[k*nr + j]), zero-padded past column n;
  //   c: row-major with leading dimension ldc; only columns [0, n) (n <= nr) are written.
  using Fn = void (*)(std::int64_t kc, const Scalar* a_panel, const Scalar* b_panel, Scalar* c, std::int64_t ldc,
                      bool accumulate, int n);
  Isa isa;
  int mr;   // rows of the register tile
  int nr;   // columns of the register tile (a whole number of vectors)
  int kc;   // depth of a packed block: a B panel of kc x nr stays in L1
  int mc;   // rows of A packed per block (a multiple of mr): mc x kc stays in L2
  Fn rows[kMaxTileRows + 1];  // rows[r] computes an r-row tile, 1 <= r <= mr (no work on padding rows)
  // One row by kRowPanels consecutive full panels of a k block (b_panels: the first, the others kc*nr
  // apart; c: their first column, the others nr apart), with rows[1]'s arithmetic per element.
  static constexpr int kRowPanels = 4;
  void (*row_panels)(std::int64_t kc, const Scalar* a_panel, const Scalar* b_panels, Scalar* c, bool accumulate);
};

// One instruction set's activations for one element type, applied elementwise to n values (test hooks
// for their accuracy; the gate updates that use them are the fused step's, recurrent.h).
template <typename Scalar>
struct CellKernels {
  void (*exp)(std::int64_t n, const Scalar* in, Scalar* out);
  void (*sigmoid)(std::int64_t n, const Scalar* in, Scalar* out);
  void (*tanh)(std::int64_t n, const Scalar* in, Scalar* out);
};

// float32: vectorised per instruction set (kernels/cells_impl.h); float64: the C library's exp and
// tanh (activations.h) on every instruction set.
template <typename Scalar>
const CellKernels<Scalar>& cell_kernels(Isa isa);

const char* isa_name(Isa isa);

// Whether this CPU (and this build) can run `isa`.
bool isa_available(Isa isa);

// The instruction set the kernels use: the widest available one, unless the environment variable
// RNNFAST_ISA (generic | avx2 | avx512) names another, read at the first call. set_active_isa
// changes it (for tests and benchmarks); it throws std::invalid_argument for an unavailable one.
Isa active_isa();
void set_active_isa(Isa isa);
Isa parse_isa(const char* name);  // throws std::invalid_argument for an unknown name

template <typename Scalar>
const MicroKernel<Scalar>& micro_kernel(Isa isa);

template <typename Scalar>
const MicroKernel<Scalar>& active_micro_kernel() {
  return micro_kernel<Scalar>(active_isa());
}

// Per-ISA tables, defined in kernels/microkernel_<isa>.cpp, and the portable float64 cell table
// (cells.cpp).
namespace generic {
const MicroKernel<float>& kernel_f32();
const MicroKernel<double>& kernel_f64();
const CellKernels<float>& cells_f32();
}  // namespace generic
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 {
const MicroKernel<float>& kernel_f32();
const MicroKernel<double>& kernel_f64();
const CellKernels<float>& cells_f32();
}  // namespace avx2
namespace avx512 {
const MicroKernel<float>& kernel_f32();
const MicroKernel<double>& kernel_f64();
const CellKernels<float>& cells_f32();
}  // namespace avx512
#endif
const CellKernels<double>& portable_cells_f64();

// The table `name()` of instruction set `isa`'s namespace: every per-ISA table (micro-kernels, cells,
// fused step, backward) is dispatched this way. The x86 namespaces exist only in x86-64 builds;
// elsewhere every instruction set resolves to the generic one.
#if defined(__x86_64__) || defined(_M_X64)
#define RNNFAST_TABLE_FOR_ISA(isa, name) \
  ((isa) == Isa::kAvx512 ? avx512::name() : (isa) == Isa::kAvx2 ? avx2::name() : generic::name())
#else
#define RNNFAST_TABLE_FOR_ISA(isa, name) ((void)(isa), generic::name())
#endif

}  // namespace rnnfast
