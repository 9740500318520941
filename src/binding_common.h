// What every part of the binding shares: the GIL release around a kernel call, the cell names, and the
// array checks that keep a kernel from ever touching memory outside an array. Nothing numeric.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rnnfast/core/cell.h"

namespace rnnfast_binding {

namespace py = pybind11;
using py::ssize_t;

// Releases the GIL around a kernel call. Unlike py::gil_scoped_release, a daemon thread that returns from a
// kernel while the interpreter is finalizing does not abort the process: CPython ends such a thread with
// pthread_exit (an unwind) when it asks for the GIL back, and an unwind out of a noexcept destructor is
// std::terminate ("terminate called without an active exception" at exit). Like CPython 3.14 itself, the
// thread waits instead (the exiting process ends it). Should finalization start between the check and the
// call, the unwind is caught here and the thread waits all the same: let through, it would meet pybind11's
// catch-all, which rethrows it only over libstdc++ (abi::__forced_unwind); over libc++ (the wheels, docs/
// design.md section 10) it would be swallowed, and glibc aborts ("FATAL: exception not rethrown").
class KernelGilRelease {
 public:
  KernelGilRelease() : state_(PyEval_SaveThread()) {}
  KernelGilRelease(const KernelGilRelease&) = delete;
  KernelGilRelease& operator=(const KernelGilRelease&) = delete;
  ~KernelGilRelease() {
#if PY_VERSION_HEX >= 0x030D0000
    const bool finalizing = Py_IsFinalizing();
#else
    const bool finalizing = _Py_IsFinalizing();
#endif
    if (finalizing) wait_for_exit();
    try {
      PyEval_RestoreThread(state_);
    } catch (...) {  // a C function: only pthread_exit's unwind comes through it
      wait_for_exit();
    }
  }

 private:
  [[noreturn]] static void wait_for_exit() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }

  PyThreadState* state_;
};

// The Cell named `name` (core/cell.h's table); ValueError listing the names otherwise.
inline rnnfast::Cell parse_cell(const std::string& name) {
  std::string names;
  for (int c = 0; c < rnnfast::kCellCount; ++c) {
    if (name == rnnfast::kCellInfo[c].name) return static_cast<rnnfast::Cell>(c);
    names += std::string(c == 0 ? "'" : c + 1 == rnnfast::kCellCount ? " or '" : ", '") + rnnfast::kCellInfo[c].name + "'";
  }
  throw py::value_error("cell must be " + names + ", got '" + name + "'");
}

// fn(float{}) or fn(double{}), by the dtype of `x` (the computation's); TypeError for another dtype.
template <typename Fn>
void with_float_dtype(const py::array& x, Fn&& fn) {
  if (x.dtype().equal(py::dtype::of<float>()))
    fn(float{});
  else if (x.dtype().equal(py::dtype::of<double>()))
    fn(double{});
  else
    throw py::type_error("x must have dtype float32 or float64, got " + std::string(py::str(x.dtype())));
}

inline std::string shape_str(const std::vector<ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Checks an array against the dtype, shape and flags a kernel needs and returns its data pointer.
template <typename Scalar>
class ArrayChecker {
 public:
  const Scalar* in(const char* name, const py::array& a, std::vector<ssize_t> shape) const {
    check(name, a, shape);
    return static_cast<const Scalar*>(a.data());
  }
  const Scalar* optional_in(const char* name, const std::optional<py::array>& a,
                            std::vector<ssize_t> shape) const {
    return a ? in(name, *a, std::move(shape)) : nullptr;
  }
  Scalar* out(const char* name, py::array& a, std::vector<ssize_t> shape) const {
    check(name, a, shape);
    if (!a.writeable()) throw py::value_error(std::string(name) + " is read-only");
    return static_cast<Scalar*>(a.mutable_data());
  }
  Scalar* optional_out(const char* name, std::optional<py::array>& a, std::vector<ssize_t> shape) const {
    return a ? out(name, *a, std::move(shape)) : nullptr;
  }

 private:
  static void check(const char* name, const py::array& a, const std::vector<ssize_t>& shape) {
    // Equality, not identity: an unpickled array carries its own float32/float64 descriptor object.
    if (!a.dtype().equal(py::dtype::of<Scalar>()))
      throw py::type_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<Scalar>())) +
                           ", got " + std::string(py::str(a.dtype())));
    std::vector<ssize_t> actual(a.shape(), a.shape() + a.ndim());
    if (actual != shape)
      throw py::value_error(std::string(name) + " has shape " + shape_str(actual) + ", expected " + shape_str(shape));
    const int flags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if ((py::detail::array_proxy(a.ptr())->flags & flags) != flags)
      throw py::value_error(std::string(name) + " must be C-contiguous and aligned");
  }
};

}  // namespace rnnfast_binding
