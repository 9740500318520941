// rnnfast._core.Stepper: streaming inference over a stack of unidirectional layers, float32 or float64
// weights, or reduced-precision weights (ReducedWeights objects, reduced_binding.cpp) with float32 data.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "binding_common.h"
#include "rnnfast/rnnfast.hpp"

namespace rnnfast_binding {
namespace {

// The stepper of either dtype behind one Python class. A mutex makes concurrent calls on one stepper
// from several Python threads safe (they run one after another: the state is shared).
class PyStepper {
 public:
  // layers: a list of (w_ih, w_hh, b_ih or None, b_hh or None), bottom layer first; w_ih and w_hh
  // arrays (float32 or float64) or both ReducedWeights (then float32 biases and data).
  PyStepper(const std::string& cell_name, std::int64_t hidden, std::int64_t batch, const py::list& layers)
      : cell_(parse_cell(cell_name)), hidden_(hidden), batch_(batch), num_layers_(static_cast<ssize_t>(layers.size())) {
    if (layers.empty()) throw py::value_error("a stepper needs at least one layer");
    if (hidden <= 0 || batch <= 0) throw py::value_error("hidden size and batch must be positive");
    // The kernel library sizes its buffers as int64 products of batch, gates, hidden size and layers;
    // refuse sizes whose products would overflow (computed in floating point, which cannot).
    const double elements = static_cast<double>(batch) * static_cast<double>(hidden) *
                            static_cast<double>(rnnfast::gate_count(cell_)) * static_cast<double>(num_layers_ + 2);
    if (elements * sizeof(double) > 0x1p62)
      throw py::value_error("batch " + std::to_string(batch) + " with hidden size " + std::to_string(hidden) +
                            " is too large: the stepper's buffers would need more than 2**62 bytes");
    const py::object first_weights = layers[0].cast<py::tuple>()[0];
    if (py::isinstance<rnnfast::ReducedWeights>(first_weights)) {
      impl_ = make_reduced(layers);
      return;
    }
    const py::array first = first_weights.cast<py::array>();
    if (first.dtype().equal(py::dtype::of<float>()))
      impl_ = make<float>(layers);
    else if (first.dtype().equal(py::dtype::of<double>()))
      impl_ = make<double>(layers);
    else
      throw py::type_error("weights must have dtype float32 or float64, got " + std::string(py::str(first.dtype())));
  }

  // x: [S, B, I] (or [B, I] for one step) -> y: [S, B, H] (or [B, H]); the state advances.
  void run(const py::array& x, py::array& y) {
    std::visit([&](auto& impl) { run_typed(*impl, x, y); }, impl_);
  }

  // The streaming loop's one step: x [B, I] (or [I] unbatched) -> out [B, H] (or [H]), allocated when
  // None. Only arrays that need no conversion are taken (dtype, byte order, shape, C-contiguous,
  // aligned, out writeable and not overlapping x); for anything else it returns None and the Python
  // wrapper runs its checks, which convert or explain. The checks read the array structs directly:
  // at a few microseconds per step, building shape vectors and dtype objects would show.
  py::object step(py::handle x, py::handle out, bool unbatched) {
    return std::visit([&](auto& impl) -> py::object {
      using Scalar = typename std::decay_t<decltype(*impl)>::ScalarType;
      const ssize_t x_shape[2] = {batch_, input_size_}, y_shape[2] = {batch_, hidden_};
      const int ndim = unbatched ? 1 : 2;
      if (unbatched && batch_ != 1) return py::none();
      if (!exact_array<Scalar>(x, ndim, unbatched ? x_shape + 1 : x_shape, false)) return py::none();
      py::object y;
      if (out.is_none()) {
        y = unbatched ? py::array_t<Scalar>(hidden_) : py::array_t<Scalar>({batch_, hidden_});
      } else {
        if (!exact_array<Scalar>(out, ndim, unbatched ? y_shape + 1 : y_shape, true)) return py::none();
        y = py::reinterpret_borrow<py::object>(out);
      }
      const Scalar* px = reinterpret_cast<const Scalar*>(py::detail::array_proxy(x.ptr())->data);
      Scalar* py_ = reinterpret_cast<Scalar*>(py::detail::array_proxy(y.ptr())->data);
      const std::size_t x_bytes = sizeof(Scalar) * batch_ * input_size_, y_bytes = sizeof(Scalar) * batch_ * hidden_;
      const char *x0 = reinterpret_cast<const char*>(px), *y0 = reinterpret_cast<const char*>(py_);
      if (x0 < y0 + y_bytes && y0 < x0 + x_bytes) return py::none();  // overlapping: the slow path copies
      {
        KernelGilRelease release;
        std::lock_guard<std::mutex> lock(mutex_);
        impl->stepper.run(1, px, py_);
      }
      return y;
    }, impl_);
  }

