// Streaming inference: a stack of unidirectional recurrent layers advanced one time step (or one chunk)
// per call, with the state kept inside.
//
// The weights are packed once, when the stepper is made; every buffer a step needs is allocated then
// too, so a step run alone allocates nothing (one shared by the pool's threads allocates the pool's
// small job record). A step of a layer is the forward's fused step with the input projection inside
// it (step/fused_step.h, StepArgs::w_x: the forward's in-step placement, whose bits are the GEMM's), so
// feeding a sequence step by step gives bit-identical results to one whole-sequence call. A team of
// threads shares a step by unit blocks with the forward's StepScheduler and item size
// (layer/tuning.h), one synchronisation per layer.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/core/step_scheduler.h"
#include "rnnfast/step/fused_step.h"

namespace rnnfast {

template <typename Scalar>
struct StepperLayer {
  std::int64_t input_size = 0;   // I_k: the model's input size for layer 0, H for the layers above
  const Scalar* w_ih = nullptr;  // [G*H, I_k]
  const Scalar* w_hh = nullptr;  // [G*H, H]
  const Scalar* b_ih = nullptr;  // [G*H] or nullptr
  const Scalar* b_hh = nullptr;  // [G*H] or nullptr
};

template <typename Scalar>
class Stepper {
 public:
  // Copies and packs the weights (the arrays may be released afterwards); the state starts at zero.
  // Throws std::invalid_argument for an empty stack or non-positive sizes.
  Stepper(Cell cell, std::int64_t hidden, std::int64_t batch, const std::vector<StepperLayer<Scalar>>& layers);

  std::int64_t num_layers() const { return static_cast<std::int64_t>(layers_.size()); }
  std::int64_t input_size() const { return layers_.front().input_size; }

  // Sets the state: h0, c0 [L, B, H] (c0 for a cell with a cell state only), nullptr for zeros.
  void reset(const Scalar* h0, const Scalar* c0);

  // Advances `steps` time steps: x [steps, B, I_0] -> y [steps, B, H], the top layer's outputs.
  void run(std::int64_t steps, const Scalar* x, Scalar* y);

  // The current state, [L, B, H] each (c: zeros for a cell without a cell state).
  const Scalar* h() const { return state_h_[current_].data(); }
  const Scalar* c() const { return state_c_[current_].data(); }

 private:
  struct Packed {
    std::int64_t input_size;
    RecurrentWeights<Scalar> w_ih;  // W_ih^T gate-interleaved (depth I_k), projected in the fused step
    RecurrentWeights<Scalar> w_hh;  // W_hh^T gate-interleaved, with the recurrent bias kept in the step
    Buffer<Scalar> bias;            // [GH] the folded biases, or [B, GH] rows for an input size of 0
  };
  // One step for every layer, reading state `from` and writing the other. With a scheduler, as member
  // `member` of a team sharing each layer's blocks (phase: the scheduler's step index of layer 0).
  void step_layers(const Scalar* x_t, Scalar* y_t, int from, StepScheduler* team, int member, std::int64_t phase);

  Cell cell_;
  bool cell_state_;
  std::int64_t hidden_, batch_, gates_;
  std::vector<Packed> layers_;

  // The state, double-buffered: a step reads state_*[current_] and writes state_*[1 - current_], so
  // that no thread's reads of h_{t-1} race another's writes of h_t, and nothing is copied back.
  Buffer<Scalar> state_h_[2], state_c_[2];  // [L, B, H] each
  int current_ = 0;
  // The scheduler of a team sharing steps, kept between calls (making one costs about 0.15 us, a
  // twentieth of a small step); its phases run on from call to call.
  struct Team {
    std::unique_ptr<StepScheduler> scheduler;
    std::int64_t blocks_per_item = 2;  // unit blocks a member takes at a time (blocks_per_team_item)
    std::int64_t next_phase = 0;
    std::int64_t fork_generation = 0;  // fork_generation() when made
  };
  Team team_;
  Buffer<Scalar> gx_;  // [B, GH] the input projection of one layer's step
};

}  // namespace rnnfast
