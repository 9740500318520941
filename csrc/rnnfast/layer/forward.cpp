// One recurrent layer, one direction: the forward (inference and training). layer.h has the arguments.
//
// ForwardLoop sets a call up (checks, packed weights, the split and projection the shape policy of
// tuning.h chooses, the buffers every member shares) and runs the time loop: over slices of the batch
// (each slice all steps, no synchronisation) or as a team sharing every step by unit blocks
// (StepScheduler). The input projection's placement is a strategy (input_projection.h) that the loop
// is compiled for, once per placement.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/core/buffer.h"
#include "rnnfast/core/step_scheduler.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/core/weight_cache.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/input_projection.h"
#include "rnnfast/layer/layer.h"
#include "rnnfast/layer/sequence_rows.h"
#include "rnnfast/layer/tuning.h"
#include "rnnfast/step/fused_step.h"

namespace rnnfast {
namespace {

// `a`, once its sizes and lengths are checked (std::invalid_argument otherwise).
template <typename Scalar>
const LayerForward<Scalar>& checked(const LayerForward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  return a;
}

template <typename Scalar>
class ForwardLoop {
 public:
  explicit ForwardLoop(const LayerForward<Scalar>& a);
  void run();

 private:
  // W^T [depth, GH] gate-interleaved (step/fused_step.h), packed once for all steps (or found packed:
  // core/weight_cache.h), by several threads for a large one. tag: the weight_cache key's.
  std::shared_ptr<const RecurrentWeights<Scalar>> pack_gate_interleaved(std::int64_t tag, const Scalar* w,
                                                                        std::int64_t depth, const Scalar* kept_bias);
  // The time loop over rows [r0, r1), its projection placed by `Projection`. With a scheduler (the
  // hidden split), each step's unit blocks are shared among the team's members, and member 0 writes
  // the zero rows past the sequences' ends; without one, this call computes every block of its rows.
  template <class Projection>
  void run_rows(Projection& projection, std::int64_t r0, std::int64_t r1, StepScheduler* team, int member);
  // run_rows with the placement's strategy for this member.
  void run_member(std::int64_t r0, std::int64_t r1, StepScheduler* team, int member);

