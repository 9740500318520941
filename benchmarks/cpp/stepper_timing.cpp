// Times rnnfast::Stepper from C++ alone (no Python, no peers): streaming inference, one step per call,
// as the README's stream scenario runs it. Prints the minimum, first quartile and median of a step over
// 4,000 calls (after 1,000 to warm up), in microseconds.
//
// Build against the kernel library of a build directory (cmake -DRNNFAST_BUILD_PYTHON=OFF is enough):
//   g++ -O2 -std=c++17 -Icsrc benchmarks/cpp/stepper_timing.cpp build/librnnfast_kernels.a -lpthread -o stepper_timing
// Run:  ./stepper_timing CELL T B I H [THREADS [LAYERS [SPLIT]]]    (T: ignored, the step count is fixed)
//   SPLIT: 0 auto (by kSharedStepWork), 1 every step alone, 2 every step shared (layer/tuning.h)
// e.g.  ./stepper_timing lstm 1 1 64 128 2      (the README's stream scenario)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "timing_common.h"

int main(int argc, char** argv) {
  const timing::Layer layer = timing::layer_from_args(argc, argv, " [layers [split]]");
  const long layers = argc > 7 ? std::atol(argv[7]) : 1;
  if (argc > 8) rnnfast::set_split_policy(static_cast<rnnfast::SplitPolicy>(std::atoi(argv[8])));
  std::vector<rnnfast::StepperLayer<float>> specs(static_cast<std::size_t>(layers));
  const std::vector<float> w_ih_upper = timing::random_values(layer.G * layer.H * layer.H, 5);
  for (long k = 0; k < layers; ++k) {
    rnnfast::StepperLayer<float>& s = specs[static_cast<std::size_t>(k)];
    s.input_size = k == 0 ? layer.I : layer.H;
    s.w_ih = k == 0 ? layer.w_ih.data() : w_ih_upper.data();
    s.w_hh = layer.w_hh.data();
    s.b_ih = layer.b_ih.data();
    s.b_hh = layer.b_hh.data();
  }
  rnnfast::Stepper<float> stepper(layer.cell, layer.H, layer.B, specs);
  const std::vector<float> x = timing::random_values(layer.B * layer.I, 7);
  std::vector<float> y(static_cast<std::size_t>(layer.B * layer.H));
  constexpr int kWarmup = 1000, kCalls = 4000;
  std::vector<double> us(kCalls);
  for (int i = 0; i < kWarmup + kCalls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    stepper.run(1, x.data(), y.data());
    const auto end = std::chrono::steady_clock::now();
    if (i >= kWarmup) us[i - kWarmup] = std::chrono::duration<double, std::micro>(end - start).count();
  }
  std::sort(us.begin(), us.end());
  std::printf("%s B=%ld I=%ld H=%ld, %ld layer(s), %d threads, split %d: min %.2f us, p25 %.2f, median %.2f\n",
              layer.name.c_str(), layer.B, layer.I, layer.H, layers, rnnfast::num_threads(), static_cast<int>(rnnfast::split_policy()), us[0], us[kCalls / 4],
              us[kCalls / 2]);
  return 0;
}
