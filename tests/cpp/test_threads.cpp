// threads: the step scheduler alone (every block of every step done once, in order, whatever the team
// and with a late member); and results bit-identical across 1, 2 and 3 threads for a large GEMM, the
// forward and backward of every cell and a stepper, under every split policy and every placement of the
// input projection. The pool itself is tested in test_pool.cpp. These are the subjects the
// ThreadSanitizer CI step (.ci/tsan) runs.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "check.h"
#include "layer_problems.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/rnnfast.hpp"
#include "rnnfast/core/threadpool.h"
#include "test_support.h"

using check::Rng;
using rnnfast::Cell;
using rnnfast::Isa;
using std::int64_t;
using std::vector;
using support::append_bytes;
using support::cell_name;
using support::type_name;

namespace {

// Results of a GEMM large enough to be split over row blocks and runs of panels, the forward and
// backward of every cell with lengths, and a stepper; each as raw bytes, named.
template <typename T>
vector<std::pair<std::string, vector<unsigned char>>> threaded_results(Isa isa) {
  vector<std::pair<std::string, vector<unsigned char>>> results;
  const rnnfast::MicroKernel<T>& mk = rnnfast::micro_kernel<T>(isa);
  Rng rng(99);
  {
    const int64_t m = mk.mc + 3, n = 16 * mk.nr + 5, k = mk.kc + 9;
    vector<T> a(m * k), b(k * n), c(m * n);
    for (T& v : a) v = T(rng.uniform());
    for (T& v : b) v = T(rng.uniform());
    rnnfast::gemm(m, n, k, false, a.data(), k, false, b.data(), n, false, c.data(), n);
    results.push_back({check::str("gemm ", m, "x", n, "x", k), {}});
    append_bytes(results.back().second, c);
  }
  const layers::LayerCase lc{5, 7, 13, 19, {5, 5, 4, 3, 3, 1, 0}, 0, false};
  for (Cell cell : support::kCells) {
    const naive::Problem p = layers::make_problem(cell, lc, rng);
    const layers::KernelForward<T> f = layers::kernel_forward<T>(p, true);
    results.push_back({check::str(cell_name(cell), " forward ", layers::describe(lc, 0)), {}});
    for (const vector<T>* v : {&f.out, &f.h_n, &f.c_n, &f.ws}) append_bytes(results.back().second, *v);
    results.push_back({check::str(cell_name(cell), " backward ", layers::describe(lc, 0)), {}});
    for (const vector<T>& v : layers::kernel_backward<T>(p, f)) append_bytes(results.back().second, v);

    const int64_t B = 6, I = 9, H = 10, GH = rnnfast::gate_count(cell) * H, steps = 3;
    vector<T> w_ih(GH * I), w_hh(GH * H), x(steps * B * I), y(steps * B * H);
    for (vector<T>* v : {&w_ih, &w_hh, &x})
      for (T& e : *v) e = T(0.4 * rng.uniform());
    rnnfast::Stepper<T> stepper(cell, H, B, {{I, w_ih.data(), w_hh.data(), nullptr, nullptr}});
    stepper.run(steps, x.data(), y.data());
    results.push_back({check::str(cell_name(cell), " stepper"), {}});
    append_bytes(results.back().second, y);
  }
  return results;
}

template <typename T>
void test_threads(Isa isa) {
  const int before = rnnfast::num_threads();
  rnnfast::set_num_threads(1);
  const auto one = threaded_results<T>(isa);
  // The results on 2 and 3 threads under the policies set, against one thread's, bit for bit.
  auto compare_with_one = [&](const std::string& policies) {
    for (int threads : {2, 3}) {
      rnnfast::set_num_threads(threads);
      const auto many = threaded_results<T>(isa);
      for (std::size_t i = 0; i < one.size(); ++i)
        CHECK(check::bitwise_equal(many[i].second, one[i].second), type_name<T>(), " ", one[i].first, ": ", threads,
              " threads, ", policies, " differ from 1 thread at byte ",
              check::first_difference(many[i].second, one[i].second));
    }
  };
  // Every way of sharing the forward's time loop (batch slices; unit blocks through the step
  // scheduler, which also runs when a member is late or never starts) gives the same bits.
  using rnnfast::SplitPolicy;
  for (SplitPolicy policy : {SplitPolicy::kAuto, SplitPolicy::kBatch, SplitPolicy::kHidden}) {
    rnnfast::set_split_policy(policy);
    compare_with_one(check::str("split ", static_cast<int>(policy)));
  }
  // And every placement of the input projection, in a team sharing the steps (the forward's rows
  // are the whole batch there, so 'ahead' runs too, with ragged lengths and a last run of one step).
  using rnnfast::ProjectionPolicy;
  rnnfast::set_split_policy(SplitPolicy::kHidden);
  for (ProjectionPolicy projection :
       {ProjectionPolicy::kUpFront, ProjectionPolicy::kPerStep, ProjectionPolicy::kInStep, ProjectionPolicy::kAhead}) {
    rnnfast::set_projection_policy(projection);
    compare_with_one(check::str("hidden split, projection ", static_cast<int>(projection)));
  }
  rnnfast::set_projection_policy(ProjectionPolicy::kAuto);
  rnnfast::set_split_policy(SplitPolicy::kAuto);
  rnnfast::set_num_threads(before);
}

}  // namespace

