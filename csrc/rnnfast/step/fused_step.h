// The recurrent step: h_{t-1} W_hh^T and the gate update, fused, for a block of the batch's rows and
// a range of hidden units (docs/design.md, "The fused recurrent step").
//
// W_hh is packed once, gate-interleaved: the hidden units are cut into blocks of U units, and the
// panel of a block holds the recurrent weights of all G gates of those units side by side. The
// micro-kernel accumulates a register tile [rows x G*U] of h_{t-1} W_hh^T over the whole depth H, then
// applies the gate update to it while it is still in registers or L1 and writes h_t (and c_t, and the
// training workspace): the recurrent pre-activations never go to memory.
//
// Because a unit block needs nothing from the other blocks within a step, a step can be cut by unit
// blocks (each thread keeping its slice of W_hh in its own L2, synchronising at every step) or by rows (each
// thread running the whole time loop on its slice of the batch, no barrier). Every element is
// computed by the same sequence of multiply-adds whatever the cut and whatever the tile height, so the
// results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/core/isa.h"

namespace rnnfast {

template <typename Scalar>
class RecurrentWeights;

// One step's arrays for rows [0, rows) of a slice. Row strides are fixed by the cell: gx rows are G*H
// apart (gate blocks H apart), h_prev, c_prev, h, c rows H apart, ws rows W = workspace_width apart
// (blocks H apart). All are offset to the slice's first row (not to a unit block).
template <typename Scalar>
struct StepArgs {
  std::int64_t rows = 0;
  const Scalar* gx = nullptr;      // [rows, G*H] input projection with the folded biases
  const Scalar* h_prev = nullptr;  // [rows, H]
  const Scalar* c_prev = nullptr;  // [rows, H] LSTM only
  Scalar* h = nullptr;             // [rows, H] written: h_t (must not alias h_prev)
  Scalar* c = nullptr;             // [rows, H] written: c_t, LSTM only (must not alias c_prev)
  Scalar* ws = nullptr;            // [rows, W] written when not nullptr (training)
  // The input projection computed inside the step (w_x not nullptr): each block's columns of
  // gx_out = bias + x W_ih^T are computed by the block's tiles just before its recurrent tile, with
  // the bits of the GEMM of gemm.h (see RecurrentWeights::projection_chunk), and gx must be gx_out.
  const RecurrentWeights<Scalar>* w_x = nullptr;  // W_ih^T gate-interleaved, depth I
  const Scalar* x = nullptr;                      // [rows, I] x_t, rows I apart
  const Scalar* bias = nullptr;                   // [G*H] folded biases (fill_bias_rows), or nullptr
  Scalar* gx_out = nullptr;                       // [rows, G*H] written
  // Only the input projection into gx_out (w_x, x, bias, gx_out as above): the blocks' columns of
  // the step's gx, computed ahead of the step (while a team waits for the previous one), which then
  // runs with w_x = nullptr and gx = gx_out. gx, h_prev, c_prev, h, c and ws are not used.
  bool project_only = false;
};

// One instruction set's fused step for one element type (kernels/fused_step_<isa>.cpp): computes unit
// blocks [block_begin, block_end) of the step described by `args`.
template <typename Scalar>
struct FusedStepKernel {
  // Units per block for each cell (indexed by Cell): the cell's kBlockVectors vectors.
  int block_units[kCellCount];
  void (*step)(const RecurrentWeights<Scalar>& weights, const StepArgs<Scalar>& args, std::int64_t block_begin,
               std::int64_t block_end);
};

RNNFAST_DECLARE_ISA_TABLE(FusedStepKernel<float>)
RNNFAST_DECLARE_ISA_TABLE(FusedStepKernel<double>)

// W_hh^T packed gate-interleaved for the active instruction set's FusedStepKernel (kept with it).
// Layout: block p (units [p*U, p*U + U)) is a panel of H rows (k) by G*U columns, k-major:
//   panel(p)[k * G*U + g*U + j] = W_hh[g*H + p*U + j][k], zero past unit H.
// W_ih^T packs the same way with depth I (allocate's depth) for a step that projects its own input
// (StepArgs::w_x).
// The GRU's recurrent bias of the n gate (which the reset gate multiplies, so it cannot be folded
// into the input projection) is kept here, zero-padded to whole blocks: [blocks*U].
template <typename Scalar>
class RecurrentWeights {
 public:
  // w_hh [G*H, H] (PyTorch layout); b_hn [H] the GRU's n-gate recurrent bias or nullptr.
  void pack(Cell cell, std::int64_t hidden, const Scalar* w_hh, const Scalar* b_hn) {
    allocate(cell, hidden, b_hn);
    pack_blocks(w_hh, 0, blocks());
  }
  // The same in two parts, so that threads can pack the blocks they will multiply: allocate (and
  // choose the kernel), then pack_blocks for every block, in any order, from any threads.
  // depth: the weights' row length, H for W_hh (depth < 0), I for W_ih.
  void allocate(Cell cell, std::int64_t hidden, const Scalar* b_hn, std::int64_t depth = -1);
  void pack_blocks(const Scalar* w_hh, std::int64_t block_begin, std::int64_t block_end);

