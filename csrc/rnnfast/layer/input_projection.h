// Where a forward's time loop gets gx_t, the input projection x_t W_ih^T + biases of step t: one
// strategy class per placement (ProjectionPolicy, layer/tuning.h), all giving the same bits (gemm
// computes each element with the same multiply-adds whatever rows it is given, and the fused step's
// own projection reproduces them, chunk by chunk of gemm's k-block depth).
//
// A strategy serves one member of the time loop (the rows [r0, r0 + width) of a batch slice, or the
// whole batch for a member of a team sharing the steps) and keeps that member's buffers. The loop
// calls, in order:
//   begin()                  before the first step;
//   prepare(t, own)          for step t, after filling own's state fields: sets own's projection
//                            fields (gx, or what the fused step projects from) and returns the
//                            arguments for blocks this member takes from another member of its team
//                            (own itself, except ahead: no copy of the arguments per step otherwise);
//   after_own(t)             once this member's own blocks of step t are done (in what would be a wait
//                            for the others).
#pragma once

#include <algorithm>
#include <cstdint>

#include "rnnfast/core/buffer.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/sequence_rows.h"
#include "rnnfast/step/fused_step.h"

namespace rnnfast {

// What every placement reads; set up by the forward once per call.
template <typename Scalar>
struct ProjectionInputs {
  const Scalar* x = nullptr;  // [S, B, I]
  std::int64_t batch = 0, input = 0, gh = 0, steps = 0;
  const Scalar* bias = nullptr;                             // [G*H] folded biases, or nullptr
  const PackedMatrix<Scalar>* w_ih_t = nullptr;             // W_ih^T for gemm (up front, per step)
  const RecurrentWeights<Scalar>* w_ih_blocks = nullptr;    // W_ih^T gate-interleaved (in the step, ahead)
  const RecurrentWeights<Scalar>* w_hh = nullptr;           // the fused step's weights (projects w_ih_blocks)
  const Scalar* gx_up_front = nullptr;                      // [steps, B, G*H] (up front)
  const ActiveRows* active = nullptr;
};

// One member's rows and blocks: rows [r0, r0 + width), own unit blocks [own_b0, own_b1).
struct ProjectionMember {
  std::int64_t r0 = 0, width = 0, own_b0 = 0, own_b1 = 0;
};

// What the placements that serve each step on its own share: nothing to do before the loop or after
// a member's own blocks, the member's rows of x_t, and (for those that compute gx_t) its buffer.
template <typename Scalar>
class EachStepProjection {
 public:
  void begin() {}
  void after_own(std::int64_t) {}

 protected:
  EachStepProjection(const ProjectionInputs<Scalar>& in, const ProjectionMember& m, bool gx_buffer)
      : in_(in), m_(m), gx_(gx_buffer ? m.width * in.gh : 0, /*zeroed=*/false) {}
  const Scalar* x_t(std::int64_t t) const { return in_.x + (t * in_.batch + m_.r0) * in_.input; }

