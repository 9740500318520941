#include "rnnfast/stepper/stepper.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/layer/tuning.h"

namespace rnnfast {

template <typename Scalar>
Stepper<Scalar>::Stepper(Cell cell, std::int64_t hidden, std::int64_t batch,
                         const std::vector<StepperLayer<Scalar>>& layers)
    : cell_(cell), hidden_(hidden), batch_(batch), gates_(gate_count(cell)) {
  if (layers.empty() || hidden <= 0 || batch <= 0)
    throw std::invalid_argument("rnnfast: Stepper needs at least one layer and positive hidden size and batch");
  const std::int64_t H = hidden, B = batch, GH = gates_ * H, L = static_cast<std::int64_t>(layers.size());
  const int kept_gate = kept_bias_gate(cell);
  layers_.resize(layers.size());
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const StepperLayer<Scalar>& src = layers[k];
    if (src.w_ih == nullptr || src.w_hh == nullptr || src.input_size < 0)
      throw std::invalid_argument("rnnfast: Stepper layer without weights");
    Packed& dst = layers_[k];
    dst.input_size = src.input_size;
    dst.w_ih_t.pack(true, src.input_size, GH, src.w_ih, src.input_size);
    dst.w_hh.pack(cell, H, src.w_hh, kept_gate >= 0 && src.b_hh != nullptr ? src.b_hh + kept_gate * H : nullptr);
    // As in layer_forward: the biases fold into the input projection, except the one kept in the step.
    dst.gx_bias.resize(B * GH);
    fill_bias_rows(cell, H, src.b_ih, src.b_hh, B, dst.gx_bias.data());
  }
  // Unit groups: when H is a whole number of the projection's panels (nr columns) and a panel a whole
  // number of unit blocks, the input-projection columns g*H + [u0, u0 + nr) of group i (units u0 = i*nr
  // on) are one panel per gate, so group i needs no other group's projection: it projects its G
  // panels and then runs its blocks, and a team sharing a step synchronises once per layer instead of
  // twice (the projection before the recurrent step). The same arithmetic either way.
  const std::int64_t nr = layers_.front().w_ih_t.kernel().nr, U = layers_.front().w_hh.block_units();
  if (H % nr == 0 && nr % U == 0) unit_group_blocks_ = nr / U;
  for (int i = 0; i < 2; ++i) {
    state_h_[i].resize(L * B * H);
    state_c_[i].resize(L * B * H);
  }
  gx_.resize(B * GH);
}

template <typename Scalar>
void Stepper<Scalar>::reset(const Scalar* h0, const Scalar* c0) {
  const std::int64_t count = num_layers() * batch_ * hidden_;
  Scalar* h = state_h_[current_].data();
  Scalar* c = state_c_[current_].data();
  if (h0 != nullptr)
    std::memcpy(h, h0, sizeof(Scalar) * count);
  else
    std::fill(h, h + count, Scalar(0));
  if (cell_info(cell_).cell_state && c0 != nullptr)
    std::memcpy(c, c0, sizeof(Scalar) * count);
  else
    std::fill(c, c + count, Scalar(0));
}

template <typename Scalar>
void Stepper<Scalar>::step_layers(const Scalar* x_t, Scalar* y_t, int from, StepScheduler* projection,
                                  StepScheduler* recurrent, int member, std::int64_t phase) {
  const std::int64_t H = hidden_, B = batch_, GH = gates_ * H, L = num_layers();
  const Scalar* input = x_t;
  for (std::int64_t k = 0; k < L; ++k) {
    const Packed& layer = layers_[k];
    const Scalar* h_prev = state_h_[from].data() + k * B * H;
    const Scalar* c_prev = state_c_[from].data() + k * B * H;
    Scalar* h = state_h_[1 - from].data() + k * B * H;
    Scalar* c = state_c_[1 - from].data() + k * B * H;
    // gx = bias + input W_ih^T, by runs of panels: columns [p0*nr, p1*nr).
    const std::int64_t nr = layer.w_ih_t.kernel().nr, panels = layer.w_ih_t.panels();
    auto project = [&](std::int64_t p0, std::int64_t p1) {
      const std::int64_t j0 = std::min(GH, p0 * nr), j1 = std::min(GH, p1 * nr);
      for (std::int64_t b = 0; b < B; ++b)
        std::memcpy(gx_.data() + b * GH + j0, layer.gx_bias.data() + b * GH + j0, sizeof(Scalar) * (j1 - j0));
      gemm_panels(B, false, input, layer.input_size, layer.w_ih_t, p0, p1, /*accumulate=*/true, gx_.data(), GH);
    };
    StepArgs<Scalar> step;
    step.rows = B;
    step.gx = gx_.data();
    step.h_prev = h_prev;
    step.c_prev = c_prev;
    step.h = h;
    step.c = c;
    const std::int64_t blocks = layer.w_hh.blocks(), U = layer.w_hh.block_units();
    // Blocks [b0, b1) of the step; the top layer's units also go to y_t.
    auto recur = [&](std::int64_t b0, std::int64_t b1) {
      layer.w_hh.step(step, b0, b1);
      if (k == L - 1) {
        const std::int64_t u0 = std::min(H, b0 * U), u1 = std::min(H, b1 * U);
        for (std::int64_t b = 0; b < B; ++b) std::memcpy(y_t + b * H + u0, h + b * H + u0, sizeof(Scalar) * (u1 - u0));
      }
    };
    if (projection == nullptr) {
      project(0, panels);
      recur(0, blocks);
    } else if (recurrent == nullptr) {  // unit groups (see unit_group_blocks_): one synchronisation
      const std::int64_t group_panels = H / nr;  // panels per gate
      projection->run_step(member, phase, [&](std::int64_t i) {
        for (std::int64_t g = 0; g < gates_; ++g) project(g * group_panels + i, g * group_panels + i + 1);
        recur(i * unit_group_blocks_, (i + 1) * unit_group_blocks_);
      });
      ++phase;
    } else {  // panels in runs of kPanelsPerTask, blocks in pairs (one-row steps run two or four per pass)
      projection->run_step(member, phase, [&](std::int64_t g) {
        project(g * kPanelsPerTask, std::min(panels, (g + 1) * kPanelsPerTask));
      });
      recurrent->run_step(member, phase, [&](std::int64_t pair) { recur(2 * pair, std::min(blocks, 2 * pair + 2)); });
      ++phase;
    }
    input = h;  // the next layer's input is this layer's new state
  }
}


