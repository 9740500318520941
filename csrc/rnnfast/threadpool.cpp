#include "rnnfast/threadpool.h"

#include <pthread.h>
#include <sched.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <climits>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnfast {
namespace {

// The CPUs this process may run on, read once (a system call) and kept.
int default_threads() {
  static const int count = [] {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return count;
}

thread_local bool t_inside_task = false;

// The CPU's spin-wait hint (lets the sibling hyperthread run, saves power).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One generation of workers. Replaced, not resized, when the thread count changes; a caller that
// holds a shared_ptr to the old one finishes on it.
class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    try {
      for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { work(); });
    } catch (...) {  // the system would not give us that many threads: release the ones made
      stop_and_join();
      throw;
    }
  }
  ~Pool() { stop_and_join(); }
  int threads() const { return threads_; }

  // Returns false (and runs nothing) if the pool is busy with another caller's job.
  bool run(std::int64_t n, const std::function<void(std::int64_t)>& fn) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      count_ = n;
      next_.store(0);
      pending_.store(static_cast<int>(workers_.size()));
      ++generation_;
      published_.store(generation_, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    // The workers usually finish within microseconds of the caller: spin before sleeping.
    spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    fn_ = nullptr;
    if (error_) {  // a task failed (say, out of memory): the caller gets the exception, not a terminate
      std::exception_ptr error = error_;
      error_ = nullptr;
      std::rethrow_exception(error);
    }
    return true;
  }

 private:
  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      stopping_.store(true);
    }
    wake_.notify_all();
    for (std::thread& w : workers_) w.join();
  }

  void drain() {
    t_inside_task = true;
    try {
      for (std::int64_t i = next_.fetch_add(1); i < count_; i = next_.fetch_add(1)) (*fn_)(i);
    } catch (...) {
      next_.store(count_);  // skip the remaining tasks
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_inside_task = false;
  }
  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      // A kernel often starts its next parallel section right after the last one (the input
      // projection, then the time loop): spin a little before sleeping, to be there when it does.
      spin_until([&] { return published_.load(std::memory_order_acquire) != seen || stopping_.load(); });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  // Spins (with the CPU's pause hint) until done() or for about kSpinMicroseconds.
  template <typename Done>
  static void spin_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicroseconds);
    for (int i = 1; !done(); ++i) {
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) return;
    }
  }
  static constexpr int kSpinMicroseconds = 100;

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex busy_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::int64_t)>* fn_ = nullptr;
  std::int64_t count_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<int> pending_{0};
  std::exception_ptr error_;
  std::uint64_t generation_ = 0;                // guarded by mutex_
  std::atomic<std::uint64_t> published_{0};     // generation_, for workers spinning without the lock
  bool stop_ = false;                           // guarded by mutex_
  std::atomic<bool> stopping_{false};
};

std::mutex g_pool_mutex;
std::shared_ptr<Pool> g_pool;  // created on first use
int g_requested_threads = 0;   // 0: the default

std::shared_ptr<Pool> current_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  const int wanted = g_requested_threads > 0 ? g_requested_threads : default_threads();
  if (!g_pool || g_pool->threads() != wanted) g_pool = std::make_shared<Pool>(wanted);
  return g_pool;
}

// In a forked child the workers do not exist and the mutexes may be held by threads that are gone:
// forget the pool (without destroying it: its threads cannot be joined) and start clean.
void after_fork_in_child() {
  new (&g_pool_mutex) std::mutex();
  new (&g_pool) std::shared_ptr<Pool>();  // leaks the parent's pool object on purpose
}

struct ForkHandler {
  ForkHandler() { pthread_atfork(nullptr, nullptr, &after_fork_in_child); }
} g_fork_handler;

}  // namespace

int num_threads() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  return g_requested_threads > 0 ? g_requested_threads : default_threads();
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_requested_threads = std::max(1, n);
}

bool pool_can_help() { return !t_inside_task && num_threads() > 1; }

namespace {
// Sleeps while *word == expected (or returns at once if it already differs); wakes every sleeper on
// word. Linux futexes; elsewhere a yield loop.
void sleep_while_equal(std::atomic<unsigned>& word, unsigned expected) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<unsigned*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#else
  while (word.load(std::memory_order_acquire) == expected) std::this_thread::yield();
#endif
}
void wake_all(std::atomic<unsigned>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<unsigned*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}
}  // namespace

constexpr int kBarrierSpinMicroseconds = 200;
constexpr int kLongWaitMicroseconds = 30;

bool SpinBarrier::wait(bool vote) {
  if (parties_ <= 1) return vote;
  const unsigned generation = generation_.load(std::memory_order_acquire);
  const int parity = generation & 1;
  if (vote) votes_[parity].fetch_add(1, std::memory_order_relaxed);
  // The last to arrive tallies the votes and opens the next generation; its acquire-release
  // read-modify-write orders every member's writes (and votes) before the release that the waiters
  // acquire. The other parity's slots are free to reset: every member has left that generation.
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == parties_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    decision_[parity].store(votes_[parity].load(std::memory_order_relaxed) > 0, std::memory_order_relaxed);
    votes_[parity ^ 1].store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all(generation_);
    return decision_[parity].load(std::memory_order_relaxed);
  }
  // Spin for up to kBarrierSpinMicroseconds: sleeping costs a wake-up (tens of microseconds, more in a
  // virtual machine whose idle CPU the host has to reschedule), far more than a step of a small layer.
  // A wait past kLongWaitMicroseconds means a member was descheduled; it is counted (long_waits).
  const auto start = std::chrono::steady_clock::now();
  bool spinning = true, counted = false;
  for (int spins = 1; generation_.load(std::memory_order_acquire) == generation; ++spins) {
    if (spinning) {
      cpu_relax();
      if (spins % 64 == 0) {
        const auto waited = std::chrono::steady_clock::now() - start;
        if (!counted && waited > std::chrono::microseconds(kLongWaitMicroseconds)) {
          long_waits_.fetch_add(1, std::memory_order_relaxed);
          counted = true;
        }
        if (waited > std::chrono::microseconds(kBarrierSpinMicroseconds)) spinning = false;
      }
    } else {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      // Re-checked inside the kernel: a release that happens first makes the sleep return at once.
      if (generation_.load(std::memory_order_seq_cst) == generation) sleep_while_equal(generation_, generation);
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  return decision_[parity].load(std::memory_order_relaxed);
}

namespace detail {

bool run_on_pool(std::int64_t n, const std::function<void(std::int64_t)>& fn) {
  if (t_inside_task) return false;
  std::shared_ptr<Pool> pool = current_pool();
  return pool->threads() > 1 && pool->run(n, fn);
}

bool run_team_on_pool(std::int64_t n, const std::function<void(std::int64_t)>& fn) {
  if (t_inside_task) return false;
  std::shared_ptr<Pool> pool = current_pool();
  return pool->threads() >= n && pool->run(n, fn);
}

}  // namespace detail

}  // namespace rnnfast
