// What the hardware allows a batch-1 forward, measured on this machine (no rnnfast code): at batch 1
// each step is a matrix-vector product with W_hh, whose G*H*H floats are too many for L1 and are read
// again from L2 at every step; the step cannot take less than the time one core needs to stream its
// share of W_hh from L2 through multiply-adds. This tool measures that rate the way the recurrent tile
// reads (four panels of 64 columns side by side, one broadcast value of h per depth row) and the
// core's multiply-add peak, and prints the floor they give a whole call:
//   steps x (W_hh bytes per thread / streaming rate)  +  input projection flops / (threads x peak)
// leaving out the gates, the hand-over between threads and the call itself, so a real call is slower.
//
// Build (the vector width is the compiler's; on this Zen 4, AVX-512):
//   g++ -O2 -std=c++17 -mavx512f -mfma -ffp-contract=fast benchmarks/cpp/batch1_floor.cpp -o batch1_floor
// Run:  ./batch1_floor CELL T I H [THREADS]     e.g. ./batch1_floor lstm 100 64 128 2  (the edge scenario)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

typedef float Vec __attribute__((vector_size(64)));
constexpr int kLanes = 16, kPanels = 4, kVectorsPerPanel = 4;

// Results are summed into here, so that the compiler keeps the loops that compute them.
volatile float g_sink;
void keep(const void* values, std::size_t bytes) {
  float sum = 0, v;
  for (std::size_t i = 0; i < bytes; i += sizeof(float)) {
    std::memcpy(&v, static_cast<const char*>(values) + i, sizeof(v));
    sum += v;
  }
  g_sink = sum;
}

template <typename Fn>
double best_seconds(int repeats, Fn&& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// Seconds for one pass of the recurrent tile's reads over `bytes` of panels (kPanels panels of
// kVectorsPerPanel vectors per depth row), after the buffer has settled in L2.
double stream_seconds(std::size_t bytes) {
  const std::size_t floats = bytes / sizeof(float), row = kPanels * kVectorsPerPanel * kLanes;
  const std::size_t depth = floats / row, panel = depth * kVectorsPerPanel * kLanes;
  float* w = static_cast<float*>(std::aligned_alloc(64, depth * row * sizeof(float)));
  for (std::size_t i = 0; i < depth * row; ++i) w[i] = 1e-3f * static_cast<float>(i % 7);
  std::vector<float> h(depth, 0.5f);
  const double seconds = best_seconds(2000, [&] {
    Vec acc[kPanels][kVectorsPerPanel] = {};  // in registers
    for (std::size_t k = 0; k < depth; ++k) {
      const float hk = h[k];
#pragma GCC unroll 4
      for (int p = 0; p < kPanels; ++p)
#pragma GCC unroll 4
        for (int v = 0; v < kVectorsPerPanel; ++v) {
          Vec b;
          std::memcpy(&b, w + p * panel + (k * kVectorsPerPanel + v) * kLanes, sizeof(b));
          acc[p][v] += hk * b;
        }
    }
    keep(acc, sizeof(acc));
  });
  std::free(w);
  return seconds;
}

// One core's float32 multiply-add rate (flops per second): 16 independent chains of register FMAs.
double fma_peak() {
  constexpr long kIterations = 1 << 20;
  const double seconds = best_seconds(20, [&] {
    const Vec a = Vec{} + 0.999f, b = Vec{} + 1e-4f;
    Vec acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = Vec{} + static_cast<float>(i);
    for (long n = 0; n < kIterations; ++n) {
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) acc[i] = acc[i] * a + b;
    }
    keep(acc, sizeof(acc));
  });
  return 2.0 * kLanes * 16 * kIterations / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s rnn|lstm|gru T I H [threads]\n", argv[0]);
    return 2;
  }
  const std::string cell = argv[1];
  const long T = std::atol(argv[2]), I = std::atol(argv[3]), H = std::atol(argv[4]);
  const int threads = argc > 5 ? std::atoi(argv[5]) : 1;
  const long G = cell == "lstm" ? 4 : cell == "gru" ? 3 : 1;
  if (T <= 0 || I < 0 || H <= 0 || threads <= 0 || (cell != "lstm" && cell != "gru" && cell != "rnn")) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  const std::size_t share = static_cast<std::size_t>(G * H * H * sizeof(float)) / threads;  // per thread
  const double step = stream_seconds(share), peak = fma_peak();
  const double projection = 2.0 * T * G * H * I / (threads * peak);
  std::printf("%s T=%ld B=1 I=%ld H=%ld, %d threads: W_hh share %.0f KiB/thread streamed in %.3f us (%.1f GB/s); "
              "FMA peak %.1f GFLOP/s/core\n",
              cell.c_str(), T, I, H, threads, share / 1024.0, step * 1e6, share / step / 1e9, peak / 1e9);
  std::printf("floor: %ld steps x %.3f us + projection %.1f us = %.1f us (%.3f ms)\n", T, step * 1e6,
              projection * 1e6, (T * step + projection) * 1e6, (T * step + projection) * 1e3);
  return 0;
}
