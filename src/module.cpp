// rnnfast._core: the pybind11 binding of the C++ kernels.
//
// It only checks arrays and passes pointers: every array must already have the computation's dtype,
// be C-contiguous and aligned, and have exactly the shape the kernel reads or writes. The Python layer
// (rnnfast.functional) converts array-likes and explains bad input; these checks are the last line of
// defence that keeps a kernel from ever touching memory outside an array, so they are never skipped.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "rnnfast/gemm/gemm.h"
#include "rnnfast/rnnfast.h"
#include "rnnfast/step/activation_kernels.h"

namespace py = pybind11;
using py::ssize_t;

namespace {

// Releases the GIL around a kernel call. Unlike py::gil_scoped_release, a daemon thread that returns from a
// kernel while the interpreter is finalizing does not abort the process: CPython ends such a thread with
// pthread_exit (an unwind) when it asks for the GIL back, and an unwind out of a noexcept destructor is
// std::terminate ("terminate called without an active exception" at exit). Like CPython 3.14 itself, the
// thread waits instead (the exiting process ends it); the destructor may still unwind (noexcept(false))
// should finalization start between the check and the call.
class KernelGilRelease {
 public:
  KernelGilRelease() : state_(PyEval_SaveThread()) {}
  KernelGilRelease(const KernelGilRelease&) = delete;
  KernelGilRelease& operator=(const KernelGilRelease&) = delete;
  ~KernelGilRelease() noexcept(false) {
#if PY_VERSION_HEX >= 0x030D0000
    const bool finalizing = Py_IsFinalizing();
#else
    const bool finalizing = _Py_IsFinalizing();
#endif
    if (finalizing)
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    PyEval_RestoreThread(state_);
  }

