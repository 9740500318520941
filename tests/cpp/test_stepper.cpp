// stepper: a stack of layers run by rnnfast::Stepper in chunks of 1, 2, 4, ... steps, bit-identical to
// layer_forward of the same layers stacked by hand (outputs and final state), and after reset() to one
// call over the whole sequence. Every cell, with and without biases and initial state, on every
// instruction set, float and double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "check.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

using check::Context;
using check::Rng;
using rnnfast::Cell;
using rnnfast::Isa;
using std::int64_t;
using std::vector;
using support::cell_name;
using support::type_name;

namespace {

// A stack of L layers run by the Stepper in chunks, against layer_forward layer by layer (layer k+1
// takes layer k's out): outputs and final state bit-identical.
template <typename T>
void test_stepper_case(Cell cell, int64_t B, int64_t I, int64_t H, int64_t L, int64_t steps, bool biases,
                       bool state, Rng& rng) {
  Context ctx("stepper ", cell_name(cell), " ", type_name<T>(), " B=", B, " I=", I, " H=", H, " L=", L,
              " steps=", steps, biases ? "" : " no biases", state ? "" : " zero state");
  const int64_t GH = rnnfast::gate_count(cell) * H;
  const bool lstm = cell == Cell::kLstm;
  auto random = [&](int64_t n, double scale) {
    vector<T> v(n);
    for (T& e : v) e = T(scale * rng.uniform());
    return v;
  };
  vector<vector<T>> w_ih, w_hh, b_ih, b_hh;
  vector<rnnfast::StepperLayer<T>> layers;
  for (int64_t k = 0; k < L; ++k) {
    const int64_t in = k == 0 ? I : H;
    w_ih.push_back(random(GH * in, 1.0 / std::sqrt(double(in))));
    w_hh.push_back(random(GH * H, 1.0 / std::sqrt(double(H))));
    b_ih.push_back(random(GH, 0.5));
    b_hh.push_back(random(GH, 0.5));
  }
  for (int64_t k = 0; k < L; ++k)
    layers.push_back({k == 0 ? I : H, w_ih[k].data(), w_hh[k].data(), biases ? b_ih[k].data() : nullptr,
                      biases ? b_hh[k].data() : nullptr});
  const vector<T> x = random(steps * B * I, 1.0), h0 = random(L * B * H, 1.0), c0 = random(L * B * H, 1.0);

  rnnfast::Stepper<T> stepper(cell, H, B, layers);
  stepper.reset(state ? h0.data() : nullptr, state && lstm ? c0.data() : nullptr);
  vector<T> y(steps * B * H);
  for (int64_t t = 0, chunk = 1; t < steps; t += chunk, chunk *= 2) {  // chunks of 1, 2, 4, ...
    chunk = std::min(chunk, steps - t);
    stepper.run(chunk, x.data() + t * B * I, y.data() + t * B * H);
  }

  vector<T> input = x, h_n_all, c_n_all;
  for (int64_t k = 0; k < L; ++k) {
    vector<T> out(steps * B * H), h_n(B * H), c_n(B * H);
    rnnfast::LayerForward<T> a;
    a.cell = cell;
    a.seq_len = steps, a.batch = B, a.input_size = k == 0 ? I : H, a.hidden = H;
    a.x = input.data();
    a.h0 = state ? h0.data() + k * B * H : nullptr;
    a.c0 = state && lstm ? c0.data() + k * B * H : nullptr;
    a.w_ih = w_ih[k].data();
    a.w_hh = w_hh[k].data();
    a.b_ih = biases ? b_ih[k].data() : nullptr;
    a.b_hh = biases ? b_hh[k].data() : nullptr;
    a.out = out.data();
    a.h_n = h_n.data();
    a.c_n = lstm ? c_n.data() : nullptr;
    rnnfast::layer_forward(a);
    input = out;
    h_n_all.insert(h_n_all.end(), h_n.begin(), h_n.end());
    c_n_all.insert(c_n_all.end(), c_n.begin(), c_n.end());
  }
  CHECK(check::bitwise_equal(y, input), "outputs differ from layer_forward at element ",
        check::first_difference(y, input), " (", y[check::first_difference(y, input) % y.size()], " vs ",
        input[check::first_difference(y, input) % y.size()], ")");
  const vector<T> h(stepper.h(), stepper.h() + L * B * H), c(stepper.c(), stepper.c() + L * B * H);
  CHECK(check::bitwise_equal(h, h_n_all), "state h differs from layer_forward's h_n at element ",
        check::first_difference(h, h_n_all));
  if (lstm)
    CHECK(check::bitwise_equal(c, c_n_all), "state c differs from layer_forward's c_n at element ",
          check::first_difference(c, c_n_all));

  // reset() restarts: the whole sequence in one call gives the same outputs again.
  stepper.reset(state ? h0.data() : nullptr, state && lstm ? c0.data() : nullptr);
  vector<T> again(steps * B * H);
  stepper.run(steps, x.data(), again.data());
  CHECK(check::bitwise_equal(again, y), "after reset, one call of ", steps, " steps differs from chunked calls");
}

template <typename T>
void test_stepper(Rng& rng) {
  for (Cell cell : support::kCells) {
    test_stepper_case<T>(cell, 3, 5, 11, 2, 7, true, true, rng);
    test_stepper_case<T>(cell, 1, 3, 4, 3, 5, false, false, rng);
    test_stepper_case<T>(cell, 7, 33, 18, 2, 4, true, true, rng);
  }
}

}  // namespace

// One generator per instruction set, shared by the float then the double cases.
TEST(stepper, bit_identical_to_stacked_layer_forward) {
  support::for_each_isa([](Isa) {
    Rng rng(5);
    test_stepper<float>(rng);
    test_stepper<double>(rng);
  });
}
