// reduced: the reduced-precision kernels (reduced/reduced_weights.h), on every instruction set and, on
// the avx512 tier, with and without its extensions (VNNI, BF16):
// - the activation quantization gives the bits of a scalar transcription of its definition;
// - int8 products are exact: equal to int64 sums of (q_a - zero_point) q_w, for every depth tail, unit
//   tail, row count, and the extremes (q_a 0 and 255, q_w -127 and 127);
// - bf16 products are the float32 chain of the definition, bit for bit;
// - one layer's forward gives the same bits for every thread count and split, the stepper fed step by
//   step gives the forward's bits, lengths end rows as in the float32 forward, and a single step agrees
//   with a float64 evaluation of the same quantized arithmetic.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "check.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

using check::Context;
using check::Rng;
using rnnfast::ActivationScale;
using rnnfast::Cell;
using rnnfast::ReducedKernel;
using rnnfast::ReducedWeights;
using rnnfast::WeightType;
using std::int64_t;
using std::vector;
using support::cell_name;

namespace {

// Runs fn(kernel) for each code path of `type` this CPU runs: every instruction set, and the avx512
// tier with and without its extensions; names it in the failure context.
template <typename Fn>
void for_each_path(WeightType type, Fn&& fn) {
  const bool extensions = rnnfast::reduced_extensions();
  support::for_each_isa([&](rnnfast::Isa) {
    std::string done;
    for (bool on : {true, false}) {
      rnnfast::set_reduced_extensions(on);
      const ReducedKernel& kernel = rnnfast::active_reduced_kernel(type);
      if (kernel.name == done) continue;  // this tier has no extension for the type
      done = kernel.name;
      Context ctx(kernel.name);
      fn(kernel);
    }
  });
  rnnfast::set_reduced_extensions(extensions);
}

// The definition of the int8 activation quantization (reduced_weights.h), one value at a time.
void reference_quantize(const float* a, int64_t depth, std::uint8_t* q, ActivationScale& s) {
  float lo = 0.0f, hi = 0.0f;
  bool finite = true;
  for (int64_t k = 0; k < depth; ++k) {
    finite = finite && std::isfinite(a[k]);
    if (std::isfinite(a[k])) lo = std::min(lo, a[k]), hi = std::max(hi, a[k]);
  }
  const float range = hi - lo;
  const float inverse = range > 0.0f ? 255.0f / range : 0.0f;  // infinite below 255 / FLT_MAX
  if (!finite || !std::isfinite(range) || range == 0.0f || !std::isfinite(inverse)) {
    s = ActivationScale{finite && std::isfinite(range) ? 0.0f : NAN, 0};
    std::fill(q, q + depth, 0);
    return;
  }
  const float zero_point = std::min(255.0f, std::nearbyint(-lo * inverse));
  s = ActivationScale{range / 255.0f, static_cast<std::int32_t>(zero_point)};
  for (int64_t k = 0; k < depth; ++k) {
    const float product = a[k] * inverse;  // rounded to float32 before rint, as the kernels do
    q[k] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(product) + zero_point, 0.0f, 255.0f));
  }
}

float bf16_value(std::uint16_t bits) {
  const std::uint32_t wide = std::uint32_t(bits) << 16;
  float v;
  std::memcpy(&v, &wide, 4);
  return v;
}

// Rows of activations that reach the extremes: a row with its minimum and maximum of both signs, a
// one-sided row (zero point 0 or 255), an all-zero row, and plain random rows.
vector<float> activation_rows(int64_t rows, int64_t depth, Rng& rng) {
  vector<float> a(rows * depth);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < depth; ++k) {
      float v = float(rng.uniform(-2.0, 2.0));
      if (i % 5 == 1) v = std::fabs(v);   // non-negative: zero point 0
      if (i % 5 == 2) v = -std::fabs(v);  // non-positive: zero point 255
      if (i % 5 == 3) v = 0.0f;
      a[i * depth + k] = v;
    }
  return a;
}

// int8 weights [rows, depth] with -127 and 127 in them, and scales.
vector<std::int8_t> int8_weights(int64_t rows, int64_t depth, Rng& rng) {
  vector<std::int8_t> w(rows * depth);
  for (auto& v : w) v = static_cast<std::int8_t>(rng.below(255) - 127);
  if (!w.empty()) w[0] = 127, w[w.size() - 1] = -127;
  return w;
}

