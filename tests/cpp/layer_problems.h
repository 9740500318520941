// One recurrent layer as a test problem: random inputs for a shape (with lengths and absent optional
// arrays), and layer_forward / layer_backward run on it in float or double. Shared by the layer tests
// (against naive_rnn.h) and the thread tests (bits across thread counts).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "naive_rnn.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

namespace layers {

using check::Rng;
using rnnfast::Cell;
using std::int64_t;
using std::vector;
using support::convert;
using support::nans;
using support::ptr;

// Which of the optional arrays are given as nullptr.
enum Absent : unsigned {
  kNoH0 = 1,
  kNoC0 = 2,
  kNoBIh = 4,
  kNoBHh = 8,
  kNoDOut = 16,
  kNoDHn = 32,
  kNoDCn = 64,
};

struct LayerCase {
  int64_t S, B, I, H;
  vector<int64_t> lengths;  // empty: none
  unsigned absent;
  bool full_fd;  // every gradient element by finite differences (else a sample and one direction)
};

// Inputs are rounded to float so that the float and double kernels see the same numbers.
inline double rounded(double v) { return double(float(v)); }

inline naive::Problem make_problem(Cell cell, const LayerCase& lc, Rng& rng) {
  naive::Problem p;
  p.cell = cell;
  p.S = lc.S, p.B = lc.B, p.I = lc.I, p.H = lc.H;
  const int64_t S = lc.S, B = lc.B, I = lc.I, H = lc.H, GH = p.gates() * H;
  auto fill = [&](vector<double>& v, int64_t count, double scale, bool absent) {
    v.assign(count, 0.0);
    if (!absent)
      for (double& e : v) e = rounded(scale * rng.uniform());
  };
  // Pre-activations of order one: weights scaled by 1/sqrt(fan-in).
  fill(p.x, S * B * I, 1.0, false);
  fill(p.w_ih, GH * I, 1.5 / std::sqrt(double(std::max<int64_t>(I, 1))), false);
  fill(p.w_hh, GH * H, 1.5 / std::sqrt(double(std::max<int64_t>(H, 1))), false);
  fill(p.h0, B * H, 1.0, lc.absent & kNoH0);
  fill(p.c0, B * H, 1.0, (lc.absent & kNoC0) || !p.lstm());
  fill(p.b_ih, GH, 0.5, lc.absent & kNoBIh);
  fill(p.b_hh, GH, 0.5, lc.absent & kNoBHh);
  fill(p.d_out, S * B * H, 1.0, lc.absent & kNoDOut);
  fill(p.d_h_n, B * H, 1.0, lc.absent & kNoDHn);
  fill(p.d_c_n, B * H, 1.0, (lc.absent & kNoDCn) || !p.lstm());
  p.has_h0 = !(lc.absent & kNoH0);
  p.has_c0 = !(lc.absent & kNoC0) && p.lstm();
  p.has_b_ih = !(lc.absent & kNoBIh);
  p.has_b_hh = !(lc.absent & kNoBHh);
  p.has_d_out = !(lc.absent & kNoDOut);
  p.has_d_h_n = !(lc.absent & kNoDHn);
  p.has_d_c_n = !(lc.absent & kNoDCn) && p.lstm();
  p.lengths = lc.lengths;
  return p;
}

inline std::string describe(const LayerCase& lc, unsigned absent) {
  std::string s = check::str("S=", lc.S, " B=", lc.B, " I=", lc.I, " H=", lc.H);
  if (!lc.lengths.empty()) {
    s += " lengths=";
    for (std::size_t b = 0; b < lc.lengths.size(); ++b) s += (b ? "," : "") + std::to_string(lc.lengths[b]);
  }
  const char* names[] = {"h0", "c0", "b_ih", "b_hh", "d_out", "d_h_n", "d_c_n"};
  for (int q = 0; q < 7; ++q)
    if (absent & (1u << q)) s += check::str(" no ", names[q]);
  return s;
}

template <typename T>
struct KernelForward {
  vector<T> out, h_n, c_n, ws;
};

// The problem's inputs converted to T, kept alive for the pointers handed to the kernels.
template <typename T>
struct Inputs {
  vector<T> x, h0, c0, w_ih, w_hh, b_ih, b_hh, d_out, d_h_n, d_c_n;
  explicit Inputs(const naive::Problem& p)
      : x(convert<T>(p.x)), h0(convert<T>(p.h0)), c0(convert<T>(p.c0)), w_ih(convert<T>(p.w_ih)),
        w_hh(convert<T>(p.w_hh)), b_ih(convert<T>(p.b_ih)), b_hh(convert<T>(p.b_hh)), d_out(convert<T>(p.d_out)),
        d_h_n(convert<T>(p.d_h_n)), d_c_n(convert<T>(p.d_c_n)) {}
};

// The fields LayerForward and LayerBackward share: sizes, input sequence, initial state, weights.
template <typename Args, typename T>
void set_common_inputs(Args& a, const naive::Problem& p, Inputs<T>& in) {
  a.cell = p.cell;
  a.seq_len = p.S, a.batch = p.B, a.input_size = p.I, a.hidden = p.H;
  a.x = ptr(in.x);
  a.h0 = p.has_h0 ? ptr(in.h0) : nullptr;
  a.c0 = p.has_c0 ? ptr(in.c0) : nullptr;
  a.w_ih = ptr(in.w_ih);
  a.w_hh = ptr(in.w_hh);
}

template <typename T>
KernelForward<T> kernel_forward(const naive::Problem& p, bool training) {
  Inputs<T> in(p);
  const int64_t W = rnnfast::workspace_width(p.cell, p.H);
  KernelForward<T> f{nans<T>(p.S * p.B * p.H), nans<T>(p.B * p.H), nans<T>(p.lstm() ? p.B * p.H : 0),
                     nans<T>(training ? p.S * p.B * W : 0)};  // NaN: anything left unwritten shows
  rnnfast::LayerForward<T> a;
  set_common_inputs(a, p, in);
  a.b_ih = p.has_b_ih ? ptr(in.b_ih) : nullptr;
  a.b_hh = p.has_b_hh ? ptr(in.b_hh) : nullptr;
  a.out = ptr(f.out);
  a.h_n = ptr(f.h_n);
  a.c_n = p.lstm() ? ptr(f.c_n) : nullptr;
  a.workspace = training && W > 0 ? ptr(f.ws) : nullptr;
  a.lengths = p.lengths.empty() ? nullptr : p.lengths.data();
  rnnfast::layer_forward(a);
  return f;
}

// Gradients in the order of naive::inputs (d_x, d_h0, [d_c0], d_w_ih, d_w_hh, d_b_ih, d_b_hh).
template <typename T>
vector<vector<T>> kernel_backward(const naive::Problem& p, const KernelForward<T>& f) {
  Inputs<T> in(p);
  const int64_t GH = p.gates() * p.H;
  vector<T> d_x = nans<T>(p.S * p.B * p.I), d_h0 = nans<T>(p.B * p.H), d_c0 = nans<T>(p.lstm() ? p.B * p.H : 0),
            d_w_ih = nans<T>(GH * p.I), d_w_hh = nans<T>(GH * p.H), d_b_ih = nans<T>(GH), d_b_hh = nans<T>(GH);
  rnnfast::LayerBackward<T> a;
  set_common_inputs(a, p, in);
  a.out = ptr(f.out);
  a.workspace = f.ws.empty() ? nullptr : f.ws.data();
  a.d_out = p.has_d_out ? ptr(in.d_out) : nullptr;
  a.d_h_n = p.has_d_h_n ? ptr(in.d_h_n) : nullptr;
  a.d_c_n = p.has_d_c_n ? ptr(in.d_c_n) : nullptr;
  a.d_x = ptr(d_x);
  a.d_h0 = ptr(d_h0);
  a.d_c0 = p.lstm() ? ptr(d_c0) : nullptr;
  a.d_w_ih = ptr(d_w_ih);
  a.d_w_hh = ptr(d_w_hh);
  a.d_b_ih = ptr(d_b_ih);
  a.d_b_hh = ptr(d_b_hh);
  a.lengths = p.lengths.empty() ? nullptr : p.lengths.data();
  rnnfast::layer_backward(a);
  vector<vector<T>> g = {d_x, d_h0};
  if (p.lstm()) g.push_back(d_c0);
  g.insert(g.end(), {d_w_ih, d_w_hh, d_b_ih, d_b_hh});
  return g;
}

// Float results against float64 (docs/design.md, section 3.9: within 1e-5 relative): forward values relative to
// max(|want|, 1), as states are of order one; gradients relative to the larger of |want| and a tenth of
// the array's largest magnitude, as they are sums over all steps whose terms may cancel. Measured
// maxima: about 7e-7 forward, 3e-6 gradients.
constexpr double kFloatTolerance = 1e-5;

// The gradient references of one problem, computed once for every instruction set and type: all
// elements (full) or a sample of elements per input plus one directional derivative.
struct GradientReference {
  vector<vector<double>> full;                            // per input, every element
  vector<vector<std::pair<std::size_t, double>>> sample;  // per input, (index, value)
  vector<vector<double>> direction;                       // per input, a random direction
  double directional = 0.0;                               // d loss / d step along `direction`
};

inline GradientReference gradient_reference(naive::Problem p, bool full, Rng& rng) {
  GradientReference r;
  const auto in = naive::inputs(p);
  for (std::size_t q = 0; q < in.size(); ++q) {
    const std::size_t count = in[q].second->size();
    if (full) {
      r.full.emplace_back();
      for (std::size_t i = 0; i < count; ++i) r.full.back().push_back(naive::finite_difference(p, q, i));
    } else {
      r.sample.emplace_back();
      for (int s = 0; s < 6 && count > 0; ++s) {
        const std::size_t i = static_cast<std::size_t>(rng.below(static_cast<int64_t>(count)));
        r.sample.back().push_back({i, naive::finite_difference(p, q, i)});
      }
    }
  }
  // Directional derivative: (loss(p + h v) - loss(p - h v)) / 2h.
  naive::Problem up = p, down = p;
  for (naive::Problem* x : {&up, &down}) x->has_h0 = x->has_c0 = x->has_b_ih = x->has_b_hh = true;
  const auto in_up = naive::inputs(up), in_down = naive::inputs(down);
  const double step = 1e-6;
  for (std::size_t q = 0; q < in.size(); ++q) {
    r.direction.emplace_back();
    for (std::size_t i = 0; i < in[q].second->size(); ++i) {
      const double v = rng.uniform();
      r.direction.back().push_back(v);
      (*in_up[q].second)[i] += step * v;
      (*in_down[q].second)[i] -= step * v;
    }
  }
  r.directional = (naive::loss(up) - naive::loss(down)) / (2 * step);
  return r;
}

// One problem of the layer tests, with what the kernels are compared with.
struct LayerProblem {
  Cell cell;
  LayerCase shape;
  naive::Problem problem;
  naive::Forward forward;       // the naive float64 forward
  GradientReference gradients;  // finite differences of its loss
};

// The layer tests' problems: every cell on every shape below, made once (the finite differences take a
// few tenths of a second) and shared by the forward and backward tests. One generator makes them all,
// each problem's inputs then its gradient reference, in this order: the numbers the tolerances were
// measured on (kFloatTolerance has little margin on the last shape's float weight gradients).
inline const vector<LayerProblem>& layer_problems() {
  // S, B, I, H, lengths, absent arrays, full finite differences.
  static const vector<LayerCase> shapes = {
      {3, 2, 3, 2, {}, 0, true},
      {4, 4, 2, 3, {4, 3, 1, 0}, kNoC0 | kNoBIh | kNoDHn, true},
      {2, 3, 1, 1, {2, 0, 0}, kNoH0 | kNoBIh | kNoBHh, true},
      {7, 1, 4, 5, {}, kNoDOut, true},                       // batch 1: matrix-vector steps
      {3, 2, 3, 4, {0, 0}, 0, true},                         // every length 0
      {0, 2, 3, 4, {}, kNoC0 | kNoDCn, true},                // no steps: h_n = h0
      {3, 0, 2, 3, {}, 0, true},                             // empty batch
      {5, 6, 19, 21, {5, 5, 4, 2, 2, 1}, kNoBHh, false},     // tails of every vector width
      {6, 9, 40, 37, {}, kNoH0 | kNoC0, false},              // more rows than a tile
      {3, 5, 260, 20, {3, 2, 2, 2, 0}, kNoDCn, false},       // input deeper than kc
      {70, 61, 3, 5, {}, kNoH0, false},                      // S*B > 4096: weight gradients in chunks
  };
  static const vector<LayerProblem> problems = [] {
    vector<LayerProblem> made;
    Rng rng(7);
    for (Cell cell : support::kCells)
      for (const LayerCase& shape : shapes) {
        naive::Problem p = make_problem(cell, shape, rng);
        naive::Forward f = naive::forward(p);
        GradientReference g = gradient_reference(p, shape.full_fd, rng);
        made.push_back({cell, shape, std::move(p), std::move(f), std::move(g)});
      }
    return made;
  }();
  return problems;
}

}  // namespace layers
