// layer_forward of every cell against the naive float64 reference (naive_rnn.h), with lengths and absent
// h0/c0/biases, on every instruction set in float and double; the forward without a workspace
// (inference) bit-identical to the training forward; and lengths out of range rejected.
#include <stdexcept>
#include <vector>

#include "check.h"
#include "layer_problems.h"
#include "naive_rnn.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

using check::Context;
using check::Rng;
using layers::KernelForward;
using rnnfast::Cell;
using rnnfast::Isa;
using std::int64_t;
using std::vector;

namespace {

// Compares the forward arrays; `tolerance` relative to max(|want|, 1).
template <typename T>
void compare_forward(const KernelForward<T>& f, const naive::Forward& ref, double tolerance) {
  const struct {
    const char* name;
    const vector<T>& got;
    const vector<double>& want;
  } arrays[] = {{"out", f.out, ref.out}, {"h_n", f.h_n, ref.h_n}, {"c_n", f.c_n, ref.c_n}, {"workspace", f.ws, ref.ws}};
  for (const auto& [name, got, want] : arrays) {
    const check::Worst w = check::worst_relative(got, want, 1.0);
    CHECK(w.error <= tolerance, "forward ", name, ": ", check::describe(w), " > ", tolerance);
  }
}

// One problem on the active instruction set in T: every forward array against the naive reference, and
// the same outputs without a workspace.
template <typename T>
void check_forward(const naive::Problem& p, const naive::Forward& ref) {
  Context ctx(support::type_name<T>());
  const KernelForward<T> f = layers::kernel_forward<T>(p, true);
  compare_forward(f, ref, sizeof(T) == 8 ? 1e-12 : layers::kFloatTolerance);
  const KernelForward<T> inference = layers::kernel_forward<T>(p, false);
  CHECK(check::bitwise_equal(inference.out, f.out) && check::bitwise_equal(inference.h_n, f.h_n) &&
            check::bitwise_equal(inference.c_n, f.c_n),
        "forward without a workspace differs from the training forward");
}

}  // namespace

TEST(layer_forward, against_naive_reference) {
  for (const layers::LayerProblem& lp : layers::layer_problems()) {
    Context ctx(support::cell_name(lp.cell), " ", layers::describe(lp.shape, lp.shape.absent));
    support::for_each_isa([&](Isa) {
      check_forward<double>(lp.problem, lp.forward);
      check_forward<float>(lp.problem, lp.forward);
    });
  }
}

// Lengths out of [0, S] or not sorted non-increasing are rejected with std::invalid_argument, by the
// forward and by the backward.
TEST(layer_forward, bad_lengths_rejected) {
  Rng rng(3);
  for (const vector<int64_t>& lengths : {vector<int64_t>{2, 3}, vector<int64_t>{4, 1}, vector<int64_t>{3, -1}}) {
    naive::Problem p = layers::make_problem(Cell::kGru, {3, 2, 2, 3, lengths, 0, false}, rng);
    bool forward_threw = false, backward_threw = false;
    try {
      layers::kernel_forward<double>(p, true);
    } catch (const std::invalid_argument&) {
      forward_threw = true;
    }
    p.lengths.clear();
    const KernelForward<double> f = layers::kernel_forward<double>(p, true);
    p.lengths = lengths;
    try {
      layers::kernel_backward<double>(p, f);
    } catch (const std::invalid_argument&) {
      backward_threw = true;
    }
    CHECK(forward_threw && backward_threw, "lengths ", lengths[0], ",", lengths[1],
          " with S=3 must throw std::invalid_argument (forward ", forward_threw, ", backward ", backward_threw, ")");
  }
}
