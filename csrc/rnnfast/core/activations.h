// Scalar activations of the cells. They are the portable baseline: correctly rounded to within the C
// library's exp/tanh (about 1 ulp), against which vectorised approximations are measured.
#pragma once

#include <cmath>

namespace rnnfast {

// Logistic sigmoid, evaluated through exp(-|x|) so that it never overflows: for x >= 0,
// 1 / (1 + e^-x); for x < 0, e^x / (1 + e^x). Both forms are the same function.
template <typename Scalar>
inline Scalar sigmoid(Scalar x) {
  const Scalar e = std::exp(-std::fabs(x));
  return x >= 0 ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
}

template <typename Scalar>
inline Scalar tanh_act(Scalar x) {
  return std::tanh(x);
}

// NaN passes through, as with NumPy's maximum(x, 0).
template <typename Scalar>
inline Scalar relu(Scalar x) {
  return x < 0 ? Scalar(0) : x;
}

}  // namespace rnnfast
