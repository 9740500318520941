// Forward and backward (BPTT) of one recurrent layer in one direction: vanilla RNN (tanh, relu), LSTM
// and GRU, with PyTorch's conventions for weights and gates.
//
// Shapes use S = sequence length, B = batch, I = input size, H = hidden size, G = gates (1 RNN,
// 4 LSTM in order i,f,g,o, 3 GRU in order r,z,n). Every array is dense and row-major (C order).
//
// The structure follows DESIGN.md section 3: the input projection for all S steps is one GEMM before
// the time loop; each step multiplies the previous hidden state by the packed recurrent weights and
// applies the gate update; backward runs a reverse loop for the gate gradients and dh_{t-1} (with
// d_x_t, which shares the step's left operand, except for the GRU), and computes the weight gradients
// (and the GRU's d_x) afterwards as GEMMs over all S*B rows.
#pragma once

#include <cstdint>

namespace rnnfast {

enum class Cell { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

// Number of gates G of `cell`: weights have G*H rows.
int gate_count(Cell cell);

// Width W, per (t, b) row, of the workspace that the training forward fills for backward:
//   RNN:  0   (the output h_t alone gives the activation's derivative)
//   LSTM: 6H  [i, f, g, o, c_t, tanh(c_t)], gates after their activation
//   GRU:  4H  [r, z, n, W_hn h_{t-1} + b_hn], gates after their activation
// Saving activated gates lets backward run without any transcendental function.
std::int64_t workspace_width(Cell cell, std::int64_t hidden);

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
  Scalar* workspace = nullptr;   // [S, B, W] written when not nullptr (training), see workspace_width
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

// How layer_forward shares a time loop among threads: kAuto chooses by shape; kBatch slices the batch
// (each thread runs all steps for its rows), kHidden shares each step by hidden units (a barrier per
// step). Results are the same bits whichever is used; for tests and benchmarks. Not thread-safe to
// change while kernels run.
enum class SplitPolicy { kAuto = 0, kBatch = 1, kHidden = 2 };
void set_split_policy(SplitPolicy policy);
SplitPolicy split_policy();

// Where layer_forward computes the input projection gx = x W_ih^T + biases: kAuto chooses by shape;
// kUpFront runs one GEMM over every step's rows before the time loop; kPerStep a GEMM over each
// step's rows just before the step; kInStep lets the fused step compute each unit block's columns
// just before its recurrent tile, from W_ih packed gate-interleaved like W_hh (not for input size 0,
// which runs up front); kAhead lets each thread of a team sharing the steps (SplitPolicy kHidden)
// project its own unit blocks a few steps at a time, a share after each step's own blocks (where it
// would wait for the others), from the same packing (kInStep where the batch is sliced). The same bits
// every way; for tests and benchmarks, not thread-safe to change while kernels run.
enum class ProjectionPolicy { kAuto = 0, kUpFront = 1, kPerStep = 2, kInStep = 3, kAhead = 4 };
void set_projection_policy(ProjectionPolicy policy);
ProjectionPolicy projection_policy();

template <typename Scalar>
void layer_backward(const LayerBackward<Scalar>& args);

}  // namespace rnnfast
