// The step scheduler: how the members of a team share the unit blocks of a sequence of dependent
// steps (the hidden-unit split of a recurrent layer's time loop).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace rnnfast {

// Shares the blocks of a sequence of dependent steps among the members of a team (the hidden-unit
// split of a recurrent layer: every block of step t must be done before any block of step t+1
// starts). Member m owns blocks [own_begin(m), own_end(m)) and does those first, so that in steady
// state each thread keeps the same weights in its own caches. A member that has finished its own
// blocks and then waited a quarter of the time they took takes the blocks nobody has started yet (from
// the other members' ends): a member that the OS deschedules, or whose thread never starts, costs the
// others that delay, never a stall; and after a step in which a member did every block, it takes
// the others' blocks at once in the next step (until they are back and take some). A block is claimed by exactly one member per step, so each output
// is computed once, by the same code, whoever computes it.
//
// Members call run_step with the same sequence of step indices (0, 1, 2, ...); a member may run
// late, even after the others have finished every step (it then finds nothing left to do).
class StepScheduler {
 public:
  StepScheduler(int members, std::int64_t blocks);
  int members() const { return members_; }
  std::int64_t blocks() const { return blocks_; }
  std::int64_t own_begin(int member) const { return blocks_ * member / members_; }
  std::int64_t own_end(int member) const { return blocks_ * (member + 1) / members_; }

  // Runs step `step` as member `member`: work(block) for every block this member claims; returns when
  // every block of the step is done (by anyone). work must not throw.
  template <typename Work>
  void run_step(int member, std::int64_t step, Work&& work) {
    run_step(member, step, work, [] {});
  }
  // The same, calling after_own() once this member's own blocks are done (and published), before it
  // waits for the others': room for work of the next step that needs nothing of this one, which then
  // fills what would be a wait. after_own must not throw.
  template <typename Work, typename AfterOwn>
  void run_step(int member, std::int64_t step, Work&& work, AfterOwn&& after_own) {
    Counter& mine = counters_[member];
    const std::int64_t before = mine.done.load(std::memory_order_relaxed);
    // What the own blocks take is measured every kTimedSteps steps only (it changes slowly, and two
    // clock reads a step cost 1-2% of a batch-1 step on a virtual machine's clock).
    const bool timed = step % kTimedSteps == 0 || mine.own_time == std::chrono::steady_clock::duration::zero();
    const auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    for (std::int64_t b = own_begin(member); b < own_end(member); ++b)
      if (claim(b, step)) done_one(member, work, b);
    if (timed) mine.own_time = std::chrono::steady_clock::now() - start;
    after_own();
    if (members_ == 1) return;
    auto take = [&](std::int64_t b) { done_one(member, work, b); };
    wait_for_step(member, step, mine.own_time, &take,
                  [](void* fn, std::int64_t b) { (*static_cast<decltype(take)*>(fn))(b); });
    // Every block of the step was this member's: the others are absent (descheduled, or their
    // threads not started), so next step it takes their blocks without waiting for them first.
    mine.others_absent = mine.done.load(std::memory_order_relaxed) - before == blocks_;
  }

 private:
  bool claim(std::int64_t block, std::int64_t step) {
    std::int64_t expected = step;  // the block's next step to claim
    return claims_[block].next_step.load(std::memory_order_relaxed) == step &&
           claims_[block].next_step.compare_exchange_strong(expected, step + 1, std::memory_order_acq_rel);
  }
  template <typename Work>
  void done_one(int member, Work& work, std::int64_t block) {
    work(block);
    // One writer per counter: a store (release) publishes the block's outputs to the waiters.
    auto& done = counters_[member].done;
    done.store(done.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  // Waits until all blocks of `step` are done, taking unclaimed ones (take_fn(take_context, block))
  // after a delay that scales with `own_time`, what this member's own blocks took. A function pointer
  // and its context rather than a std::function, which made every step would allocate.
  void wait_for_step(int member, std::int64_t step, std::chrono::steady_clock::duration own_time,
                     void* take_context, void (*take_fn)(void*, std::int64_t));

  struct alignas(64) Claim {
    std::atomic<std::int64_t> next_step{0};
  };
  static constexpr std::int64_t kTimedSteps = 8;
  struct alignas(64) Counter {
    std::atomic<std::int64_t> done{0};  // blocks this member has done, over all steps
    // This member's own (read by no other): it did every block of its last step; what its own blocks
    // took when last measured.
    bool others_absent = false;
    std::chrono::steady_clock::duration own_time{};
  };
  const int members_;
  const std::int64_t blocks_;
  std::unique_ptr<Claim[]> claims_;
  std::unique_ptr<Counter[]> counters_;
};

}  // namespace rnnfast
