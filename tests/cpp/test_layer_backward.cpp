// layer_backward of every cell, with lengths and absent h0/c0/biases/output gradients: double gradients
// against central finite differences of the naive float64 forward (naive_rnn.h), every element for small
// problems, a sample and a directional derivative for large ones; float gradients against the double
// ones. On every instruction set.
#include <algorithm>
#include <cmath>
#include <vector>

#include "check.h"
#include "layer_problems.h"
#include "naive_rnn.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

using check::Context;
using rnnfast::Cell;
using rnnfast::Isa;
using std::vector;

namespace {

// Double gradients on the active instruction set against the finite differences; returned, for the
// float ones to be compared with.
vector<vector<double>> check_double_gradients(const naive::Problem& p, const layers::GradientReference& gref) {
  Context ctx("double");
  const vector<vector<double>> g = layers::kernel_backward<double>(p, layers::kernel_forward<double>(p, true));
  naive::Problem names = p;
  const auto in = naive::inputs(names);
  // Against finite differences of the naive forward: every element, or the sample and a direction.
  for (std::size_t q = 0; q < in.size(); ++q) {
    if (!gref.full.empty()) {
      const check::Worst w = check::worst_relative(g[q], gref.full[q], 1.0);
      CHECK(w.error <= 1e-6, "d_", in[q].first, " vs finite differences: ", check::describe(w));
    } else {
      double worst = 0.0;
      for (const auto& [i, want] : gref.sample[q])
        worst = std::max(worst, std::fabs(g[q][i] - want) / std::max(1.0, std::fabs(want)));
      CHECK(worst <= 1e-6, "d_", in[q].first, " vs finite differences at sampled elements: error ", worst);
    }
  }
  double dot = 0.0, magnitude = 0.0;
  for (std::size_t q = 0; q < in.size(); ++q)
    for (std::size_t i = 0; i < g[q].size(); ++i) {
      dot += g[q][i] * gref.direction[q][i];
      magnitude += std::fabs(g[q][i] * gref.direction[q][i]);
    }
  CHECK(std::fabs(dot - gref.directional) <= 1e-6 * (magnitude + 1.0), "directional derivative ", dot,
        ", finite difference ", gref.directional, " (sum |g v| ", magnitude, ")");
  return g;
}

void check_float_gradients(const naive::Problem& p, const vector<vector<double>>& grads_f64) {
  Context ctx("float");
  const vector<vector<float>> g = layers::kernel_backward<float>(p, layers::kernel_forward<float>(p, true));
  naive::Problem names = p;
  const auto in = naive::inputs(names);
  for (std::size_t q = 0; q < in.size(); ++q) {
    double largest = 0.0;
    for (double v : grads_f64[q]) largest = std::max(largest, std::fabs(v));
    const check::Worst w = check::worst_relative(g[q], grads_f64[q], std::max(0.1 * largest, 1e-6));
    CHECK(w.error <= layers::kFloatTolerance, "float d_", in[q].first, " vs double: ", check::describe(w));
  }
}

}  // namespace

TEST(layer_backward, against_finite_differences) {
  for (const layers::LayerProblem& lp : layers::layer_problems()) {
    Context ctx(support::cell_name(lp.cell), " ", layers::describe(lp.shape, lp.shape.absent));
    support::for_each_isa([&](Isa) {
      check_float_gradients(lp.problem, check_double_gradients(lp.problem, lp.gradients));
    });
  }
}