  void reset(const std::optional<py::array>& h0, const std::optional<py::array>& c0) {
    std::visit([&](auto& impl) {
      using Scalar = typename std::decay_t<decltype(*impl)>::ScalarType;
      const ArrayChecker<Scalar> chk;
      const std::vector<ssize_t> shape{num_layers_, batch_, hidden_};
      const Scalar* h = chk.optional_in("h0", h0, shape);
      if (!rnnfast::cell_info(cell_).cell_state && c0) throw py::value_error("c0 is only used by the LSTM");
      const Scalar* c = chk.optional_in("c0", c0, shape);
      KernelGilRelease release;
      std::lock_guard<std::mutex> lock(mutex_);
      impl->stepper.reset(h, c);
    }, impl_);
  }

  // Copies the state into h [L, B, H] (and c, for the LSTM).
  void get_state(py::array& h, std::optional<py::array>& c) {
    std::visit([&](auto& impl) {
      using Scalar = typename std::decay_t<decltype(*impl)>::ScalarType;
      const ArrayChecker<Scalar> chk;
      const std::vector<ssize_t> shape{num_layers_, batch_, hidden_};
      Scalar* ph = chk.out("h", h, shape);
      Scalar* pc = chk.optional_out("c", c, shape);
      std::lock_guard<std::mutex> lock(mutex_);
      const std::size_t bytes = sizeof(Scalar) * num_layers_ * batch_ * hidden_;
      std::memcpy(ph, impl->stepper.h(), bytes);
      if (pc != nullptr) std::memcpy(pc, impl->stepper.c(), bytes);
    }, impl_);
  }

 private:
  template <typename Scalar>
  struct Typed {
    using ScalarType = Scalar;
    explicit Typed(rnnfast::Stepper<Scalar>&& s) : stepper(std::move(s)) {}
    rnnfast::Stepper<Scalar> stepper;
  };

  template <typename Scalar>
  std::unique_ptr<Typed<Scalar>> make(const py::list& layers) {
    const ArrayChecker<Scalar> chk;
    const ssize_t GH = rnnfast::gate_count(cell_) * hidden_;
    std::vector<rnnfast::StepperLayer<Scalar>> specs;
    for (ssize_t k = 0; k < num_layers_; ++k) {
      const py::tuple t = layers[k].cast<py::tuple>();
      if (t.size() != 4) throw py::value_error("each layer is (w_ih, w_hh, b_ih, b_hh)");
      const py::array w_ih = t[0].cast<py::array>(), w_hh = t[1].cast<py::array>();
      if (w_ih.ndim() != 2) throw py::value_error("w_ih must be 2-D");
      const ssize_t in = k == 0 ? w_ih.shape(1) : hidden_;
      rnnfast::StepperLayer<Scalar> spec;
      spec.input_size = in;
      spec.w_ih = chk.in("w_ih", w_ih, {GH, in});
      spec.w_hh = chk.in("w_hh", w_hh, {GH, hidden_});
      if (!t[2].is_none()) spec.b_ih = chk.in("b_ih", t[2].cast<py::array>(), {GH});
      if (!t[3].is_none()) spec.b_hh = chk.in("b_hh", t[3].cast<py::array>(), {GH});
      specs.push_back(spec);
    }
    input_size_ = specs.front().input_size;
    return std::make_unique<Typed<Scalar>>(rnnfast::Stepper<Scalar>(cell_, hidden_, batch_, specs));
  }

  struct TypedReduced {
    using ScalarType = float;
    explicit TypedReduced(rnnfast::ReducedStepper&& s) : stepper(std::move(s)) {}
    rnnfast::ReducedStepper stepper;
  };

