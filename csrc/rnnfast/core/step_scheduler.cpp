#include "rnnfast/core/step_scheduler.h"

#include <algorithm>
#include <thread>

#include "rnnfast/core/spin.h"

namespace rnnfast {
namespace {

// A waiting member takes others' blocks no sooner than this (see wait_for_step), and gives up its CPU
// between checks once it has waited this long (a claimed block's thread is then descheduled).
constexpr int kStealAfterMinMicroseconds = 1;
constexpr int kYieldAfterMicroseconds = 200;

}  // namespace

StepScheduler::StepScheduler(int members, std::int64_t blocks)
    : members_(std::max(1, members)),
      blocks_(blocks),
      claims_(new Claim[static_cast<std::size_t>(std::max<std::int64_t>(blocks, 1))]),
      counters_(new Counter[static_cast<std::size_t>(members_)]) {}

void StepScheduler::wait_for_step(int member, std::int64_t step, std::chrono::steady_clock::duration own_time,
                                  void* take_context, void (*take_fn)(void*, std::int64_t)) {
  const std::int64_t target = (step + 1) * blocks_;
  auto all_done = [&] {
    std::int64_t done = 0;
    for (int m = 0; m < members_; ++m) done += counters_[m].done.load(std::memory_order_acquire);
    return done >= target;
  };
  // Take others' blocks only once they are clearly late: after a quarter of the time this member's own
  // blocks took (equal shares finish within a few percent of each other, and a block taken from a
  // member that is merely a little slower moves its weights to this core's caches and back), at least
  // kStealAfterMinMicroseconds; at once if the others did nothing in the last step.
  const bool steal_now = counters_[member].others_absent;
  const auto steal_after = std::max<std::chrono::steady_clock::duration>(
      own_time / 4, std::chrono::microseconds(kStealAfterMinMicroseconds));
  // The wait is timed from the first clock read, 16 spins in (a fraction of a microsecond): most waits
  // end before it and read no clock at all.
  std::chrono::steady_clock::time_point start{};
  bool started = steal_now;
  for (int spins = 0; !all_done(); ++spins) {
    if (spins % 16 != 15 && !steal_now) {  // the clock is read now and then only
      cpu_relax();
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!started) {
      start = now;
      started = true;
    }
    const auto waited = now - start;
    if (steal_now || waited >= steal_after) {
      for (int k = 1; k < members_; ++k) {  // the others' blocks, from their ends
        const int other = (member + k) % members_;
        for (std::int64_t b = own_end(other) - 1; b >= own_begin(other); --b)
          if (claim(b, step)) take_fn(take_context, b);
      }
    }
    // Still waiting long after that: a claimed block's thread is descheduled; give up the CPU.
    if (!steal_now && waited > std::chrono::microseconds(kYieldAfterMicroseconds)) std::this_thread::yield();
    cpu_relax();
  }
}

}  // namespace rnnfast