 private:
  PyThreadState* state_;
};

rnnfast::Cell parse_cell(const std::string& name) {
  if (name == "rnn_tanh") return rnnfast::Cell::kRnnTanh;
  if (name == "rnn_relu") return rnnfast::Cell::kRnnRelu;
  if (name == "lstm") return rnnfast::Cell::kLstm;
  if (name == "gru") return rnnfast::Cell::kGru;
  throw py::value_error("cell must be 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru', got '" + name + "'");
}

std::string shape_str(const std::vector<ssize_t>& shape) {
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

// The sizes of a layer call, from x (S, B, I) and w_hh (G*H, H); every other array is checked against them.
template <typename LayerArgs>
void read_layer_sizes(LayerArgs& a, rnnfast::Cell cell, const py::array& x, const py::array& w_hh) {
  if (x.ndim() != 3) throw py::value_error("x must be 3-D (seq_len, batch, input_size)");
  if (w_hh.ndim() != 2) throw py::value_error("w_hh must be 2-D");
  a.cell = cell;
  a.seq_len = x.shape(0);
  a.batch = x.shape(1);
  a.input_size = x.shape(2);
  a.hidden = w_hh.shape(1);
}

template <typename Scalar>
void forward_typed(rnnfast::Cell cell, const py::array& x, const std::optional<py::array>& h0,
                   const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh,
                   const std::optional<py::array>& b_ih, const std::optional<py::array>& b_hh, py::array& out,
                   py::array& h_n, std::optional<py::array>& c_n, std::optional<py::array>& workspace,
                   const std::optional<py::array>& lengths) {
  const ArrayChecker<Scalar> chk;
  const bool lstm = cell == rnnfast::Cell::kLstm;
  rnnfast::LayerForward<Scalar> a;
  read_layer_sizes(a, cell, x, w_hh);
  const ssize_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const ssize_t GH = rnnfast::gate_count(cell) * H;
  a.x = chk.in("x", x, {S, B, I});
  a.h0 = chk.optional_in("h0", h0, {B, H});
  if (!lstm && c0) throw py::value_error("c0 is only used by the LSTM");
  a.c0 = chk.optional_in("c0", c0, {B, H});
  a.w_ih = chk.in("w_ih", w_ih, {GH, I});
  a.w_hh = chk.in("w_hh", w_hh, {GH, H});
  a.b_ih = chk.optional_in("b_ih", b_ih, {GH});
  a.b_hh = chk.optional_in("b_hh", b_hh, {GH});
  a.out = chk.out("out", out, {S, B, H});
  a.h_n = chk.out("h_n", h_n, {B, H});
  if (lstm && !c_n) throw py::value_error("c_n is required for the LSTM");
  a.c_n = lstm ? chk.optional_out("c_n", c_n, {B, H}) : nullptr;
  a.workspace = chk.optional_out("workspace", workspace, {S, B, static_cast<ssize_t>(rnnfast::workspace_width(cell, H))});
  a.lengths = ArrayChecker<std::int64_t>().optional_in("lengths", lengths, {B});  // values checked by the kernel
  KernelGilRelease release;
  rnnfast::layer_forward(a);
}

template <typename Scalar>
void backward_typed(rnnfast::Cell cell, const py::array& x, const std::optional<py::array>& h0,
                    const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh,
                    const py::array& out, const py::array& workspace, const std::optional<py::array>& d_out,
                    const std::optional<py::array>& d_h_n, const std::optional<py::array>& d_c_n, py::array& d_x,
                    py::array& d_h0, std::optional<py::array>& d_c0, py::array& d_w_ih, py::array& d_w_hh,
                    py::array& d_b_ih, py::array& d_b_hh, const std::optional<py::array>& lengths) {
  const ArrayChecker<Scalar> chk;
  const bool lstm = cell == rnnfast::Cell::kLstm;
  rnnfast::LayerBackward<Scalar> a;
  read_layer_sizes(a, cell, x, w_hh);
  const ssize_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const ssize_t GH = rnnfast::gate_count(cell) * H;
  const ssize_t W = static_cast<ssize_t>(rnnfast::workspace_width(cell, H));
  if (!lstm && (c0 || d_c_n || d_c0)) throw py::value_error("c0, d_c_n and d_c0 are only used by the LSTM");
  if (lstm && !d_c0) throw py::value_error("d_c0 is required for the LSTM");
  a.x = chk.in("x", x, {S, B, I});
  a.h0 = chk.optional_in("h0", h0, {B, H});
  a.c0 = chk.optional_in("c0", c0, {B, H});
  a.w_ih = chk.in("w_ih", w_ih, {GH, I});
  a.w_hh = chk.in("w_hh", w_hh, {GH, H});
  a.out = chk.in("out", out, {S, B, H});
  a.workspace = chk.in("workspace", workspace, {S, B, W});
  a.d_out = chk.optional_in("d_out", d_out, {S, B, H});
  a.d_h_n = chk.optional_in("d_h_n", d_h_n, {B, H});
  a.d_c_n = chk.optional_in("d_c_n", d_c_n, {B, H});
  a.d_x = chk.out("d_x", d_x, {S, B, I});
  a.d_h0 = chk.out("d_h0", d_h0, {B, H});
  a.d_c0 = chk.optional_out("d_c0", d_c0, {B, H});
  a.d_w_ih = chk.out("d_w_ih", d_w_ih, {GH, I});
  a.d_w_hh = chk.out("d_w_hh", d_w_hh, {GH, H});
  a.d_b_ih = chk.out("d_b_ih", d_b_ih, {GH});
  a.d_b_hh = chk.out("d_b_hh", d_b_hh, {GH});
  a.lengths = ArrayChecker<std::int64_t>().optional_in("lengths", lengths, {B});
  KernelGilRelease release;
  rnnfast::layer_backward(a);
}

void forward(const std::string& cell_name, const py::array& x, const std::optional<py::array>& h0,
             const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh,
             const std::optional<py::array>& b_ih, const std::optional<py::array>& b_hh, py::array out,
             py::array h_n, std::optional<py::array> c_n, std::optional<py::array> workspace,
             const std::optional<py::array>& lengths) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  if (x.dtype().equal(py::dtype::of<float>()))
    forward_typed<float>(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, out, h_n, c_n, workspace, lengths);
  else if (x.dtype().equal(py::dtype::of<double>()))
    forward_typed<double>(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, out, h_n, c_n, workspace, lengths);
  else
    throw py::type_error("x must have dtype float32 or float64, got " + std::string(py::str(x.dtype())));
}

void backward(const std::string& cell_name, const py::array& x, const std::optional<py::array>& h0,
              const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh, const py::array& out,
              const py::array& workspace, const std::optional<py::array>& d_out,
              const std::optional<py::array>& d_h_n, const std::optional<py::array>& d_c_n, py::array d_x,
              py::array d_h0, std::optional<py::array> d_c0, py::array d_w_ih, py::array d_w_hh, py::array d_b_ih,
              py::array d_b_hh, const std::optional<py::array>& lengths) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  if (x.dtype().equal(py::dtype::of<float>()))
    backward_typed<float>(cell, x, h0, c0, w_ih, w_hh, out, workspace, d_out, d_h_n, d_c_n, d_x, d_h0, d_c0, d_w_ih,
                          d_w_hh, d_b_ih, d_b_hh, lengths);
  else if (x.dtype().equal(py::dtype::of<double>()))
    backward_typed<double>(cell, x, h0, c0, w_ih, w_hh, out, workspace, d_out, d_h_n, d_c_n, d_x, d_h0, d_c0,
                           d_w_ih, d_w_hh, d_b_ih, d_b_hh, lengths);
  else
    throw py::type_error("x must have dtype float32 or float64, got " + std::string(py::str(x.dtype())));
}

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

