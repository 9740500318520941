// Forward and backward (BPTT) of one recurrent layer in one direction for the cell variants
// (core/cell_variant.h): any activation per gate role, ONNX's clip and input_forget, the GRU's reset gate
// before the product (reset_after = false), and the LSTM's projection (PyTorch's proj_size) and
// peepholes. PyTorch's own four cells run on layer.h's fused path; these run on the variant path
// (docs/design.md, "Cell variants"): per step one GEMM of the recurrent weights (two for the GRU with
// reset_after = false, whose second product needs the reset gate; one more for a projection), then the cell
// arithmetic row by row with the activations of step/variant_activations.h.
//
// Shapes: S = sequence length, B = batch, I = input size, H = hidden size, G gates (1 RNN, 4 LSTM in order
// i,f,g,o, 3 GRU in order r,z,n), R = proj (P) when the LSTM has a projection, else H: the width of h.
// Every array is dense and row-major (C order).
//
// The training workspace (W = variant_workspace_slots(cell) * H per (t, b) row, blocks of H; rows past a
// sequence's end are zero):
//   RNN:  [a]                              the pre-activation before the clamp
//   LSTM: [a_i, a_f, a_g, a_o, c_t, m_t]   pre-activations (peephole terms included), the cell state and
//                                          m_t = o * h(c_t), which the projection multiplies (h_t itself
//                                          without one)
//   GRU:  [a_r, a_z, a_n, u]               a_n with the reset gate applied; u = W_hn h_{t-1} + b_hn
//                                          (reset_after) or r * h_{t-1} (reset gate before the product)
// Backward recomputes the activations from the pre-activations (rnnfast/_variants.py documents the same).
#pragma once

#include <cstdint>

#include "rnnfast/core/cell.h"
#include "rnnfast/core/cell_variant.h"

namespace rnnfast {

inline int variant_workspace_slots(Cell cell) {
  return cell == Cell::kLstm ? 6 : cell == Cell::kGru ? 4 : 1;
}

template <typename Scalar>
struct VariantForward {
  Cell cell = Cell::kLstm;  // kRnnTanh or kRnnRelu both mean the vanilla RNN: variant.act[0] decides
  CellVariant variant;
  std::int64_t seq_len = 0, batch = 0, input_size = 0, hidden = 0;
  std::int64_t proj = 0;          // P, the LSTM's projection size, 0 <= P < H; 0 means none
  const Scalar* x = nullptr;      // [S, B, I]
  const Scalar* h0 = nullptr;     // [B, R] or nullptr (zeros)
  const Scalar* c0 = nullptr;     // [B, H] or nullptr (zeros), LSTM only
  const Scalar* w_ih = nullptr;   // [G*H, I]
  const Scalar* w_hh = nullptr;   // [G*H, R]
  const Scalar* b_ih = nullptr;   // [G*H] or nullptr
  const Scalar* b_hh = nullptr;   // [G*H] or nullptr
  const Scalar* w_hr = nullptr;   // [P, H] when proj > 0 (LSTM)
  const Scalar* w_ch = nullptr;   // [3H] peepholes in the order i, f, o, or nullptr (LSTM)
  Scalar* out = nullptr;          // [S, B, R] written
  Scalar* h_n = nullptr;          // [B, R] written
  Scalar* c_n = nullptr;          // [B, H] written, LSTM only
  Scalar* workspace = nullptr;    // [S, B, W] written when not nullptr (training)
  const std::int64_t* lengths = nullptr;  // [B] sorted non-increasing, as LayerForward::lengths
};

template <typename Scalar>
struct VariantBackward {
  Cell cell = Cell::kLstm;
  CellVariant variant;
  std::int64_t seq_len = 0, batch = 0, input_size = 0, hidden = 0, proj = 0;
  // What the training forward saw and produced; the same arrays as in VariantForward.
  const Scalar* x = nullptr;
  const Scalar* h0 = nullptr;
  const Scalar* c0 = nullptr;
  const Scalar* w_ih = nullptr;
  const Scalar* w_hh = nullptr;
  const Scalar* w_hr = nullptr;
  const Scalar* w_ch = nullptr;
  const Scalar* out = nullptr;        // [S, B, R]
  const Scalar* workspace = nullptr;  // [S, B, W]
  // Gradients of the loss with respect to the forward's results; nullptr means zeros.
  const Scalar* d_out = nullptr;  // [S, B, R]
  const Scalar* d_h_n = nullptr;  // [B, R]
  const Scalar* d_c_n = nullptr;  // [B, H], LSTM only
  // Written (overwritten): the gradients with respect to the forward's inputs.
  Scalar* d_x = nullptr;     // [S, B, I]
  Scalar* d_h0 = nullptr;    // [B, R]
  Scalar* d_c0 = nullptr;    // [B, H], LSTM only
  Scalar* d_w_ih = nullptr;  // [G*H, I]
  Scalar* d_w_hh = nullptr;  // [G*H, R]
  Scalar* d_b_ih = nullptr;  // [G*H]
  Scalar* d_b_hh = nullptr;  // [G*H]
  Scalar* d_w_hr = nullptr;  // [P, H] when proj > 0
  Scalar* d_w_ch = nullptr;  // [3H] when w_ch is given
  const std::int64_t* lengths = nullptr;
};

// Both throw std::invalid_argument for a negative size, a missing array, an option the cell does not have
// (a projection or peepholes outside the LSTM, proj >= H), an unknown activation, a negative clip, or
// lengths out of range or not sorted; std::bad_alloc when scratch memory cannot be had. Results do not
// depend on the thread count.
template <typename Scalar>
void variant_forward(const VariantForward<Scalar>& args);

template <typename Scalar>
void variant_backward(const VariantBackward<Scalar>& args);

}  // namespace rnnfast
