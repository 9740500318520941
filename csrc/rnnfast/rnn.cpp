// One recurrent layer, one direction: forward (inference and training) and backward through time.
// See rnn.h for the argument shapes and the workspace layout.
#include "rnnfast/rnn.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "rnnfast/gemm.h"
#include "rnnfast/grad_kernels.h"
#include "rnnfast/microkernel.h"
#include "rnnfast/recurrent.h"
#include "rnnfast/threadpool.h"
#include "rnnfast/weight_cache.h"

namespace rnnfast {

int gate_count(Cell cell) {
  switch (cell) {
    case Cell::kRnnTanh:
    case Cell::kRnnRelu:
      return 1;
    case Cell::kLstm:
      return 4;
    case Cell::kGru:
      return 3;
  }
  throw std::invalid_argument("unknown cell");
}

std::int64_t workspace_width(Cell cell, std::int64_t hidden) {
  switch (cell) {
    case Cell::kRnnTanh:
    case Cell::kRnnRelu:
      return 0;
    case Cell::kLstm:
      return 6 * hidden;
    case Cell::kGru:
      return 4 * hidden;
  }
  throw std::invalid_argument("unknown cell");
}

namespace {

template <typename Args>
void check_sizes(const Args& a) {
  if (a.seq_len < 0 || a.batch < 0 || a.input_size < 0 || a.hidden < 0)
    throw std::invalid_argument("rnnfast: negative size");
  gate_count(a.cell);  // throws on an unknown cell
}

// memcpy with a count that may be zero (memcpy's pointers must be valid even then).
template <typename Scalar>
void copy_n(Scalar* dst, const Scalar* src, std::int64_t count) {
  if (count > 0) std::memcpy(dst, src, sizeof(Scalar) * count);
}

template <typename Scalar>
void copy_or_zero(Scalar* dst, const Scalar* src, std::int64_t count) {
  if (src != nullptr)
    copy_n(dst, src, count);
  else
    std::fill(dst, dst + count, Scalar(0));
}

// Rows of the batch still running at step t, given lengths sorted non-increasing: a prefix of the
// batch whose size only shrinks as t grows. Without lengths every row runs all S steps.
class ActiveRows {
 public:
  ActiveRows(const std::int64_t* lengths, std::int64_t batch, std::int64_t seq_len)
      : lengths_(lengths), batch_(batch), seq_len_(seq_len) {}
  std::int64_t at(std::int64_t t) const {
    if (lengths_ == nullptr) return t < seq_len_ ? batch_ : 0;
    // Binary search for the first row whose length is <= t.
    std::int64_t lo = 0, hi = batch_;
    while (lo < hi) {
      const std::int64_t mid = (lo + hi) / 2;
      if (lengths_[mid] > t)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }
  // Rows of the slice [r0, r1) running at step t, counted from r0.
  std::int64_t in_slice(std::int64_t t, std::int64_t r0, std::int64_t r1) const {
    return std::min(std::max(at(t), r0), r1) - r0;
  }
  // Steps that any row runs: the longest length.
  std::int64_t steps() const { return lengths_ == nullptr ? seq_len_ : (batch_ > 0 ? lengths_[0] : 0); }

 private:
  const std::int64_t* lengths_;
  std::int64_t batch_, seq_len_;
};

template <typename Args>
void check_lengths(const Args& a) {
  if (a.lengths == nullptr) return;
  for (std::int64_t b = 0; b < a.batch; ++b) {
    if (a.lengths[b] < 0 || a.lengths[b] > a.seq_len)
      throw std::invalid_argument("rnnfast: a length is outside [0, seq_len]");
    if (b > 0 && a.lengths[b] > a.lengths[b - 1])
      throw std::invalid_argument("rnnfast: lengths must be sorted non-increasing");
  }
}

// How many slices of the batch run the time loop in parallel. Every row's steps depend only on that
// row's past, so slices need no synchronisation between steps, and a row's arithmetic is the same in
// any slice: the results do not depend on this choice.
std::int64_t batch_slices(std::int64_t batch) {
  return std::max<std::int64_t>(1, std::min<std::int64_t>(num_threads(), batch));
}

// How a forward time loop is cut across threads (see choose_forward_split).
struct ForwardSplit {
  std::int64_t batch_slices = 1;  // slices of the batch, each running the whole loop (no barrier)
  int hidden_team = 1;            // > 1: threads sharing every step by unit blocks (StepScheduler)
};

std::atomic<SplitPolicy> g_split_policy{SplitPolicy::kAuto};

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

// The up-front input projection (gx of every step) from which a batch-sliced forward at batch 1
// projects each step inside its time loop instead (so that gx_t is still in L2 when the gates read
// it; up front, gx would make a round trip through memory: written by the GEMM, read by the gates).
constexpr std::int64_t kPerStepProjectionBytes = std::int64_t(4) << 20;

// Steps projected at a time under ProjectionPolicy::kAhead: enough rows for a register tile that
// reads each W_ih value once for all of them (LSTM B=1, I=64, H=128, 2 threads, medians: 2 steps
// 0.219-0.234 ms, 4 0.212-0.220, 8 0.213-0.219).
constexpr std::int64_t kAheadSteps = 4;

std::atomic<ProjectionPolicy> g_projection_policy{ProjectionPolicy::kAuto};

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

}  // namespace

template <typename Scalar>
void layer_forward(const LayerForward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  const std::int64_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const std::int64_t G = gate_count(a.cell), GH = G * H, W = workspace_width(a.cell, H);
  const bool lstm = a.cell == Cell::kLstm, gru = a.cell == Cell::kGru;
  if (a.x == nullptr || a.w_ih == nullptr || a.w_hh == nullptr || a.out == nullptr || a.h_n == nullptr ||
      (lstm && a.c_n == nullptr))
    throw std::invalid_argument("rnnfast: layer_forward: missing array");
  const ActiveRows active(a.lengths, B, S);
  const std::int64_t steps = active.steps();  // steps past every sequence's end are not computed

  const bool biased = a.b_ih != nullptr || a.b_hh != nullptr;
  const std::int64_t isa = static_cast<std::int64_t>(active_isa()), scalar = sizeof(Scalar);

  // W^T [depth, GH] gate-interleaved (recurrent.h), packed once for all steps (or found packed:
  // weight_cache.h), by several threads for a large one. tag: the weight_cache key's.
  auto pack_gate_interleaved = [&](std::int64_t tag, const Scalar* w, std::int64_t depth, const Scalar* b_hn) {
    return cached_pack<RecurrentWeights<Scalar>>(
        PackKey{tag, static_cast<std::int64_t>(a.cell), H, isa, scalar}, w, GH * depth, b_hn, b_hn != nullptr ? H : 0,
        [&](RecurrentWeights<Scalar>& packed) {
          packed.allocate(a.cell, H, b_hn, depth);
          constexpr std::int64_t kBlocksPerTask = 4;
          const std::int64_t blocks = packed.blocks(), tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
          parallel_for(tasks, [&](std::int64_t i) {
            packed.pack_blocks(w, i * kBlocksPerTask, std::min(blocks, (i + 1) * kBlocksPerTask));
          });
        });
  };
  // W_hh^T with the GRU's b_hn.
  const auto w_hh_packed = pack_gate_interleaved(2, a.w_hh, H, gru && a.b_hh != nullptr ? a.b_hh + 2 * H : nullptr);
  const RecurrentWeights<Scalar>& w_hh = *w_hh_packed;
  const std::int64_t U = w_hh.block_units();
  const ForwardSplit split =
      choose_forward_split(B, H, G, steps, w_hh.blocks(), sizeof(Scalar), steps * B * GH * (I + H));

  // The input projection gx = X W_ih^T + bias. The recurrent bias is folded in here too, except the
  // GRU's n block (b_hn), which the reset gate multiplies together with W_hn h: the fused step adds
  // it. Where it runs (choose_projection) does not change the bits: gemm computes each element with
  // the same multiply-adds whatever rows it is given, and the step's own projection reproduces them.
  const ProjectionPolicy projection = choose_projection(B, I, GH, steps, split.hidden_team, scalar);
  std::shared_ptr<const PackedMatrix<Scalar>> w_ih_t;            // op(B) = W_ih^T [I, GH], for gemm
  std::shared_ptr<const RecurrentWeights<Scalar>> w_ih_blocks;  // W_ih^T gate-interleaved, in the step
  if (projection == ProjectionPolicy::kInStep || projection == ProjectionPolicy::kAhead) {
    w_ih_blocks = pack_gate_interleaved(3, a.w_ih, I, nullptr);
  } else {
    w_ih_t = cached_pack<PackedMatrix<Scalar>>(
        PackKey{1, I, GH, isa, scalar}, a.w_ih, GH * I, static_cast<const Scalar*>(nullptr), 0,
        [&](PackedMatrix<Scalar>& packed) { packed.pack(true, I, GH, a.w_ih, I); });
  }
  // The folded biases [GH] every projection starts from.
  Buffer<Scalar> bias(biased ? GH : 0, /*zeroed=*/false);
  fill_bias_rows(a.cell, H, a.b_ih, a.b_hh, bias.size() > 0 ? 1 : 0, bias.data());
  const Scalar* bias_row = biased ? bias.data() : nullptr;
  Buffer<Scalar> gx(projection == ProjectionPolicy::kUpFront ? steps * B * GH : 0, /*zeroed=*/false);  // all written
  if (projection == ProjectionPolicy::kUpFront)
    gemm(steps * B, false, a.x, I, *w_ih_t, /*accumulate=*/false, gx.data(), GH, bias_row);

  Buffer<Scalar> zeros(B * H);  // the initial state when none is given
  const Scalar* h0 = a.h0 != nullptr ? a.h0 : zeros.data();
  const Scalar* c0 = a.c0 != nullptr ? a.c0 : zeros.data();
  // Rows of length 0 end before the first step: their final state is the initial one.
  const std::int64_t running_at_start = active.at(0);
  copy_n(a.h_n + running_at_start * H, h0 + running_at_start * H, (B - running_at_start) * H);
  if (lstm) copy_n(a.c_n + running_at_start * H, c0 + running_at_start * H, (B - running_at_start) * H);

  Buffer<Scalar> cell_state(lstm ? 2 * B * H : 0);  // LSTM c_{t-1}, c_t, ping-ponged
  Scalar* cell_states = lstm ? cell_state.data() : nullptr;

  // The hidden split shares a step by runs of unit blocks: pairs, the least a one-row step runs per
  // pass (recurrent.h), or at batch 1 runs of four when every member still gets one (a one-row pass
  // over four blocks has twice the independent multiply-add chains and loads in flight of a pair:
  // LSTM, B=1, T=100, I=64, H=128 on 2 threads, median 0.267 -> 0.258 ms, GRU 0.216 -> 0.212).
  const std::int64_t blocks_per_item = B == 1 && w_hh.blocks() >= 4 * split.hidden_team ? 4 : 2;

  // The time loop over rows [r0, r1). With a scheduler (the hidden split), each step's unit blocks are
  // shared among the team's members, and member 0 writes the zero rows past the sequences' ends;
  // without one, this call computes every block of its rows. Pointers are offset to row r0.
  auto run = [&](std::int64_t r0, std::int64_t r1, StepScheduler* team, int member) {
    const std::int64_t width = r1 - r0, blocks = w_hh.blocks();
    const Scalar* h_prev = h0 + r0 * H;
    const Scalar* c_prev = c0 + r0 * H;
    const bool per_step_gemm = projection == ProjectionPolicy::kPerStep;
    // A team member projecting inside the step projects its own blocks ahead, in what would be a wait
    // for the others: ahead_steps steps at a time (kAhead: kAheadSteps, one product of ahead_steps *
    // width rows, one read of a block's W_ih for all of them; kInStep: the next step), a share of its
    // blocks after each step's own blocks (StepScheduler::run_step's after_own), so that during the
    // steps of chunk c it fills chunk c + 1's gx; it keeps two chunks', c's and c + 1's. A block it
    // takes from another member it projects in the step, into its own chunk (whose columns of that block
    // its own projection never writes). A team's rows are the whole batch (width == B), so the rows of
    // a run of steps are consecutive in x. kAhead without a team (the pool was busy) runs the same way
    // with every block its own.
    const std::int64_t ahead_steps = projection == ProjectionPolicy::kAhead ? kAheadSteps
                                     : projection == ProjectionPolicy::kInStep && team != nullptr ? 1
                                                                                                  : 0;
    const bool chunked = ahead_steps > 0;
    const std::int64_t own_b0 = team != nullptr ? team->own_begin(member) * blocks_per_item : 0;
    const std::int64_t own_b1 =
        team != nullptr ? std::min(blocks, team->own_end(member) * blocks_per_item) : blocks;
    const std::int64_t blocks_each_step = chunked ? (own_b1 - own_b0 + ahead_steps - 1) / ahead_steps : 0;
    const std::int64_t chunk_stride = ahead_steps * width * GH;  // between the two chunks' gx
    Buffer<Scalar> gx_ahead(2 * chunk_stride, /*zeroed=*/false);
    // The slice's gx_t [width, GH] when the projection runs per step, or in the step without a team.
    Buffer<Scalar> gx_step(projection != ProjectionPolicy::kUpFront && !chunked ? width * GH : 0, /*zeroed=*/false);
    auto project_chunk = [&](std::int64_t chunk, std::int64_t b0, std::int64_t b1) {
      const std::int64_t first = chunk * ahead_steps;
      if (first >= steps || b0 >= b1) return;
      const std::int64_t last = std::min(steps, first + ahead_steps) - 1;
      StepArgs<Scalar> ahead;
      ahead.rows = (last - first) * width + active.in_slice(last, r0, r1);  // no row past every end
      ahead.w_x = w_ih_blocks.get();
      ahead.x = a.x + first * B * I;
      ahead.bias = bias_row;
      ahead.gx_out = gx_ahead.data() + (chunk % 2) * chunk_stride;
      ahead.project_only = true;
      w_hh.step(ahead, b0, b1);
    };
    // After step t's own blocks: share t % ahead_steps of the next chunk's.
    auto project_share = [&](std::int64_t t) {
      const std::int64_t b0 = own_b0 + (t % ahead_steps) * blocks_each_step;
      project_chunk(t / ahead_steps + 1, b0, std::min(own_b1, b0 + blocks_each_step));
    };
    if (chunked) project_chunk(0, own_b0, own_b1);
    for (std::int64_t t = 0; t < S; ++t) {
      const std::int64_t rows = active.in_slice(t, r0, r1);  // the slice's rows [0, rows) run this step
      Scalar* h_t = a.out + (t * B + r0) * H;
      Scalar* ws_t = a.workspace != nullptr ? a.workspace + (t * B + r0) * W : nullptr;
      // Past a sequence's end the output (and the saved workspace) is zero, as in PyTorch.
      if (member == 0) {
        std::fill(h_t + rows * H, h_t + width * H, Scalar(0));
        if (ws_t != nullptr) std::fill(ws_t + rows * W, ws_t + width * W, Scalar(0));
      }
      if (rows == 0) continue;  // and no later step runs either (rows only shrink)
      Scalar* c_t = lstm ? cell_states + ((t % 2) * B + r0) * H : nullptr;
      StepArgs<Scalar> step;
      step.rows = rows;
      Scalar* gx_ahead_t = nullptr;  // chunked: step t's rows of the chunk
      if (per_step_gemm) {  // gx_t for the running rows
        gemm(rows, false, a.x + (t * B + r0) * I, I, *w_ih_t, /*accumulate=*/false, gx_step.data(), GH, bias_row);
        step.gx = gx_step.data();
      } else if (chunked) {
        gx_ahead_t = gx_ahead.data() + ((t / ahead_steps) % 2) * chunk_stride + (t % ahead_steps) * width * GH;
        step.gx = gx_ahead_t;
      } else if (projection == ProjectionPolicy::kInStep) {
        step.w_x = w_ih_blocks.get();
        step.x = a.x + (t * B + r0) * I;
        step.bias = bias_row;
        step.gx_out = gx_step.data();
        step.gx = step.gx_out;
      } else {
        step.gx = gx.data() + (t * B + r0) * GH;
      }
      step.h_prev = h_prev;
      step.c_prev = c_prev;
      step.h = h_t;
      step.c = c_t;
      step.ws = ws_t;
      const std::int64_t still = active.in_slice(t + 1, r0, r1);
      // Blocks [b0, b1) of the step; rows whose last step this was hand those units of their state to
      // h_n/c_n.
      auto compute = [&](const StepArgs<Scalar>& args, std::int64_t b0, std::int64_t b1) {
        w_hh.step(args, b0, b1);
        const std::int64_t u0 = std::min(H, b0 * U), u1 = std::min(H, b1 * U);
        for (std::int64_t r = still; r < rows; ++r) {
          copy_n(a.h_n + (r0 + r) * H + u0, h_t + r * H + u0, u1 - u0);
          if (lstm) copy_n(a.c_n + (r0 + r) * H + u0, c_t + r * H + u0, u1 - u0);
        }
      };
      if (team == nullptr) {
        compute(step, 0, blocks);
        if (chunked) project_share(t);
      } else {  // scheduled by runs of blocks_per_item
        StepArgs<Scalar> taken = step;  // another member's blocks, projected in the step when chunked
        if (chunked) {
          taken.w_x = w_ih_blocks.get();
          taken.x = a.x + (t * B + r0) * I;
          taken.bias = bias_row;
          taken.gx_out = gx_ahead_t;
        }
        const std::int64_t own_begin = team->own_begin(member), own_end = team->own_end(member);
        team->run_step(
            member, t,
            [&](std::int64_t item) {
              const std::int64_t b0 = blocks_per_item * item, b1 = std::min(blocks, b0 + blocks_per_item);
              const bool own = item >= own_begin && item < own_end;
              compute(chunked && !own ? taken : step, b0, b1);
            },
            [&] {
              if (chunked) project_share(t);
            });
      }
      h_prev = h_t;
      c_prev = c_t;
    }
  };
  if (split.hidden_team > 1) {
    StepScheduler team(split.hidden_team, (w_hh.blocks() + blocks_per_item - 1) / blocks_per_item);
    parallel_team(split.hidden_team, [&](int member, int members) { run(0, B, members > 1 ? &team : nullptr, member); });
  } else {
    const std::int64_t slices = split.batch_slices;
    parallel_for(slices, [&](std::int64_t i) { run(B * i / slices, B * (i + 1) / slices, nullptr, 0); });
  }
}

template <typename Scalar>
void layer_backward(const LayerBackward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  const std::int64_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const std::int64_t G = gate_count(a.cell), GH = G * H, W = workspace_width(a.cell, H);
  const bool lstm = a.cell == Cell::kLstm, gru = a.cell == Cell::kGru;
  if (a.x == nullptr || a.w_ih == nullptr || a.w_hh == nullptr || a.out == nullptr ||
      (W > 0 && S * B > 0 && a.workspace == nullptr) || a.d_x == nullptr || a.d_h0 == nullptr ||
      (lstm && a.d_c0 == nullptr) || a.d_w_ih == nullptr || a.d_w_hh == nullptr || a.d_b_ih == nullptr ||
      a.d_b_hh == nullptr)
    throw std::invalid_argument("rnnfast: layer_backward: missing array");
  const ActiveRows active(a.lengths, B, S);

  // Pre-activation gate gradients of every step (zero in the rows past a sequence's end, which the
  // time loop fills, so that those rows add nothing to the products below): d_gates feeds the
  // input-side products (d_x, d_w_ih, d_b_ih); the recurrent side (d_w_hh, d_b_hh, dh_{t-1}) uses the
  // same values except for the GRU, whose n block is scaled by r on the recurrent side, so the GRU
  // keeps a second array.
  Buffer<Scalar> d_gates(S * B * GH, /*zeroed=*/false);
  Buffer<Scalar> d_gates_hh_storage(gru ? S * B * GH : 0, /*zeroed=*/false);
  Scalar* d_gates_hh = gru ? d_gates_hh_storage.data() : d_gates.data();

  // The per-step product. Except for the GRU (whose dh_{t-1} takes the recurrent-side dGh_t), d_x_t =
  // dG_t W_ih shares its left operand with dh_{t-1} = dG_t W_hh, so each step computes both at once,
  // dG_t [W_hh | W_ih], while dG_t is hot: no product over all S*B rows for d_x afterwards, and dG is
  // packed once per step instead of once more for d_x.
  const bool fused_dx = !gru;
  const std::int64_t HI = fused_dx ? H + I : H;  // columns of the per-step product
  PackedMatrix<Scalar> w_step;                   // op(B) = W_hh, or [W_hh | W_ih]: [GH, HI]
  if (fused_dx) {
    Buffer<Scalar> w_cat(GH * HI, /*zeroed=*/false);
    for (std::int64_t g = 0; g < GH; ++g) {
      copy_n(w_cat.data() + g * HI, a.w_hh + g * H, H);
      copy_n(w_cat.data() + g * HI + H, a.w_ih + g * I, I);
    }
    w_step.pack(false, GH, HI, w_cat.data(), HI);
  } else {
    w_step.pack(false, GH, H, a.w_hh, H);
  }
  const GradKernels<Scalar>& grads = grad_kernels<Scalar>(w_step.kernel().isa);

  Buffer<Scalar> zeros(B * H);
  const Scalar* h0 = a.h0 != nullptr ? a.h0 : zeros.data();
  const Scalar* c0 = a.c0 != nullptr ? a.c0 : zeros.data();
  const Scalar* d_h_n = a.d_h_n != nullptr ? a.d_h_n : zeros.data();
  const Scalar* d_c_n = a.d_c_n != nullptr ? a.d_c_n : zeros.data();
  // dh, dc: gradients flowing into h_t, c_t of the rows running at step t; dh_prev receives dh_{t-1}.
  Buffer<Scalar> dh_storage(B * H), dh_prev_storage(B * H), dc_storage(B * H);
  Buffer<Scalar> step_storage(fused_dx ? B * HI : 0);  // the fused product [dh_{t-1} | d_x_t] of a step

  // The reverse time loop over the rows [r0, r1): pointers below are offset to the slice's first row.
  auto run_slice = [&](std::int64_t r0, std::int64_t r1) {
    Scalar* dh = dh_storage.data() + r0 * H;
    Scalar* dh_prev = dh_prev_storage.data() + r0 * H;
    Scalar* dc = dc_storage.data() + r0 * H;
    Scalar* step_out = step_storage.data() + r0 * HI;
    const std::int64_t width = r1 - r0;
    // Rows that do not run a step (past their end; every step at or after the longest length) have
    // zero gate gradients, and zero d_x (the fused product writes only running rows).
    auto zero_rows = [&](std::int64_t t, std::int64_t from) {
      std::fill_n(d_gates.data() + (t * B + r0 + from) * GH, (width - from) * GH, Scalar(0));
      if (gru) std::fill_n(d_gates_hh + (t * B + r0 + from) * GH, (width - from) * GH, Scalar(0));
      if (fused_dx) std::fill_n(a.d_x + (t * B + r0 + from) * I, (width - from) * I, Scalar(0));
    };
    for (std::int64_t t = active.steps(); t < S; ++t) zero_rows(t, 0);
    for (std::int64_t t = active.steps() - 1; t >= 0; --t) {
      const std::int64_t rows = active.in_slice(t, r0, r1);
      // Rows whose last step is t start here, with the gradient of their final state.
      const std::int64_t after = active.in_slice(t + 1, r0, r1);
      copy_n(dh + after * H, d_h_n + (r0 + after) * H, (rows - after) * H);
      if (lstm) copy_n(dc + after * H, d_c_n + (r0 + after) * H, (rows - after) * H);
      zero_rows(t, rows);
      if (rows == 0) continue;
      const std::int64_t row0 = t * B + r0;  // the slice's first row at step t in [S*B]-row arrays
      const Scalar* c_prev = t > 0 ? a.workspace + (row0 - B) * W + 4 * H : c0 + r0 * H;
      const std::int64_t c_prev_stride = t > 0 ? W : H;
      const Scalar* h_prev = t > 0 ? a.out + (row0 - B) * H : h0 + r0 * H;
      // The gate gradients, with dh_t = dh + d_out_t (the gradient of the output h_t) formed on the fly.
      const Scalar* d_out_t = a.d_out != nullptr ? a.d_out + row0 * H : nullptr;
      grads.gate_gradients(a.cell, rows, H, dh, d_out_t, dc, a.out + row0 * H, h_prev, a.workspace + row0 * W,
                           c_prev, c_prev_stride, d_gates.data() + row0 * GH, d_gates_hh + row0 * GH, dh_prev);
      if (fused_dx) {
        // [dh_{t-1} | d_x_t] = dG_t [W_hh | W_ih] for the running rows, then split.
        gemm(rows, false, d_gates.data() + row0 * GH, GH, w_step, /*accumulate=*/false, step_out, HI);
        for (std::int64_t b = 0; b < rows; ++b) {
          copy_n(dh_prev + b * H, step_out + b * HI, H);
          copy_n(a.d_x + (row0 + b) * I, step_out + b * HI + H, I);
        }
      } else {
        // dh_{t-1} = dGh_t W_hh + the GRU's direct path, already in dh_prev.
        gemm(rows, false, d_gates_hh + row0 * GH, GH, w_step, /*accumulate=*/true, dh_prev, H);
      }
      std::swap(dh, dh_prev);
    }
    // Rows that ran at least one step carry their gradient back to the initial state; rows of length 0
    // pass d_h_n (d_c_n) straight through.
    const std::int64_t ran = active.in_slice(0, r0, r1);
    copy_n(a.d_h0 + r0 * H, dh, ran * H);
    copy_n(a.d_h0 + (r0 + ran) * H, d_h_n + (r0 + ran) * H, (width - ran) * H);
    if (lstm) {
      copy_n(a.d_c0 + r0 * H, dc, ran * H);
      copy_n(a.d_c0 + (r0 + ran) * H, d_c_n + (r0 + ran) * H, (width - ran) * H);
    }
  };
  const std::int64_t slices = batch_slices(B);
  parallel_for(slices, [&](std::int64_t i) { run_slice(B * i / slices, B * (i + 1) / slices); });

  // Products over all S*B rows, after the loop.
  // d_x[S*B, I] = dG[S*B, GH] W_ih[GH, I] (the GRU's; the other cells' came with each step)
  if (!fused_dx) gemm(S * B, I, GH, false, d_gates.data(), GH, false, a.w_ih, I, false, a.d_x, I);
  // d_w_ih[GH, I] = dG^T X and d_w_hh[GH, H] = dGh^T H_prev, where H_prev stacks h0 (first B rows)
  // over out[0 .. S-2]: the recurrent input of every step.
  if (!gru && GH > I + H) {
    // dGh = dG: one product dG^T [X | H_prev] into [GH, I+H], then split. The left operand dG^T, the
    // costliest to pack, is packed once instead of twice, and the K = S*B rows run as one depth. That
    // pays for gathering [X | H_prev] (S*B*(I+H) values) only when dG is the wider (the LSTM; the
    // vanilla RNN measured slower with it: 1-thread backward 9.1 ms against 6.9 ms at T=50, B=32,
    // I=128, H=256). The
    // rows of [X | H_prev] are gathered kChunk at a time (bounding the copy's memory); as kChunk is a
    // multiple of every kernel's kc, the chunks accumulate in the order one product would.
    constexpr std::int64_t kChunk = 4096, kCopyRows = 64;
    const std::int64_t IH = I + H, SB = S * B;
    Buffer<Scalar> x_h(std::min(SB, kChunk) * IH, /*zeroed=*/false), d_w(GH * IH, /*zeroed=*/false);
    for (std::int64_t k0 = 0; k0 < SB || k0 == 0; k0 += kChunk) {
      const std::int64_t kc = std::min(kChunk, SB - k0);
      parallel_for((kc + kCopyRows - 1) / kCopyRows, [&](std::int64_t task) {
        const std::int64_t end = std::min(kc, (task + 1) * kCopyRows);
        for (std::int64_t r = task * kCopyRows; r < end; ++r) {
          const std::int64_t row = k0 + r;
          copy_n(x_h.data() + r * IH, a.x + row * I, I);
          copy_n(x_h.data() + r * IH + I, row < B ? h0 + row * H : a.out + (row - B) * H, H);
        }
      });
      gemm(GH, IH, kc, true, d_gates.data() + k0 * GH, GH, false, x_h.data(), IH, /*accumulate=*/k0 > 0,
           d_w.data(), IH);
    }
    parallel_for((GH + kCopyRows - 1) / kCopyRows, [&](std::int64_t task) {
      const std::int64_t end = std::min(GH, (task + 1) * kCopyRows);
      for (std::int64_t row = task * kCopyRows; row < end; ++row) {
        copy_n(a.d_w_ih + row * I, d_w.data() + row * IH, I);
        copy_n(a.d_w_hh + row * H, d_w.data() + row * IH + I, H);
      }
    });
  } else {  // separate products; H_prev in two parts, h0 then out
    gemm(GH, I, S * B, true, d_gates.data(), GH, false, a.x, I, false, a.d_w_ih, I);
    gemm(GH, H, B * std::min<std::int64_t>(S, 1), true, d_gates_hh, GH, false, h0, H, false, a.d_w_hh, H);
    if (S > 1) gemm(GH, H, (S - 1) * B, true, d_gates_hh + B * GH, GH, false, a.out, H, true, a.d_w_hh, H);
  }
  // Bias gradients: column sums over the S*B rows, vectorised. Tasks split the columns (never the
  // rows), a fixed cut by shape, so each sum runs in the same order for any thread count.
  const std::int64_t bias_chunk = 128, bias_tasks = (GH + bias_chunk - 1) / bias_chunk;
  parallel_for(bias_tasks, [&](std::int64_t task) {
    const std::int64_t j0 = task * bias_chunk, cols = std::min(bias_chunk, GH - j0);
    grads.column_sums(S * B, cols, d_gates.data() + j0, GH, a.d_b_ih + j0);
    if (gru)
      grads.column_sums(S * B, cols, d_gates_hh + j0, GH, a.d_b_hh + j0);
    else
      copy_n(a.d_b_hh + j0, a.d_b_ih + j0, cols);
  });
}

void set_split_policy(SplitPolicy policy) { g_split_policy.store(policy); }
SplitPolicy split_policy() { return g_split_policy.load(); }
void set_projection_policy(ProjectionPolicy policy) { g_projection_policy.store(policy); }
ProjectionPolicy projection_policy() { return g_projection_policy.load(); }

template void layer_forward<float>(const LayerForward<float>&);
template void layer_forward<double>(const LayerForward<double>&);
template void layer_backward<float>(const LayerBackward<float>&);
template void layer_backward<double>(const LayerBackward<double>&);

}  // namespace rnnfast
