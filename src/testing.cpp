// rnnfast._core.testing: the internal hooks for tests and benchmarks. The kernels' GEMM and
// activations on arrays, the instruction set, and the tuning switches (how the time loop is split,
// where the input projection runs), which change no result: every choice gives the same bits. Not
// part of rnnfast's API; not to be changed while other threads run kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "binding_common.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/rnnfast.hpp"
#include "rnnfast/step/activation_kernels.h"

namespace rnnfast_binding {
namespace {

// Test hook for the GEMM kernel: returns op(a) @ op(b) as a new array (op = transpose when asked).
template <typename Scalar>
py::array gemm_typed(const py::array& a, const py::array& b, bool a_transposed, bool b_transposed) {
  if (a.ndim() != 2 || b.ndim() != 2) throw py::value_error("a and b must be 2-D");
  const ssize_t m = a_transposed ? a.shape(1) : a.shape(0), k = a_transposed ? a.shape(0) : a.shape(1);
  const ssize_t kb = b_transposed ? b.shape(1) : b.shape(0), n = b_transposed ? b.shape(0) : b.shape(1);
  if (k != kb) throw py::value_error("inner dimensions differ: op(a) is " + shape_str({m, k}) + ", op(b) is " + shape_str({kb, n}));
  const ArrayChecker<Scalar> chk;
  const Scalar* pa = chk.in("a", a, {a.shape(0), a.shape(1)});
  const Scalar* pb = chk.in("b", b, {b.shape(0), b.shape(1)});
  py::array_t<Scalar> c({m, n});
  Scalar* pc = c.mutable_data();
  {
    KernelGilRelease release;
    rnnfast::gemm<Scalar>(m, n, k, a_transposed, pa, a.shape(1), b_transposed, pb, b.shape(1), false, pc, n);
  }
  return c;
}

// Test hook: one of the active instruction set's activations applied to a 1-D array.
template <typename Scalar>
py::array activation_typed(const std::string& name, const py::array& x) {
  if (x.ndim() != 1) throw py::value_error("x must be 1-D");
  const Scalar* px = ArrayChecker<Scalar>().in("x", x, {x.shape(0)});
  const rnnfast::ActivationKernels<Scalar>& k = rnnfast::kernels_for<rnnfast::ActivationKernels<Scalar>>(rnnfast::active_isa());
  auto fn = name == "exp" ? k.exp : name == "sigmoid" ? k.sigmoid : name == "tanh" ? k.tanh : nullptr;
  if (fn == nullptr) throw py::value_error("activation must be 'exp', 'sigmoid' or 'tanh', got '" + name + "'");
  py::array_t<Scalar> y(x.shape(0));
  Scalar* py_ = y.mutable_data();
  {
    KernelGilRelease release;
    fn(x.shape(0), px, py_);
  }
  return y;
}

py::array activation(const std::string& name, const py::array& x) {
  if (x.dtype().equal(py::dtype::of<float>())) return activation_typed<float>(name, x);
  if (x.dtype().equal(py::dtype::of<double>())) return activation_typed<double>(name, x);
  throw py::type_error("x must have dtype float32 or float64");
}

py::array gemm(const py::array& a, const py::array& b, bool a_transposed, bool b_transposed) {
  if (a.dtype().equal(py::dtype::of<float>())) return gemm_typed<float>(a, b, a_transposed, b_transposed);
  if (a.dtype().equal(py::dtype::of<double>())) return gemm_typed<double>(a, b, a_transposed, b_transposed);
  throw py::type_error("a must have dtype float32 or float64");
}

// set_<what>(name) and get_<what>() for one of the kernels' policies (results the same bits whichever
// is chosen; for tests and benchmarks, not while other threads run kernels). names[0] is the default.
template <typename Policy>
void def_policy(py::module_& m, const std::string& what, std::vector<std::pair<std::string, Policy>> names,
                void (*set)(Policy), Policy (*get)(), const std::string& doc) {
  std::string choices;
  for (std::size_t i = 0; i < names.size(); ++i)
    choices += (i == 0 ? "'" : i + 1 == names.size() ? " or '" : ", '") + names[i].first + "'";
  m.def(("set_" + what).c_str(),
        [what, names, set, choices](const std::string& name) {
          for (const auto& [known, policy] : names)
            if (name == known) return set(policy);
          throw py::value_error(what + " must be " + choices + ", got '" + name + "'");
        },
        py::arg("name"), (doc + " The results are the same bits; for tests and benchmarks, not while other threads "
                                "run kernels.").c_str());
  m.def(("get_" + what).c_str(),
        [names, get]() {
          const Policy current = get();
          for (const auto& [known, policy] : names)
            if (policy == current) return known;
          return names.front().first;
        },
        ("The " + what + " set by set_" + what + ".").c_str());
}

}  // namespace

void register_testing(py::module_& t) {
  t.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("a_transposed") = false, py::arg("b_transposed") = false,
        "op(a) @ op(b) through the packed GEMM kernel (a test hook).");
  t.def("activation", &activation, py::arg("name"), py::arg("x"),
        "The kernels' exp, sigmoid or tanh on the active instruction set (a test hook for their accuracy).");
  t.def("available_isas", []() {
    std::vector<std::string> names;
    for (auto isa : {rnnfast::Isa::kGeneric, rnnfast::Isa::kAvx2, rnnfast::Isa::kAvx512})
      if (rnnfast::isa_available(isa)) names.emplace_back(rnnfast::isa_name(isa));
    return names;
  }, "The instruction sets this CPU and build can run, narrowest first.");
  t.def("set_isa", [](const std::string& name) { rnnfast::set_active_isa(rnnfast::parse_isa(name.c_str())); },
        py::arg("name"),
        "Switch the kernels to another instruction set (for tests and benchmarks; not while other threads run "
        "kernels). ValueError for an unknown or unavailable one.");
  def_policy<rnnfast::SplitPolicy>(
      t, "split",
      {{"auto", rnnfast::SplitPolicy::kAuto},
       {"batch", rnnfast::SplitPolicy::kBatch},
       {"hidden", rnnfast::SplitPolicy::kHidden}},
      &rnnfast::set_split_policy, &rnnfast::split_policy,
      "How the forward time loop is shared among threads: 'auto' (by shape), 'batch' (slices of the batch, no "
      "barrier) or 'hidden' (every step shared by hidden units, the threads synchronising at every step).");
  def_policy<rnnfast::ProjectionPolicy>(
      t, "projection",
      {{"auto", rnnfast::ProjectionPolicy::kAuto},
       {"up_front", rnnfast::ProjectionPolicy::kUpFront},
       {"per_step", rnnfast::ProjectionPolicy::kPerStep},
       {"in_step", rnnfast::ProjectionPolicy::kInStep},
       {"ahead", rnnfast::ProjectionPolicy::kAhead}},
      &rnnfast::set_projection_policy, &rnnfast::projection_policy,
      "Where the forward computes the input projection x W_ih^T: 'auto' (by shape), 'up_front' (one matrix "
      "product before the time loop), 'per_step' (one per step, inside the loop), 'in_step' (inside the "
      "fused step, block by block) or 'ahead' (a few steps at a time, block by block, by the threads that share "
      "the steps; 'in_step' where the batch is sliced).");
}

}  // namespace rnnfast_binding
