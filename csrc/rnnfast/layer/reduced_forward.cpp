// One layer direction's forward with reduced-precision weights (reduced_layer.h): the input projection
// (the activations quantized row by row, then the product by W_ih with the biases), and the time loop,
// whose steps quantize h_{t-1} and run the fused step (the product by W_hh and the float32 gate
// update) by unit blocks. The projection runs up front, one product over all S*B rows cut by rows
// among the threads, unless its result would not stay in cache: then each slice of the batch projects
// its rows of x_t just before each step (the same bits: each row's products do not depend on the
// others), so that gx never makes a round trip through memory (written by one product, read back
// by the gates: 15% of a batch LSTM, T=50 B=64 I=256 H=512, on 2 threads). The loop is cut as the float32
// forward's is (tuning.h): slices of the batch, each running every step, or a team sharing each step
// by unit blocks, each member quantizing the whole h_{t-1} itself (B*H values, a small part of a
// step's work) so that a step needs no second synchronisation. Every element is computed the same way
// whatever the cut: the results do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/core/buffer.h"
#include "rnnfast/core/step_scheduler.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/layer/reduced_layer.h"
#include "rnnfast/layer/sequence_rows.h"
#include "rnnfast/layer/tuning.h"
#include "rnnfast/step/fused_step.h"

namespace rnnfast {
namespace {

// gx of every step (float32) above which a batch-sliced forward projects step by step (see the top):
// half of a core's L2 on the machine measured (1 MiB), the other half for the step's own working set.
constexpr std::int64_t kUpFrontGxBytes = std::int64_t(512) << 10;

struct Sizes {
  Cell cell;
  std::int64_t seq_len, batch, input_size, hidden;
  const std::int64_t* lengths;
};

Sizes checked_sizes(const ReducedLayerForward& a) {
  if (a.w_ih == nullptr || a.w_hh == nullptr) throw std::invalid_argument("rnnfast: reduced forward: missing weights");
  const ReducedWeights &wi = *a.w_ih, &wh = *a.w_hh;
  if (wi.cell() != wh.cell() || wi.type() != wh.type() || wi.hidden() != wh.hidden() || wh.depth() != wh.hidden())
    throw std::invalid_argument("rnnfast: reduced forward: W_ih and W_hh do not belong to one layer");
  Sizes s{wi.cell(), a.seq_len, a.batch, wi.depth(), wi.hidden(), a.lengths};
  check_sizes(s);
  check_lengths(s);
  const bool cell_state = cell_info(s.cell).cell_state;
  if ((a.x == nullptr && a.seq_len * a.batch * s.input_size > 0) || a.out == nullptr || a.h_n == nullptr ||
      (cell_state && a.c_n == nullptr))
    throw std::invalid_argument("rnnfast: reduced forward: missing array");
  return s;
}

class ReducedForward {
 public:
  explicit ReducedForward(const ReducedLayerForward& a);
  void run();

 private:
  void project_inputs();
  // gx_t of rows [r0, r0 + rows) into gx [rows, G*H], through the scratch of `quantized`, `scales`.
  void project_step(std::int64_t t, std::int64_t r0, std::int64_t rows, std::uint8_t* quantized,
                    ActivationScale* scales, float* gx) const;
  void run_rows(std::int64_t r0, std::int64_t r1, StepScheduler* team, int member);

