// rnnfast._core.dense_forward: the product of nn.Linear's forward, through the kernels' packed GEMM.
//
// Why not NumPy's matmul: BLAS picks its kernel by the number of rows, so a row's bits depend on what else is
// in the batch. The packed GEMM sums every output element in one order fixed by k alone, so a sequence's
// output is the same whichever batch (and thread count) it runs in, as the recurrent layers' are: a model's
// predict(batch_size=...) equals model(x) bit for bit.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "binding_common.h"
#include "rnnfast/gemm/gemm.h"

namespace rnnfast_binding {
namespace {

// x (N, K) C-contiguous, weight (M, K) C-contiguous, both Scalar; returns y (N, M) = x @ weight^T.
template <typename Scalar>
py::array dense_forward_typed(const py::array& x, const py::array& weight) {
  if (x.ndim() != 2) throw py::value_error("x must be 2-D (rows, in_features)");
  if (weight.ndim() != 2) throw py::value_error("weight must be 2-D (out_features, in_features)");
  const ssize_t n = x.shape(0), k = x.shape(1), m = weight.shape(0);
  const ArrayChecker<Scalar> chk;
  const Scalar* px = chk.in("x", x, {n, k});
  const Scalar* pw = chk.in("weight", weight, {m, k});
  py::array_t<Scalar> y({n, m});
  Scalar* py_ = y.mutable_data();
  {
    KernelGilRelease release;
    rnnfast::gemm<Scalar>(n, m, k, false, px, k, true, pw, k, false, py_, m);
  }
  return y;
}

py::array dense_forward(const py::array& x, const py::array& weight) {
  if (x.dtype().equal(py::dtype::of<float>())) return dense_forward_typed<float>(x, weight);
  if (x.dtype().equal(py::dtype::of<double>())) return dense_forward_typed<double>(x, weight);
  throw py::type_error("x must have dtype float32 or float64");
}

}  // namespace

void register_dense(py::module_& m) {
  m.def("dense_forward", &dense_forward, py::arg("x"), py::arg("weight"),
        "x (N, K) @ weight (M, K)^T -> (N, M) through the packed GEMM: each row's result depends on that row "
        "alone. Both C-contiguous, of one dtype (float32 or float64).");
}

}  // namespace rnnfast_binding
