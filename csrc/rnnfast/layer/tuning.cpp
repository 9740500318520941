// The shape policy and its measured constants (tuning.h). Measurements are from a 2-core Zen 4 with
// 1 MiB of L2 per core (AVX-512), C++ timing tools of benchmarks/cpp unless said otherwise; re-measure
// on a new machine kind before changing a constant.
#include "rnnfast/layer/tuning.h"

#include <algorithm>
#include <atomic>

#include "rnnfast/core/threadpool.h"

namespace rnnfast {
namespace {

std::atomic<SplitPolicy> g_split_policy{SplitPolicy::kAuto};
std::atomic<ProjectionPolicy> g_projection_policy{ProjectionPolicy::kAuto};

// The up-front input projection (gx of every step) from which a batch-sliced forward at batch 1
// projects each step inside its time loop instead (so that gx_t is still in L2 when the gates read
// it; up front, gx would make a round trip through memory: written by the GEMM, read by the gates).
constexpr std::int64_t kPerStepProjectionBytes = std::int64_t(4) << 20;

}  // namespace

// kAheadSteps (tuning.h), the steps projected at a time under ProjectionPolicy::kAhead: enough rows for
// a register tile that reads each W_ih value once for all of them (LSTM B=1, I=64, H=128, 2 threads,
// medians: 2 steps 0.219-0.234 ms, 4 0.212-0.220, 8 0.213-0.219).

// kSharedStepWork (tuning.h), from which the pool shares a stepper's step. Batch 1, I = 64, H = 128
// (100 one-step calls): the LSTM (98k multiply-adds a step) gains 10% (4.04 -> 3.6-3.8 us), the GRU
// (74k) nothing (3.08 vs 3.1-3.3): two synchronisations per layer cost about what half of a smaller
// step saves. Since the stepper projects inside the fused step it synchronises once per layer; checked
// again then (benchmarks/cpp/stepper_timing.cpp, 2 threads, split 1 alone vs 2 shared, a loaded
// machine): the GRU at 74k shared has minima of 2.3-2.5 us against 3.0 alone but medians of 2.7-3.3
// against 3.0-3.1, the RNN at 82k (H=256) 3.4-3.6 against 3.1-3.7, the LSTM at 49k 2.2-2.5 against
// 2.2: no clear gain below 90k, so the threshold stayed (re-measure on a quiet machine).

// How many slices of the batch run the time loop in parallel. Every row's steps depend only on that
// row's past, so slices need no synchronisation between steps, and a row's arithmetic is the same in
// any slice: the results do not depend on this choice.
std::int64_t backward_batch_slices(std::int64_t batch) {
  return std::max<std::int64_t>(1, std::min<std::int64_t>(num_threads(), batch));
}

// The rule, from measurements on a 2-core Zen 4 with 1 MiB of L2 per core (README, Speed):
// - tiny problems stay on one thread (waking the pool costs more than they do), and so does a step of
//   fewer than ~32k multiply-adds at batch 1 (an RNN of 128 units gains nothing from sharing steps);
// - a call of fewer than 2^24 multiply-adds (call_work) runs alone when the workers are asleep (a
//   thread, or in a virtual machine a CPU, takes longer to come back up to speed than the call
//   lasts), waking them for the next call;
// - with fewer than four rows per thread, the step is shared by hidden units: each thread streams
//   only its slice of W_hh, from its own L2;
// - up to 16 rows per thread, too, when W_hh (512 KiB and more) would not stay in one core's L2;
// - otherwise the batch is sliced: no barrier at all.
ForwardSplit choose_forward_split(std::int64_t batch, std::int64_t hidden, std::int64_t gates, std::int64_t steps,
                                  std::int64_t blocks, std::size_t scalar_bytes, std::int64_t call_work) {
  ForwardSplit split;
  const int threads = pool_can_help() ? num_threads() : 1;
  if (threads <= 1 || batch == 0) return split;
  const std::int64_t step_work = batch * gates * hidden * hidden;  // multiply-adds per step
  const std::int64_t weight_bytes = gates * hidden * hidden * static_cast<std::int64_t>(scalar_bytes);
  const SplitPolicy policy = g_split_policy.load();
  bool by_hidden = policy == SplitPolicy::kHidden;
  if (policy == SplitPolicy::kAuto) {  // a forced split applies to any size (tests use tiny ones)
    if (step_work * steps < (std::int64_t(1) << 17) || (batch == 1 && step_work < (1 << 15))) return split;
    if (call_work < (std::int64_t(1) << 24) && !pool_awake()) {
      wake_pool();  // for the next call; this one is over before sleeping workers would be up to speed
      return split;
    }
    by_hidden = batch < 4 * threads || (weight_bytes >= (std::int64_t(512) << 10) && batch < 16 * threads);
  }
  if (by_hidden && blocks >= 2)
    split.hidden_team = static_cast<int>(std::min<std::int64_t>(threads, blocks));
  else
    split.batch_slices = std::min<std::int64_t>(threads, batch);
  return split;
}

// Where the forward computes its input projection (ProjectionPolicy; the same bits every way). By
// shape, from measurements on 2 Zen 4 cores (C++ timing, 2 threads, medians): with two rows or more,
// inside the fused step (LSTM T=100, I=128, H=256: B=4 2.8 -> 2.2 ms, B=8 4.2 -> 3.8 ms; T=50, B=64,
// I=256, H=512: 52.8 -> 49.8 ms; the GRU and the RNN gain less or nothing, the training shape T=50,
// B=32 neither gains nor loses): the projection then runs on the recurrent tile's register blocking,
// needs no packing of x, and gx stays in L1. At batch 1 the step would stream W_ih from L2 at every
// step (LSTM B=1, I=64, H=128: 0.26 -> 0.28 ms); so a team with fewer than four rows, whose tiles of
// one step's rows are short, projects four steps' rows at a time in its waits (kAhead; medians of
// alternating runs in a quiet minute: that LSTM 0.211-0.229 -> 0.195-0.198 ms, the GRU 0.168-0.171 ->
// 0.156-0.163; in a noisier one LSTM B=2 0.303-0.366 -> 0.285-0.309, GRU B=2 0.285-0.412 ->
// 0.264-0.371; at B=4 and B=8, H=128 and 256, it gains 0-2%, at B=16 nothing); a
// single thread at batch 1 projects up front, or per step inside the time loop when gx would be large.
ProjectionPolicy choose_projection(std::int64_t batch, std::int64_t input, std::int64_t gh, std::int64_t steps,
                                   int hidden_team, std::int64_t scalar_bytes) {
  ProjectionPolicy policy = g_projection_policy.load();
  if (policy == ProjectionPolicy::kAuto) {
    if (hidden_team > 1 && batch < 4)
      policy = ProjectionPolicy::kAhead;
    else if (batch >= 2)
      policy = ProjectionPolicy::kInStep;
    else if (steps * batch * gh * scalar_bytes >= kPerStepProjectionBytes)
      policy = ProjectionPolicy::kPerStep;
    else
      policy = ProjectionPolicy::kUpFront;
  }
  if (policy == ProjectionPolicy::kAhead && hidden_team <= 1) policy = ProjectionPolicy::kInStep;
  if ((policy == ProjectionPolicy::kInStep || policy == ProjectionPolicy::kAhead) && input == 0)
    policy = ProjectionPolicy::kUpFront;
  return policy;
}


// The hidden split shares a step by runs of unit blocks: pairs, the least a one-row step runs per
// pass (step/fused_step.h), or at batch 1 runs of four when every member still gets one (a one-row
// pass over four blocks has twice the independent multiply-add chains and loads in flight of a pair:
// LSTM, B=1, T=100, I=64, H=128 on 2 threads, median 0.267 -> 0.258 ms, GRU 0.216 -> 0.212).
std::int64_t blocks_per_team_item(std::int64_t batch, std::int64_t blocks, int hidden_team) {
  return batch == 1 && blocks >= 4 * hidden_team ? 4 : 2;
}

// The variant forward slices the batch from 4 rows per thread: its products then run inline on tiles of 4 rows
// or more and no step waits for another thread (benchmarks/cpp/variant_forward_timing.cpp, 2 threads, the
// variant's rate as a fraction of its base cell's fused one, the shared loop -> slices, a quiet machine):
// T=100, B=8, I=128, H=256 LSTM clip 0.84 -> 1.01, proj 0.81 -> 0.95, GRU reset before 0.75 -> 1.00;
// T=50, B=64, I=256, H=512 LSTM clip 0.95 -> 1.01, GRU reset before 0.94 -> 1.00; T=25, B=64, I=512, H=1024
// GRU reset before 0.76 -> 0.98. Below, a row per thread would leave tiles too short to pay.
// From 4 rows per thread: slices. Below, a team, but not for a call too small to wake the pool for, nor a
// batch-1 step under 2^15 multiply-adds (the fused forward's rules, choose_forward_split), nor a cell whose
// step has two phases: at B=1, I=64, H=128 (variant_forward_timing.cpp, 2 threads, one loop -> team) the
// clipped LSTM went 0.327 -> 0.264 ms, but the GRU with the reset gate before the product 0.262 -> 0.267 and
// the LSTM with a projection 0.254 -> 0.292 ms: a second synchronisation per step costs what sharing saves.
VariantSplit variant_forward_split(std::int64_t batch, std::int64_t step_work, std::int64_t call_work, int phases) {
  constexpr std::int64_t kVariantSliceRows = 4;
  VariantSplit split;
  const int threads = pool_can_help() ? num_threads() : 1;
  if (threads <= 1 || batch == 0) return split;
  switch (g_split_policy.load()) {
    case SplitPolicy::kBatch:
      split.slices = std::min<std::int64_t>(threads, batch);
      return split;
    case SplitPolicy::kHidden:
      split.team = threads;
      return split;
    default:
      break;
  }
  if (batch >= kVariantSliceRows * threads) {
    split.slices = threads;
    return split;
  }
  if (phases > 1 || call_work < (std::int64_t(1) << 17) || (batch == 1 && step_work < (1 << 15))) return split;
  if (call_work < (std::int64_t(1) << 24) && !pool_awake()) {
    wake_pool();  // for the next call; this one is over before sleeping workers would be up to speed
    return split;
  }
  split.team = threads;
  return split;
}

void set_split_policy(SplitPolicy policy) { g_split_policy.store(policy); }
SplitPolicy split_policy() { return g_split_policy.load(); }
void set_projection_policy(ProjectionPolicy policy) { g_projection_policy.store(policy); }
ProjectionPolicy projection_policy() { return g_projection_policy.load(); }

}  // namespace rnnfast
