// What the C++ timing tools (layer_forward_timing.cpp, layer_train_timing.cpp) share: their leading
// arguments, a layer's random float32 inputs and weights, and the fields every layer struct has.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "rnnfast/rnnfast.hpp"

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
  std::string name;  // as given: rnn, lstm or gru
  rnnfast::Cell cell;
  long T, B, I, H, G;
  std::vector<float> x, w_ih, w_hh, b_ih, b_hh;

  Layer(const std::string& name_, long T_, long B_, long I_, long H_)
      : name(name_),
        cell(cell_named(name_)),
        T(T_),
        B(B_),
        I(I_),
        H(H_),
        G(rnnfast::gate_count(cell)),
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

  // An inference forward of this layer with both biases, writing out [T, B, H], h_n and c_n [B, H].
  rnnfast::LayerForward<float> forward_args(std::vector<float>& out, std::vector<float>& h_n,
                                            std::vector<float>& c_n) const {
    rnnfast::LayerForward<float> a;
    describe(a);
    a.b_ih = b_ih.data();
    a.b_hh = b_hh.data();
    a.out = out.data();
    a.h_n = h_n.data();
    a.c_n = c_n.data();
    return a;
  }
};

// The arguments every tool starts with, CELL T B I H [THREADS]: the layer, with the thread count (default
// 1) set. Without them, prints the usage (`more`: the tool's further arguments, after THREADS) and exits
// with status 2.
inline Layer layer_from_args(int argc, char** argv, const char* more) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s rnn|lstm|gru T B I H [threads%s]\n", argv[0], more);
    std::exit(2);
  }
  rnnfast::set_num_threads(argc > 6 ? std::atoi(argv[6]) : 1);
  return Layer(argv[1], std::atol(argv[2]), std::atol(argv[3]), std::atol(argv[4]), std::atol(argv[5]));
}

}  // namespace timing
