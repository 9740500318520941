// Streaming inference over a Model (model_stepper.h): which kernel stepper, and its arguments, as
// python/rnnfast/stepper.py's Stepper chooses and passes them.
#include "rnnfast/model/model_stepper.h"

#include <cstring>
#include <variant>
#include <vector>

#include "rnnfast/model/error.h"
#include "rnnfast/stepper/reduced_stepper.h"
#include "rnnfast/stepper/stepper.h"
#include "rnnfast/stepper/variant_stepper.h"

namespace rnnfast::model {

struct ModelStepper::Impl {
  std::variant<std::unique_ptr<Stepper<float>>, std::unique_ptr<ReducedStepper>, std::unique_ptr<VariantStepper<float>>>
      stepper;
  std::vector<float> x_steps, y_steps;  // a batch_first chunk, time-major
};

namespace {

const float* data_or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace

ModelStepper::ModelStepper(const Model& model, std::int64_t batch) : impl_(std::make_unique<Impl>()) {
  const LayerConfig& c = model.config();
  if (c.direction == Direction::kBidirectional)
    fail(ErrorKind::kUnsupported, "a bidirectional model cannot run step by step: its reverse direction needs the "
                                  "whole sequence");
  if (c.direction == Direction::kReverse)
    fail(ErrorKind::kUnsupported, "a model with direction 'reverse' cannot run step by step: it reads each sequence "
                                  "from its end");
  if (batch < 1) fail(ErrorKind::kInvalidArgument, "batch must be a positive integer, got " + std::to_string(batch));
  // Buffers of L * B * G * H elements: refuse what cannot be counted (the stepper's own check in Python).
  if (static_cast<long double>(batch) * c.hidden_size * c.gates() * (c.num_layers + 2) > (std::int64_t(1) << 58))
    fail(ErrorKind::kInvalidArgument, "batch " + std::to_string(batch) + " is too large for this model's stepper");
  batch_ = batch;
  layers_ = c.num_layers;
  input_size_ = c.input_size;
  hidden_ = c.hidden_size;
  state_size_ = c.state_size();
  cell_state_ = c.family == Family::kLstm;
  batch_first_ = c.batch_first;
  if (c.quantized()) {
    std::vector<ReducedStepperLayer> layers;
    for (std::int64_t k = 0; k < c.num_layers; ++k) {
      const DirectionWeights& w = model.weights(k, 0);
      layers.push_back(ReducedStepperLayer{w.q_ih, w.q_hh, data_or_null(w.b_ih), data_or_null(w.b_hh)});
    }
    impl_->stepper = std::make_unique<ReducedStepper>(batch, layers);
  } else if (c.is_variant()) {
    std::vector<VariantStepperLayer<float>> layers;
    for (std::int64_t k = 0; k < c.num_layers; ++k) {
      const DirectionWeights& w = model.weights(k, 0);
      layers.push_back(VariantStepperLayer<float>{c.layer_input_size(k), w.w_ih.data(), w.w_hh.data(),
                                                  data_or_null(w.b_ih), data_or_null(w.b_hh), data_or_null(w.w_hr),
                                                  data_or_null(w.w_ch)});
    }
    const Cell cell = c.family == Family::kLstm ? Cell::kLstm : c.family == Family::kGru ? Cell::kGru : Cell::kRnnTanh;
    impl_->stepper = std::make_unique<VariantStepper<float>>(cell, c.variant(0), c.hidden_size, c.proj_size, batch, layers);
  } else {
    std::vector<StepperLayer<float>> layers;
    for (std::int64_t k = 0; k < c.num_layers; ++k) {
      const DirectionWeights& w = model.weights(k, 0);
      layers.push_back(StepperLayer<float>{c.layer_input_size(k), w.w_ih.data(), w.w_hh.data(), data_or_null(w.b_ih),
                                           data_or_null(w.b_hh)});
    }
    impl_->stepper = std::make_unique<Stepper<float>>(c.kernel_cell(), c.hidden_size, batch, layers);
  }
}

ModelStepper::~ModelStepper() = default;

void ModelStepper::run(std::int64_t steps, const float* x, float* y) {
  if (steps < 0) fail(ErrorKind::kInvalidArgument, "steps must be >= 0, got " + std::to_string(steps));
  if (steps == 0) return;
  const std::int64_t B = batch_, I = input_size_, R = state_size_;
  const float* xs = x;
  float* ys = y;
  const bool transpose = batch_first_ && steps > 1 && B > 1;
  if (transpose) {  // (B, steps, I) -> (steps, B, I)
    impl_->x_steps.resize(static_cast<std::size_t>(steps * B * I));
    impl_->y_steps.resize(static_cast<std::size_t>(steps * B * R));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < steps; ++t)
        std::memcpy(&impl_->x_steps[(t * B + b) * I], x + (b * steps + t) * I, sizeof(float) * I);
    xs = impl_->x_steps.data();
    ys = impl_->y_steps.data();
  }
  std::visit([&](auto& s) { s->run(steps, xs, ys); }, impl_->stepper);
  if (transpose)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < steps; ++t)
        std::memcpy(y + (b * steps + t) * R, &impl_->y_steps[(t * B + b) * R], sizeof(float) * R);
}

void ModelStepper::set_state(const float* h, const float* c) {
  std::visit([&](auto& s) { s->reset(h, cell_state_ ? c : nullptr); }, impl_->stepper);
}

void ModelStepper::get_state(float* h, float* c) const {
  const std::int64_t n = layers_ * batch_;
  std::visit(
      [&](const auto& s) {
        if (h != nullptr) std::memcpy(h, s->h(), sizeof(float) * n * state_size_);
        if (c != nullptr && cell_state_) std::memcpy(c, s->c(), sizeof(float) * n * hidden_);
      },
      impl_->stepper);
}

}  // namespace rnnfast::model