TEST(reduced, int8_quantization_and_products_exact) {
  Rng rng(11);
  for_each_path(WeightType::kInt8, [&](const ReducedKernel& kernel) {
    for (Cell cell : {Cell::kRnnTanh, Cell::kLstm, Cell::kGru})
      for (int64_t depth : {1, 2, 3, 4, 5, 7, 16, 31, 64, 67, 300, 1030})
        for (int64_t hidden : {1, 15, 16, 17, 40}) {
          const int64_t rows = 1 + rng.below(14), G = rnnfast::gate_count(cell), N = G * hidden;
          Context ctx(cell_name(cell), " K=", depth, " H=", hidden, " rows=", rows);
          const vector<std::int8_t> w = int8_weights(N, depth, rng);
          const vector<float> scales(N, 1.0f);
          const ReducedWeights packed(cell, WeightType::kInt8, hidden, depth, w.data(), scales.data());
          vector<float> a = activation_rows(rows, depth, rng);
          if (rows > 4) a[4 * depth] = NAN;  // a row with NaN: scale NaN
          if (rows > 6)  // a row whose range is below 255 / FLT_MAX: a zero row
            for (int64_t k = 0; k < depth; ++k) a[6 * depth + k] = 1e-38f * float(k % 3);
          if (rows > 8) a[8 * depth] = 3e38f, a[8 * depth + depth - 1] = -3e38f;  // a range that overflows
          const int64_t Kp = packed.padded_depth();
          vector<std::uint8_t> q(rows * Kp), want_q(depth);
          vector<ActivationScale> s(rows);
          kernel.quantize_rows(rows, depth, Kp, a.data(), depth, q.data(), s.data());
          vector<std::uint8_t> operand = q;  // the kernel's own bytes: q - operand_bias
          for (auto& byte : q) byte = static_cast<std::uint8_t>(byte + kernel.operand_bias);
          bool same = true;
          for (int64_t i = 0; i < rows; ++i) {
            ActivationScale want;
            reference_quantize(a.data() + i * depth, depth, want_q.data(), want);
            same = same && std::memcmp(q.data() + i * Kp, want_q.data(), depth) == 0 &&
                   want.zero_point == s[i].zero_point &&
                   (std::memcmp(&want.scale, &s[i].scale, 4) == 0 ||
                    (std::isnan(want.scale) && std::isnan(s[i].scale)));
            for (int64_t k = depth; k < Kp; ++k) same = same && q[i * Kp + k] == 0;
          }
          CHECK(same, "quantized activations differ from the definition");
          vector<std::int32_t> got(rows * N);
          kernel.raw_product(packed, rows, operand.data(), s.data(), got.data());
          vector<std::int32_t> want(rows * N);
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t n = 0; n < N; ++n) {
              std::int64_t sum = 0;
              for (int64_t k = 0; k < depth; ++k)
                sum += (std::int64_t(q[i * Kp + k]) - s[i].zero_point) * std::int64_t(w[n * depth + k]);
              want[i * N + n] = static_cast<std::int32_t>(sum);
            }
          CHECK(check::bitwise_equal(got, want), "int8 products differ at ", check::first_difference(got, want));
        }
  });
}

TEST(reduced, bf16_products_are_the_defined_chain) {
  Rng rng(12);
  for_each_path(WeightType::kBf16, [&](const ReducedKernel& kernel) {
    for (Cell cell : {Cell::kRnnTanh, Cell::kLstm, Cell::kGru})
      for (int64_t depth : {1, 2, 3, 5, 16, 33, 300})
        for (int64_t hidden : {1, 16, 17, 40}) {
          const int64_t rows = 1 + rng.below(14), G = rnnfast::gate_count(cell), N = G * hidden;
          Context ctx(cell_name(cell), " K=", depth, " H=", hidden, " rows=", rows);
          vector<std::uint16_t> w(N * depth);
          for (auto& v : w) v = rnnfast::to_bf16(float(rng.uniform(-3.0, 3.0)));
          const ReducedWeights packed(cell, WeightType::kBf16, hidden, depth, w.data(), nullptr);
          const vector<float> a = activation_rows(rows, depth, rng);
          const int64_t Kp = packed.padded_depth();
          vector<std::uint16_t> q(rows * Kp);
          kernel.quantize_rows(rows, depth, Kp, a.data(), depth, q.data(), nullptr);
          bool rounded = true;
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t k = 0; k < depth; ++k)
              rounded = rounded && q[i * Kp + k] == rnnfast::to_bf16(a[i * depth + k]);
          CHECK(rounded, "activations not rounded to bfloat16 as to_bf16 does");
          vector<float> got(rows * N), want(rows * N);
          kernel.raw_product(packed, rows, q.data(), nullptr, got.data());
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t n = 0; n < N; ++n) {
              float acc = 0.0f;  // the chain: pairs in order, the odd value first, each sum rounded
              for (int64_t k = 0; k < depth; k += 2) {
                if (k + 1 < depth) {
                  const volatile float p = bf16_value(q[i * Kp + k + 1]) * bf16_value(w[n * depth + k + 1]);
                  acc = acc + p;
                }
                const volatile float p = bf16_value(q[i * Kp + k]) * bf16_value(w[n * depth + k]);
                acc = acc + p;
              }
              want[i * N + n] = acc;
            }
          CHECK(check::bitwise_equal(got, want), "bf16 products differ at ", check::first_difference(got, want));
        }
  });
}

