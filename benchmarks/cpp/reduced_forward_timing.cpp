// Times rnnfast::reduced_layer_forward (int8 or bf16 weights) beside layer_forward (float32) from C++
// alone, alternating them call by call so that a shared machine's noise falls on both alike. Prints
// each one's minimum, first quartile and median of 200 calls (15 for large shapes) and the ratio.
//
// Build against the kernel library of a build directory:
//   g++ -O2 -std=c++17 -Icsrc benchmarks/cpp/reduced_forward_timing.cpp build/librnnfast_kernels.a -lpthread -o rtiming
// Run:  ./rtiming CELL T B I H [THREADS [TYPE [SPLIT]]]
//   TYPE: int8 (default) | bf16;  SPLIT: 0 auto, 1 batch slices, 2 hidden units (layer/tuning.h)
// e.g.  ./rtiming lstm 50 64 256 512 2 int8      (the bench's batch LSTM)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rnnfast/rnnfast.hpp"
#include "timing_common.h"

namespace {

// W [rows, depth] in the weight type: int8 rows quantized symmetric per row (reduced/reduced_weights.h)
// with their scales, or bfloat16 bits.
rnnfast::ReducedWeights reduce(rnnfast::Cell cell, rnnfast::WeightType type, long hidden, long depth,
                               const std::vector<float>& w) {
  const long rows = static_cast<long>(w.size()) / std::max(depth, 1L);
  if (type == rnnfast::WeightType::kBf16) {
    std::vector<std::uint16_t> bits(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) bits[i] = rnnfast::to_bf16(w[i]);
    return rnnfast::ReducedWeights(cell, type, hidden, depth, bits.data(), nullptr);
  }
  std::vector<std::int8_t> q(w.size());
  std::vector<float> scales(static_cast<std::size_t>(rows));
  for (long r = 0; r < rows; ++r) {
    float m = 0.0f;
    for (long k = 0; k < depth; ++k) m = std::max(m, std::fabs(w[r * depth + k]));
    scales[r] = m / 127.0f;
    const float inverse = m > 0.0f ? 127.0f / m : 0.0f;
    for (long k = 0; k < depth; ++k) q[r * depth + k] = static_cast<std::int8_t>(std::nearbyint(w[r * depth + k] * inverse));
  }
  return rnnfast::ReducedWeights(cell, type, hidden, depth, q.data(), scales.data());
}

struct Stats {
  std::vector<double> ms;
  void print(const char* what, double flops) {
    std::sort(ms.begin(), ms.end());
    std::printf("  %-8s min %8.3f ms (%6.1f GOP/s), p25 %8.3f, median %8.3f\n", what, ms[0], flops / ms[0] / 1e6,
                ms[ms.size() / 4], ms[ms.size() / 2]);
  }
};

template <typename Fn>
double time_ms(Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const timing::Layer layer = timing::layer_from_args(argc, argv, " [int8|bf16 [split]]");
  const rnnfast::WeightType type = rnnfast::parse_weight_type(argc > 7 ? argv[7] : "int8");
  rnnfast::set_split_policy(static_cast<rnnfast::SplitPolicy>(argc > 8 ? std::atoi(argv[8]) : 0));
  const long T = layer.T, B = layer.B, I = layer.I, H = layer.H, G = layer.G;
  std::vector<float> out(static_cast<std::size_t>(T * B * H)), h_n(static_cast<std::size_t>(B * H)),
      c_n(static_cast<std::size_t>(B * H));
  const rnnfast::LayerForward<float> a = layer.forward_args(out, h_n, c_n);
  const rnnfast::ReducedWeights w_ih = reduce(layer.cell, type, H, I, layer.w_ih);
  const rnnfast::ReducedWeights w_hh = reduce(layer.cell, type, H, H, layer.w_hh);
  rnnfast::ReducedLayerForward r;
  r.seq_len = T;
  r.batch = B;
  r.w_ih = &w_ih;
  r.w_hh = &w_hh;
  r.x = layer.x.data();
  r.b_ih = layer.b_ih.data();
  r.b_hh = layer.b_hh.data();
  r.out = out.data();
  r.h_n = h_n.data();
  r.c_n = c_n.data();
  const int calls = T * B * H > 1000000 ? 15 : 200;
  Stats f32, reduced;
  rnnfast::layer_forward(a);
  rnnfast::reduced_layer_forward(r);
  for (int i = 0; i < calls; ++i) {
    f32.ms.push_back(time_ms([&] { rnnfast::layer_forward(a); }));
    reduced.ms.push_back(time_ms([&] { rnnfast::reduced_layer_forward(r); }));
  }
  const double ops = 2.0 * T * B * G * H * (I + H);
  std::printf("%s T=%ld B=%ld I=%ld H=%ld, %d threads, %s (%s):\n", layer.name.c_str(), T, B, I, H,
              rnnfast::num_threads(), rnnfast::weight_type_name(type),
              rnnfast::active_reduced_kernel(type).name);
  f32.print("float32", ops);
  reduced.print(rnnfast::weight_type_name(type), ops);
  std::printf("  ratio of minima %.2fx, of medians %.2fx\n", f32.ms[0] / reduced.ms[0],
              f32.ms[calls / 2] / reduced.ms[calls / 2]);
  return 0;
}
