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
#include <memory>
#include <vector>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/core/cell_variant.h"
#include "rnnfast/gemm/gemm.h"

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

// The recurrent products cut by chunks of hidden units, for a team of threads sharing each step (a small
// batch: layer/variant_forward.cpp). Chunk c holds units [c*U, c*U + U) (U = chunk_units, the last chunk
// shorter); its packs hold the rows of W_hh (and W_hr) that give its units' columns, gate after gate, so that
// a team member computes a chunk's products and then its cells with no other member's columns.
template <typename Scalar>
struct VariantTeamPacks {
  std::int64_t chunk_units = 0, chunks = 0;
  // Per chunk: op(B) = [R, G*U_c], the chunk's rows of W_hh gate by gate (the GRU with the reset gate before
  // the product: [H, 2*U_c], r and z); W_hn's [H, U_c] (that GRU); W_hr's columns of the chunk's share of
  // the projection, [H, P_c] (P cut in as many chunks).
  std::vector<std::unique_ptr<PackedMatrix<Scalar>>> recurrent, new_gate, projection;
  Buffer<Scalar> kept_bias;  // the GRU with reset_after: [3H], chunk c's [3*U_c] from offset 3*c*U (zeros but b_hn)
};

// A variant layer's weights packed for its forward: what variant_forward packs (or finds packed in the
// weight cache) on every call, kept by a stepper (stepper/variant_stepper.h) that runs many short calls.
template <typename Scalar>
struct VariantWeights {
  // Packs the weights of `a` (cell, variant, sizes, w_*, b_*; the other arrays are not read), copying them,
  // so the arrays may be released afterwards; `cached`: take the packs from the weight cache
  // (core/weight_cache.h), as variant_forward does. Throws as variant_forward.
  VariantWeights(const VariantForward<Scalar>& a, bool cached);

  Cell cell;
  CellVariant variant;
  std::int64_t input_size, hidden, proj;
  // op(B) operands of the products: W_ih^T [I, GH]; W_hh^T [R, GH], or for the GRU with the reset gate
  // before the product W_h[rz]^T [H, 2H] and W_hn^T [H, H]; W_hr^T [H, P] with a projection.
  std::shared_ptr<const PackedMatrix<Scalar>> w_ih_t, w_hh_t, w_rz_t, w_n_t, w_hr_t;
  Buffer<Scalar> bias;       // [GH] b_ih + b_hh where they add (not the GRU's b_hn with reset_after), or empty
  Buffer<Scalar> kept_bias;  // [GH] zeros but for b_hn in the n block (the GRU with reset_after), or empty
  Buffer<Scalar> w_ch;       // [3H] the peepholes, or empty
  // The products cut for a team: packed with the weights when not `cached` (a stepper's), else made (and
  // cached) by the forward of a small batch that needs them.
  std::shared_ptr<const VariantTeamPacks<Scalar>> team;
};

// The products cut for a team (VariantTeamPacks) from `a`'s weights (cell, sizes, w_hh, w_hr, b_hh), from the
// weight cache when `cached` (layer/variant_weights.cpp).
template <typename Scalar>
std::shared_ptr<const VariantTeamPacks<Scalar>> variant_team_packs(const VariantForward<Scalar>& a, bool cached);

// The forward on weights packed before: `a`'s cell, variant and sizes must be those of `w` (its weight
// arrays are not read).
template <typename Scalar>
void variant_forward(const VariantWeights<Scalar>& w, const VariantForward<Scalar>& args);

// Both throw std::invalid_argument for a negative size, a missing array, an option the cell does not have
// (a projection or peepholes outside the LSTM, proj >= H), an unknown activation, a negative clip, or
// lengths out of range or not sorted; std::bad_alloc when scratch memory cannot be had. Results do not
// depend on the thread count.
template <typename Scalar>
void variant_forward(const VariantForward<Scalar>& args);

template <typename Scalar>
void variant_backward(const VariantBackward<Scalar>& args);

}  // namespace rnnfast