// One layer's weights in a reduced type, with the float32 weights they came from.
struct ReducedLayer {
  std::unique_ptr<ReducedWeights> w_ih, w_hh;
  vector<std::int8_t> q_ih, q_hh;
  vector<float> s_ih, s_hh;
  vector<std::uint16_t> b16_ih, b16_hh;
};

std::unique_ptr<ReducedWeights> reduce(Cell cell, WeightType type, int64_t H, int64_t depth, const vector<float>& w,
                                       vector<std::int8_t>& q, vector<float>& s, vector<std::uint16_t>& b16) {
  const int64_t N = rnnfast::gate_count(cell) * H;
  if (type == WeightType::kBf16) {
    b16.resize(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) b16[i] = rnnfast::to_bf16(w[i]);
    return std::make_unique<ReducedWeights>(cell, type, H, depth, b16.data(), nullptr);
  }
  q.resize(w.size());
  s.resize(N);
  for (int64_t n = 0; n < N; ++n) {
    float m = 0.0f;
    for (int64_t k = 0; k < depth; ++k) m = std::max(m, std::fabs(w[n * depth + k]));
    s[n] = m / 127.0f;
    for (int64_t k = 0; k < depth; ++k)
      q[n * depth + k] = static_cast<std::int8_t>(m > 0 ? std::nearbyint(w[n * depth + k] * (127.0f / m)) : 0.0f);
  }
  return std::make_unique<ReducedWeights>(cell, type, H, depth, q.data(), s.data());
}

vector<float> random_vector(int64_t n, double scale, Rng& rng) {
  vector<float> v(n);
  for (float& e : v) e = float(scale * rng.uniform());
  return v;
}

// reduced_layer_forward of `layer` on x [S, B, I] from h0 (and c0 for the LSTM) with both biases,
// into out [S, B, H], h_n and c_n [B, H].
void run_forward(const ReducedLayer& layer, bool lstm, int64_t S, int64_t B, const vector<float>& x,
                 const vector<float>& h0, const vector<float>& c0, const vector<float>& b_ih,
                 const vector<float>& b_hh, const int64_t* lengths, vector<float>& out, vector<float>& h_n,
                 vector<float>& c_n) {
  rnnfast::ReducedLayerForward a;
  a.seq_len = S;
  a.batch = B;
  a.w_ih = layer.w_ih.get();
  a.w_hh = layer.w_hh.get();
  a.x = x.data();
  a.h0 = h0.data();
  a.c0 = lstm ? c0.data() : nullptr;
  a.b_ih = b_ih.data();
  a.b_hh = b_hh.data();
  a.out = out.data();
  a.h_n = h_n.data();
  a.c_n = lstm ? c_n.data() : nullptr;
  a.lengths = lengths;
  rnnfast::reduced_layer_forward(a);
}

