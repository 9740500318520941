// What the C++ timing tools (layer_forward_timing.cpp, layer_train_timing.cpp) share: the cell by
// name, a layer's random float32 inputs and weights, and the fields every layer struct has.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "rnnfast/rnn.h"

namespace timing {

inline rnnfast::Cell cell_named(const std::string& name) {
  return name == "lstm" ? rnnfast::Cell::kLstm : name == "gru" ? rnnfast::Cell::kGru : rnnfast::Cell::kRnnTanh;
}

// n values drawn from N(0, 0.1^2), the same for the same seed.
inline std::vector<float> random_values(long n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& e : v) e = normal(rng);
  return v;
}

// x [T, B, I], w_ih [G*H, I], w_hh [G*H, H], b_ih and b_hh [G*H], random (seeds 0 to 4).
struct Layer {
  rnnfast::Cell cell;
  long T, B, I, H, G;
  std::vector<float> x, w_ih, w_hh, b_ih, b_hh;

  Layer(rnnfast::Cell cell_, long T_, long B_, long I_, long H_)
      : cell(cell_),
        T(T_),
        B(B_),
        I(I_),
        H(H_),
        G(rnnfast::gate_count(cell_)),
        x(random_values(T * B * I, 0)),
        w_ih(random_values(G * H * I, 1)),
        w_hh(random_values(G * H * H, 2)),
        b_ih(random_values(G * H, 3)),
        b_hh(random_values(G * H, 4)) {}

  // Sets the fields LayerForward and LayerBackward share: cell, sizes, x and the weights.
  template <typename Args>
  void describe(Args& a) const {
    a.cell = cell;
    a.seq_len = T;
    a.batch = B;
    a.input_size = I;
    a.hidden = H;
    a.x = x.data();
    a.w_ih = w_ih.data();
    a.w_hh = w_hh.data();
  }
};

}  // namespace timing
