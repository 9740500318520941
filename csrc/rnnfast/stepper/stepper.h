// Streaming inference: a stack of unidirectional recurrent layers advanced one time step (or one chunk)
// per call, with the state kept inside.
//
// The weights are packed once, when the stepper is made; every buffer a step needs is allocated then
// too, so a step in steady state allocates nothing. A step runs exactly the arithmetic of
// layer_forward (the same input-projection GEMM tiles, the same fused recurrent step), so feeding a
// sequence step by step gives bit-identical results to one whole-sequence call.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/core/step_scheduler.h"
#include "rnnfast/gemm/gemm.h"
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

  // Sets the state: h0, c0 [L, B, H] (c0 LSTM only), nullptr for zeros.
  void reset(const Scalar* h0, const Scalar* c0);

  // Advances `steps` time steps: x [steps, B, I_0] -> y [steps, B, H], the top layer's outputs.
  void run(std::int64_t steps, const Scalar* x, Scalar* y);

  // The current state, [L, B, H] each (c: LSTM only, zeros otherwise).
  const Scalar* h() const { return state_h_[current_].data(); }
  const Scalar* c() const { return state_c_[current_].data(); }

 private:
  struct Packed {
    std::int64_t input_size;
    PackedMatrix<Scalar> w_ih_t;  // op(B) = W_ih^T [I_k, GH]
    RecurrentWeights<Scalar> w_hh;  // W_hh^T gate-interleaved (with the GRU's b_hn)
    Buffer<Scalar> gx_bias;         // [B, GH]: the bias rows the input projection starts from
  };
  Cell cell_;
  std::int64_t hidden_, batch_, gates_;
  std::vector<Packed> layers_;
  // One step for every layer (see run); with a team, member `member` of `members` shares it through
  // the schedulers: `projection` and `recurrent` (both nullptr: this call does all of it), or unit
  // groups through `projection` alone (recurrent nullptr; see unit_group_blocks_).
  void step_layers(const Scalar* x_t, Scalar* y_t, int from, StepScheduler* projection, StepScheduler* recurrent,
                   int member, std::int64_t phase);

  static constexpr std::int64_t kPanelsPerTask = 4;
  // Unit blocks per unit group (the constructor explains them); 0 when the sizes do not allow groups.
  std::int64_t unit_group_blocks_ = 0;

  // The state, double-buffered: a step reads state_*[current_] and writes state_*[1 - current_], so
  // that no thread's reads of h_{t-1} race another's writes of h_t, and nothing is copied back.
  Buffer<Scalar> state_h_[2], state_c_[2];  // [L, B, H] each
  int current_ = 0;
  // The schedulers of a team sharing steps, kept between calls (making the two costs about 0.3 us, a
  // tenth of a small step); their phases run on from call to call.
  struct TeamSchedulers {
    std::unique_ptr<StepScheduler> projection, recurrent;
    std::int64_t next_phase = 0;
    std::int64_t fork_generation = 0;  // fork_generation() when made
  };
  TeamSchedulers team_;
  Buffer<Scalar> gx_;                       // [B, GH] the input projection of one layer's step
};

}  // namespace rnnfast