TEST(reduced, forward_same_bits_for_every_thread_count_and_split_and_the_stepper) {
  Rng rng(13);
  const int threads_before = rnnfast::num_threads();
  for (WeightType type : {WeightType::kInt8, WeightType::kBf16})
    for_each_path(type, [&](const ReducedKernel&) {
      for (Cell cell : support::kCells)
        // The last shape's gx outgrows the up-front budget: batch slices project step by step, a team up front.
        for (auto shape : {vector<int64_t>{5, 1, 7, 13}, vector<int64_t>{4, 6, 20, 33}, vector<int64_t>{3, 17, 9, 70},
                           vector<int64_t>{10, 24, 20, 160}}) {
          const int64_t S = shape[0], B = shape[1], I = shape[2], H = shape[3], G = rnnfast::gate_count(cell);
          const bool lstm = cell == Cell::kLstm;
          Context ctx(rnnfast::weight_type_name(type), " ", cell_name(cell), " S=", S, " B=", B, " I=", I, " H=", H);
          const vector<float> w_ih = random_vector(G * H * I, 1.0 / std::sqrt(double(I)), rng);
          const vector<float> w_hh = random_vector(G * H * H, 1.0 / std::sqrt(double(H)), rng);
          const vector<float> b_ih = random_vector(G * H, 0.5, rng), b_hh = random_vector(G * H, 0.5, rng);
          const vector<float> x = random_vector(S * B * I, 1.0, rng), h0 = random_vector(B * H, 1.0, rng),
                              c0 = random_vector(B * H, 1.0, rng);
          ReducedLayer layer;
          layer.w_ih = reduce(cell, type, H, I, w_ih, layer.q_ih, layer.s_ih, layer.b16_ih);
          layer.w_hh = reduce(cell, type, H, H, w_hh, layer.q_hh, layer.s_hh, layer.b16_hh);
          vector<int64_t> lengths(B);
          for (int64_t b = 0; b < B; ++b) lengths[b] = std::max<int64_t>(0, S - b * (S + 1) / B);  // S down to 0
          for (bool with_lengths : {false, true}) {
            auto run = [&](int threads, rnnfast::SplitPolicy split, vector<float>& out, vector<float>& h_n,
                           vector<float>& c_n) {
              rnnfast::set_num_threads(threads);
              rnnfast::set_split_policy(split);
              out.assign(S * B * H, NAN);
              h_n.assign(B * H, NAN);
              c_n.assign(B * H, NAN);
              run_forward(layer, lstm, S, B, x, h0, c0, b_ih, b_hh, with_lengths ? lengths.data() : nullptr, out,
                          h_n, c_n);
            };
            vector<float> out1, h1, c1;
            run(1, rnnfast::SplitPolicy::kAuto, out1, h1, c1);
            for (int threads : {2, 3})
              for (auto split : {rnnfast::SplitPolicy::kBatch, rnnfast::SplitPolicy::kHidden}) {
                Context c2(threads, " threads, split ", int(split), with_lengths ? ", lengths" : "");
                vector<float> out, h, c;
                run(threads, split, out, h, c);
                CHECK(check::bitwise_equal(out, out1) && check::bitwise_equal(h, h1) &&
                          (!lstm || check::bitwise_equal(c, c1)),
                      "results depend on the thread count or split: out first differs at ",
                      check::first_difference(out, out1), " of ", out.size(), ", h_n at ",
                      check::first_difference(h, h1));
              }
            rnnfast::set_split_policy(rnnfast::SplitPolicy::kAuto);
            if (with_lengths) {  // past a row's end: zeros; h_n its state at its length
              bool ok = true;
              for (int64_t b = 0; b < B; ++b) {
                for (int64_t t = lengths[b]; t < S; ++t)
                  for (int64_t j = 0; j < H; ++j) ok = ok && out1[(t * B + b) * H + j] == 0.0f;
                for (int64_t j = 0; j < H; ++j)
                  ok = ok && h1[b * H + j] ==
                                 (lengths[b] == 0 ? h0[b * H + j] : out1[((lengths[b] - 1) * B + b) * H + j]);
              }
              CHECK(ok, "lengths: outputs past a row's end not zero, or h_n not its last state");
              continue;
            }
            // The stepper, one step at a time, gives the forward's bits.
            rnnfast::set_num_threads(1);
            rnnfast::ReducedStepperLayer spec;
            spec.w_ih = std::shared_ptr<const ReducedWeights>(layer.w_ih.get(), [](const ReducedWeights*) {});
            spec.w_hh = std::shared_ptr<const ReducedWeights>(layer.w_hh.get(), [](const ReducedWeights*) {});
            spec.b_ih = b_ih.data();
            spec.b_hh = b_hh.data();
            rnnfast::ReducedStepper stepper(B, {spec});
            stepper.reset(h0.data(), lstm ? c0.data() : nullptr);
            vector<float> stepped(S * B * H);
            for (int64_t t = 0; t < S; ++t) stepper.run(1, x.data() + t * B * I, stepped.data() + t * B * H);
            CHECK(check::bitwise_equal(stepped, out1), "the stepper differs from the forward at ",
                  check::first_difference(stepped, out1));
          }
        }
    });
  rnnfast::set_num_threads(threads_before);
}

