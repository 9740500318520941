// Streaming inference with reduced-precision weights (reduced_stepper.h).
#include "rnnfast/stepper/reduced_stepper.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/layer/sequence_rows.h"
#include "rnnfast/step/fused_step.h"

namespace rnnfast {

ReducedStepper::ReducedStepper(std::int64_t batch, const std::vector<ReducedStepperLayer>& layers) {
  if (layers.empty()) throw std::invalid_argument("rnnfast: a stepper needs at least one layer");
  if (batch <= 0) throw std::invalid_argument("rnnfast: the stepper's batch must be positive");
  const ReducedStepperLayer& first = layers.front();
  if (!first.w_ih || !first.w_hh) throw std::invalid_argument("rnnfast: reduced stepper: missing weights");
  cell_ = first.w_hh->cell();
  cell_state_ = cell_info(cell_).cell_state;
  hidden_ = first.w_hh->hidden();
  batch_ = batch;
  gates_ = gate_count(cell_);
  if (hidden_ <= 0) throw std::invalid_argument("rnnfast: the stepper's hidden size must be positive");
  const std::int64_t H = hidden_, GH = gates_ * H, B = batch;
  const int kept_gate = kept_bias_gate(cell_);
  std::int64_t widest = 0;
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const ReducedStepperLayer& spec = layers[k];
    if (!spec.w_ih || !spec.w_hh) throw std::invalid_argument("rnnfast: reduced stepper: missing weights");
    const ReducedWeights &wi = *spec.w_ih, &wh = *spec.w_hh;
    if (wi.cell() != cell_ || wh.cell() != cell_ || wi.type() != first.w_ih->type() || wh.type() != wi.type() ||
        wi.hidden() != H || wh.hidden() != H || wh.depth() != H || (k > 0 && wi.depth() != H))
      throw std::invalid_argument("rnnfast: reduced stepper: the layers' weights do not stack");
    Layer layer;
    layer.w_ih = spec.w_ih;
    layer.w_hh = spec.w_hh;
    if (spec.b_ih != nullptr || spec.b_hh != nullptr) {
      layer.bias.resize(GH);
      fill_bias_rows(cell_, H, spec.b_ih, spec.b_hh, 1, layer.bias.data());
    }
    if (kept_gate >= 0 && spec.b_hh != nullptr) {
      layer.kept_bias.resize(H);
      std::memcpy(layer.kept_bias.data(), spec.b_hh + kept_gate * H, sizeof(float) * H);
    }
    widest = std::max({widest, wi.padded_depth(), wh.padded_depth()});
    layers_.push_back(std::move(layer));
  }
  const std::int64_t L = num_layers();
  for (int s = 0; s < 2; ++s) {
    state_h_[s].resize(L * B * H);
    state_c_[s].resize(L * B * H);
  }
  gx_.resize(B * GH, /*zeroed=*/false);
  quantized_.resize(B * widest * 2, /*zeroed=*/false);
  scales_.resize(static_cast<std::size_t>(B));
}

void ReducedStepper::reset(const float* h0, const float* c0) {
  const std::int64_t n = num_layers() * batch_ * hidden_;
  current_ = 0;
  for (int s = 0; s < 2; ++s) {
    std::fill(state_h_[s].data(), state_h_[s].data() + n, 0.0f);
    std::fill(state_c_[s].data(), state_c_[s].data() + n, 0.0f);
  }
  if (h0 != nullptr) copy_n(state_h_[0].data(), h0, n);
  if (c0 != nullptr && cell_state_) copy_n(state_c_[0].data(), c0, n);
}

// Layer k's step from state `from` into the other: x_t [B, I_k] (the input, or layer k-1's new h).
void ReducedStepper::step_layer(std::int64_t k, const float* x_t, int from) {
  const Layer& layer = layers_[k];
  const ReducedWeights &wi = *layer.w_ih, &wh = *layer.w_hh;
  const ReducedKernel& kernel = active_reduced_kernel(wi.type());
  const std::int64_t B = batch_, H = hidden_, GH = gates_ * H, at = k * B * H;
  // The input projection: gx = bias + quantize(x_t) W_ih^T, as the forward's.
  kernel.quantize_rows(B, wi.depth(), wi.padded_depth(), x_t, wi.depth(), quantized_.data(), scales_.data());
  kernel.project(wi, B, quantized_.data(), scales_.data(), layer.bias.size() > 0 ? layer.bias.data() : nullptr,
                 gx_.data(), GH, 0, wi.blocks());
  // The recurrent step.
  const float* h_prev = state_h_[from].data() + at;
  kernel.quantize_rows(B, H, wh.padded_depth(), h_prev, H, quantized_.data(), scales_.data());
  ReducedStepArgs s;
  s.rows = B;
  s.h_quantized = quantized_.data();
  s.h_scales = scales_.data();
  s.gx = gx_.data();
  s.h_prev = h_prev;
  s.c_prev = state_c_[from].data() + at;
  s.kept_bias = layer.kept_bias.size() > 0 ? layer.kept_bias.data() : nullptr;
  s.h = state_h_[1 - from].data() + at;
  s.c = state_c_[1 - from].data() + at;
  kernel.step(wh, s, 0, wh.blocks());
}

void ReducedStepper::run(std::int64_t steps, const float* x, float* y) {
  const std::int64_t B = batch_, H = hidden_, I = input_size(), L = num_layers();
  for (std::int64_t t = 0; t < steps; ++t) {
    const int from = current_;
    for (std::int64_t k = 0; k < L; ++k)
      step_layer(k, k == 0 ? x + t * B * I : state_h_[1 - from].data() + (k - 1) * B * H, from);
    current_ = 1 - from;
    copy_n(y + t * B * H, state_h_[current_].data() + (L - 1) * B * H, B * H);
  }
}

}  // namespace rnnfast
