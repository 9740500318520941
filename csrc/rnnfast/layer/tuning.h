// The shape policy: how a layer's time loop is cut across threads and where its input projection
// runs, chosen by shape from measured constants (tuning.cpp, which gives the measurement behind each;
// docs/design.md, "Tuning constants"). Every choice gives the same bits; the policies can be forced,
// for tests and benchmarks (not thread-safe to change while kernels run).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnfast {

// How layer_forward (and the stepper) share a time loop among threads: kAuto chooses by shape; kBatch
// slices the batch (each thread runs all steps for its rows), kHidden shares each step by hidden
// units (the members synchronise at every step through the StepScheduler).
enum class SplitPolicy { kAuto = 0, kBatch = 1, kHidden = 2 };
void set_split_policy(SplitPolicy policy);
SplitPolicy split_policy();

// Where layer_forward computes the input projection gx = x W_ih^T + biases: kAuto chooses by shape;
// kUpFront runs one GEMM over every step's rows before the time loop; kPerStep a GEMM over each
// step's rows just before the step; kInStep lets the fused step compute each unit block's columns
// just before its recurrent tile, from W_ih packed gate-interleaved like W_hh (not for input size 0,
// which runs up front); kAhead lets each thread of a team sharing the steps (SplitPolicy kHidden)
// project its own unit blocks a few steps at a time, a share after each step's own blocks (where it
// would wait for the others), from the same packing (kInStep where the batch is sliced).
enum class ProjectionPolicy { kAuto = 0, kUpFront = 1, kPerStep = 2, kInStep = 3, kAhead = 4 };
void set_projection_policy(ProjectionPolicy policy);
ProjectionPolicy projection_policy();

// How a forward time loop is cut across threads.
struct ForwardSplit {
  std::int64_t batch_slices = 1;  // slices of the batch, each running the whole loop (no barrier)
  int hidden_team = 1;            // > 1: threads sharing every step by unit blocks (StepScheduler)
};

// The split for a forward of `batch` rows, `steps` steps, `blocks` unit blocks of the fused step,
// `call_work` multiply-adds in all (may wake the pool for the next call; see tuning.cpp).
ForwardSplit choose_forward_split(std::int64_t batch, std::int64_t hidden, std::int64_t gates, std::int64_t steps,
                                  std::int64_t blocks, std::size_t scalar_bytes, std::int64_t call_work);

// Where the forward's input projection runs (never kAuto; kAhead only for a hidden team).
ProjectionPolicy choose_projection(std::int64_t batch, std::int64_t input, std::int64_t gh, std::int64_t steps,
                                   int hidden_team, std::int64_t scalar_bytes);

// Unit blocks a team member takes as one item of a shared step (StepScheduler blocks).
std::int64_t blocks_per_team_item(std::int64_t batch, std::int64_t blocks, int hidden_team);

// How a cell variant's forward (layer/variant_forward.cpp) shares its time loop: `slices` of the batch, each
// running the whole loop with its products inline (no barrier), or a `team` sharing each step by chunks of
// hidden units (a small batch), or neither (one loop whose products gemm's tasks share). SplitPolicy kBatch
// forces slices, kHidden a team.
struct VariantSplit {
  std::int64_t slices = 1;
  int team = 1;
};
// step_work: multiply-adds of one step's recurrent products; call_work: of the whole call; phases: the
// synchronisations a team would need per step (2 where a second product needs the first's cells).
VariantSplit variant_forward_split(std::int64_t batch, std::int64_t step_work, std::int64_t call_work, int phases);

// Steps projected at a time under ProjectionPolicy::kAhead.
constexpr std::int64_t kAheadSteps = 4;

// Multiply-adds per step from which the pool shares a stepper's step.
constexpr std::int64_t kSharedStepWork = 90000;

// How many slices of the batch the backward's time loop runs in parallel.
std::int64_t backward_batch_slices(std::int64_t batch);

}  // namespace rnnfast
