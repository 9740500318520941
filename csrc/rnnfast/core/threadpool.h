// A persistent pool of worker threads for the kernels (no OpenMP: a second OpenMP runtime beside
// PyTorch's or MKL's is undefined behaviour, and libgomp does not survive fork).
//
// parallel_for(n, fn) runs fn(0) .. fn(n-1) on the pool's threads and the caller, and returns when all
// are done. Callers may cut work by the thread count (the GEMM's row blocks, a forward's batch slices),
// but every output element is computed by one task with the same arithmetic whatever the cut, so results
// do not depend on the number of threads.
//
// Calls made from inside a task, or while another thread is using the pool, run inline on the calling
// thread (correct, just not parallel). After fork() the child starts with no workers and makes new
// ones on first use.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace rnnfast {

// Threads the kernels use (workers + the caller); defaults to the CPUs this process may run on.
int num_threads();
// Sets it (1 <= n <= kMaxThreads). Safe while other threads run kernels: they finish with the pool
// they started on.
void set_num_threads(int n);
constexpr int kMaxThreads = 4096;

// Whether a parallel_for / parallel_team started now could get help from the pool (false inside a task,
// or with one thread configured). A hint for choosing how to cut work, never needed for correctness.
bool pool_can_help();

// Whether the pool's workers are awake now (they spin for a while after each job, then sleep); and a
// way to wake them without waiting, for a caller that runs a small job alone rather than wait for
// sleeping workers, so that its next call finds them awake.
bool pool_awake();
void wake_pool();

// How many times this process is a forked child of a process that used the pool: state kept across
// calls that a fork may have caught half-way (a stepper's step schedulers) is made anew when it changes.
std::int64_t fork_generation();

namespace detail {
// Runs fn(0..n-1) on the pool and the caller; false (having run nothing) when the pool cannot help:
// one thread configured, called from inside a task, or the pool busy with another caller.
bool run_on_pool(std::int64_t n, const std::function<void(std::int64_t)>& fn);
}  // namespace detail

// A template so that the common inline case (one task, or no pool to help) costs a plain loop: no
// std::function is made and nothing is allocated; the pool gets fn by reference.
template <typename Fn>
void parallel_for(std::int64_t n, Fn&& fn) {
  if (n > 1 && detail::run_on_pool(n, std::function<void(std::int64_t)>(std::ref(fn)))) return;
  for (std::int64_t i = 0; i < n; ++i) fn(i);
}

// Runs fn(member, team) for member in [0, team), team = `wanted` when the pool takes the job and 1
// otherwise (then fn(0, 1) runs on the caller). On the pool the members may run at the same time or
// one after another (see StepScheduler for sharing dependent steps among them).
template <typename Fn>
void parallel_team(int wanted, Fn&& fn) {
  if (wanted > 1) {
    auto member = [&](std::int64_t i) { fn(static_cast<int>(i), wanted); };
    if (detail::run_on_pool(wanted, std::function<void(std::int64_t)>(std::ref(member)))) return;
  }
  fn(0, 1);
}

}  // namespace rnnfast
