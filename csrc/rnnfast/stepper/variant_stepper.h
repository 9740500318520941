// Streaming inference for the cell variants (layer/variant_layer.h): a stack of unidirectional variant
// layers advanced one time step (or one chunk) per call, the state kept inside.
//
// The weights are packed once, when the stepper is made (VariantWeights); a call runs the variant
// layer's forward on its steps, layer after layer, from the kept state. Every value of that forward
// depends only on its own row and step, never on how many steps a call has, so feeding a sequence step
// by step gives the bits of one whole-sequence call of the layer. Unlike the fused stepper (stepper.h),
// a call allocates its step buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/core/cell_variant.h"
#include "rnnfast/layer/variant_layer.h"

namespace rnnfast {

template <typename Scalar>
struct VariantStepperLayer {
  std::int64_t input_size = 0;   // I_k: the model's input size for layer 0, R for the layers above
  const Scalar* w_ih = nullptr;  // [G*H, I_k]
  const Scalar* w_hh = nullptr;  // [G*H, R]
  const Scalar* b_ih = nullptr;  // [G*H] or nullptr
  const Scalar* b_hh = nullptr;  // [G*H] or nullptr
  const Scalar* w_hr = nullptr;  // [P, H] with a projection, else nullptr
  const Scalar* w_ch = nullptr;  // [3H] peepholes (i, f, o), or nullptr
};

template <typename Scalar>
class VariantStepper {
 public:
  // Copies and packs the weights (the arrays may be released afterwards); the state starts at zero.
  // R = proj when proj > 0 (the LSTM), else hidden. Throws std::invalid_argument for an empty stack,
  // non-positive sizes or options the cell does not have (as variant_forward).
  VariantStepper(Cell cell, const CellVariant& variant, std::int64_t hidden, std::int64_t proj, std::int64_t batch,
                 const std::vector<VariantStepperLayer<Scalar>>& layers);

  std::int64_t num_layers() const { return static_cast<std::int64_t>(weights_.size()); }
  std::int64_t input_size() const { return weights_.front()->input_size; }
  std::int64_t output_size() const { return proj_ > 0 ? proj_ : hidden_; }

  // Sets the state: h0 [L, B, R], c0 [L, B, H] (the LSTM's), nullptr for zeros.
  void reset(const Scalar* h0, const Scalar* c0);

  // Advances `steps` time steps: x [steps, B, I_0] -> y [steps, B, R], the top layer's outputs.
  void run(std::int64_t steps, const Scalar* x, Scalar* y);

  // The current state: h [L, B, R], c [L, B, H] (zeros for a cell without a cell state).
  const Scalar* h() const { return h_[current_].data(); }
  const Scalar* c() const { return c_[current_].data(); }

 private:
  Cell cell_;
  std::int64_t hidden_, proj_, batch_;
  std::vector<std::unique_ptr<const VariantWeights<Scalar>>> weights_;
  // The state, double-buffered: a call reads [current_] and writes the other, then flips.
  Buffer<Scalar> h_[2], c_[2];
  int current_ = 0;
  Buffer<Scalar> between_[2];  // [steps, B, R] the outputs of the layers below the top, alternating
};

}  // namespace rnnfast
