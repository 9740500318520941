#include "rnnfast/core/threadpool.h"

#include "rnnfast/core/spin.h"

#include <pthread.h>
#include <sched.h>
#if defined(__linux__)
#include <unistd.h>
#endif


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


// One parallel_for call: its tasks, which thread takes which, and how many are finished. Shared (by
// shared_ptr) between the caller and the workers, so that a worker that wakes after the caller has
// returned only finds every task taken and lets go: the caller waits for the tasks, not for every
// worker to check in (a worker that the OS has descheduled would hold it up).
struct Job {
  const std::function<void(std::int64_t)>* fn = nullptr;
  std::int64_t count = 0;
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> finished{0};  // tasks run or skipped
  std::mutex error_mutex;
  std::exception_ptr error;
};

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
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->count = n;
    publish(job);
    drain(*job);
    // The caller has taken every task it could; the rest are running on workers, which usually
    // finish within microseconds: spin before sleeping.
    auto all_finished = [&] { return job->finished.load(std::memory_order_acquire) == n; };
    spin_until(all_finished);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, all_finished);
      job_.reset();  // workers still holding it find nothing left to take
    }
    if (job->error) std::rethrow_exception(job->error);  // a task failed: the caller gets the exception
    return true;
  }

  // Whether no worker is asleep, so that a job starts at once.
  bool awake() const { return sleeping_.load(std::memory_order_relaxed) == 0; }

  // Wakes the workers without giving them anything to do (unless a job is running, when they are
  // awake anyway), so that a call shortly after finds them awake.
  void wake() {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (busy.owns_lock()) publish(nullptr);
  }

 private:
  // Makes `job` (nullptr: nothing) the current one and wakes the workers to look at it.
  void publish(std::shared_ptr<Job> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = std::move(job);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
  }

  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (std::thread& w : workers_) w.join();
  }

  // Takes and runs tasks of `job` until none is left.
  void drain(Job& job) {
    t_inside_task = true;
    for (std::int64_t i = job.next.fetch_add(1); i < job.count; i = job.next.fetch_add(1)) {
      std::int64_t finished = 1;
      try {
        (*job.fn)(i);
      } catch (...) {
        {
          std::lock_guard<std::mutex> lock(job.error_mutex);
          if (!job.error) job.error = std::current_exception();
        }
        const std::int64_t rest = job.next.exchange(job.count);  // skip the tasks nobody has taken
        if (rest < job.count) finished += job.count - rest;
      }
      if (job.finished.fetch_add(finished, std::memory_order_acq_rel) + finished == job.count) {
        std::lock_guard<std::mutex> lock(mutex_);  // the caller may be asleep on done_
        done_.notify_all();
      }
    }
    t_inside_task = false;
  }

  void work() {
    std::uint64_t seen = 0;
    auto news = [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; };
    for (;;) {
      // A kernel often starts its next parallel section right after the last one (the input
      // projection, then the time loop): spin a while before sleeping, to be there when it does.
      spin_until(news, kWorkerSpinMicroseconds);
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1, std::memory_order_relaxed);
        wake_.wait(lock, news);
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
        if (stop_.load()) return;
        seen = generation_.load();
        job = job_;
      }
      if (job) drain(*job);
    }
  }

  // Spins (with the CPU's pause hint) until done() or for about `microseconds`.
  template <typename Done>
  static void spin_until(Done done, int microseconds = kCallerSpinMicroseconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(microseconds);
    for (int i = 1; !done(); ++i) {
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) return;
    }
  }
  // A caller waiting for the workers' last tasks spins briefly; an idle worker spins for 2 ms, so that
  // calls in a loop find it awake (waking a sleeping thread takes tens of microseconds, and in a
  // virtual machine an idle CPU can take a millisecond to come back at full speed).
  static constexpr int kCallerSpinMicroseconds = 100;
  static constexpr int kWorkerSpinMicroseconds = 2000;

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex busy_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::shared_ptr<Job> job_;                   // the current job (guarded by mutex_)
  std::atomic<std::uint64_t> generation_{0};   // bumped (under mutex_) at each publish
  std::atomic<bool> stop_{false};              // set under mutex_
  std::atomic<int> sleeping_{0};               // workers blocked on wake_
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
std::atomic<std::int64_t> g_fork_generation{0};

void after_fork_in_child() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  new (&g_pool_mutex) std::mutex();
  new (&g_pool) std::shared_ptr<Pool>();  // leaks the parent's pool object on purpose
}

struct ForkHandler {
  ForkHandler() { pthread_atfork(nullptr, nullptr, &after_fork_in_child); }
} g_fork_handler;

}  // namespace

std::int64_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

int num_threads() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  return g_requested_threads > 0 ? g_requested_threads : default_threads();
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_requested_threads = std::max(1, n);
}

bool pool_can_help() { return !t_inside_task && num_threads() > 1; }

bool pool_awake() {
  if (t_inside_task || num_threads() <= 1) return false;
  return current_pool()->awake();
}

void wake_pool() {
  if (t_inside_task || num_threads() <= 1) return;
  current_pool()->wake();
}

namespace detail {

bool run_on_pool(std::int64_t n, const std::function<void(std::int64_t)>& fn) {
  if (t_inside_task) return false;
  std::shared_ptr<Pool> pool = current_pool();
  return pool->threads() > 1 && pool->run(n, fn);
}


}  // namespace detail

}  // namespace rnnfast