TEST(threads, bits_across_thread_counts_float) {
  support::for_each_isa([](Isa isa) { test_threads<float>(isa); });
}

TEST(threads, bits_across_thread_counts_double) {
  support::for_each_isa([](Isa isa) { test_threads<double>(isa); });
}

// The step scheduler alone: every (block, step) is done exactly once, no block of step t+1 starts
// before every block of step t is done, whatever the team size, and with a member that starts only
// after the others have finished (the shape of a descheduled thread).
TEST(threads, step_scheduler) {
  for (int members : {1, 2, 3, 5}) {
    for (int64_t blocks : {1, 2, 7}) {
      const int64_t steps = 40;
      rnnfast::StepScheduler scheduler(members, blocks);
      vector<std::atomic<int>> done_count(static_cast<std::size_t>(steps * blocks));
      std::atomic<int64_t> finished_blocks{0};
      std::atomic<bool> order_ok{true}, after_own_ok{true};
      vector<int> after_own_calls(static_cast<std::size_t>(members * steps));  // each member's own
      auto member_run = [&](int m) {
        for (int64_t t = 0; t < steps; ++t) {
          vector<int64_t> mine;  // the blocks this member did in step t, in order
          scheduler.run_step(
              m, t,
              [&](int64_t b) {
                if (finished_blocks.load() < t * blocks) order_ok = false;  // step t-1 not complete
                done_count[static_cast<std::size_t>(t * blocks + b)]++;
                finished_blocks++;
                mine.push_back(b);
              },
              [&] {  // within step t: after step t-1 is complete, before any block of t+1
                after_own_calls[static_cast<std::size_t>(m * steps + t)]++;
                if (finished_blocks.load() < t * blocks) after_own_ok = false;
                for (int64_t b : mine)
                  if (b < scheduler.own_begin(m) || b >= scheduler.own_end(m)) after_own_ok = false;  // not yet
              });
        }
      };
      vector<std::thread> threads;
      for (int m = 0; m + 1 < members; ++m) threads.emplace_back(member_run, m);
      for (std::thread& th : threads) th.join();
      member_run(members - 1);  // the last member arrives after the others have finished
      bool once = true;
      for (auto& c : done_count) once = once && c.load() == 1;
      CHECK(once, "step scheduler: ", members, " members, ", blocks, " blocks: a block-step done twice or never");
      CHECK(order_ok.load(), "step scheduler: ", members, " members, ", blocks, " blocks: a step began too early");
      CHECK(std::all_of(after_own_calls.begin(), after_own_calls.end(), [](int n) { return n == 1; }),
            "step scheduler: ", members, " members, ", blocks, " blocks: after_own not called once per step");
      CHECK(after_own_ok.load(), "step scheduler: ", members, " members, ", blocks,
            " blocks: after_own called out of place (before step t-1 was complete, or after taking others' blocks)");
    }
  }
}
