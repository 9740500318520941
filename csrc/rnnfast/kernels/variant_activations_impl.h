// The variant activations (step/variant_activations.h) on float32 vectors, for every instruction set.
// Include it only from a kernels/variant_activations_<isa>.cpp file, after its kernels/isa_<isa>.h, and
// invoke RNNFAST_DEFINE_VARIANT_ACTIVATIONS(). Everything lives in the instruction set's namespace (the
// ODR trap, docs/design.md). float64's table is the portable one.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "rnnfast/step/variant_activations.h"
#include "vector_math_impl.h"
#include "variant_activation_math_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// The math policy of variant_activation_math_impl.h on float32 vectors.
struct FloatPolicy {
  using Scalar = float;
  using Vec = FloatVec;
  static Vec splat(float v) { return rnnfast::RNNFAST_ISA_NAMESPACE::splat(v); }
  static Vec exp(Vec x) { return exp_v(x); }
  static Vec sigmoid(Vec x) { return sigmoid_v(x); }
  static Vec tanh(Vec x) { return tanh_v(x); }
  static Vec abs(Vec x) { return abs_v(x); }
  // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), lane by lane through the C library: the one
  // activation without a vector form here (a slower path, documented in docs/design.md).
  static Vec softplus(Vec x) {
    float v[kFloatLanes];
    std::memcpy(v, &x, sizeof(v));
    for (float& e : v) e = (e > 0.0f ? e : 0.0f) + std::log1p(std::exp(-std::fabs(e)));
    Vec r;
    std::memcpy(&r, v, sizeof(r));
    return r;
  }
};

// Runs body(j, count) over [0, n) a vector at a time, the last values through zero-padded stand-ins
// (every lane is independent, so a value's bits do not depend on where it falls).
template <int kInputs, typename Body>
inline void over_vectors(std::int64_t n, const float* const (&in)[kInputs], float* out, Body&& body) {
  const std::int64_t L = kFloatLanes;
  std::int64_t j = 0;
  for (; j + L <= n; j += L) {
    FloatVec v[kInputs];
    for (int q = 0; q < kInputs; ++q) v[q] = VectorMath::load(in[q] + j);
    VectorMath::store(out + j, body(v));
  }
  if (j < n) {
    FloatVec v[kInputs];
    for (int q = 0; q < kInputs; ++q) {
      float t[kFloatLanes] = {};
      std::memcpy(t, in[q] + j, (n - j) * sizeof(float));
      v[q] = VectorMath::load(t);
    }
    float t[kFloatLanes];
    VectorMath::store(t, body(v));
    std::memcpy(out + j, t, (n - j) * sizeof(float));
  }
}

template <Activation K>
void activate_kind(const ActivationSpec& act, double clip, std::int64_t n, const float* a, float* out) {
  const float alpha = static_cast<float>(act.alpha), beta = static_cast<float>(act.beta);
  const float c = static_cast<float>(clip);
  const float* const in[1] = {a};
  if (clip > 0)
    over_vectors<1>(n, in, out, [&](const FloatVec* v) {
      return activation_value<FloatPolicy, K>(at_most(at_least(v[0], -c), c), alpha, beta);
    });
  else
    over_vectors<1>(n, in, out, [&](const FloatVec* v) { return activation_value<FloatPolicy, K>(v[0], alpha, beta); });
}

template <Activation K>
void gradient_kind(const ActivationSpec& act, double clip, std::int64_t n, const float* a, const float* g, float* d) {
  const float alpha = static_cast<float>(act.alpha), beta = static_cast<float>(act.beta);
  const float c = static_cast<float>(clip);
  const float* const in[2] = {a, g};
  if (clip > 0)
    over_vectors<2>(n, in, d, [&](const FloatVec* v) {
      const FloatVec inside = v[1] * activation_derivative<FloatPolicy, K>(at_most(at_least(v[0], -c), c), alpha, beta);
      return abs_v(v[0]) <= c ? inside : splat(0.0f);
    });
  else
    over_vectors<2>(n, in, d, [&](const FloatVec* v) {
      return v[1] * activation_derivative<FloatPolicy, K>(v[0], alpha, beta);
    });
}

using ActivateFn = void (*)(const ActivationSpec&, double, std::int64_t, const float*, float*);
using GradientFn = void (*)(const ActivationSpec&, double, std::int64_t, const float*, const float*, float*);

template <int... kKinds>
constexpr ActivateFn activate_table_entry(int kind, std::integer_sequence<int, kKinds...>) {
  constexpr ActivateFn fns[] = {&activate_kind<static_cast<Activation>(kKinds)>...};
  return fns[kind];
}
template <int... kKinds>
constexpr GradientFn gradient_table_entry(int kind, std::integer_sequence<int, kKinds...>) {
  constexpr GradientFn fns[] = {&gradient_kind<static_cast<Activation>(kKinds)>...};
  return fns[kind];
}

// The switch on the activation, once per call: each kind's loop is compiled for it alone.
void activate(const ActivationSpec& act, double clip, std::int64_t n, const float* a, float* out) {
  activate_table_entry(static_cast<int>(act.kind), std::make_integer_sequence<int, kActivationCount>{})(act, clip, n,
                                                                                                       a, out);
}
void gradient(const ActivationSpec& act, double clip, std::int64_t n, const float* a, const float* g, float* d) {
  gradient_table_entry(static_cast<int>(act.kind), std::make_integer_sequence<int, kActivationCount>{})(act, clip, n,
                                                                                                       a, g, d);
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

#define RNNFAST_DEFINE_VARIANT_ACTIVATIONS()                                                    \
  namespace rnnfast {                                                                           \
  namespace RNNFAST_ISA_NAMESPACE {                                                             \
  template <>                                                                                   \
  const VariantActivationKernels<float>& isa_table<VariantActivationKernels<float>>() {         \
    static const VariantActivationKernels<float> k{&activate, &gradient};                       \
    return k;                                                                                   \
  }                                                                                             \
  template <>                                                                                   \
  const VariantActivationKernels<double>& isa_table<VariantActivationKernels<double>>() {       \
    return portable_variant_activations();                                                      \
  }                                                                                             \
  }                                                                                             \
  }
