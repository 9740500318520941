// One recurrent layer, one direction: backward through time (layer.h has the arguments).
#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/core/buffer.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/layer.h"
#include "rnnfast/layer/sequence_rows.h"
#include "rnnfast/layer/tuning.h"
#include "rnnfast/step/gate_grads.h"

namespace rnnfast {

template <typename Scalar>
void layer_backward(const LayerBackward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  const std::int64_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const std::int64_t G = gate_count(a.cell), GH = G * H, W = workspace_width(a.cell, H);
  // What the driver needs to know of the cell: whether it has a cell state (and the workspace slot
  // that keeps c_t), and whether its recurrent side has gate gradients of its own (the GRU's).
  struct CellFacts {
    bool cell_state, recurrent_side;
    int cell_slot;
  };
  const CellFacts facts = with_cell_type(a.cell, [](auto cell) {
    using C = decltype(cell);
    return CellFacts{C::kCellState, C::kRecurrentSideGradients, C::kCellStateSlot};
  });
  const bool cell_state = facts.cell_state, recurrent_side = facts.recurrent_side;
  if (a.x == nullptr || a.w_ih == nullptr || a.w_hh == nullptr || a.out == nullptr ||
      (W > 0 && S * B > 0 && a.workspace == nullptr) || a.d_x == nullptr || a.d_h0 == nullptr ||
      (cell_state && a.d_c0 == nullptr) || a.d_w_ih == nullptr || a.d_w_hh == nullptr || a.d_b_ih == nullptr ||
      a.d_b_hh == nullptr)
    throw std::invalid_argument("rnnfast: layer_backward: missing array");
  const ActiveRows active(a.lengths, B, S);

  // Pre-activation gate gradients of every step (zero in the rows past a sequence's end, which the
  // time loop fills, so that those rows add nothing to the products below): d_gates feeds the
  // input-side products (d_x, d_w_ih, d_b_ih); the recurrent side (d_w_hh, d_b_hh, dh_{t-1}) uses the
  // same values except for a cell whose recurrent side differs (the GRU, whose n block is scaled by r
  // there), which keeps a second array.
  Buffer<Scalar> d_gates(S * B * GH, /*zeroed=*/false);
  Buffer<Scalar> d_gates_hh_storage(recurrent_side ? S * B * GH : 0, /*zeroed=*/false);
  Scalar* d_gates_hh = recurrent_side ? d_gates_hh_storage.data() : d_gates.data();

  // The per-step product. Except for the GRU (whose dh_{t-1} takes the recurrent-side dGh_t), d_x_t =
  // dG_t W_ih shares its left operand with dh_{t-1} = dG_t W_hh, so each step computes both at once,
  // dG_t [W_hh | W_ih], while dG_t is hot: no product over all S*B rows for d_x afterwards, and dG is
  // packed once per step instead of once more for d_x.
  const bool fused_dx = !recurrent_side;
  const std::int64_t HI = fused_dx ? H + I : H;  // columns of the per-step product
  PackedMatrix<Scalar> w_step;                   // op(B) = W_hh, or [W_hh | W_ih]: [GH, HI]
  if (fused_dx) {
    Buffer<Scalar> w_cat(GH * HI, /*zeroed=*/false);
    for (std::int64_t g = 0; g < GH; ++g) {
      copy_n(w_cat.data() + g * HI, a.w_hh + g * H, H);
      copy_n(w_cat.data() + g * HI + H, a.w_ih + g * I, I);
    }
    w_step.pack(false, GH, HI, w_cat.data(), HI);
  } else {
    w_step.pack(false, GH, H, a.w_hh, H);
  }
  const GateGradKernels<Scalar>& grads = kernels_for<GateGradKernels<Scalar>>(w_step.kernel().isa);
  const auto gate_gradients = grads.gate_gradients[static_cast<int>(a.cell)];

  Buffer<Scalar> zeros(B * H);
  const Scalar* h0 = a.h0 != nullptr ? a.h0 : zeros.data();
  const Scalar* c0 = a.c0 != nullptr ? a.c0 : zeros.data();
  const Scalar* d_h_n = a.d_h_n != nullptr ? a.d_h_n : zeros.data();
  const Scalar* d_c_n = a.d_c_n != nullptr ? a.d_c_n : zeros.data();
  // dh, dc: gradients flowing into h_t, c_t of the rows running at step t; dh_prev receives dh_{t-1}.
  Buffer<Scalar> dh_storage(B * H), dh_prev_storage(B * H), dc_storage(B * H);
  Buffer<Scalar> step_storage(fused_dx ? B * HI : 0);  // the fused product [dh_{t-1} | d_x_t] of a step

  // The reverse time loop over the rows [r0, r1): pointers below are offset to the slice's first row.
  auto run_slice = [&](std::int64_t r0, std::int64_t r1) {
    Scalar* dh = dh_storage.data() + r0 * H;
    Scalar* dh_prev = dh_prev_storage.data() + r0 * H;
    Scalar* dc = dc_storage.data() + r0 * H;
    Scalar* step_out = step_storage.data() + r0 * HI;
    const std::int64_t width = r1 - r0;
    // Rows that do not run a step (past their end; every step at or after the longest length) have
    // zero gate gradients, and zero d_x (the fused product writes only running rows).
    auto zero_rows = [&](std::int64_t t, std::int64_t from) {
      std::fill_n(d_gates.data() + (t * B + r0 + from) * GH, (width - from) * GH, Scalar(0));
      if (recurrent_side) std::fill_n(d_gates_hh + (t * B + r0 + from) * GH, (width - from) * GH, Scalar(0));
      if (fused_dx) std::fill_n(a.d_x + (t * B + r0 + from) * I, (width - from) * I, Scalar(0));
    };
    for (std::int64_t t = active.steps(); t < S; ++t) zero_rows(t, 0);
    for (std::int64_t t = active.steps() - 1; t >= 0; --t) {
      const std::int64_t rows = active.in_slice(t, r0, r1);
      // Rows whose last step is t start here, with the gradient of their final state.
      const std::int64_t after = active.in_slice(t + 1, r0, r1);
      copy_n(dh + after * H, d_h_n + (r0 + after) * H, (rows - after) * H);
      if (cell_state) copy_n(dc + after * H, d_c_n + (r0 + after) * H, (rows - after) * H);
      zero_rows(t, rows);
      if (rows == 0) continue;
      const std::int64_t row0 = t * B + r0;  // the slice's first row at step t in [S*B]-row arrays
      const Scalar* c_prev = !cell_state ? nullptr : t > 0 ? a.workspace + (row0 - B) * W + facts.cell_slot * H : c0 + r0 * H;
      const std::int64_t c_prev_stride = t > 0 ? W : H;
      const Scalar* h_prev = t > 0 ? a.out + (row0 - B) * H : h0 + r0 * H;
      // The gate gradients, with dh_t = dh + d_out_t (the gradient of the output h_t) formed on the fly.
      const Scalar* d_out_t = a.d_out != nullptr ? a.d_out + row0 * H : nullptr;
      gate_gradients(rows, H, dh, d_out_t, dc, a.out + row0 * H, h_prev, a.workspace + row0 * W,
                           c_prev, c_prev_stride, d_gates.data() + row0 * GH, d_gates_hh + row0 * GH, dh_prev);
      if (fused_dx) {
        // [dh_{t-1} | d_x_t] = dG_t [W_hh | W_ih] for the running rows, then split.
        gemm(rows, false, d_gates.data() + row0 * GH, GH, w_step, /*accumulate=*/false, step_out, HI);
        for (std::int64_t b = 0; b < rows; ++b) {
          copy_n(dh_prev + b * H, step_out + b * HI, H);
          copy_n(a.d_x + (row0 + b) * I, step_out + b * HI + H, I);
        }
      } else {
        // dh_{t-1} = dGh_t W_hh + the GRU's direct path, already in dh_prev.
        gemm(rows, false, d_gates_hh + row0 * GH, GH, w_step, /*accumulate=*/true, dh_prev, H);
      }
      std::swap(dh, dh_prev);
    }
    // Rows that ran at least one step carry their gradient back to the initial state; rows of length 0
    // pass d_h_n (d_c_n) straight through.
    const std::int64_t ran = active.in_slice(0, r0, r1);
    copy_n(a.d_h0 + r0 * H, dh, ran * H);
    copy_n(a.d_h0 + (r0 + ran) * H, d_h_n + (r0 + ran) * H, (width - ran) * H);
    if (cell_state) {
      copy_n(a.d_c0 + r0 * H, dc, ran * H);
      copy_n(a.d_c0 + (r0 + ran) * H, d_c_n + (r0 + ran) * H, (width - ran) * H);
    }
  };
  const std::int64_t slices = backward_batch_slices(B);
  parallel_for(slices, [&](std::int64_t i) { run_slice(B * i / slices, B * (i + 1) / slices); });

  // Products over all S*B rows, after the loop.
  // d_x[S*B, I] = dG[S*B, GH] W_ih[GH, I] (the GRU's; the other cells' came with each step)
  if (!fused_dx) gemm(S * B, I, GH, false, d_gates.data(), GH, false, a.w_ih, I, false, a.d_x, I);
  // d_w_ih[GH, I] = dG^T X and d_w_hh[GH, H] = dGh^T H_prev, where H_prev stacks h0 (first B rows)
  // over out[0 .. S-2]: the recurrent input of every step.
  if (!recurrent_side && GH > I + H) {
    // dGh = dG: one product dG^T [X | H_prev] into [GH, I+H], then split. The left operand dG^T, the
    // costliest to pack, is packed once instead of twice, and the K = S*B rows run as one depth. That
    // pays for gathering [X | H_prev] (S*B*(I+H) values) only when dG is the wider (the LSTM; the
    // vanilla RNN measured slower with it: 1-thread backward 9.1 ms against 6.9 ms at T=50, B=32,
    // I=128, H=256). The
    // rows of [X | H_prev] are gathered kChunk at a time (bounding the copy's memory); as kChunk is a
    // multiple of every kernel's kc, the chunks accumulate in the order one product would.
    constexpr std::int64_t kChunk = 4096, kCopyRows = 64;
    const std::int64_t IH = I + H, SB = S * B;
    Buffer<Scalar> x_h(std::min(SB, kChunk) * IH, /*zeroed=*/false), d_w(GH * IH, /*zeroed=*/false);
    for (std::int64_t k0 = 0; k0 < SB || k0 == 0; k0 += kChunk) {
      const std::int64_t kc = std::min(kChunk, SB - k0);
      parallel_for((kc + kCopyRows - 1) / kCopyRows, [&](std::int64_t task) {
        const std::int64_t end = std::min(kc, (task + 1) * kCopyRows);
        for (std::int64_t r = task * kCopyRows; r < end; ++r) {
          const std::int64_t row = k0 + r;
          copy_n(x_h.data() + r * IH, a.x + row * I, I);
          copy_n(x_h.data() + r * IH + I, row < B ? h0 + row * H : a.out + (row - B) * H, H);
        }
      });
      gemm(GH, IH, kc, true, d_gates.data() + k0 * GH, GH, false, x_h.data(), IH, /*accumulate=*/k0 > 0,
           d_w.data(), IH);
    }
    parallel_for((GH + kCopyRows - 1) / kCopyRows, [&](std::int64_t task) {
      const std::int64_t end = std::min(GH, (task + 1) * kCopyRows);
      for (std::int64_t row = task * kCopyRows; row < end; ++row) {
        copy_n(a.d_w_ih + row * I, d_w.data() + row * IH, I);
        copy_n(a.d_w_hh + row * H, d_w.data() + row * IH + I, H);
      }
    });
  } else {  // separate products; H_prev in two parts, h0 then out
    gemm(GH, I, S * B, true, d_gates.data(), GH, false, a.x, I, false, a.d_w_ih, I);
    gemm(GH, H, B * std::min<std::int64_t>(S, 1), true, d_gates_hh, GH, false, h0, H, false, a.d_w_hh, H);
    if (S > 1) gemm(GH, H, (S - 1) * B, true, d_gates_hh + B * GH, GH, false, a.out, H, true, a.d_w_hh, H);
  }
  // Bias gradients: column sums over the S*B rows, vectorised. Tasks split the columns (never the
  // rows), a fixed cut by shape, so each sum runs in the same order for any thread count.
  const std::int64_t bias_chunk = 128, bias_tasks = (GH + bias_chunk - 1) / bias_chunk;
  parallel_for(bias_tasks, [&](std::int64_t task) {
    const std::int64_t j0 = task * bias_chunk, cols = std::min(bias_chunk, GH - j0);
    grads.column_sums(S * B, cols, d_gates.data() + j0, GH, a.d_b_ih + j0);
    if (recurrent_side)
      grads.column_sums(S * B, cols, d_gates_hh + j0, GH, a.d_b_hh + j0);
    else
      copy_n(a.d_b_hh + j0, a.d_b_ih + j0, cols);
  });
}

template void layer_backward<float>(const LayerBackward<float>&);
template void layer_backward<double>(const LayerBackward<double>&);

}  // namespace rnnfast
