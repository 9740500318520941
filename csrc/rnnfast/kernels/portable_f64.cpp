// The float64 kernels of every instruction set: the cells' gate updates (PortableGateUpdates), their
// gate gradients and the bias column sums (GateGradKernels<double>), and the activation hooks, as
// scalar code with the C library's exp and tanh (core/activations.h). Compiled without instruction-set
// flags and without floating-point contraction, so float64 results are the same unfused arithmetic on
// every CPU; the cells' lines are the same as float32's (cells/<cell>.h), through ScalarMath.
#include <cmath>
#include <cstdint>
#include <utility>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/core/activations.h"
#include "rnnfast/step/activation_kernels.h"
#include "rnnfast/step/fused_step.h"
#include "rnnfast/step/gate_grads.h"
#include "rnnfast/step/variant_activations.h"

// The loops of gate_loops_impl.h in a namespace of their own (portable code, one value per "vector").
#define RNNFAST_ISA_NAMESPACE portable
#include "gate_loops_impl.h"
#include "variant_activation_math_impl.h"

namespace rnnfast {
namespace portable {
namespace {

// The cells' math policy on single values (the contract in cells/cell_unit.h).
template <typename T>
struct ScalarMath {
  using Scalar = T;
  using Vec = T;
  static constexpr int kLanes = 1;
  static T load(const T* p) { return *p; }
  static void store(T* p, T v) { *p = v; }
  static T mul_add(T a, T b, T c) { return a * b + c; }  // rounded twice: this file is compiled without contraction
  static T sigmoid(T x) { return rnnfast::sigmoid(x); }
  static T tanh(T x) { return tanh_act(x); }
  static T relu(T x) { return rnnfast::relu(x); }  // NaN passes, as np.maximum
  static T step(T h) { return T(h > 0); }
};

void column_sums(std::int64_t rows, std::int64_t cols, const double* src, std::int64_t ld, double* dst) {
  for (std::int64_t j = 0; j < cols; ++j) dst[j] = 0.0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j) dst[j] += src[r * ld + j];
}

template <double (*kFn)(double)>
void apply(std::int64_t n, const double* in, double* out) {
  for (std::int64_t j = 0; j < n; ++j) out[j] = kFn(in[j]);
}
double exp_f64(double x) { return std::exp(x); }
double sigmoid_f64(double x) { return rnnfast::sigmoid(x); }
double tanh_f64(double x) { return std::tanh(x); }

// The math policy of variant_activation_math_impl.h on single float64 values: the C library's functions.
struct DoublePolicy {
  using Scalar = double;
  using Vec = double;
  static double splat(double v) { return v; }
  static double exp(double x) { return std::exp(x); }
  static double sigmoid(double x) { return rnnfast::sigmoid(x); }
  static double tanh(double x) { return std::tanh(x); }
  static double abs(double x) { return std::fabs(x); }
  static double softplus(double x) { return (x > 0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }
};

inline double clamp_to(double a, double clip) { return clip > 0 ? (a < -clip ? -clip : (a > clip ? clip : a)) : a; }

template <Activation K>
void variant_activate(const ActivationSpec& act, double clip, std::int64_t n, const double* a, double* out) {
  for (std::int64_t j = 0; j < n; ++j)
    out[j] = activation_value<DoublePolicy, K>(clamp_to(a[j], clip), act.alpha, act.beta);
}

template <Activation K>
void variant_gradient(const ActivationSpec& act, double clip, std::int64_t n, const double* a, const double* g,
                      double* d) {
  for (std::int64_t j = 0; j < n; ++j) {
    const double inside = g[j] * activation_derivative<DoublePolicy, K>(clamp_to(a[j], clip), act.alpha, act.beta);
    d[j] = clip > 0 && !(std::fabs(a[j]) <= clip) ? 0.0 : inside;
  }
}

template <int... kKinds>
void variant_activate_any(const ActivationSpec& act, double clip, std::int64_t n, const double* a, double* out,
                          std::integer_sequence<int, kKinds...>) {
  using Fn = void (*)(const ActivationSpec&, double, std::int64_t, const double*, double*);
  constexpr Fn fns[] = {&variant_activate<static_cast<Activation>(kKinds)>...};
  fns[static_cast<int>(act.kind)](act, clip, n, a, out);
}
template <int... kKinds>
void variant_gradient_any(const ActivationSpec& act, double clip, std::int64_t n, const double* a, const double* g,
                          double* d, std::integer_sequence<int, kKinds...>) {
  using Fn = void (*)(const ActivationSpec&, double, std::int64_t, const double*, const double*, double*);
  constexpr Fn fns[] = {&variant_gradient<static_cast<Activation>(kKinds)>...};
  fns[static_cast<int>(act.kind)](act, clip, n, a, g, d);
}
void variant_activate_f64(const ActivationSpec& act, double clip, std::int64_t n, const double* a, double* out) {
  variant_activate_any(act, clip, n, a, out, std::make_integer_sequence<int, kActivationCount>{});
}
void variant_gradient_f64(const ActivationSpec& act, double clip, std::int64_t n, const double* a, const double* g,
                          double* d) {
  variant_gradient_any(act, clip, n, a, g, d, std::make_integer_sequence<int, kActivationCount>{});
}

}  // namespace
}  // namespace portable

const PortableGateUpdates& portable_gate_updates() {
  static const PortableGateUpdates table = [] {
    PortableGateUpdates t{};
    for (int c = 0; c < kCellCount; ++c)
      t.forward_block[c] = with_cell_type(static_cast<Cell>(c), [](auto cell) {
        return &portable::forward_block<decltype(cell), portable::ScalarMath<double>>;
      });
    return t;
  }();
  return table;
}

const GateGradKernels<double>& portable_gate_grads() {
  static const GateGradKernels<double> table = [] {
    GateGradKernels<double> t{};
    for (int c = 0; c < kCellCount; ++c)
      t.gate_gradients[c] = with_cell_type(static_cast<Cell>(c), [](auto cell) {
        return &portable::gate_gradients<decltype(cell), portable::ScalarMath<double>>;
      });
    t.column_sums = &portable::column_sums;
    return t;
  }();
  return table;
}

const ActivationKernels<double>& portable_activations() {
  static const ActivationKernels<double> table{&portable::apply<portable::exp_f64>,
                                                &portable::apply<portable::sigmoid_f64>,
                                                &portable::apply<portable::tanh_f64>};
  return table;
}

const VariantActivationKernels<double>& portable_variant_activations() {
  static const VariantActivationKernels<double> table{&portable::variant_activate_f64,
                                                       &portable::variant_gradient_f64};
  return table;
}

}  // namespace rnnfast
