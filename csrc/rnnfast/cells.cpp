// The portable float64 activation table: the C library's exp and tanh (activations.h).
#include <cmath>

#include "rnnfast/activations.h"
#include "rnnfast/microkernel.h"

namespace rnnfast {
namespace {

template <double (*kFn)(double)>
void apply(std::int64_t n, const double* in, double* out) {
  for (std::int64_t j = 0; j < n; ++j) out[j] = kFn(in[j]);
}

double exp_f64(double x) { return std::exp(x); }
double sigmoid_f64(double x) { return sigmoid(x); }
double tanh_f64(double x) { return std::tanh(x); }

}  // namespace

const CellKernels<double>& portable_cells_f64() {
  static const CellKernels<double> k{&apply<exp_f64>, &apply<sigmoid_f64>, &apply<tanh_f64>};
  return k;
}

}  // namespace rnnfast
