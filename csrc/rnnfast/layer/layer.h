// Forward and backward (BPTT) of one recurrent layer in one direction: vanilla RNN (tanh, relu), LSTM
// and GRU, with PyTorch's conventions for weights and gates.
//
// Shapes use S = sequence length, B = batch, I = input size, H = hidden size, G = gates (1 RNN,
// 4 LSTM in order i,f,g,o, 3 GRU in order r,z,n). Every array is dense and row-major (C order).
//
// The structure (docs/design.md, "The layer's forward and backward"): the input projection x W_ih^T
// runs where the shape policy (layer/tuning.h) places it; each step multiplies the previous hidden
// state by the packed recurrent weights and applies the gate update in one fused step
// (step/fused_step.h); backward runs a reverse loop for the gate gradients and dh_{t-1} (with d_x_t,
// which shares the step's left operand, except for the GRU), and computes the weight gradients (and
// the GRU's d_x) afterwards as GEMMs over all S*B rows.
#pragma once

#include <cstdint>

#include "rnnfast/core/cell.h"

namespace rnnfast {

template <typename Scalar>
struct LayerForward {
  Cell cell = Cell::kLstm;
  std::int64_t seq_len = 0, batch = 0, input_size = 0, hidden = 0;
  const Scalar* x = nullptr;     // [S, B, I] input sequence
  const Scalar* h0 = nullptr;    // [B, H] initial hidden state; nullptr means zeros
  const Scalar* c0 = nullptr;    // [B, H] initial cell state (LSTM only); nullptr means zeros
  const Scalar* w_ih = nullptr;  // [G*H, I] input weights
  const Scalar* w_hh = nullptr;  // [G*H, H] recurrent weights
  const Scalar* b_ih = nullptr;  // [G*H] input bias; nullptr means none
  const Scalar* b_hh = nullptr;  // [G*H] recurrent bias; nullptr means none
  Scalar* out = nullptr;         // [S, B, H] written: h_t for every step
  Scalar* h_n = nullptr;         // [B, H] written: the final hidden state (h0 or zeros when S == 0)
  Scalar* c_n = nullptr;         // [B, H] written: the final cell state (LSTM only)
  Scalar* workspace = nullptr;   // [S, B, W] written when not nullptr (training): W = workspace_width
                                 // (core/cell.h), slots as named in cells/<cell>.h
  // [B] per-sequence lengths, each in [0, S], sorted non-increasing (PyTorch's packed-sequence order);
  // nullptr means every sequence has length S. Row b runs steps [0, lengths[b]) only: its outputs and
  // workspace rows past its end are zero, and h_n/c_n hold its state after its last step (h0/c0 for
  // a length of 0). Because the rows are sorted, the rows still running at any step are a prefix of
  // the batch, so no work is spent past a sequence's end.
  const std::int64_t* lengths = nullptr;
};

template <typename Scalar>
struct LayerBackward {
  Cell cell = Cell::kLstm;
  std::int64_t seq_len = 0, batch = 0, input_size = 0, hidden = 0;
  // What the training forward saw and produced; the same arrays as in LayerForward.
  const Scalar* x = nullptr;          // [S, B, I]
  const Scalar* h0 = nullptr;         // [B, H] or nullptr (zeros)
  const Scalar* c0 = nullptr;         // [B, H] or nullptr (zeros); LSTM only
  const Scalar* w_ih = nullptr;       // [G*H, I]
  const Scalar* w_hh = nullptr;       // [G*H, H]
  const Scalar* out = nullptr;        // [S, B, H]
  const Scalar* workspace = nullptr;  // [S, B, W]
  // Gradients of the loss with respect to the forward's results; nullptr means zeros.
  const Scalar* d_out = nullptr;  // [S, B, H]
  const Scalar* d_h_n = nullptr;  // [B, H]
  const Scalar* d_c_n = nullptr;  // [B, H], LSTM only
  // Written (overwritten, not accumulated): gradients with respect to the forward's inputs.
  Scalar* d_x = nullptr;     // [S, B, I]
  Scalar* d_h0 = nullptr;    // [B, H]
  Scalar* d_c0 = nullptr;    // [B, H], LSTM only
  Scalar* d_w_ih = nullptr;  // [G*H, I]
  Scalar* d_w_hh = nullptr;  // [G*H, H]
  Scalar* d_b_ih = nullptr;  // [G*H]
  Scalar* d_b_hh = nullptr;  // [G*H]; equals d_b_ih except in the GRU's n block
  // [B] the lengths the forward ran with (see LayerForward::lengths), or nullptr. d_out past a
  // sequence's end is ignored (those outputs are constant zeros); d_h_n/d_c_n enter at its last step.
  const std::int64_t* lengths = nullptr;
};

// Both throw std::invalid_argument when a size is negative, a required pointer is missing, or the
// lengths are out of range or not sorted, and
// std::bad_alloc when scratch memory cannot be had. The arrays must not overlap, except that the
// inputs may share memory with one another.
template <typename Scalar>
void layer_forward(const LayerForward<Scalar>& args);

template <typename Scalar>
void layer_backward(const LayerBackward<Scalar>& args);

}  // namespace rnnfast
