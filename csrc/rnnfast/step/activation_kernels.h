// The kernels' activations applied elementwise to n values: test hooks for their accuracy (the gate
// updates that use them are the fused step's). float32: vectorised per instruction set
// (kernels/vector_math_impl.h, whose header states the error bounds); float64: the C library's exp and
// tanh (core/activations.h) on every instruction set.
#pragma once

#include <cstdint>

#include "rnnfast/core/isa.h"

namespace rnnfast {

template <typename Scalar>
struct ActivationKernels {
  void (*exp)(std::int64_t n, const Scalar* in, Scalar* out);
  void (*sigmoid)(std::int64_t n, const Scalar* in, Scalar* out);
  void (*tanh)(std::int64_t n, const Scalar* in, Scalar* out);
};

RNNFAST_DECLARE_ISA_TABLE(ActivationKernels<float>)
RNNFAST_DECLARE_ISA_TABLE(ActivationKernels<double>)

// The float64 table every instruction set's returns (kernels/portable_f64.cpp).
const ActivationKernels<double>& portable_activations();

}  // namespace rnnfast
