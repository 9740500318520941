// The activations of the cell variants (core/cell_variant.h) applied elementwise, with ONNX's clip, and
// their gradients: the only transcendental work of the variant layers (layer/variant_forward.cpp,
// variant_backward.cpp), whose remaining cell arithmetic is plain products and sums.
//
// float32 is vectorised per instruction set (kernels/variant_activations_<isa>.cpp) on the vector math of
// kernels/vector_math_impl.h (its error bounds), except softplus, whose log1p runs per lane through the C
// library; float64 is the C library's exp, tanh and log1p on every instruction set (kernels/portable_f64.cpp).
#pragma once

#include <cstdint>

#include "rnnfast/core/cell_variant.h"
#include "rnnfast/core/isa.h"

namespace rnnfast {

template <typename Scalar>
struct VariantActivationKernels {
  // out[j] = act(clamp(a[j])) for j in [0, n), clamp to [-clip, clip] when clip > 0. out may alias a.
  void (*activate)(const ActivationSpec& act, double clip, std::int64_t n, const Scalar* a, Scalar* out);
  // d[j] = g[j] * act'(clamp(a[j])), and 0 where clip > 0 and |a[j]| > clip (the clamp's own
  // derivative). a is the pre-activation before the clamp; d may alias g. At a kink the derivative is
  // PyTorch's: 0 for relu at 0, 1 for leaky_relu and elu above 0 only, and so on (rnnfast/_variants.py).
  void (*gradient)(const ActivationSpec& act, double clip, std::int64_t n, const Scalar* a, const Scalar* g,
                   Scalar* d);
};

RNNFAST_DECLARE_ISA_TABLE(VariantActivationKernels<float>)
RNNFAST_DECLARE_ISA_TABLE(VariantActivationKernels<double>)

// The float64 table every instruction set's returns (kernels/portable_f64.cpp).
const VariantActivationKernels<double>& portable_variant_activations();

}  // namespace rnnfast
