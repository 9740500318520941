// The GEMM micro-kernel: the register tile that gemm.h's blocked product runs on, one table per
// instruction set and element type (dispatched by kernels_for, core/isa.h).
//
// A micro-kernel computes one tile of C = op(A) op(B) from a packed A micro-panel and a packed B panel
// (see gemm.h for the layouts). One templated source (kernels/gemm_tile_impl.h) is compiled once per
// instruction set (kernels/gemm_<isa>.cpp), which names its tile shapes (GemmTileShape).
#pragma once

#include <cstdint>

#include "rnnfast/core/isa.h"

namespace rnnfast {

constexpr int kMaxTileRows = 16;

// A register tile and its cache blocking, as an instruction set's file chooses them.
struct GemmTileShape {
  int rows;     // mr: rows of the register tile
  int vectors;  // columns of the tile in vectors (nr = vectors * lanes)
  int kc;       // depth of a packed block: a B panel of kc x nr stays in L1 (or streams from L2)
  int mc;       // rows of A packed per block (a multiple of mr): mc x kc stays in L2
};

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
  int kc;   // depth of a packed block
  int mc;   // rows of A packed per block (a multiple of mr)
  Fn rows[kMaxTileRows + 1];  // rows[r] computes an r-row tile, 1 <= r <= mr (no work on padding rows)
  // One row by kRowPanels consecutive full panels of a k block (b_panels: the first, the others kc*nr
  // apart; c: their first column, the others nr apart), with rows[1]'s arithmetic per element.
  static constexpr int kRowPanels = 4;
  using RowPanelsFn = void (*)(std::int64_t kc, const Scalar* a_panel, const Scalar* b_panels, Scalar* c,
                               bool accumulate);
  RowPanelsFn row_panels;
  // The same for two panels: the pair left over after the groups of four (a 128-column product in float32 on
  // AVX-512 is two panels, which a one-row tile would take one at a time with half the chains in flight).
  RowPanelsFn row_panel_pair;
};

RNNFAST_DECLARE_ISA_TABLE(MicroKernel<float>)
RNNFAST_DECLARE_ISA_TABLE(MicroKernel<double>)

template <typename Scalar>
const MicroKernel<Scalar>& micro_kernel(Isa isa) {
  return kernels_for<MicroKernel<Scalar>>(isa);
}

template <typename Scalar>
const MicroKernel<Scalar>& active_micro_kernel() {
  return micro_kernel<Scalar>(active_isa());
}

}  // namespace rnnfast