template <typename Scalar>
void Stepper<Scalar>::run(std::int64_t steps, const Scalar* x, Scalar* y) {
  const std::int64_t H = hidden_, B = batch_, L = num_layers(), I0 = layers_.front().input_size;
  // The pool's threads share each step when its workers are awake (a stream of calls keeps them so)
  // and a step has enough work to pay for the two synchronisations per layer; the results are the
  // same bits either way (gemm_panels and the fused step compute each element the same way).
  std::int64_t step_work = 0;
  for (const Packed& layer : layers_) step_work += B * gates_ * H * (layer.input_size + H);
  const SplitPolicy policy = split_policy();
  bool shared = policy == SplitPolicy::kHidden ||
                (policy == SplitPolicy::kAuto && step_work >= kSharedStepWork);
  if (shared && policy == SplitPolicy::kAuto && !pool_awake()) {
    wake_pool();  // for the next call
    shared = false;
  }
  // steps, as `member` of a team sharing them through the schedulers (nullptr: alone), whose phases
  // this call numbers from first_phase on.
  auto run_steps = [&](StepScheduler* projection, StepScheduler* recurrent, int member, std::int64_t first_phase) {
    for (std::int64_t t = 0; t < steps; ++t)
      step_layers(x + t * B * I0, y + t * B * H, (current_ + t) % 2, projection, recurrent, member,
                  first_phase + t * L);
  };
  if (shared && pool_can_help()) {
    // Every layer has the same G*H columns and units, so the same panels and blocks; the schedulers
    // count phases, one per layer and step. Unit groups when the sizes allow two or more, else the
    // projection by runs of panels and the recurrent step by pairs of blocks.
    const Packed& first = layers_.front();
    const std::int64_t groups = unit_group_blocks_ > 0 ? first.w_hh.blocks() / unit_group_blocks_ : 0;
    const std::int64_t pairs = (first.w_hh.blocks() + 1) / 2;
    const int team = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(num_threads(), groups >= 2 ? groups : pairs)));
    const std::int64_t projection_items =
        groups >= 2 ? groups : (first.w_ih_t.panels() + kPanelsPerTask - 1) / kPanelsPerTask;
    if (team_.projection == nullptr || team_.projection->members() != team ||
        team_.projection->blocks() != projection_items || team_.fork_generation != fork_generation()) {
      // (Re)made for this team, or in a forked child, whose copy a call may have left half-way.
      team_.projection = std::make_unique<StepScheduler>(team, projection_items);
      team_.recurrent = std::make_unique<StepScheduler>(team, pairs);
      team_.next_phase = 0;
      team_.fork_generation = fork_generation();
    }
    const std::int64_t first_phase = team_.next_phase;
    bool ran_as_team = false;
    parallel_team(team, [&](int member, int members) {
      if (member == 0) ran_as_team = members > 1;  // member 0 always runs, once
      if (members > 1)
        run_steps(team_.projection.get(), groups >= 2 ? nullptr : team_.recurrent.get(), member, first_phase);
      else  // the pool declined: this thread does it all
        run_steps(nullptr, nullptr, 0, 0);
    });
    // Every member has returned: the schedulers' next call starts where this one ended.
    if (ran_as_team) team_.next_phase = first_phase + steps * L;
  } else {
    run_steps(nullptr, nullptr, 0, 0);
  }
  current_ = static_cast<int>((current_ + steps) % 2);
  // The LSTM's c of a non-LSTM cell stays zero in both buffers; nothing else to carry over.
}

template class Stepper<float>;
template class Stepper<double>;

}  // namespace rnnfast
