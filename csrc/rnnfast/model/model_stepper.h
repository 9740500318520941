// Streaming inference over a Model (python/rnnfast/stepper.py's Stepper): the kernel library's stepper
// of the model's kind, made from the model's weights as the Python Stepper makes it, so that feeding a
// sequence step by step gives the bits of one forward over it. PyTorch's float32 cells run on Stepper,
// a quantized layer on ReducedStepper (over the model's packed weights, shared), a cell variant on
// VariantStepper. A unidirectional (forward) model only.
#pragma once

#include <cstdint>
#include <memory>

#include "rnnfast/model/model.h"

namespace rnnfast::model {

class ModelStepper {
 public:
  // The stepper of `model` for `batch` streams, its state zero; it holds its own packed weights (or
  // shares the model's immutable quantized packs), so the model may go away. ModelError kUnsupported for
  // a bidirectional or reverse model, kInvalidArgument for batch < 1.
  ModelStepper(const Model& model, std::int64_t batch);
  ~ModelStepper();
  ModelStepper(const ModelStepper&) = delete;
  ModelStepper& operator=(const ModelStepper&) = delete;

  std::int64_t batch() const { return batch_; }
  std::int64_t num_layers() const { return layers_; }
  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_; }
  std::int64_t state_size() const { return state_size_; }  // R: the width of h and of the output
  bool cell_state() const { return cell_state_; }          // the LSTM's c

  // Advances `steps` steps: x (steps, B, I) -> y (steps, B, R), or (B, steps, .) both when the model is
  // batch_first (one step is (B, I) -> (B, R) either way).
  void run(std::int64_t steps, const float* x, float* y);
  // Sets the state: h (L, B, R), c (L, B, H) (the LSTM's), nullptr for zeros.
  void set_state(const float* h, const float* c);
  // Copies the state out (either may be nullptr: not wanted; c is ignored without a cell state).
  void get_state(float* h, float* c) const;

 private:
  struct Impl;  // the kernel library's stepper of the model's kind
  std::unique_ptr<Impl> impl_;
  std::int64_t batch_, layers_, input_size_, hidden_, state_size_;
  bool cell_state_, batch_first_;
};

}  // namespace rnnfast::model
