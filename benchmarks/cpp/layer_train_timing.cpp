// Times one training step of a layer from C++ alone: rnnfast::layer_forward with a workspace, then
// rnnfast::layer_backward (the README's train scenario without Python). Prints the minimum and median
// of 60 forward + backward pairs, and the forward's and the backward's own medians.
//
// Build against the kernel library of a build directory (cmake -DRNNFAST_BUILD_PYTHON=OFF is enough):
//   g++ -O2 -std=c++17 -Icsrc benchmarks/cpp/layer_train_timing.cpp build/librnnfast_kernels.a -lpthread -o train_timing
// Run:  ./train_timing CELL T B I H [THREADS]      (CELL: rnn | lstm | gru;  THREADS: default 1)
// e.g.  ./train_timing lstm 50 32 128 256 2       (the README's train scenario)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "rnnfast/rnnfast.hpp"
#include "timing_common.h"

int main(int argc, char** argv) {
  const timing::Layer layer = timing::layer_from_args(argc, argv, "");
  const long T = layer.T, B = layer.B, I = layer.I, H = layer.H;
  const rnnfast::Cell cell = layer.cell;
  const long G = layer.G, W = static_cast<long>(rnnfast::workspace_width(cell, H));
  auto zeros = [](long n) { return std::vector<float>(static_cast<std::size_t>(n)); };
  const std::vector<float> d_out = timing::random_values(T * B * H, 5);
  auto out = zeros(T * B * H), h_n = zeros(B * H), c_n = zeros(B * H), ws = zeros(T * B * W);
  auto d_x = zeros(T * B * I), d_h0 = zeros(B * H), d_c0 = zeros(B * H), d_w_ih = zeros(G * H * I),
       d_w_hh = zeros(G * H * H), d_b_ih = zeros(G * H), d_b_hh = zeros(G * H);
  rnnfast::LayerForward<float> f = layer.forward_args(out, h_n, c_n);
  f.workspace = ws.data();
  rnnfast::LayerBackward<float> b;
  layer.describe(b);
  b.out = out.data();
  b.workspace = ws.data();
  b.d_out = d_out.data();
  b.d_x = d_x.data();
  b.d_h0 = d_h0.data();
  b.d_c0 = cell == rnnfast::Cell::kLstm ? d_c0.data() : nullptr;
  b.d_w_ih = d_w_ih.data();
  b.d_w_hh = d_w_hh.data();
  b.d_b_ih = d_b_ih.data();
  b.d_b_hh = d_b_hh.data();
  const int calls = 60;
  std::vector<double> total, forward, backward;
  for (int r = 0; r < calls + 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    rnnfast::layer_forward(f);
    const auto t1 = std::chrono::steady_clock::now();
    rnnfast::layer_backward(b);
    const auto t2 = std::chrono::steady_clock::now();
    if (r < 3) continue;  // warm up
    forward.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    backward.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
  }
  for (auto* v : {&total, &forward, &backward}) std::sort(v->begin(), v->end());
  // Forward 2*T*B*G*H*(I+H); backward twice that (the input and weight gradients).
  const double flops = 3 * 2.0 * T * B * G * H * (I + H);
  std::printf("%s T=%ld B=%ld I=%ld H=%ld, %d threads: min %.3f ms (%.1f GFLOP/s), median %.3f "
              "(forward %.3f, backward %.3f)\n",
              layer.name.c_str(), T, B, I, H, rnnfast::num_threads(), total[0], flops / total[0] / 1e6, total[calls / 2],
              forward[calls / 2], backward[calls / 2]);
  return 0;
}