  const LayerForward<Scalar>& a_;
  const std::int64_t B_, I_, H_, GH_, W_;
  const bool cell_state_;
  const ActiveRows active_;
  const std::int64_t steps_;  // steps past every sequence's end are not computed
  const std::int64_t isa_;
  std::shared_ptr<const RecurrentWeights<Scalar>> w_hh_;
  ForwardSplit split_;
  ProjectionPolicy projection_ = ProjectionPolicy::kUpFront;
  std::shared_ptr<const PackedMatrix<Scalar>> w_ih_t_;            // op(B) = W_ih^T [I, GH], for gemm
  std::shared_ptr<const RecurrentWeights<Scalar>> w_ih_blocks_;  // W_ih^T gate-interleaved, in the step
  Buffer<Scalar> bias_;                                           // [GH] the folded biases, or empty
  Buffer<Scalar> gx_;                                             // [steps, B, GH] up front, or empty
  Buffer<Scalar> zeros_;                                          // [B, H] the initial state when none is given
  Buffer<Scalar> cell_states_;                                    // [2, B, H] c_{t-1}, c_t ping-ponged
  const Scalar* h0_ = nullptr;
  const Scalar* c0_ = nullptr;
  std::int64_t blocks_per_item_ = 2;
  ProjectionInputs<Scalar> inputs_;
};

template <typename Scalar>
ForwardLoop<Scalar>::ForwardLoop(const LayerForward<Scalar>& a)
    : a_(checked(a)),
      B_(a.batch),
      I_(a.input_size),
      H_(a.hidden),
      GH_(gate_count(a.cell) * a.hidden),
      W_(workspace_width(a.cell, a.hidden)),
      cell_state_(cell_info(a.cell).cell_state),
      active_(a.lengths, a.batch, a.seq_len),
      steps_(active_.steps()),
      isa_(static_cast<std::int64_t>(active_isa())) {
  if (a.x == nullptr || a.w_ih == nullptr || a.w_hh == nullptr || a.out == nullptr || a.h_n == nullptr ||
      (cell_state_ && a.c_n == nullptr))
    throw std::invalid_argument("rnnfast: layer_forward: missing array");
  const std::int64_t B = B_, I = I_, H = H_, GH = GH_, scalar = sizeof(Scalar);
  // W_hh^T with the recurrent bias a cell keeps in the step (the GRU's b_hn).
  const int kept_gate = kept_bias_gate(a.cell);
  w_hh_ = pack_gate_interleaved(2, a.w_hh, H, kept_gate >= 0 && a.b_hh != nullptr ? a.b_hh + kept_gate * H : nullptr);
  split_ = choose_forward_split(B, H, gate_count(a.cell), steps_, w_hh_->blocks(), sizeof(Scalar),
                                steps_ * B * GH * (I + H));

  // The input projection gx = X W_ih^T + bias. The recurrent bias is folded in here too, except the
  // block a cell keeps in the step (the GRU's b_hn, which the reset gate multiplies together with
  // W_hn h): the fused step adds it. Where it runs does not change the bits (input_projection.h).
  projection_ = choose_projection(B, I, GH, steps_, split_.hidden_team, scalar);
  if (projection_ == ProjectionPolicy::kInStep || projection_ == ProjectionPolicy::kAhead) {
    w_ih_blocks_ = pack_gate_interleaved(3, a.w_ih, I, nullptr);
  } else {
    w_ih_t_ = cached_pack<PackedMatrix<Scalar>>(
        PackKey{1, I, GH, isa_, scalar}, a.w_ih, GH * I, static_cast<const Scalar*>(nullptr), 0,
        [&](PackedMatrix<Scalar>& packed) { packed.pack(true, I, GH, a.w_ih, I); });
  }
  const bool biased = a.b_ih != nullptr || a.b_hh != nullptr;
  bias_.resize(biased ? GH : 0, /*zeroed=*/false);
  fill_bias_rows(a.cell, H, a.b_ih, a.b_hh, bias_.size() > 0 ? 1 : 0, bias_.data());
  const Scalar* bias_row = biased ? bias_.data() : nullptr;
  gx_.resize(projection_ == ProjectionPolicy::kUpFront ? steps_ * B * GH : 0, /*zeroed=*/false);  // all written
  if (projection_ == ProjectionPolicy::kUpFront)
    gemm(steps_ * B, false, a.x, I, *w_ih_t_, /*accumulate=*/false, gx_.data(), GH, bias_row);

  zeros_.resize(B * H);
  h0_ = a.h0 != nullptr ? a.h0 : zeros_.data();
  c0_ = a.c0 != nullptr ? a.c0 : zeros_.data();
  // Rows of length 0 end before the first step: their final state is the initial one.
  const std::int64_t running_at_start = active_.at(0);
  copy_n(a.h_n + running_at_start * H, h0_ + running_at_start * H, (B - running_at_start) * H);
  if (cell_state_) copy_n(a.c_n + running_at_start * H, c0_ + running_at_start * H, (B - running_at_start) * H);
  cell_states_.resize(cell_state_ ? 2 * B * H : 0);

  blocks_per_item_ = blocks_per_team_item(B, w_hh_->blocks(), split_.hidden_team);
  inputs_.x = a.x;
  inputs_.batch = B;
  inputs_.input = I;
  inputs_.gh = GH;
  inputs_.steps = steps_;
  inputs_.bias = bias_row;
  inputs_.w_ih_t = w_ih_t_.get();
  inputs_.w_ih_blocks = w_ih_blocks_.get();
  inputs_.w_hh = w_hh_.get();
  inputs_.gx_up_front = gx_.data();
  inputs_.active = &active_;
}

template <typename Scalar>
std::shared_ptr<const RecurrentWeights<Scalar>> ForwardLoop<Scalar>::pack_gate_interleaved(std::int64_t tag,
                                                                                           const Scalar* w,
                                                                                           std::int64_t depth,
                                                                                           const Scalar* kept_bias) {
  const std::int64_t H = H_;
  return cached_pack<RecurrentWeights<Scalar>>(
      PackKey{tag, static_cast<std::int64_t>(a_.cell), H, isa_, static_cast<std::int64_t>(sizeof(Scalar))}, w,
      GH_ * depth, kept_bias, kept_bias != nullptr ? H : 0, [&](RecurrentWeights<Scalar>& packed) {
        packed.allocate(a_.cell, H, kept_bias, depth);
        constexpr std::int64_t kBlocksPerTask = 4;
        const std::int64_t blocks = packed.blocks(), tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
        parallel_for(tasks, [&](std::int64_t i) {
          packed.pack_blocks(w, i * kBlocksPerTask, std::min(blocks, (i + 1) * kBlocksPerTask));
        });
      });
}

template <typename Scalar>
void ForwardLoop<Scalar>::run() {
  if (split_.hidden_team > 1) {
    StepScheduler team(split_.hidden_team, (w_hh_->blocks() + blocks_per_item_ - 1) / blocks_per_item_);
    parallel_team(split_.hidden_team,
                  [&](int member, int members) { run_member(0, B_, members > 1 ? &team : nullptr, member); });
  } else {
    const std::int64_t slices = split_.batch_slices;
    parallel_for(slices, [&](std::int64_t i) { run_member(B_ * i / slices, B_ * (i + 1) / slices, nullptr, 0); });
  }
}

template <typename Scalar>
void ForwardLoop<Scalar>::run_member(std::int64_t r0, std::int64_t r1, StepScheduler* team, int member) {
  const std::int64_t blocks = w_hh_->blocks();
  ProjectionMember m;
  m.r0 = r0;
  m.width = r1 - r0;
  m.own_b0 = team != nullptr ? team->own_begin(member) * blocks_per_item_ : 0;
  m.own_b1 = team != nullptr ? std::min(blocks, team->own_end(member) * blocks_per_item_) : blocks;
  switch (projection_) {
    case ProjectionPolicy::kPerStep: {
      PerStepProjection<Scalar> p(inputs_, m);
      return run_rows(p, r0, r1, team, member);
    }
    case ProjectionPolicy::kAhead: {
      AheadProjection<Scalar> p(inputs_, m, kAheadSteps);
      return run_rows(p, r0, r1, team, member);
    }
    case ProjectionPolicy::kInStep: {
      if (team != nullptr) {  // a team projects the next step ahead, in its waits
        AheadProjection<Scalar> p(inputs_, m, 1);
        return run_rows(p, r0, r1, team, member);
      }
      InStepProjection<Scalar> p(inputs_, m);
      return run_rows(p, r0, r1, team, member);
    }
    default: {
      UpFrontProjection<Scalar> p(inputs_, m);
      return run_rows(p, r0, r1, team, member);
    }
  }
}

template <typename Scalar>
template <class Projection>
void ForwardLoop<Scalar>::run_rows(Projection& projection, std::int64_t r0, std::int64_t r1, StepScheduler* team,
                                   int member) {
  const LayerForward<Scalar>& a = a_;
  const std::int64_t B = B_, H = H_, W = W_, width = r1 - r0, blocks = w_hh_->blocks();
  const std::int64_t U = w_hh_->block_units();
  const RecurrentWeights<Scalar>& w_hh = *w_hh_;
  const bool cell_state = cell_state_;
  const Scalar* h_prev = h0_ + r0 * H;
  const Scalar* c_prev = c0_ + r0 * H;
  projection.begin();
  for (std::int64_t t = 0; t < a.seq_len; ++t) {
    const std::int64_t rows = active_.in_slice(t, r0, r1);  // the slice's rows [0, rows) run this step
    Scalar* h_t = a.out + (t * B + r0) * H;
    Scalar* ws_t = a.workspace != nullptr ? a.workspace + (t * B + r0) * W : nullptr;
    // Past a sequence's end the output (and the saved workspace) is zero, as in PyTorch.
    if (member == 0) {
      std::fill(h_t + rows * H, h_t + width * H, Scalar(0));
      if (ws_t != nullptr) std::fill(ws_t + rows * W, ws_t + width * W, Scalar(0));
    }
    if (rows == 0) continue;  // and no later step runs either (rows only shrink)
    Scalar* c_t = cell_state ? cell_states_.data() + ((t % 2) * B + r0) * H : nullptr;
    StepArgs<Scalar> step;
    step.rows = rows;
    step.h_prev = h_prev;
    step.c_prev = c_prev;
    step.h = h_t;
    step.c = c_t;
    step.ws = ws_t;
    const StepArgs<Scalar>& taken = projection.prepare(t, step);  // for blocks taken from another member
    const std::int64_t still = active_.in_slice(t + 1, r0, r1);
    // Blocks [b0, b1) of the step; rows whose last step this was hand those units of their state to
    // h_n/c_n.
    auto compute = [&](const StepArgs<Scalar>& args, std::int64_t b0, std::int64_t b1) {
      w_hh.step(args, b0, b1);
      const std::int64_t u0 = std::min(H, b0 * U), u1 = std::min(H, b1 * U);
      for (std::int64_t r = still; r < rows; ++r) {
        copy_n(a.h_n + (r0 + r) * H + u0, h_t + r * H + u0, u1 - u0);
        if (cell_state) copy_n(a.c_n + (r0 + r) * H + u0, c_t + r * H + u0, u1 - u0);
      }
    };
    if (team == nullptr) {
      compute(step, 0, blocks);
      projection.after_own(t);
    } else {  // scheduled by runs of blocks_per_item_
      const std::int64_t own_begin = team->own_begin(member), own_end = team->own_end(member);
      const std::int64_t per_item = blocks_per_item_;
      team->run_step(
          member, t,
          [&](std::int64_t item) {
            const std::int64_t b0 = per_item * item, b1 = std::min(blocks, b0 + per_item);
            const bool own = item >= own_begin && item < own_end;
            compute(own ? step : taken, b0, b1);
          },
          [&] { projection.after_own(t); });
    }
    h_prev = h_t;
    c_prev = c_t;
  }
}

}  // namespace

template <typename Scalar>
void layer_forward(const LayerForward<Scalar>& a) {
  ForwardLoop<Scalar>(a).run();
}

template void layer_forward<float>(const LayerForward<float>&);
template void layer_forward<double>(const LayerForward<double>&);

}  // namespace rnnfast