  std::unique_ptr<TypedReduced> make_reduced(const py::list& layers) {
    const ArrayChecker<float> chk;
    std::vector<rnnfast::ReducedStepperLayer> specs;
    for (ssize_t k = 0; k < num_layers_; ++k) {
      const py::tuple t = layers[k].cast<py::tuple>();
      if (t.size() != 4) throw py::value_error("each layer is (w_ih, w_hh, b_ih, b_hh)");
      if (!py::isinstance<rnnfast::ReducedWeights>(t[0]) || !py::isinstance<rnnfast::ReducedWeights>(t[1]))
        throw py::type_error("w_ih and w_hh of every layer must be ReducedWeights when the first layer's are");
      rnnfast::ReducedStepperLayer spec;
      spec.w_ih = t[0].cast<std::shared_ptr<rnnfast::ReducedWeights>>();
      spec.w_hh = t[1].cast<std::shared_ptr<rnnfast::ReducedWeights>>();
      if (spec.w_hh->cell() != cell_ || spec.w_hh->hidden() != hidden_)
        throw py::value_error("w_hh of layer " + std::to_string(k) + " is not packed for this cell and hidden size");
      const ssize_t GH = rnnfast::gate_count(cell_) * hidden_;
      if (!t[2].is_none()) spec.b_ih = chk.in("b_ih", t[2].cast<py::array>(), {GH});
      if (!t[3].is_none()) spec.b_hh = chk.in("b_hh", t[3].cast<py::array>(), {GH});
      specs.push_back(spec);
    }
    input_size_ = specs.front().w_ih->depth();
    try {
      return std::make_unique<TypedReduced>(rnnfast::ReducedStepper(batch_, specs));
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }

  template <typename Impl>
  void run_typed(Impl& impl, const py::array& x, py::array& y) {
    using Scalar = typename Impl::ScalarType;
    const ArrayChecker<Scalar> chk;
    const bool one_step = x.ndim() == 2;
    if (!one_step && x.ndim() != 3)
      throw py::value_error("x must be (batch, input_size) for one step or (steps, batch, input_size)");
    const ssize_t steps = one_step ? 1 : x.shape(0);
    const Scalar* px = one_step ? chk.in("x", x, {batch_, input_size_}) : chk.in("x", x, {steps, batch_, input_size_});
    Scalar* py_ = one_step ? chk.out("out", y, {batch_, hidden_}) : chk.out("out", y, {steps, batch_, hidden_});
    KernelGilRelease release;
    std::lock_guard<std::mutex> lock(mutex_);
    impl.stepper.run(steps, px, py_);
  }

  // Whether `a` is an ndarray of exactly Scalar (native byte order), of the given shape, C-contiguous
  // and aligned (and writeable when `writeable`).
  template <typename Scalar>
  static bool exact_array(py::handle a, int ndim, const ssize_t* shape, bool writeable) {
    auto& api = py::detail::npy_api::get();
    if (!api.PyArray_Check_(a.ptr())) return false;
    const auto* arr = py::detail::array_proxy(a.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(arr->descr);
    constexpr int type_num = std::is_same_v<Scalar, float> ? py::detail::npy_api::NPY_FLOAT_ : py::detail::npy_api::NPY_DOUBLE_;
    if (descr->type_num != type_num || descr->byteorder == '>' || arr->nd != ndim) return false;
    for (int d = 0; d < ndim; ++d)
      if (arr->dimensions[d] != shape[d]) return false;
    int flags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if (writeable) flags |= py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return (arr->flags & flags) == flags;
  }

  rnnfast::Cell cell_;
  ssize_t hidden_, batch_, num_layers_, input_size_ = 0;
  std::variant<std::unique_ptr<Typed<float>>, std::unique_ptr<Typed<double>>, std::unique_ptr<TypedReduced>> impl_;
  std::mutex mutex_;
};

}  // namespace

void register_stepper(py::module_& m) {
  py::class_<PyStepper>(m, "Stepper", "Streaming inference over a stack of unidirectional layers (see rnnfast.Stepper).")
      .def(py::init<const std::string&, std::int64_t, std::int64_t, const py::list&>(), py::arg("cell"),
           py::arg("hidden_size"), py::arg("batch"), py::arg("layers"))
      .def("run", &PyStepper::run, py::arg("x"), py::arg("out"),
           "Advance len(x) steps (x 3-D) or one step (x 2-D), writing the top layer's outputs into out.")
      .def("step", &PyStepper::step, py::arg("x"), py::arg("out").none(true), py::arg("unbatched"),
           "One step for arrays that need no conversion (see rnnfast.Stepper.step); None for anything else.")
      .def("reset", &PyStepper::reset, py::arg("h0").none(true), py::arg("c0").none(true))
      .def("get_state", &PyStepper::get_state, py::arg("h"), py::arg("c").none(true));
}

}  // namespace rnnfast_binding
