// Times rnnfast::layer_forward from C++ alone (no Python, no peers): the steadiest figures on a shared
// machine, for comparing kernel and threading changes. Prints the minimum, first quartile and median of
// 200 calls (15 for large shapes).
//
// Build against the kernel library of a build directory (cmake -DRNNFAST_BUILD_PYTHON=OFF is enough):
//   g++ -O2 -std=c++17 -Icsrc benchmarks/cpp/layer_forward_timing.cpp build/librnnfast_kernels.a -lpthread -o timing
// Run:  ./timing CELL T B I H [THREADS [SPLIT [PROJECTION]]]
//   CELL: rnn | lstm | gru;  THREADS: default 1;  SPLIT: 0 auto, 1 batch slices, 2 hidden units;
//   PROJECTION: 0 auto, 1 up front, 2 per step, 3 in the step, 4 ahead (layer/tuning.h, ProjectionPolicy)
// e.g.  ./timing lstm 100 1 64 128 2      (the README's edge scenario)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "rnnfast/rnnfast.hpp"
#include "timing_common.h"

int main(int argc, char** argv) {
  const timing::Layer layer = timing::layer_from_args(argc, argv, " [split [projection]]");
  const long T = layer.T, B = layer.B, I = layer.I, H = layer.H;
  const int split = argc > 7 ? std::atoi(argv[7]) : 0, projection = argc > 8 ? std::atoi(argv[8]) : 0;
  rnnfast::set_split_policy(static_cast<rnnfast::SplitPolicy>(split));
  rnnfast::set_projection_policy(static_cast<rnnfast::ProjectionPolicy>(projection));
  const long G = layer.G;
  std::vector<float> out(static_cast<std::size_t>(T * B * H)), h_n(static_cast<std::size_t>(B * H)),
      c_n(static_cast<std::size_t>(B * H));
  const rnnfast::LayerForward<float> a = layer.forward_args(out, h_n, c_n);
  const int calls = T * B * H > 1000000 ? 15 : 200;
  std::vector<double> ms;
  for (int r = 0; r < calls; ++r) {
    const auto start = std::chrono::steady_clock::now();
    rnnfast::layer_forward(a);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  const double flops = 2.0 * T * B * G * H * (I + H);
  std::printf("%s T=%ld B=%ld I=%ld H=%ld, %d threads, split %d: min %.3f ms (%.1f GFLOP/s), p25 %.3f, median %.3f\n",
              layer.name.c_str(), T, B, I, H, rnnfast::num_threads(), split, ms[0], flops / ms[0] / 1e6, ms[calls / 4], ms[calls / 2]);
  return 0;
}
