// Backward's per-step arithmetic (gate gradients) and the bias column sums, one table per instruction
// set and element type (kernels/gate_grads_<isa>.cpp, from kernels/gate_grads_impl.h): float32 is
// vectorised per instruction set; float64 is the portable scalar code (kernels/portable_f64.cpp) on
// every instruction set. Both run the cells' own backward units (cells/<cell>.h).
#pragma once

#include <cstdint>

#include "rnnfast/core/cell.h"
#include "rnnfast/core/isa.h"

namespace rnnfast {

template <typename Scalar>
struct GateGradKernels {
  // Gate gradients of one step for `rows` rows (no transcendentals: the workspace holds activated gates).
  //   dh [rows, H]: gradient w.r.t. h_t carried from step t+1 (read only); d_out [rows, H] or nullptr:
  //     the gradient of the output h_t, added to dh first (dh + d_out, one rounding, as dh += d_out)
  //   dc [rows, H]: gradient w.r.t. c_t, replaced by dc_{t-1} (LSTM)
  //   h_t [rows, H], h_prev [rows, H], ws [rows, W]: the forward's output, previous state and workspace
  //   c_prev: c_{t-1} of each row, rows c_prev_stride apart (a workspace block, or c0) (LSTM)
  //   d_gates [rows, GH]: written, gradient of the input-side pre-activations
  //   d_gates_hh [rows, GH]: written for the GRU (recurrent side; the same array as d_gates otherwise)
  //   dh_prev [rows, H]: written for the GRU: the direct path z * (dh + d_out) into dh_{t-1}
  // Each row's results depend on that row's inputs only (never on `rows`), so any split of the batch
  // gives bit-identical results.
  // Indexed by Cell: a driver picks its cell's entry once.
  using GateGradientsFn = void (*)(std::int64_t rows, std::int64_t hidden, const Scalar* dh, const Scalar* d_out,
                                   Scalar* dc, const Scalar* h_t, const Scalar* h_prev, const Scalar* ws,
                                   const Scalar* c_prev, std::int64_t c_prev_stride, Scalar* d_gates,
                                   Scalar* d_gates_hh, Scalar* dh_prev);
  GateGradientsFn gate_gradients[kCellCount];
  // dst[j] = src[0*ld + j] + src[1*ld + j] + ... + src[(rows-1)*ld + j], summed in that order from 0,
  // for j in [0, cols) (written, not accumulated). A column's sum does not depend on cols, so columns
  // may be split across tasks freely.
  void (*column_sums)(std::int64_t rows, std::int64_t cols, const Scalar* src, std::int64_t ld, Scalar* dst);
};

RNNFAST_DECLARE_ISA_TABLE(GateGradKernels<float>)
RNNFAST_DECLARE_ISA_TABLE(GateGradKernels<double>)

// The float64 table every instruction set's returns (kernels/portable_f64.cpp).
const GateGradKernels<double>& portable_gate_grads();

}  // namespace rnnfast
