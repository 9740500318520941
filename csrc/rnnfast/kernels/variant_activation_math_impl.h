// The variant activations' values and derivatives (step/variant_activations.h), written once for any
// math policy P: float32 vectors (kernels/variant_activations_impl.h) or single float64 values
// (kernels/portable_f64.cpp). The lines use only P's operations and GCC's vector conditionals, which
// for a scalar type are the plain ?: operator, so both element types compute the same formulas.
//
// P provides: Vec, Scalar, splat(Scalar), exp (clamped so that it cannot overflow in float32; the C
// library's in float64), sigmoid, tanh, abs, softplus, and the comparisons of Vec.
//
// Include it only inside an instruction set's namespace (the ODR trap, docs/design.md).
#include <cstdint>

#include "rnnfast/core/cell_variant.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// act(a) for the activation K with the spec's alpha and beta.
template <class P, Activation K>
inline typename P::Vec activation_value(typename P::Vec a, typename P::Scalar alpha, typename P::Scalar beta) {
  using Vec = typename P::Vec;
  const Vec zero = P::splat(0), one = P::splat(1);
  if constexpr (K == Activation::kSigmoid) return P::sigmoid(a);
  if constexpr (K == Activation::kTanh) return P::tanh(a);
  if constexpr (K == Activation::kRelu) return a < zero ? zero : a;  // NaN passes, as np.maximum
  if constexpr (K == Activation::kAffine) return alpha * a + beta;
  if constexpr (K == Activation::kLeakyRelu) return a < zero ? alpha * a : a;
  if constexpr (K == Activation::kThresholdedRelu) return a > P::splat(alpha) ? a : zero;
  if constexpr (K == Activation::kScaledTanh) return alpha * P::tanh(beta * a);
  if constexpr (K == Activation::kHardSigmoid) {
    const Vec y = alpha * a + beta;
    return y < zero ? zero : (y > one ? one : y);
  }
  if constexpr (K == Activation::kElu) return a < zero ? alpha * (P::exp(a) - one) : a;
  if constexpr (K == Activation::kSoftsign) return a / (one + P::abs(a));
  if constexpr (K == Activation::kSoftplus) return P::softplus(a);
  if constexpr (K == Activation::kSelu) {
    using S = typename P::Scalar;
    return S(kSeluScale) * (a < zero ? S(kSeluAlpha) * (P::exp(a) - one) : a);
  }
  if constexpr (K == Activation::kExponential) return P::exp(a);
  if constexpr (K == Activation::kSilu) return a * P::sigmoid(a);
  if constexpr (K == Activation::kRelu6) return a < zero ? zero : (a > P::splat(6) ? P::splat(6) : a);
}

// act'(a), PyTorch's value at the kinks.
template <class P, Activation K>
inline typename P::Vec activation_derivative(typename P::Vec a, typename P::Scalar alpha, typename P::Scalar beta) {
  using Vec = typename P::Vec;
  const Vec zero = P::splat(0), one = P::splat(1);
  if constexpr (K == Activation::kSigmoid) {
    const Vec s = P::sigmoid(a);
    return s * (one - s);
  }
  if constexpr (K == Activation::kTanh) {
    const Vec t = P::tanh(a);
    return one - t * t;
  }
  if constexpr (K == Activation::kRelu) return a > zero ? one : zero;
  if constexpr (K == Activation::kAffine) return P::splat(alpha) + zero * a;  // NaN in, NaN out
  if constexpr (K == Activation::kLeakyRelu) return a > zero ? one : P::splat(alpha);
  if constexpr (K == Activation::kThresholdedRelu) return a > P::splat(alpha) ? one : zero;
  if constexpr (K == Activation::kScaledTanh) {
    const Vec t = P::tanh(beta * a);
    return (alpha * beta) * (one - t * t);
  }
  if constexpr (K == Activation::kHardSigmoid) {
    const Vec y = alpha * a + beta;
    return ((y > zero) & (y < one)) ? P::splat(alpha) : zero;
  }
  if constexpr (K == Activation::kElu) return a > zero ? one : alpha * P::exp(a);
  if constexpr (K == Activation::kSoftsign) {
    const Vec d = one + P::abs(a);
    return one / (d * d);
  }
  if constexpr (K == Activation::kSoftplus) return P::sigmoid(a);
  if constexpr (K == Activation::kSelu) {
    using S = typename P::Scalar;
    return a > zero ? P::splat(S(kSeluScale)) : S(kSeluScale * kSeluAlpha) * P::exp(a);
  }
  if constexpr (K == Activation::kExponential) return P::exp(a);
  if constexpr (K == Activation::kSilu) {
    const Vec s = P::sigmoid(a);
    return s * (one + a * (one - s));
  }
  if constexpr (K == Activation::kRelu6) return ((a > zero) & (a < P::splat(6))) ? one : zero;
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