  Cell cell() const { return cell_; }
  std::int64_t hidden() const { return hidden_; }
  std::int64_t gates() const { return gates_; }
  std::int64_t block_units() const { return units_; }
  std::int64_t blocks() const { return blocks_; }
  std::int64_t depth() const { return depth_; }
  const Scalar* panel(std::int64_t block) const { return data_.data() + block * depth_ * gates_ * units_; }
  // The depth of the GEMM micro-kernel's k blocks on this instruction set (MicroKernel::kc): a step
  // projecting its input accumulates x W_ih^T in chunks of this depth, each chunk's sum added to the
  // running total as gemm adds a k block's tile to C, so that it computes gemm's bits.
  std::int64_t projection_chunk() const { return projection_chunk_; }
  const Scalar* b_hn() const { return has_b_hn_ ? b_hn_.data() : nullptr; }
  const FusedStepKernel<Scalar>& kernel() const { return *kernel_; }

  // Computes blocks [block_begin, block_end) of one step.
  void step(const StepArgs<Scalar>& args, std::int64_t block_begin, std::int64_t block_end) const {
    kernel_->step(*this, args, block_begin, block_end);
  }

 private:
  const FusedStepKernel<Scalar>* kernel_ = nullptr;
  Cell cell_ = Cell::kLstm;
  std::int64_t hidden_ = 0, gates_ = 0, units_ = 0, blocks_ = 0, depth_ = 0, projection_chunk_ = 0;
  Buffer<Scalar> data_;
  Buffer<Scalar> b_hn_;
  bool has_b_hn_ = false;
};

// Fills `rows` rows of gx [rows, G*H] with the biases the input projection starts from: b_ih plus b_hh
// (either may be nullptr), except the GRU's n block of b_hh, which the fused step adds inside r * (..).
template <typename Scalar>
void fill_bias_rows(Cell cell, std::int64_t hidden, const Scalar* b_ih, const Scalar* b_hh, std::int64_t rows,
                    Scalar* gx);

// The float64 gate updates of a tile, for every instruction set's fused step: the portable scalar
// code (kernels/portable_f64.cpp), compiled without instruction-set flags so that float64 results are
// the C library's exp and tanh with unfused arithmetic everywhere. forward_block[cell] updates `rows`
// rows by `units` (<= U) hidden units from the tile gh [rows][G][U] (row stride G*U, gate stride U;
// the GRU's includes b_hn); the other pointers are offset to the block's first unit and keep the
// StepArgs row strides (gx G*H, states H, ws W); h_prev, c_prev, c and ws may be nullptr where the
// cell does not use them.
struct PortableGateUpdates {
  using Fn = void (*)(std::int64_t rows, int units, int block_units, std::int64_t hidden, const double* gx,
                      const double* gh, const double* h_prev, const double* c_prev, double* h, double* c, double* ws);
  Fn forward_block[kCellCount];
};
const PortableGateUpdates& portable_gate_updates();

}  // namespace rnnfast
