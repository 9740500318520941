// The activation test hooks (step/activation_kernels.h): the float32 vector activations of
// vector_math_impl.h applied to n values, for the accuracy tests. Include it only from a
// kernels/activations_<isa>.cpp file, after its kernels/isa_<isa>.h, and invoke
// RNNFAST_DEFINE_ACTIVATIONS(). float64's table is the portable one.
#include <cstdint>
#include <cstring>

#include "rnnfast/step/activation_kernels.h"
#include "vector_math_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

template <FloatVec (*kFn)(FloatVec)>
void apply(std::int64_t n, const float* in, float* out) {
  const std::int64_t L = kFloatLanes;
  std::int64_t j = 0;
  for (; j + L <= n; j += L) VectorMath::store(out + j, kFn(VectorMath::load(in + j)));
  if (j < n) {  // the last values through a zero-padded stand-in
    float t[kFloatLanes] = {};
    std::memcpy(t, in + j, (n - j) * sizeof(float));
    VectorMath::store(t, kFn(VectorMath::load(t)));
    std::memcpy(out + j, t, (n - j) * sizeof(float));
  }
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

#define RNNFAST_DEFINE_ACTIVATIONS()                                                              \
  namespace rnnfast {                                                                             \
  namespace RNNFAST_ISA_NAMESPACE {                                                               \
  template <>                                                                                     \
  const ActivationKernels<float>& isa_table<ActivationKernels<float>>() {                         \
    static const ActivationKernels<float> k{&apply<exp_v>, &apply<sigmoid_v>, &apply<tanh_v>};    \
    return k;                                                                                     \
  }                                                                                               \
  template <>                                                                                     \
  const ActivationKernels<double>& isa_table<ActivationKernels<double>>() {                       \
    return portable_activations();                                                                \
  }                                                                                               \
  }                                                                                               \
  }
