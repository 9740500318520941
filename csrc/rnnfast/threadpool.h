// A persistent pool of worker threads for the kernels (no OpenMP: a second OpenMP runtime beside
// PyTorch's or MKL's is undefined behaviour, and libgomp does not survive fork).
//
// parallel_for(n, fn) runs fn(0) .. fn(n-1) on the pool's threads and the caller, and returns when all
// are done. Work is always divided into the same tasks whatever the thread count, and every task
// writes its own outputs, so results do not depend on the number of threads.
//
// Calls made from inside a task, or while another thread is using the pool, run inline on the calling
// thread (correct, just not parallel). After fork() the child starts with no workers and makes new
// ones on first use.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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

// A barrier for the members of one parallel_team. A step of a small recurrent layer lasts
// microseconds, so the members spin; a member still waiting long after that (its partner was
// descheduled: more runnable threads than CPUs) sleeps in the kernel, so that the partner can have
// its CPU.
//
// wait(vote) also takes a vote: it returns true, to every member alike, when any member voted true at
// this generation. Members use it to agree on leaving the team (see layer_forward).
class SpinBarrier {
 public:
  explicit SpinBarrier(int parties) : parties_(parties) {}
  bool wait(bool vote = false);
  // How many waits at this barrier have lasted far longer than a step of work should (tens of
  // microseconds: some member was descheduled, more runnable threads than CPUs), over all members.
  int long_waits() const { return long_waits_.load(std::memory_order_relaxed); }

 private:
  const int parties_;
  std::atomic<int> arrived_{0};
  std::atomic<int> votes_[2] = {{0}, {0}};  // by generation parity
  std::atomic<int> decision_[2] = {{0}, {0}};
  std::atomic<int> sleepers_{0};
  std::atomic<int> long_waits_{0};
  std::atomic<unsigned> generation_{0};
};

namespace detail {
// Runs fn(0..n-1) on the pool and the caller; false (having run nothing) when the pool cannot help:
// one thread configured, called from inside a task, or the pool busy with another caller.
bool run_on_pool(std::int64_t n, const std::function<void(std::int64_t)>& fn);
// As run_on_pool, but only if the pool has at least n threads, so that the n tasks run at once (each
// thread runs one task to its end before taking another, and none can end while others wait for it).
bool run_team_on_pool(std::int64_t n, const std::function<void(std::int64_t)>& fn);
}  // namespace detail

// A template so that the common inline case (one task, or no pool to help) costs a plain loop: no
// std::function is made and nothing is allocated; the pool gets fn by reference.
template <typename Fn>
void parallel_for(std::int64_t n, Fn&& fn) {
  if (n > 1 && detail::run_on_pool(n, std::function<void(std::int64_t)>(std::ref(fn)))) return;
  for (std::int64_t i = 0; i < n; ++i) fn(i);
}

// Runs fn(member, team, barrier) for member in [0, team) on `team` threads at once, where team is
// `wanted` when the pool can give that many threads and 1 otherwise (then fn(0, 1, barrier) runs on
// the caller). The members may meet at barrier.wait(), a barrier of `team` parties. fn must not throw
// (a member that left early would leave the others waiting at the barrier forever).
template <typename Fn>
void parallel_team(int wanted, Fn&& fn) {
  if (wanted > 1) {
    SpinBarrier barrier(wanted);
    auto member = [&](std::int64_t i) { fn(static_cast<int>(i), wanted, barrier); };
    if (detail::run_team_on_pool(wanted, std::function<void(std::int64_t)>(std::ref(member)))) return;
  }
  SpinBarrier alone(1);
  fn(0, 1, alone);
}

}  // namespace rnnfast