// One step (S = 1) against float64 arithmetic on the same quantized operands (the kernels' own
// quantization of x and h0): only float32 rounding and the cells' activations differ.
TEST(reduced, one_step_agrees_with_float64_on_the_quantized_operands) {
  Rng rng(14);
  for (WeightType type : {WeightType::kInt8, WeightType::kBf16})
    for_each_path(type, [&](const ReducedKernel& kernel) {
      for (Cell cell : support::kCells)
      for (auto shape : {std::pair<int64_t, int64_t>{3, 37}, {7, 70}, {1, 70}}) {
        // 70: five blocks, so the RNN's four-block tiles run, and at batch 1 the one-row passes over
        // four whole blocks (then a partial one)
        const int64_t B = shape.first, H = shape.second, I = 21, G = rnnfast::gate_count(cell), N = G * H;
        const bool lstm = cell == Cell::kLstm;
        Context ctx(rnnfast::weight_type_name(type), " ", cell_name(cell), " B=", B, " H=", H);
        const vector<float> w_ih = random_vector(N * I, 0.3, rng), w_hh = random_vector(N * H, 0.3, rng);
        const vector<float> b_ih = random_vector(N, 0.5, rng), b_hh = random_vector(N, 0.5, rng);
        const vector<float> x = random_vector(B * I, 1.0, rng), h0 = random_vector(B * H, 1.0, rng),
                            c0 = random_vector(B * H, 1.0, rng);
        ReducedLayer layer;
        layer.w_ih = reduce(cell, type, H, I, w_ih, layer.q_ih, layer.s_ih, layer.b16_ih);
        layer.w_hh = reduce(cell, type, H, H, w_hh, layer.q_hh, layer.s_hh, layer.b16_hh);
        // The products in float64 from the kernel's quantized operands.
        auto product = [&](const ReducedWeights& w, const vector<float>& a, int64_t depth,
                           const vector<std::int8_t>& q_w,
                           const vector<float>& s_w, const vector<std::uint16_t>& b_w) {
          const int64_t Kp = w.padded_depth();
          vector<std::uint8_t> bytes(B * Kp * 2);
          vector<ActivationScale> s(B);
          kernel.quantize_rows(B, depth, Kp, a.data(), depth, bytes.data(), s.data());
          vector<double> y(B * N);
          for (int64_t b = 0; b < B; ++b)
            for (int64_t n = 0; n < N; ++n) {
              double sum = 0.0;
              for (int64_t k = 0; k < depth; ++k)
                sum += type == WeightType::kInt8
                           ? (double(std::uint8_t(bytes[b * Kp + k] + kernel.operand_bias)) - s[b].zero_point) *
                                 double(q_w[n * depth + k]) * s[b].scale *
                                 s_w[n]
                           : double(bf16_value(reinterpret_cast<const std::uint16_t*>(bytes.data())[b * Kp + k])) *
                                 double(bf16_value(b_w[n * depth + k]));
              y[b * N + n] = sum;
            }
          return y;
        };
        const vector<double> gx = product(*layer.w_ih, x, I, layer.q_ih, layer.s_ih, layer.b16_ih);
        const vector<double> gh = product(*layer.w_hh, h0, H, layer.q_hh, layer.s_hh, layer.b16_hh);
        auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
        vector<double> want(B * H);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t j = 0; j < H; ++j) {
            auto pre = [&](int g, bool recurrent_bias) {
              return gx[b * N + g * H + j] + b_ih[g * H + j] + gh[b * N + g * H + j] +
                     (recurrent_bias ? b_hh[g * H + j] : 0.0);
            };
            const double hp = h0[b * H + j];
            if (cell == Cell::kRnnTanh) want[b * H + j] = std::tanh(pre(0, true));
            if (cell == Cell::kRnnRelu) want[b * H + j] = std::max(0.0, pre(0, true));
            if (lstm) {
              const double c = sig(pre(1, true)) * c0[b * H + j] + sig(pre(0, true)) * std::tanh(pre(2, true));
              want[b * H + j] = sig(pre(3, true)) * std::tanh(c);
            }
            if (cell == Cell::kGru) {
              const double r = sig(pre(0, true)), z = sig(pre(1, true));
              const double n = std::tanh(gx[b * N + 2 * H + j] + b_ih[2 * H + j] +
                                         r * (gh[b * N + 2 * H + j] + b_hh[2 * H + j]));
              want[b * H + j] = (1 - z) * n + z * hp;
            }
          }
        vector<float> out(B * H), h_n(B * H), c_n(B * H);
        run_forward(layer, lstm, 1, B, x, h0, c0, b_ih, b_hh, nullptr, out, h_n, c_n);
        const check::Worst w = check::worst_relative(out, want, 1.0);
        CHECK(w.error < 2e-5, check::describe(w));
      }
    });
}

}  // namespace