// The stepper of either dtype behind one Python class. A mutex makes concurrent calls on one stepper
// from several Python threads safe (they run one after another: the state is shared).
class PyStepper {
 public:
  // layers: a list of (w_ih, w_hh, b_ih or None, b_hh or None), bottom layer first.
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
    const py::array first = layers[0].cast<py::tuple>()[0].cast<py::array>();
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
      if (cell_ != rnnfast::Cell::kLstm && c0) throw py::value_error("c0 is only used by the LSTM");
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

  template <typename Scalar>
  void run_typed(Typed<Scalar>& impl, const py::array& x, py::array& y) {
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
  std::variant<std::unique_ptr<Typed<float>>, std::unique_ptr<Typed<double>>> impl_;
  std::mutex mutex_;
};

}  // namespace

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

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnfast native kernels. Use the wrappers in rnnfast and rnnfast.functional; these functions "
            "require exact dtypes, shapes and C-contiguous arrays and write into the arrays they are given.";
  m.def("forward", &forward, py::arg("cell"), py::arg("x"), py::arg("h0").none(true), py::arg("c0").none(true),
        py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih").none(true), py::arg("b_hh").none(true), py::arg("out"),
        py::arg("h_n"), py::arg("c_n").none(true), py::arg("workspace").none(true),
        py::arg("lengths").none(true) = py::none(),
        "One layer, one direction, forward. Writes out, h_n, c_n (LSTM) and workspace (when given). lengths: "
        "int64 (batch,), sorted non-increasing, each in [0, seq_len].");
  m.def("backward", &backward, py::arg("cell"), py::arg("x"), py::arg("h0").none(true), py::arg("c0").none(true),
        py::arg("w_ih"), py::arg("w_hh"), py::arg("out"), py::arg("workspace"), py::arg("d_out").none(true),
        py::arg("d_h_n").none(true), py::arg("d_c_n").none(true), py::arg("d_x"), py::arg("d_h0"),
        py::arg("d_c0").none(true), py::arg("d_w_ih"), py::arg("d_w_hh"), py::arg("d_b_ih"), py::arg("d_b_hh"),
        py::arg("lengths").none(true) = py::none(),
        "One layer, one direction, backward through time. Overwrites every d_* output.");
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("a_transposed") = false, py::arg("b_transposed") = false,
        "op(a) @ op(b) through the packed GEMM kernel (a test hook).");
  py::class_<PyStepper>(m, "Stepper", "Streaming inference over a stack of unidirectional layers (see rnnfast.Stepper).")
      .def(py::init<const std::string&, std::int64_t, std::int64_t, const py::list&>(), py::arg("cell"),
           py::arg("hidden_size"), py::arg("batch"), py::arg("layers"))
      .def("run", &PyStepper::run, py::arg("x"), py::arg("out"),
           "Advance len(x) steps (x 3-D) or one step (x 2-D), writing the top layer's outputs into out.")
      .def("step", &PyStepper::step, py::arg("x"), py::arg("out").none(true), py::arg("unbatched"),
           "One step for arrays that need no conversion (see rnnfast.Stepper.step); None for anything else.")
      .def("reset", &PyStepper::reset, py::arg("h0").none(true), py::arg("c0").none(true))
      .def("get_state", &PyStepper::get_state, py::arg("h"), py::arg("c").none(true));
  m.def("get_num_threads", &rnnfast::num_threads, "Threads the kernels use (the calling thread included).");
  m.def("set_num_threads", [](std::int64_t n) {
    if (n < 1 || n > rnnfast::kMaxThreads)
      throw py::value_error("the number of threads must be between 1 and " + std::to_string(rnnfast::kMaxThreads) +
                            ", got " + std::to_string(n));
    rnnfast::set_num_threads(static_cast<int>(n));
  }, py::arg("n"), "Set the threads the kernels use (1 to 4096); results do not depend on it.");
  m.def("activation", &activation, py::arg("name"), py::arg("x"),
        "The kernels' exp, sigmoid or tanh on the active instruction set (a test hook for their accuracy).");
  m.def("cell_facts", []() {
    py::list facts;
    for (const char* name : {"rnn_tanh", "rnn_relu", "lstm", "gru"}) {
      const rnnfast::Cell cell = parse_cell(name);
      py::dict d;
      d["name"] = name;
      d["gates"] = rnnfast::gate_count(cell);
      d["workspace_slots"] = rnnfast::workspace_width(cell, 1);
      d["cell_state"] = cell == rnnfast::Cell::kLstm;
      facts.append(d);
    }
    return facts;
  }, "The cells the kernels compute, in their order: name, gates (weights have gates*H rows), workspace_slots "
     "(the training workspace holds slots*H values per row) and cell_state (a second state, the LSTM's c). "
     "rnnfast checks its own table against this at import.");
  m.attr("MAX_THREADS") = rnnfast::kMaxThreads;
  m.def("workspace_width", [](const std::string& cell, std::int64_t hidden) {
    return rnnfast::workspace_width(parse_cell(cell), hidden);
  }, py::arg("cell"), py::arg("hidden_size"));
  // Resolve the instruction set now, so that a bad RNNFAST_ISA fails the import with its reason.
  try {
    rnnfast::active_isa();
  } catch (const std::invalid_argument& e) {
    throw py::import_error(e.what());
  }
  m.def("isa", []() { return std::string(rnnfast::isa_name(rnnfast::active_isa())); },
        "The instruction set the kernels run on: 'generic', 'avx2' or 'avx512'.");
  m.def("available_isas", []() {
    std::vector<std::string> names;
    for (auto isa : {rnnfast::Isa::kGeneric, rnnfast::Isa::kAvx2, rnnfast::Isa::kAvx512})
      if (rnnfast::isa_available(isa)) names.emplace_back(rnnfast::isa_name(isa));
    return names;
  }, "The instruction sets this CPU and build can run, narrowest first.");
  m.def("set_isa", [](const std::string& name) { rnnfast::set_active_isa(rnnfast::parse_isa(name.c_str())); },
        py::arg("name"),
        "Switch the kernels to another instruction set (for tests and benchmarks; not while other threads run "
        "kernels). ValueError for an unknown or unavailable one.");
  def_policy<rnnfast::SplitPolicy>(
      m, "split",
      {{"auto", rnnfast::SplitPolicy::kAuto},
       {"batch", rnnfast::SplitPolicy::kBatch},
       {"hidden", rnnfast::SplitPolicy::kHidden}},
      &rnnfast::set_split_policy, &rnnfast::split_policy,
      "How the forward time loop is shared among threads: 'auto' (by shape), 'batch' (slices of the batch, no "
      "barrier) or 'hidden' (every step shared by hidden units, a barrier per step).");
  def_policy<rnnfast::ProjectionPolicy>(
      m, "projection",
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
