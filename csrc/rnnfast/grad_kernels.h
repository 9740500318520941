// Backward's per-step arithmetic (gate gradients) and the bias column sums, dispatched per instruction
// set like the gate updates of microkernel.h: float32 is vectorised per instruction set
// (kernels/grad_impl.h, compiled into each kernels/microkernel_<isa>.cpp); float64 uses the portable
// scalar code of grad_kernels.cpp on every instruction set.
#pragma once

#include <cstdint>

#include "rnnfast/microkernel.h"
#include "rnnfast/rnn.h"

namespace rnnfast {

template <typename Scalar>
struct GradKernels {
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
  void (*gate_gradients)(Cell cell, std::int64_t rows, std::int64_t hidden, const Scalar* dh, const Scalar* d_out,
                         Scalar* dc, const Scalar* h_t, const Scalar* h_prev, const Scalar* ws, const Scalar* c_prev,
                         std::int64_t c_prev_stride, Scalar* d_gates, Scalar* d_gates_hh, Scalar* dh_prev);
  // dst[j] = src[0*ld + j] + src[1*ld + j] + ... + src[(rows-1)*ld + j], summed in that order from 0,
  // for j in [0, cols) (written, not accumulated). A column's sum does not depend on cols, so columns
  // may be split across tasks freely.
  void (*column_sums)(std::int64_t rows, std::int64_t cols, const Scalar* src, std::int64_t ld, Scalar* dst);
};

template <typename Scalar>
const GradKernels<Scalar>& grad_kernels(Isa isa);

// Per-ISA float32 tables (kernels/grad_impl.h) and the portable float64 one (grad_kernels.cpp).
namespace generic {
const GradKernels<float>& grads_f32();
}  // namespace generic
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 {
const GradKernels<float>& grads_f32();
}  // namespace avx2
namespace avx512 {
const GradKernels<float>& grads_f32();
}  // namespace avx512
#endif
const GradKernels<double>& portable_grads_f64();

}  // namespace rnnfast
