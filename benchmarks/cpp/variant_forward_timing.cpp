// Times a cell variant's forward (rnnfast::variant_forward) against its base cell's fused forward
// (rnnfast::layer_forward) from C++ alone, the two calls interleaved so that a shared machine's noise
// falls on both: the target is each variant's GFLOP/s within 10% of its base cell's (20% for the
// GRU with the reset gate before the product) at the batch shape.
//
// Build against the kernel library of a build directory (cmake -DRNNFAST_BUILD_PYTHON=OFF is enough):
//   g++ -O2 -std=c++17 -Icsrc benchmarks/cpp/variant_forward_timing.cpp build/librnnfast_kernels.a -lpthread -o vtiming
// Run:  ./vtiming CELL T B I H [THREADS [VARIANT [SPLIT]]]
//   VARIANT: clip | peepholes | proj (P = H/2) | input_forget | hard_sigmoid | reset_before (GRU) | softsign
//   (default: clip). The variant's FLOP count includes the projection's product.
//   SPLIT (both forwards): 0 auto, 1 batch slices (one loop at B=1), 2 hidden units (the variant's team).
// e.g.  ./vtiming lstm 50 64 256 512 2 peepholes      (the bench's batch scenario)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rnnfast/rnnfast.hpp"
#include "timing_common.h"

int main(int argc, char** argv) {
  const timing::Layer layer =
      timing::layer_from_args(argc, argv, " [clip|peepholes|proj|input_forget|hard_sigmoid|reset_before|softsign [split]]");
  const std::string which = argc > 7 ? argv[7] : "clip";
  rnnfast::set_split_policy(static_cast<rnnfast::SplitPolicy>(argc > 8 ? std::atoi(argv[8]) : 0));
  const long T = layer.T, B = layer.B, I = layer.I, H = layer.H, G = layer.G;
  const bool lstm = layer.cell == rnnfast::Cell::kLstm;
  const long P = which == "proj" && lstm ? H / 2 : 0, R = P > 0 ? P : H;
  rnnfast::VariantForward<float> v;
  v.cell = layer.cell;
  if (layer.cell == rnnfast::Cell::kGru) v.variant.act[1] = {rnnfast::Activation::kTanh};
  if (layer.cell == rnnfast::Cell::kRnnTanh) v.variant.act[0] = {rnnfast::Activation::kTanh};
  if (which == "clip") v.variant.clip = 3.0;
  if (which == "input_forget") v.variant.input_forget = true;
  if (which == "reset_before") v.variant.reset_after = false;
  if (which == "hard_sigmoid") v.variant.act[0] = {rnnfast::Activation::kHardSigmoid, 0.2, 0.5};
  if (which == "softsign") v.variant.act[layer.cell == rnnfast::Cell::kRnnTanh ? 0 : 1] = {rnnfast::Activation::kSoftsign};
  const std::vector<float> w_hh_r = timing::random_values(G * H * R, 2), w_hr = timing::random_values(P * H, 5);
  const std::vector<float> w_ch(which == "peepholes" ? 3 * H : 0, 0.05f);
  std::vector<float> out(T * B * H), h_n(B * H), c_n(B * H), vout(T * B * R), vh_n(B * R), vc_n(B * H);
  const rnnfast::LayerForward<float> base = layer.forward_args(out, h_n, c_n);
  v.seq_len = T, v.batch = B, v.input_size = I, v.hidden = H, v.proj = P;
  v.x = layer.x.data(), v.w_ih = layer.w_ih.data(), v.w_hh = w_hh_r.data(), v.b_ih = layer.b_ih.data();
  v.b_hh = layer.b_hh.data(), v.w_hr = P > 0 ? w_hr.data() : nullptr, v.w_ch = w_ch.empty() ? nullptr : w_ch.data();
  v.out = vout.data(), v.h_n = vh_n.data(), v.c_n = lstm ? vc_n.data() : nullptr;
  const int calls = T * B * H > 1000000 ? 15 : 200;
  std::vector<double> base_ms, variant_ms;
  auto time = [](auto&& fn) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  // RNNFAST_TIMING_ONLY=base or =variant runs one of the two (to profile it alone, e.g. with perf stat).
  const char* only = std::getenv("RNNFAST_TIMING_ONLY");
  const bool run_base = only == nullptr || std::string(only) != "variant";
  const bool run_variant = only == nullptr || std::string(only) != "base";
  for (int r = 0; r < calls; ++r) {
    base_ms.push_back(run_base ? time([&] { rnnfast::layer_forward(base); }) : 1.0);
    variant_ms.push_back(run_variant ? time([&] { rnnfast::variant_forward(v); }) : 1.0);
  }
  std::sort(base_ms.begin(), base_ms.end());
  std::sort(variant_ms.begin(), variant_ms.end());
  const double base_flops = 2.0 * T * B * G * H * (I + H), variant_flops = 2.0 * T * B * (G * H * (I + R) + P * H);
  const double base_rate = base_flops / base_ms[0] / 1e6, variant_rate = variant_flops / variant_ms[0] / 1e6;
  std::printf("%s %s T=%ld B=%ld I=%ld H=%ld, %d threads: base min %.3f ms (%.1f GFLOP/s), variant min %.3f ms "
              "(%.1f GFLOP/s): %.2f of the base's rate\n",
              layer.name.c_str(), which.c_str(), T, B, I, H, rnnfast::num_threads(), base_ms[0], base_rate,
              variant_ms[0], variant_rate, variant_rate / base_rate);
  return 0;
}