  const ReducedLayerForward& a_;
  const Sizes sizes_;
  const std::int64_t B_, I_, H_, GH_;
  const bool cell_state_;
  const ReducedKernel& kernel_;
  const std::int64_t operand_bytes_;  // of one quantized activation value
  const ActiveRows active_;
  const std::int64_t steps_;
  Buffer<float> gx_;           // [steps, B, G*H] up front, or empty
  Buffer<float> bias_;         // [G*H] the folded biases (b_ih + b_hh, but the GRU's b_hn), or empty
  bool per_step_ = false;      // whether each slice projects x_t before each step (see the top)
  Buffer<float> zeros_;        // [B, H]
  Buffer<float> cell_states_;  // [2, B, H] c_{t-1}, c_t ping-ponged (LSTM)
  const float* h0_ = nullptr;
  const float* c0_ = nullptr;
  const float* kept_bias_ = nullptr;
  ForwardSplit split_;
  std::int64_t blocks_per_item_ = 1;
};

ReducedForward::ReducedForward(const ReducedLayerForward& a)
    : a_(a),
      sizes_(checked_sizes(a)),
      B_(a.batch),
      I_(sizes_.input_size),
      H_(sizes_.hidden),
      GH_(gate_count(sizes_.cell) * sizes_.hidden),
      cell_state_(cell_info(sizes_.cell).cell_state),
      kernel_(active_reduced_kernel(a.w_ih->type())),
      operand_bytes_(a.w_ih->type() == WeightType::kInt8 ? 1 : 2),
      active_(a.lengths, a.batch, a.seq_len),
      steps_(active_.steps()) {
  const std::int64_t B = B_, H = H_;
  zeros_.resize(B * H);
  h0_ = a.h0 != nullptr ? a.h0 : zeros_.data();
  c0_ = a.c0 != nullptr ? a.c0 : zeros_.data();
  const int kept_gate = kept_bias_gate(sizes_.cell);
  kept_bias_ = kept_gate >= 0 && a.b_hh != nullptr ? a.b_hh + kept_gate * H : nullptr;
  // Rows of length 0 end before the first step: their final state is the initial one.
  const std::int64_t running_at_start = active_.at(0);
  copy_n(a.h_n + running_at_start * H, h0_ + running_at_start * H, (B - running_at_start) * H);
  if (cell_state_) copy_n(a.c_n + running_at_start * H, c0_ + running_at_start * H, (B - running_at_start) * H);
  cell_states_.resize(cell_state_ ? 2 * B * H : 0);
  // The products are cheaper than float32's by about the ratio of the element sizes: the split sees
  // the work and the weight bytes the step really has.
  const std::int64_t element = operand_bytes_, blocks = a.w_hh->blocks();
  split_ = choose_forward_split(B, H, gate_count(sizes_.cell), steps_, blocks, static_cast<std::size_t>(element),
                                steps_ * B * GH_ * (I_ + H) * element / 4);
  blocks_per_item_ = blocks_per_team_item(B, blocks, split_.hidden_team);
  if (a.b_ih != nullptr || a.b_hh != nullptr) {
    bias_.resize(GH_);
    fill_bias_rows(sizes_.cell, H, a.b_ih, a.b_hh, 1, bias_.data());
  }
  // Per step where the batch is sliced and gx of every step (float32) would outgrow a core's L2.
  per_step_ = split_.hidden_team == 1 && steps_ * B * GH_ * static_cast<std::int64_t>(sizeof(float)) > kUpFrontGxBytes;
}

// gx = bias + quantize(x) W_ih^T for every row of every step any sequence runs, in chunks of rows
// (each chunk quantized into its task's scratch, then multiplied by every block).
void ReducedForward::project_inputs() {
  const std::int64_t rows = steps_ * B_, GH = GH_, I = I_;
  gx_.resize(rows * GH, /*zeroed=*/false);
  const ReducedWeights& w = *a_.w_ih;
  const std::int64_t threads = std::max(1, num_threads());
  // Two chunks a thread, each of 8 to 96 rows.
  const std::int64_t chunk = std::clamp<std::int64_t>((rows + 2 * threads - 1) / (2 * threads), 8, 96);
  const std::int64_t tasks = (rows + chunk - 1) / chunk;
  const std::int64_t Kp = w.padded_depth();
  auto task = [&](std::int64_t i) {
    const std::int64_t r0 = i * chunk, n = std::min(chunk, rows - r0);
    Buffer<std::uint8_t> quantized(n * Kp * operand_bytes_, /*zeroed=*/false);
    std::vector<ActivationScale> scales(static_cast<std::size_t>(n));
    kernel_.quantize_rows(n, I, Kp, a_.x + r0 * I, I, quantized.data(), scales.data());
    kernel_.project(w, n, quantized.data(), scales.data(), bias_.size() > 0 ? bias_.data() : nullptr,
                    gx_.data() + r0 * GH, GH, 0, w.blocks());
  };
  // A small projection runs on the caller alone (waking the pool would cost more than it saves).
  if (rows * GH * I < (std::int64_t(1) << 20))
    for (std::int64_t i = 0; i < tasks; ++i) task(i);
  else
    parallel_for(tasks, task);
}

void ReducedForward::project_step(std::int64_t t, std::int64_t r0, std::int64_t rows, std::uint8_t* quantized,
                                  ActivationScale* scales, float* gx) const {
  const ReducedWeights& w = *a_.w_ih;
  kernel_.quantize_rows(rows, I_, w.padded_depth(), a_.x + (t * B_ + r0) * I_, I_, quantized, scales);
  kernel_.project(w, rows, quantized, scales, bias_.size() > 0 ? bias_.data() : nullptr, gx, GH_, 0, w.blocks());
}

void ReducedForward::run() {
  if (steps_ > 0 && B_ > 0 && !per_step_) project_inputs();
  if (split_.hidden_team > 1) {
    StepScheduler team(split_.hidden_team, (a_.w_hh->blocks() + blocks_per_item_ - 1) / blocks_per_item_);
    parallel_team(split_.hidden_team,
                  [&](int member, int members) { run_rows(0, B_, members > 1 ? &team : nullptr, member); });
  } else {
    const std::int64_t slices = split_.batch_slices;
    parallel_for(slices, [&](std::int64_t i) { run_rows(B_ * i / slices, B_ * (i + 1) / slices, nullptr, 0); });
  }
}

void ReducedForward::run_rows(std::int64_t r0, std::int64_t r1, StepScheduler* team, int member) {
  const ReducedLayerForward& a = a_;
  const ReducedWeights& w_hh = *a.w_hh;
  const std::int64_t B = B_, H = H_, GH = GH_, width = r1 - r0, blocks = w_hh.blocks(), U = kReducedUnits;
  const std::int64_t Kp = std::max(w_hh.padded_depth(), per_step_ ? a.w_ih->padded_depth() : 0);
  Buffer<std::uint8_t> h_quantized(width * Kp * operand_bytes_, /*zeroed=*/false);  // also x_t's, per step
  std::vector<ActivationScale> h_scales(static_cast<std::size_t>(width));
  Buffer<float> gx_step(per_step_ ? width * GH : 0, /*zeroed=*/false);
  const float* h_prev = h0_ + r0 * H;
  const float* c_prev = c0_ + r0 * H;
  for (std::int64_t t = 0; t < a.seq_len; ++t) {
    const std::int64_t rows = active_.in_slice(t, r0, r1);
    float* h_t = a.out + (t * B + r0) * H;
    if (member == 0) std::fill(h_t + rows * H, h_t + width * H, 0.0f);  // past a sequence's end, as in PyTorch
    if (rows == 0) continue;  // and no later step runs either
    float* c_t = cell_state_ ? cell_states_.data() + ((t % 2) * B + r0) * H : nullptr;
    if (per_step_) project_step(t, r0, rows, h_quantized.data(), h_scales.data(), gx_step.data());
    kernel_.quantize_rows(rows, H, w_hh.padded_depth(), h_prev, H, h_quantized.data(), h_scales.data());
    ReducedStepArgs step;
    step.rows = rows;
    step.h_quantized = h_quantized.data();
    step.h_scales = h_scales.data();
    step.gx = per_step_ ? gx_step.data() : gx_.data() + (t * B + r0) * GH;
    step.h_prev = h_prev;
    step.c_prev = c_prev;
    step.kept_bias = kept_bias_;
    step.h = h_t;
    step.c = c_t;
    const std::int64_t still = active_.in_slice(t + 1, r0, r1);
    // Blocks [b0, b1); rows whose last step this was hand those units of their state to h_n/c_n.
    auto compute = [&](std::int64_t b0, std::int64_t b1) {
      kernel_.step(w_hh, step, b0, b1);
      const std::int64_t u0 = std::min(H, b0 * U), u1 = std::min(H, b1 * U);
      for (std::int64_t r = still; r < rows; ++r) {
        copy_n(a.h_n + (r0 + r) * H + u0, h_t + r * H + u0, u1 - u0);
        if (cell_state_) copy_n(a.c_n + (r0 + r) * H + u0, c_t + r * H + u0, u1 - u0);
      }
    };
    if (team == nullptr) {
      compute(0, blocks);
    } else {
      const std::int64_t per_item = blocks_per_item_;
      team->run_step(member, t, [&](std::int64_t item) {
        compute(per_item * item, std::min(blocks, per_item * (item + 1)));
      });
    }
    h_prev = h_t;
    c_prev = c_t;
  }
}

}  // namespace

void reduced_layer_forward(const ReducedLayerForward& a) { ReducedForward(a).run(); }

}  // namespace rnnfast
