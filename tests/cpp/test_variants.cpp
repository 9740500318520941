// The cell variants' layer (layer/variant_layer.h), without Python: double gradients against central
// finite differences of the double forward, float against double on every instruction set, and the same
// bits on 1 to 3 threads. The C++ side of tests/kernels/test_variant_native.py, so that the aarch64 build
// (under qemu) and the sanitizers run the variant kernels too.
#include <algorithm>
#include <cmath>
#include <vector>

#include "check.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

using check::Context;
using rnnfast::Activation;
using rnnfast::Cell;
using rnnfast::CellVariant;
using std::vector;

namespace {

struct Case {
  const char* name;
  Cell cell;
  CellVariant variant;
  std::int64_t proj;
  bool peepholes;
};

CellVariant variant(std::initializer_list<rnnfast::ActivationSpec> acts, double clip = 0.0, bool input_forget = false,
                    bool reset_after = true) {
  CellVariant v;
  int i = 0;
  for (const auto& a : acts) v.act[i++] = a;
  v.clip = clip;
  v.input_forget = input_forget;
  v.reset_after = reset_after;
  return v;
}

const vector<Case>& cases() {
  static const vector<Case> all = {
      {"lstm proj+peepholes+clip", Cell::kLstm,
       variant({{Activation::kHardSigmoid, 0.2, 0.5}, {Activation::kElu, 1.0}, {Activation::kSoftplus}}, 1.0), 3, true},
      {"lstm input_forget", Cell::kLstm,
       variant({{Activation::kSigmoid}, {Activation::kTanh}, {Activation::kTanh}}, 0.0, true), 0, true},
      {"gru reset before", Cell::kGru, variant({{Activation::kSigmoid}, {Activation::kSoftsign}}, 0.8, false, false), 0,
       false},
      {"gru reset after", Cell::kGru, variant({{Activation::kSilu}, {Activation::kLeakyRelu, 0.1}}, 0.5), 0, false},
      {"rnn selu", Cell::kRnnTanh, variant({{Activation::kSelu}}, 0.9), 0, false},
      {"rnn scaled tanh", Cell::kRnnTanh, variant({{Activation::kScaledTanh, 0.7, 1.3}}), 0, false},
  };
  return all;
}

// One problem's inputs (double) and the weights of a scalar loss of its results.
struct Problem {
  const Case* c;
  std::int64_t S, B, I, H, R, G;
  vector<double> x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch;  // the inputs, in this order
  vector<double> wo, wh, wc;                                     // loss weights of out, h_n, c_n
  vector<std::int64_t> lengths;
};

Problem make(const Case& c, std::int64_t S, std::int64_t B, std::int64_t I, std::int64_t H, std::uint64_t seed) {
  check::Rng rng(seed);
  Problem p;
  p.c = &c;
  p.S = S, p.B = B, p.I = I, p.H = H, p.R = c.proj > 0 ? c.proj : H, p.G = rnnfast::gate_count(c.cell);
  auto fill = [&](vector<double>& v, std::int64_t n, double scale) {
    v.resize(n);
    for (double& e : v) e = scale * rng.uniform();
  };
  const bool lstm = c.cell == Cell::kLstm;
  fill(p.x, S * B * I, 1.0);
  fill(p.h0, B * p.R, 0.5);
  fill(p.c0, lstm ? B * H : 0, 0.5);
  fill(p.w_ih, p.G * H * I, 0.6);
  fill(p.w_hh, p.G * H * p.R, 0.6);
  fill(p.b_ih, p.G * H, 0.3);
  fill(p.b_hh, p.G * H, 0.3);
  fill(p.w_hr, c.proj * H, 0.6);
  fill(p.w_ch, c.peepholes ? 3 * H : 0, 0.6);
  fill(p.wo, S * B * p.R, 1.0);
  fill(p.wh, B * p.R, 1.0);
  fill(p.wc, lstm ? B * H : 0, 1.0);
  // Sorted non-increasing and spread over [0, S] (a 0 once B > S), so that every slice of a large batch runs.
  for (std::int64_t b = 0; b < B; ++b) p.lengths.push_back(S - b * (S + 1) / B);
  return p;
}

template <typename T>
vector<T> as(const vector<double>& v) {
  return vector<T>(v.begin(), v.end());
}
template <typename T>
const T* opt(const vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

// The forward's results (out, h_n, c_n, workspace) in type T.
template <typename T>
struct Results {
  vector<T> out, h_n, c_n, ws;
};

template <typename T>
Results<T> forward(const Problem& p, const vector<vector<T>>& in, bool training) {
  const bool lstm = p.c->cell == Cell::kLstm;
  Results<T> r{vector<T>(p.S * p.B * p.R), vector<T>(p.B * p.R), vector<T>(lstm ? p.B * p.H : 0),
               vector<T>(training ? p.S * p.B * rnnfast::variant_workspace_slots(p.c->cell) * p.H : 0)};
  rnnfast::VariantForward<T> a;
  a.cell = p.c->cell;
  a.variant = p.c->variant;
  a.seq_len = p.S, a.batch = p.B, a.input_size = p.I, a.hidden = p.H, a.proj = p.c->proj;
  a.x = in[0].data(), a.h0 = in[1].data(), a.c0 = opt(in[2]), a.w_ih = in[3].data(), a.w_hh = in[4].data();
  a.b_ih = in[5].data(), a.b_hh = in[6].data(), a.w_hr = opt(in[7]), a.w_ch = opt(in[8]);
  a.out = support::ptr(r.out), a.h_n = r.h_n.data(), a.c_n = lstm ? r.c_n.data() : nullptr;
  a.workspace = training ? support::ptr(r.ws) : nullptr;
  a.lengths = p.lengths.data();
  rnnfast::variant_forward(a);
  return r;
}

// The gradients of every input, in Problem's order (the biases share one pair).
template <typename T>
vector<vector<T>> backward(const Problem& p, const vector<vector<T>>& in, const Results<T>& r) {
  const bool lstm = p.c->cell == Cell::kLstm;
  vector<vector<T>> g(in.size());
  for (std::size_t q = 0; q < in.size(); ++q) g[q].resize(in[q].size());
  const vector<T> wo = as<T>(p.wo), wh = as<T>(p.wh), wc = as<T>(p.wc);
  rnnfast::VariantBackward<T> a;
  a.cell = p.c->cell;
  a.variant = p.c->variant;
  a.seq_len = p.S, a.batch = p.B, a.input_size = p.I, a.hidden = p.H, a.proj = p.c->proj;
  a.x = in[0].data(), a.h0 = in[1].data(), a.c0 = opt(in[2]), a.w_ih = in[3].data(), a.w_hh = in[4].data();
  a.w_hr = opt(in[7]), a.w_ch = opt(in[8]);
  a.out = r.out.data(), a.workspace = r.ws.data();
  a.d_out = wo.data(), a.d_h_n = wh.data(), a.d_c_n = lstm ? wc.data() : nullptr;
  a.d_x = g[0].data(), a.d_h0 = g[1].data(), a.d_c0 = lstm ? g[2].data() : nullptr, a.d_w_ih = g[3].data();
  a.d_w_hh = g[4].data(), a.d_b_ih = g[5].data(), a.d_b_hh = g[6].data();
  a.d_w_hr = g[7].empty() ? nullptr : g[7].data(), a.d_w_ch = g[8].empty() ? nullptr : g[8].data();
  a.lengths = p.lengths.data();
  rnnfast::variant_backward(a);
  return g;
}

vector<vector<double>> inputs(const Problem& p) {
  return {p.x, p.h0, p.c0, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.w_hr, p.w_ch};
}
const char* const kNames[] = {"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "w_ch"};

double loss(const Problem& p, const vector<vector<double>>& in) {
  const Results<double> r = forward<double>(p, in, false);
  double s = 0.0;
  for (std::size_t i = 0; i < r.out.size(); ++i) s += r.out[i] * p.wo[i];
  for (std::size_t i = 0; i < r.h_n.size(); ++i) s += r.h_n[i] * p.wh[i];
  for (std::size_t i = 0; i < r.c_n.size(); ++i) s += r.c_n[i] * p.wc[i];
  return s;
}

}  // namespace

TEST(variants, double_gradients_against_finite_differences) {
  for (const Case& c : cases()) {
    Context ctx(c.name);
    const Problem p = make(c, 4, 3, 3, 5, 11);
    vector<vector<double>> in = inputs(p);
    const vector<vector<double>> g = backward<double>(p, in, forward<double>(p, in, true));
    for (std::size_t q = 0; q < in.size(); ++q) {
      vector<double> numeric(in[q].size());
      for (std::size_t i = 0; i < in[q].size(); ++i) {
        const double old = in[q][i], eps = 1e-6;
        in[q][i] = old + eps;
        const double up = loss(p, in);
        in[q][i] = old - eps;
        const double down = loss(p, in);
        in[q][i] = old;
        numeric[i] = (up - down) / (2 * eps);
      }
      const check::Worst w = check::worst_relative(g[q], numeric, 1.0);
      CHECK(w.error <= 1e-6, "d_", kNames[q], " vs finite differences: ", check::describe(w));
    }
  }
}

TEST(variants, float_against_double_on_every_isa) {
  for (const Case& c : cases()) {
    Context ctx(c.name);
    const Problem p = make(c, 6, 5, 7, 21, 12);  // 21 units: a partial vector on every instruction set
    const vector<vector<double>> in = inputs(p);
    const Results<double> r64 = forward<double>(p, in, true);
    const vector<vector<double>> g64 = backward<double>(p, in, r64);
    vector<vector<float>> in32;
    for (const auto& v : in) in32.push_back(as<float>(v));
    support::for_each_isa([&](rnnfast::Isa) {
      const Results<float> r32 = forward<float>(p, in32, true);
      CHECK(check::worst_relative(r32.out, r64.out, 1.0).error <= 2e-5, "out: ",
            check::describe(check::worst_relative(r32.out, r64.out, 1.0)));
      CHECK(check::worst_relative(r32.h_n, r64.h_n, 1.0).error <= 2e-5, "h_n");
      CHECK(check::worst_relative(r32.c_n, r64.c_n, 1.0).error <= 2e-5, "c_n");
      const vector<vector<float>> g32 = backward<float>(p, in32, r32);
      for (std::size_t q = 0; q < g64.size(); ++q) {
        double largest = 0.0;
        for (double v : g64[q]) largest = std::max(largest, std::fabs(v));
        const check::Worst w = check::worst_relative(g32[q], g64[q], std::max(1.0, largest));
        CHECK(w.error <= 1e-4, "float d_", kNames[q], " vs double: ", check::describe(w));
      }
    });
  }
}

TEST(variants, same_bits_on_every_thread_count) {
  const int before = rnnfast::num_threads();
  for (const Case& c : cases()) {
    Context ctx(c.name);
    // Large enough that the products and the rows' cell arithmetic are cut into several tasks.
    Case big = c;
    if (big.proj > 0) big.proj = 40;
    const Problem p = make(big, 4, 101, 30, 96, 13);
    vector<vector<float>> in;
    for (const auto& v : inputs(p)) in.push_back(as<float>(v));
    rnnfast::set_num_threads(1);
    const Results<float> r1 = forward<float>(p, in, true);
    const vector<vector<float>> g1 = backward<float>(p, in, r1);
    for (int threads : {2, 3})
      for (rnnfast::SplitPolicy split : {rnnfast::SplitPolicy::kAuto, rnnfast::SplitPolicy::kBatch,
                                         rnnfast::SplitPolicy::kHidden}) {
      // kBatch: slices of the batch; kHidden: a team sharing each step by chunks of units.
      Context tctx(threads, " threads, split ", static_cast<int>(split));
      rnnfast::set_num_threads(threads);
      rnnfast::set_split_policy(split);
      const Results<float> r = forward<float>(p, in, true);
      CHECK(check::bitwise_equal(r.out, r1.out) && check::bitwise_equal(r.h_n, r1.h_n) &&
                check::bitwise_equal(r.c_n, r1.c_n) && check::bitwise_equal(r.ws, r1.ws),
            "forward results differ from one thread's");
      const vector<vector<float>> g = backward<float>(p, in, r);
      for (std::size_t q = 0; q < g.size(); ++q)
        CHECK(check::bitwise_equal(g[q], g1[q]), "d_", kNames[q], " differs from one thread's at ",
              check::first_difference(g[q], g1[q]));
    }
  }
  rnnfast::set_split_policy(rnnfast::SplitPolicy::kAuto);
  rnnfast::set_num_threads(before);
}

TEST(variants, refuses_inconsistent_options) {
  const Problem p = make(cases()[0], 2, 2, 3, 5, 14);
  vector<vector<double>> in = inputs(p);
  auto refused = [&](auto&& edit) {
    rnnfast::VariantForward<double> a;
    vector<double> out(p.S * p.B * p.R), h_n(p.B * p.R), c_n(p.B * p.H);
    a.cell = Cell::kLstm, a.variant = p.c->variant;
    a.seq_len = p.S, a.batch = p.B, a.input_size = p.I, a.hidden = p.H, a.proj = p.c->proj;
    a.x = in[0].data(), a.w_ih = in[3].data(), a.w_hh = in[4].data(), a.w_hr = in[7].data();
    a.out = out.data(), a.h_n = h_n.data(), a.c_n = c_n.data();
    edit(a);
    try {
      rnnfast::variant_forward(a);
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  CHECK(refused([](auto& a) { a.proj = a.hidden; }), "proj >= hidden accepted");
  CHECK(refused([](auto& a) { a.w_hr = nullptr; }), "a projection without w_hr accepted");
  CHECK(refused([&](auto& a) { a.cell = Cell::kGru; a.proj = 0; a.w_ch = in[8].data(); }), "peepholes on a GRU accepted");
  CHECK(refused([](auto& a) { a.variant.clip = -1.0; }), "a negative clip accepted");
  CHECK(refused([](auto& a) { a.variant.act[0].kind = static_cast<Activation>(99); }), "an unknown activation accepted");
  CHECK(refused([](auto& a) { a.variant.reset_after = false; }), "reset_after = false on an LSTM accepted");
  CHECK(!refused([](auto&) {}), "the consistent arguments refused");
}

TEST(variants, stepper_gives_the_bits_of_the_layer_forward) {
  for (const Case& c : cases()) {
    Context ctx(c.name);
    // Two layers: the second takes the first's outputs (R wide).
    const Problem p = make(c, 5, 2, 4, 7, 15);
    const std::int64_t S = p.S, B = p.B, R = p.R;
    const Problem upper = make(c, 5, 2, R, 7, 16);
    vector<vector<float>> in0, in1;
    for (const auto& v : inputs(p)) in0.push_back(as<float>(v));
    for (const auto& v : inputs(upper)) in1.push_back(as<float>(v));
    // The whole sequence, layer by layer, from zero states.
    Problem p0 = p, p1 = upper;
    std::fill(in0[1].begin(), in0[1].end(), 0.0f), std::fill(in0[2].begin(), in0[2].end(), 0.0f);
    std::fill(in1[1].begin(), in1[1].end(), 0.0f), std::fill(in1[2].begin(), in1[2].end(), 0.0f);
    p0.lengths.assign(B, S), p1.lengths.assign(B, S);
    const Results<float> first = forward<float>(p0, in0, false);
    in1[0] = first.out;
    const Results<float> second = forward<float>(p1, in1, false);
    vector<rnnfast::VariantStepperLayer<float>> layers(2);
    for (int k = 0; k < 2; ++k) {
      const vector<vector<float>>& in = k == 0 ? in0 : in1;
      layers[k] = {k == 0 ? p.I : R, in[3].data(), in[4].data(), in[5].data(), in[6].data(), opt(in[7]), opt(in[8])};
    }
    rnnfast::VariantStepper<float> stepper(c.cell, c.variant, p.H, c.proj, B, layers);
    vector<float> y(S * B * R);
    stepper.run(2, in0[0].data(), y.data());  // a chunk of two steps, then one at a time
    for (std::int64_t t = 2; t < S; ++t) stepper.run(1, in0[0].data() + t * B * p.I, y.data() + t * B * R);
    CHECK(check::bitwise_equal(y, second.out), "outputs differ from the layers' at ", check::first_difference(y, second.out));
    const vector<float> h(stepper.h(), stepper.h() + 2 * B * R);
    vector<float> want_h(first.h_n);
    want_h.insert(want_h.end(), second.h_n.begin(), second.h_n.end());
    CHECK(check::bitwise_equal(h, want_h), "the state h differs from the layers' final states");
  }
}
