// Streaming inference with reduced-precision weights (int8 or bf16; reduced/reduced_weights.h): a stack
// of unidirectional layers advanced one step (or one chunk) per call, the float32 state kept inside,
// as Stepper (stepper.h) does for float weights. A step of a layer quantizes its input rows and
// projects them, then quantizes h_{t-1} and runs the fused step, with the forward's kernels and
// arithmetic: feeding a sequence step by step gives the bits of one whole-sequence call
// (reduced_layer_forward). Every buffer is allocated when the stepper is made. A step runs on the
// calling thread. The float stepper shares a step among threads from kSharedStepWork (layer/tuning.h)
// multiply-adds; a reduced step does a half (bf16) or a quarter (int8) of that work per multiply-add,
// so the streaming shapes measured (B = 1, H = 128) stay under it. Sharing larger steps is left for later.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/reduced/reduced_weights.h"

namespace rnnfast {

struct ReducedStepperLayer {
  std::shared_ptr<const ReducedWeights> w_ih;  // [G*H, I_k] (I_0 the model's input size, H above)
  std::shared_ptr<const ReducedWeights> w_hh;  // [G*H, H]
  const float* b_ih = nullptr;                 // [G*H] or nullptr (copied)
  const float* b_hh = nullptr;                 // [G*H] or nullptr (copied)
};

class ReducedStepper {
 public:
  // Keeps the packed weights (shared) and copies the biases; the state starts at zero. Throws
  // std::invalid_argument for an empty stack, a non-positive batch, or weights that do not stack (cell,
  // weight type, hidden size, the input size of each layer above the first).
  ReducedStepper(std::int64_t batch, const std::vector<ReducedStepperLayer>& layers);

  std::int64_t num_layers() const { return static_cast<std::int64_t>(layers_.size()); }
  std::int64_t input_size() const { return layers_.front().w_ih->depth(); }
  std::int64_t hidden() const { return hidden_; }
  Cell cell() const { return cell_; }

  // Sets the state: h0, c0 [L, B, H] (c0 for a cell with a cell state only), nullptr for zeros.
  void reset(const float* h0, const float* c0);
  // Advances `steps` time steps: x [steps, B, I_0] -> y [steps, B, H], the top layer's outputs.
  void run(std::int64_t steps, const float* x, float* y);
  // The current state, [L, B, H] each (c: zeros for a cell without a cell state).
  const float* h() const { return state_h_[current_].data(); }
  const float* c() const { return state_c_[current_].data(); }

 private:
  struct Layer {
    std::shared_ptr<const ReducedWeights> w_ih, w_hh;
    Buffer<float> bias;           // [G*H] b_ih + b_hh folded (but the GRU's b_hn), or empty
    Buffer<float> kept_bias;      // [H] the GRU's b_hn, or empty
  };
  void step_layer(std::int64_t k, const float* x_t, int from);

  Cell cell_;
  bool cell_state_;
  std::int64_t hidden_, batch_, gates_;
  std::vector<Layer> layers_;
  Buffer<float> state_h_[2], state_c_[2];  // [L, B, H] each, double-buffered as in Stepper
  int current_ = 0;
  Buffer<float> gx_;                 // [B, G*H]
  Buffer<std::uint8_t> quantized_;   // [B, max padded depth] operand bytes
  std::vector<ActivationScale> scales_;  // [B]
};

}  // namespace rnnfast