  const ProjectionInputs<Scalar>& in_;
  const ProjectionMember m_;
  Buffer<Scalar> gx_;  // [width, G*H] gx_t of the member's rows, or empty
};

// kUpFront: one GEMM over every step's rows ran before the loop; a step reads its rows.
template <typename Scalar>
class UpFrontProjection : public EachStepProjection<Scalar> {
 public:
  UpFrontProjection(const ProjectionInputs<Scalar>& in, const ProjectionMember& m)
      : EachStepProjection<Scalar>(in, m, /*gx_buffer=*/false) {}
  const StepArgs<Scalar>& prepare(std::int64_t t, StepArgs<Scalar>& own) {
    own.gx = this->in_.gx_up_front + (t * this->in_.batch + this->m_.r0) * this->in_.gh;
    return own;
  }
};

// kPerStep: a GEMM over the step's running rows just before the step, so that gx_t is still in cache
// when the gates read it.
template <typename Scalar>
class PerStepProjection : public EachStepProjection<Scalar> {
 public:
  PerStepProjection(const ProjectionInputs<Scalar>& in, const ProjectionMember& m)
      : EachStepProjection<Scalar>(in, m, /*gx_buffer=*/true) {}
  const StepArgs<Scalar>& prepare(std::int64_t t, StepArgs<Scalar>& own) {
    gemm(own.rows, false, this->x_t(t), this->in_.input, *this->in_.w_ih_t, /*accumulate=*/false, this->gx_.data(),
         this->in_.gh, this->in_.bias);
    own.gx = this->gx_.data();
    return own;
  }
};

// kInStep, alone on its rows: the fused step computes each unit block's columns of gx_t just before
// the block's recurrent tile.
template <typename Scalar>
class InStepProjection : public EachStepProjection<Scalar> {
 public:
  InStepProjection(const ProjectionInputs<Scalar>& in, const ProjectionMember& m)
      : EachStepProjection<Scalar>(in, m, /*gx_buffer=*/true) {}
  const StepArgs<Scalar>& prepare(std::int64_t t, StepArgs<Scalar>& own) {
    own.w_x = this->in_.w_ih_blocks;
    own.x = this->x_t(t);
    own.bias = this->in_.bias;
    own.gx_out = this->gx_.data();
    own.gx = own.gx_out;
    return own;
  }
};

// kAhead (chunks of kAheadSteps steps), and kInStep in a team (chunks of one step): the member projects
// its own blocks ahead, in what would be a wait for the others: `chunk_steps` steps at a time (one
// product of chunk_steps * width rows, one read of a block's W_ih for all of them), a share of its
// blocks after each step's own blocks, so that during the steps of chunk c it fills chunk c + 1's gx;
// it keeps two chunks', c's and c + 1's. A block it takes from another member it projects in the step,
// into its own chunk (whose columns of that block its own projection never writes). A team's rows are
// the whole batch (width == B), so the rows of a run of steps are consecutive in x. Without a team
// (the pool was busy) it runs the same way with every block its own.
template <typename Scalar>
class AheadProjection {
 public:
  AheadProjection(const ProjectionInputs<Scalar>& in, const ProjectionMember& m, std::int64_t chunk_steps)
      : in_(in),
        m_(m),
        chunk_steps_(chunk_steps),
        blocks_each_step_((m.own_b1 - m.own_b0 + chunk_steps - 1) / chunk_steps),
        chunk_stride_(chunk_steps * m.width * in.gh),
        gx_(2 * chunk_stride_, /*zeroed=*/false) {}

  void begin() { project_chunk(0, m_.own_b0, m_.own_b1); }

  const StepArgs<Scalar>& prepare(std::int64_t t, StepArgs<Scalar>& own) {
    Scalar* gx_t = gx_.data() + ((t / chunk_steps_) % 2) * chunk_stride_ + (t % chunk_steps_) * m_.width * in_.gh;
    own.gx = gx_t;
    taken_ = own;  // a block taken from another member projects its own columns, into this chunk
    taken_.w_x = in_.w_ih_blocks;
    taken_.x = in_.x + (t * in_.batch + m_.r0) * in_.input;
    taken_.bias = in_.bias;
    taken_.gx_out = gx_t;
    return taken_;
  }

  // After step t's own blocks: share t % chunk_steps of the next chunk's.
  void after_own(std::int64_t t) {
    const std::int64_t b0 = m_.own_b0 + (t % chunk_steps_) * blocks_each_step_;
    project_chunk(t / chunk_steps_ + 1, b0, std::min(m_.own_b1, b0 + blocks_each_step_));
  }

 private:
  // Blocks [b0, b1) of chunk `chunk`'s projection.
  void project_chunk(std::int64_t chunk, std::int64_t b0, std::int64_t b1) {
    const std::int64_t first = chunk * chunk_steps_;
    if (first >= in_.steps || b0 >= b1) return;
    const std::int64_t last = std::min(in_.steps, first + chunk_steps_) - 1;
    StepArgs<Scalar> ahead;
    // No row past every end: the last step of the chunk projects only its running rows.
    ahead.rows = (last - first) * m_.width + in_.active->in_slice(last, m_.r0, m_.r0 + m_.width);
    ahead.w_x = in_.w_ih_blocks;
    ahead.x = in_.x + first * in_.batch * in_.input;
    ahead.bias = in_.bias;
    ahead.gx_out = gx_.data() + (chunk % 2) * chunk_stride_;
    ahead.project_only = true;
    in_.w_hh->step(ahead, b0, b1);
  }

  const ProjectionInputs<Scalar>& in_;
  const ProjectionMember m_;
  const std::int64_t chunk_steps_, blocks_each_step_, chunk_stride_;
  Buffer<Scalar> gx_;  // two chunks of [chunk_steps, width, G*H]
  StepArgs<Scalar> taken_;
};

}  // namespace rnnfast
