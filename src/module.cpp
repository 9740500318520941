// rnnfast._core: the pybind11 binding of the C++ kernels (registration; the parts are in
// dense_binding.cpp, layer_ops.cpp, reduced_binding.cpp, stepper_binding.cpp and testing.cpp, which share binding_common.h).
//
// It only checks arrays and passes pointers: every array must already have the computation's dtype,
// be C-contiguous and aligned, and have exactly the shape the kernel reads or writes. The Python layer
// (rnnfast.functional) converts array-likes and explains bad input; these checks are the last line of
// defence that keeps a kernel from ever touching memory outside an array, so they are never skipped.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "rnnfast/rnnfast.hpp"

namespace py = pybind11;

namespace rnnfast_binding {
void register_dense(py::module_& m);
void register_layer_ops(py::module_& m);
void register_stepper(py::module_& m);
void register_reduced(py::module_& m, py::module_& t);
void register_testing(py::module_& t);
void register_variant_ops(py::module_& m);
}  // namespace rnnfast_binding

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnfast native kernels. Use the wrappers in rnnfast and rnnfast.functional; these functions "
            "require exact dtypes, shapes and C-contiguous arrays and write into the arrays they are given.";
  // Resolve the instruction set now, so that a bad RNNFAST_ISA fails the import with its reason.
  try {
    rnnfast::active_isa();
  } catch (const std::invalid_argument& e) {
    throw py::import_error(e.what());
  }
  m.def("get_num_threads", &rnnfast::num_threads, "Threads the kernels use (the calling thread included).");
  m.def("set_num_threads", [](std::int64_t n) {
    if (n < 1 || n > rnnfast::kMaxThreads)
      throw py::value_error("the number of threads must be between 1 and " + std::to_string(rnnfast::kMaxThreads) +
                            ", got " + std::to_string(n));
    rnnfast::set_num_threads(static_cast<int>(n));
  }, py::arg("n"), "Set the threads the kernels use (1 to 4096); results do not depend on it.");
  m.attr("MAX_THREADS") = rnnfast::kMaxThreads;
  m.def("isa", []() { return std::string(rnnfast::isa_name(rnnfast::active_isa())); },
        "The instruction set the kernels run on: 'generic', 'avx2' or 'avx512'.");
  rnnfast_binding::register_dense(m);
  rnnfast_binding::register_layer_ops(m);
  rnnfast_binding::register_stepper(m);
  rnnfast_binding::register_variant_ops(m);
  py::module_ testing = m.def_submodule(
      "testing", "Internal hooks for rnnfast's tests and benchmarks (the kernels' GEMM and activations, the "
                 "instruction set, the tuning switches). Not part of rnnfast's API.");
  rnnfast_binding::register_testing(testing);
  rnnfast_binding::register_reduced(m, testing);
}
