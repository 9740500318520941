// What a cell header provides, and the helpers every cell's arithmetic shares.
//
// A cell is a struct (cells/rnn.h, lstm.h, gru.h) with its facts as constants and its arithmetic on one
// vector of hidden units of one row, templated on a math policy M so that the same lines serve every
// element type and instruction set:
//
//   static constexpr Cell kCell;            // its entry in core/cell.h's table
//   static constexpr int kGates;            // G, in PyTorch's gate order
//   static constexpr int kSlots;            // workspace slots (named by the cell's Slot enumeration)
//   static constexpr bool kCellState;       // has c beside h (reads c_prev, writes c)
//   static constexpr bool kReadsHPrev;      // its gate update reads h_{t-1} itself (the GRU's blend)
//   static constexpr int kBlockVectors;     // units per fused-step unit block, in vectors of M's lanes
//   static constexpr int kRecurrentBiasGate;  // gate whose recurrent bias stays in the step (GRU: n), or -1
//   static constexpr int kCellStateSlot;    // the workspace slot holding c_t (backward reads c_{t-1}), or -1
//   static constexpr bool kRecurrentSideGradients;  // the recurrent side's gate gradients differ (GRU)
//   template <class M> static void forward(gx, gh, gate_stride, gh_stride, h_prev, c_prev, h, c, ws);
//   template <class M> static void backward(stride, dh, d_out, dc, ws, c_prev, h_prev, h, dg, dgh, dh_prev);
//
// forward: gate g's input projection (with the folded biases) is at gx + g*gate_stride and its
// recurrent pre-activation h_{t-1} W_hh^T at gh + g*gh_stride; workspace slot k goes to
// ws + k*gate_stride when ws is not nullptr (training). h_prev and c_prev are read only by the cells
// that say so; h (and c) are written.
// backward: with the workspace's slots `stride` apart, dh the gradient reaching h_t from step t+1 and
// d_out (or nullptr) that of the output h_t; writes the input-side pre-activation gradients dg (G
// blocks `stride` apart), and for the GRU the recurrent side's dgh and the direct path into dh_prev;
// the LSTM replaces dc (dc_t) by dc_{t-1}.
//
// The math policy M gives the element type Scalar, the vector type Vec (Scalar itself for scalar
// code), kLanes, load, store, sigmoid, tanh, relu (NaN passes), step (1 where h > 0, else 0) and
// mul_add(a, b, c): a * b + c, fused where the policy's arithmetic fuses. A sum of two products is written
// with mul_add, naming the product to fuse, so that every compiler rounds it the same way.
//
// These headers hold templates only: compiled into each instruction set's files with that
// instruction set's flags, an inline non-template function here would be merged by the linker across
// them and could run AVX-512 code on a CPU without it (the ODR trap, docs/design.md).
#pragma once

namespace rnnfast {

// dh + d_out (one rounding, as dh += d_out), or dh where there is no output gradient.
template <class M>
inline typename M::Vec gradient_of_h(const typename M::Scalar* dh, const typename M::Scalar* d_out) {
  return d_out != nullptr ? M::load(dh) + M::load(d_out) : M::load(dh);
}

}  // namespace rnnfast
