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
    : cell_(cell), cell_state_(cell_info(cell).cell_state), hidden_(hidden), batch_(batch), gates_(gate_count(cell)) {
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
    dst.w_ih.allocate(cell, H, nullptr, src.input_size);
    dst.w_ih.pack_blocks(src.w_ih, 0, dst.w_ih.blocks());
    dst.w_hh.pack(cell, H, src.w_hh, kept_gate >= 0 && src.b_hh != nullptr ? src.b_hh + kept_gate * H : nullptr);
    // As in layer_forward: the biases fold into the input projection, except the one kept in the step.
    // Without inputs (I_k = 0) nothing is projected: the step reads the bias rows as its gx.
    const bool biased = src.b_ih != nullptr || src.b_hh != nullptr;
    const std::int64_t bias_rows = src.input_size == 0 ? B : biased ? 1 : 0;
    dst.bias.resize(bias_rows * GH);  // zeros when there is no bias
    fill_bias_rows(cell, H, src.b_ih, src.b_hh, bias_rows, dst.bias.data());
  }
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
  if (cell_state_ && c0 != nullptr)
    std::memcpy(c, c0, sizeof(Scalar) * count);
  else
    std::fill(c, c + count, Scalar(0));
}

template <typename Scalar>
void Stepper<Scalar>::step_layers(const Scalar* x_t, Scalar* y_t, int from, StepScheduler* team, int member,
                                  std::int64_t phase) {
  const std::int64_t H = hidden_, B = batch_, L = num_layers();
  const Scalar* input = x_t;
  for (std::int64_t k = 0; k < L; ++k) {
    const Packed& layer = layers_[k];
    StepArgs<Scalar> step;
    step.rows = B;
    step.h_prev = state_h_[from].data() + k * B * H;
    step.c_prev = state_c_[from].data() + k * B * H;
    Scalar* h = state_h_[1 - from].data() + k * B * H;
    step.h = h;
    step.c = state_c_[1 - from].data() + k * B * H;
    if (layer.input_size > 0) {  // each block projects its columns of gx = bias + input W_ih^T itself
      step.w_x = &layer.w_ih;
      step.x = input;
      step.bias = layer.bias.size() > 0 ? layer.bias.data() : nullptr;
      step.gx_out = gx_.data();
      step.gx = gx_.data();
    } else {
      step.gx = layer.bias.data();
    }
    const std::int64_t blocks = layer.w_hh.blocks(), U = layer.w_hh.block_units();
    // Blocks [b0, b1) of the step; the top layer's units also go to y_t.
    auto compute = [&](std::int64_t b0, std::int64_t b1) {
      layer.w_hh.step(step, b0, b1);
      if (k == L - 1) {
        const std::int64_t u0 = std::min(H, b0 * U), u1 = std::min(H, b1 * U);
        for (std::int64_t b = 0; b < B; ++b) std::memcpy(y_t + b * H + u0, h + b * H + u0, sizeof(Scalar) * (u1 - u0));
      }
    };
    if (team == nullptr) {
      compute(0, blocks);
    } else {
      const std::int64_t per_item = team_.blocks_per_item;
      team->run_step(member, phase + k, [&](std::int64_t item) {
        compute(item * per_item, std::min(blocks, (item + 1) * per_item));
      });
    }
    input = h;  // the next layer's input is this layer's new state
  }
}

template <typename Scalar>
void Stepper<Scalar>::run(std::int64_t steps, const Scalar* x, Scalar* y) {
  const std::int64_t H = hidden_, B = batch_, L = num_layers(), I0 = layers_.front().input_size;
  // The pool's threads share each step when its workers are awake (a stream of calls keeps them so)
  // and a step has enough work to pay for a synchronisation per layer (kSharedStepWork); the results
  // are the same bits either way (every block computes its units the same way, whoever runs it).
  std::int64_t step_work = 0;
  for (const Packed& layer : layers_) step_work += B * gates_ * H * (layer.input_size + H);
  const SplitPolicy policy = split_policy();
  bool shared = policy == SplitPolicy::kHidden || (policy == SplitPolicy::kAuto && step_work >= kSharedStepWork);
  if (shared && policy == SplitPolicy::kAuto && !pool_awake()) {
    wake_pool();  // for the next call
    shared = false;
  }
  // steps, as `member` of a team sharing them (nullptr: alone), whose phases this call numbers from
  // first_phase on, one per layer and step.
  auto run_steps = [&](StepScheduler* team, int member, std::int64_t first_phase) {
    for (std::int64_t t = 0; t < steps; ++t)
      step_layers(x + t * B * I0, y + t * B * H, (current_ + t) % 2, team, member, first_phase + t * L);
  };
  if (shared && pool_can_help()) {
    // Every layer has the same G*H columns and units, so the same blocks.
    const int threads = num_threads();
    const std::int64_t blocks = layers_.front().w_hh.blocks();
    const std::int64_t per_item = blocks_per_team_item(B, blocks, threads);
    const std::int64_t items = (blocks + per_item - 1) / per_item;
    const int members = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
    if (team_.scheduler == nullptr || team_.scheduler->members() != members || team_.scheduler->blocks() != items ||
        team_.blocks_per_item != per_item || team_.fork_generation != fork_generation()) {
      // (Re)made for this team, or in a forked child, whose copy a call may have left half-way.
      team_.scheduler = std::make_unique<StepScheduler>(members, items);
      team_.blocks_per_item = per_item;
      team_.next_phase = 0;
      team_.fork_generation = fork_generation();
    }
    const std::int64_t first_phase = team_.next_phase;
    bool ran_as_team = false;
    parallel_team(members, [&](int member, int team_size) {
      if (member == 0) ran_as_team = team_size > 1;  // member 0 always runs, once
      if (team_size > 1)
        run_steps(team_.scheduler.get(), member, first_phase);
      else  // the pool declined: this thread does it all
        run_steps(nullptr, 0, 0);
    });
    // Every member has returned: the scheduler's next call starts where this one ended.
    if (ran_as_team) team_.next_phase = first_phase + steps * L;
  } else {
    run_steps(nullptr, 0, 0);
  }
  current_ = static_cast<int>((current_ + steps) % 2);
  // The c of a cell without a cell state stays zero in both buffers; nothing else to carry over.
}

template class Stepper<float>;
template class Stepper<double>;

}  // namespace rnnfast
