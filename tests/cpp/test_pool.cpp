// pool: the thread pool's contract (threadpool.h) on 1-4 threads: parallel_for runs every index once
// and its tasks' writes are seen by the caller when it returns; a parallel_for inside a task runs inline;
// parallel_team runs each member once; callers on several threads at once, and set_num_threads while
// they run, each get all their tasks run. Run under ThreadSanitizer by CI (.ci/tsan), where the plain
// (non-atomic) writes of the tasks and the caller's reads afterwards are what it checks are ordered.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "check.h"
#include "rnnfast/core/threadpool.h"

using check::Context;
using std::int64_t;
using std::vector;

namespace {

const int kThreadCounts[] = {1, 2, 3, 4};

// Restores the thread count a test changes, whatever happens in it.
class KeepThreads {
 public:
  KeepThreads() : before_(rnnfast::num_threads()) {}
  ~KeepThreads() { rnnfast::set_num_threads(before_); }

 private:
  int before_;
};

// parallel_for(n, out[i] = f(i)) with plain writes; the index of the first wrong element, or -1.
int64_t first_wrong_of_parallel_for(int64_t n, int64_t salt) {
  vector<int64_t> out(static_cast<std::size_t>(n), -1);
  vector<int> runs(static_cast<std::size_t>(n), 0);  // each written by the one task of its index
  rnnfast::parallel_for(n, [&](int64_t i) {
    out[static_cast<std::size_t>(i)] = i * i + salt;
    runs[static_cast<std::size_t>(i)]++;
  });
  for (int64_t i = 0; i < n; ++i)
    if (out[static_cast<std::size_t>(i)] != i * i + salt || runs[static_cast<std::size_t>(i)] != 1) return i;
  return -1;
}

}  // namespace

TEST(pool, parallel_for_runs_each_index_once) {
  KeepThreads keep;
  for (int threads : kThreadCounts) {
    rnnfast::set_num_threads(threads);
    for (int64_t n : {0, 1, 2, 3, 5, 64, 1000}) {
      const int64_t wrong = first_wrong_of_parallel_for(n, 7);
      CHECK(wrong < 0, "parallel_for n=", n, " threads=", threads, ": index ", wrong,
            " not run exactly once, or its write not seen by the caller");
    }
  }
}

TEST(pool, nested_parallel_for_runs_inline) {
  KeepThreads keep;
  for (int threads : kThreadCounts) {
    rnnfast::set_num_threads(threads);
    const int64_t outer = 6, inner = 9;
    vector<int> runs(static_cast<std::size_t>(outer * inner), 0);
    std::atomic<bool> could_help{false};
    rnnfast::parallel_for(outer, [&](int64_t i) {
      if (rnnfast::pool_can_help()) could_help.store(true, std::memory_order_relaxed);
      rnnfast::parallel_for(inner, [&](int64_t j) { runs[static_cast<std::size_t>(i * inner + j)]++; });
    });
    bool once = true;
    for (int r : runs) once = once && r == 1;
    CHECK(once, "nested parallel_for threads=", threads, ": an (outer, inner) pair not run exactly once");
    CHECK(!could_help.load(), "pool_can_help() is true inside a task (threads=", threads, ")");
  }
}

TEST(pool, parallel_team_runs_each_member_once) {
  KeepThreads keep;
  for (int threads : kThreadCounts) {
    rnnfast::set_num_threads(threads);
    for (int wanted : {1, 2, 3, 5}) {
      vector<int> runs(static_cast<std::size_t>(wanted), 0);
      std::atomic<int> team_seen{0};
      std::atomic<bool> team_consistent{true};
      rnnfast::parallel_team(wanted, [&](int member, int team) {
        int expected = 0;
        if (!team_seen.compare_exchange_strong(expected, team) && expected != team) team_consistent = false;
        if (member >= 0 && member < team && team <= wanted) runs[static_cast<std::size_t>(member)]++;
      });
      const int team = team_seen.load();
      bool once = team == 1 || team == wanted;
      for (int m = 0; m < wanted; ++m) once = once && runs[static_cast<std::size_t>(m)] == (m < team ? 1 : 0);
      CHECK(once && team_consistent.load(), "parallel_team wanted=", wanted, " threads=", threads, ": team ", team,
            ", members not each run once");
    }
  }
}

// Callers on several threads at once: whichever gets the pool uses it, the others run inline (threadpool.h);
// meanwhile another thread changes the thread count, which is safe while kernels run. Every call must
// still run each of its tasks once, and its caller see their writes.
TEST(pool, concurrent_callers_and_resizing) {
  KeepThreads keep;
  rnnfast::set_num_threads(3);
  const int kCallers = 3, kCalls = 150;
  std::atomic<int> callers_left{kCallers};
  vector<int64_t> first_failure(kCallers, -1);  // each written by its own caller thread
  vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int call = 0; call < kCalls && first_failure[static_cast<std::size_t>(c)] < 0; ++call)
        if (first_wrong_of_parallel_for(8 + call % 13, c * 1000 + call) >= 0)
          first_failure[static_cast<std::size_t>(c)] = call;
      callers_left.fetch_sub(1);
    });
  for (int i = 0; callers_left.load() > 0; ++i) {
    rnnfast::set_num_threads(2 + i % 3);
    std::this_thread::yield();
  }
  for (std::thread& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    Context ctx("caller ", c, " of ", kCallers);
    CHECK(first_failure[static_cast<std::size_t>(c)] < 0, "call ", first_failure[static_cast<std::size_t>(c)],
          " did not run each task once with its writes seen");
  }
}
