// The cell variants' layer ops of rnnfast._core (layer/variant_layer.h): one layer, one direction,
// forward and backward, and the activation table. Argument checks and array pointers only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <tuple>
#include <vector>

#include "binding_common.h"
#include "rnnfast/rnnfast.hpp"

namespace rnnfast_binding {
namespace {

using ActivationTuple = std::tuple<int, double, double>;  // (kind, alpha, beta)

// The variant options from the Python side's encoding: one (kind, alpha, beta) per gate role.
rnnfast::CellVariant read_variant(rnnfast::Cell cell, const std::vector<ActivationTuple>& activations, double clip,
                                  bool input_forget, bool reset_after) {
  const std::size_t roles = cell == rnnfast::Cell::kLstm ? 3 : cell == rnnfast::Cell::kGru ? 2 : 1;
  if (activations.size() != roles)
    throw py::value_error("activations must have " + std::to_string(roles) + " entries (one per gate role), got " +
                          std::to_string(activations.size()));
  rnnfast::CellVariant v;
  for (std::size_t i = 0; i < roles; ++i) {
    const int kind = std::get<0>(activations[i]);
    if (kind < 0 || kind >= rnnfast::kActivationCount)
      throw py::value_error("activations[" + std::to_string(i) + "]: unknown activation number " + std::to_string(kind));
    v.act[i] = {static_cast<rnnfast::Activation>(kind), std::get<1>(activations[i]), std::get<2>(activations[i])};
  }
  if (!(clip >= 0.0)) throw py::value_error("clip must be >= 0 (0: none)");
  v.clip = clip;
  v.input_forget = input_forget;
  v.reset_after = reset_after;
  return v;
}

// Sizes from x (S, B, I) and w_ih (G*H, I); H from the gate count; the projection from w_hr.
template <typename Args>
void read_sizes(Args& a, rnnfast::Cell cell, const py::array& x, const py::array& w_ih,
                const std::optional<py::array>& w_hr) {
  if (x.ndim() != 3) throw py::value_error("x must be 3-D (seq_len, batch, input_size)");
  if (w_ih.ndim() != 2) throw py::value_error("w_ih must be 2-D (gates*hidden_size, input_size)");
  const int G = rnnfast::gate_count(cell);
  if (w_ih.shape(0) % G != 0)
    throw py::value_error("w_ih has " + std::to_string(w_ih.shape(0)) + " rows, not a multiple of the " +
                          std::to_string(G) + " gates");
  a.cell = cell;
  a.seq_len = x.shape(0);
  a.batch = x.shape(1);
  a.input_size = x.shape(2);
  a.hidden = w_ih.shape(0) / G;
  if (w_hr) {
    if (cell != rnnfast::Cell::kLstm) throw py::value_error("w_hr (a projection) is only used by the LSTM");
    if (w_hr->ndim() != 2) throw py::value_error("w_hr must be 2-D (proj_size, hidden_size)");
    a.proj = w_hr->shape(0);
    if (a.proj <= 0 || a.proj >= a.hidden)
      throw py::value_error("w_hr has " + std::to_string(a.proj) + " rows: proj_size must be in (0, hidden_size)");
  }
}

template <typename Scalar>
void forward_typed(rnnfast::Cell cell, const rnnfast::CellVariant& v, const py::array& x,
                   const std::optional<py::array>& h0, const std::optional<py::array>& c0, const py::array& w_ih,
                   const py::array& w_hh, const std::optional<py::array>& b_ih, const std::optional<py::array>& b_hh,
                   const std::optional<py::array>& w_hr, const std::optional<py::array>& w_ch, py::array& out,
                   py::array& h_n, std::optional<py::array>& c_n, std::optional<py::array>& workspace,
                   const std::optional<py::array>& lengths) {
  const ArrayChecker<Scalar> chk;
  const bool lstm = cell == rnnfast::Cell::kLstm;
  rnnfast::VariantForward<Scalar> a;
  a.variant = v;
  read_sizes(a, cell, x, w_ih, w_hr);
  const ssize_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden, P = a.proj, R = P > 0 ? P : H;
  const ssize_t GH = rnnfast::gate_count(cell) * H, W = rnnfast::variant_workspace_slots(cell) * H;
  if (!lstm && (c0 || c_n || w_ch)) throw py::value_error("c0, c_n and w_ch (peepholes) are only used by the LSTM");
  if (lstm && !c_n) throw py::value_error("c_n is required for the LSTM");
  a.x = chk.in("x", x, {S, B, I});
  a.h0 = chk.optional_in("h0", h0, {B, R});
  a.c0 = chk.optional_in("c0", c0, {B, H});
  a.w_ih = chk.in("w_ih", w_ih, {GH, I});
  a.w_hh = chk.in("w_hh", w_hh, {GH, R});
  a.b_ih = chk.optional_in("b_ih", b_ih, {GH});
  a.b_hh = chk.optional_in("b_hh", b_hh, {GH});
  a.w_hr = chk.optional_in("w_hr", w_hr, {P, H});
  a.w_ch = chk.optional_in("w_ch", w_ch, {3 * H});
  a.out = chk.out("out", out, {S, B, R});
  a.h_n = chk.out("h_n", h_n, {B, R});
  a.c_n = chk.optional_out("c_n", c_n, {B, H});
  a.workspace = chk.optional_out("workspace", workspace, {S, B, W});
  a.lengths = ArrayChecker<std::int64_t>().optional_in("lengths", lengths, {B});
  KernelGilRelease release;
  rnnfast::variant_forward(a);
}

template <typename Scalar>
void backward_typed(rnnfast::Cell cell, const rnnfast::CellVariant& v, const py::array& x,
                    const std::optional<py::array>& h0, const std::optional<py::array>& c0, const py::array& w_ih,
                    const py::array& w_hh, const std::optional<py::array>& w_hr, const std::optional<py::array>& w_ch,
                    const py::array& out, const py::array& workspace, const std::optional<py::array>& d_out,
                    const std::optional<py::array>& d_h_n, const std::optional<py::array>& d_c_n, py::array& d_x,
                    py::array& d_h0, std::optional<py::array>& d_c0, py::array& d_w_ih, py::array& d_w_hh,
                    py::array& d_b_ih, py::array& d_b_hh, std::optional<py::array>& d_w_hr,
                    std::optional<py::array>& d_w_ch, const std::optional<py::array>& lengths) {
  const ArrayChecker<Scalar> chk;
  const bool lstm = cell == rnnfast::Cell::kLstm;
  rnnfast::VariantBackward<Scalar> a;
  a.variant = v;
  read_sizes(a, cell, x, w_ih, w_hr);
  const ssize_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden, P = a.proj, R = P > 0 ? P : H;
  const ssize_t GH = rnnfast::gate_count(cell) * H, W = rnnfast::variant_workspace_slots(cell) * H;
  if (!lstm && (c0 || d_c_n || d_c0 || w_ch || d_w_ch))
    throw py::value_error("c0, d_c_n, d_c0, w_ch and d_w_ch are only used by the LSTM");
  if (lstm && !d_c0) throw py::value_error("d_c0 is required for the LSTM");
  if (static_cast<bool>(w_hr) != static_cast<bool>(d_w_hr)) throw py::value_error("w_hr and d_w_hr go together");
  if (static_cast<bool>(w_ch) != static_cast<bool>(d_w_ch)) throw py::value_error("w_ch and d_w_ch go together");
  a.x = chk.in("x", x, {S, B, I});
  a.h0 = chk.optional_in("h0", h0, {B, R});
  a.c0 = chk.optional_in("c0", c0, {B, H});
  a.w_ih = chk.in("w_ih", w_ih, {GH, I});
  a.w_hh = chk.in("w_hh", w_hh, {GH, R});
  a.w_hr = chk.optional_in("w_hr", w_hr, {P, H});
  a.w_ch = chk.optional_in("w_ch", w_ch, {3 * H});
  a.out = chk.in("out", out, {S, B, R});
  a.workspace = chk.in("workspace", workspace, {S, B, W});
  a.d_out = chk.optional_in("d_out", d_out, {S, B, R});
  a.d_h_n = chk.optional_in("d_h_n", d_h_n, {B, R});
  a.d_c_n = chk.optional_in("d_c_n", d_c_n, {B, H});
  a.d_x = chk.out("d_x", d_x, {S, B, I});
  a.d_h0 = chk.out("d_h0", d_h0, {B, R});
  a.d_c0 = chk.optional_out("d_c0", d_c0, {B, H});
  a.d_w_ih = chk.out("d_w_ih", d_w_ih, {GH, I});
  a.d_w_hh = chk.out("d_w_hh", d_w_hh, {GH, R});
  a.d_b_ih = chk.out("d_b_ih", d_b_ih, {GH});
  a.d_b_hh = chk.out("d_b_hh", d_b_hh, {GH});
  a.d_w_hr = chk.optional_out("d_w_hr", d_w_hr, {P, H});
  a.d_w_ch = chk.optional_out("d_w_ch", d_w_ch, {3 * H});
  a.lengths = ArrayChecker<std::int64_t>().optional_in("lengths", lengths, {B});
  KernelGilRelease release;
  rnnfast::variant_backward(a);
}

void forward(const std::string& cell_name, const std::vector<ActivationTuple>& activations, double clip,
             bool input_forget, bool reset_after, const py::array& x, const std::optional<py::array>& h0,
             const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh,
             const std::optional<py::array>& b_ih, const std::optional<py::array>& b_hh,
             const std::optional<py::array>& w_hr, const std::optional<py::array>& w_ch, py::array out, py::array h_n,
             std::optional<py::array> c_n, std::optional<py::array> workspace,
             const std::optional<py::array>& lengths) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  const rnnfast::CellVariant v = read_variant(cell, activations, clip, input_forget, reset_after);
  with_float_dtype(x, [&](auto scalar) {
    forward_typed<decltype(scalar)>(cell, v, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch, out, h_n, c_n, workspace, lengths);
  });
}

void backward(const std::string& cell_name, const std::vector<ActivationTuple>& activations, double clip,
              bool input_forget, bool reset_after, const py::array& x, const std::optional<py::array>& h0,
              const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh,
              const std::optional<py::array>& w_hr, const std::optional<py::array>& w_ch, const py::array& out,
              const py::array& workspace, const std::optional<py::array>& d_out,
              const std::optional<py::array>& d_h_n, const std::optional<py::array>& d_c_n, py::array d_x,
              py::array d_h0, std::optional<py::array> d_c0, py::array d_w_ih, py::array d_w_hh, py::array d_b_ih,
              py::array d_b_hh, std::optional<py::array> d_w_hr, std::optional<py::array> d_w_ch,
              const std::optional<py::array>& lengths) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  const rnnfast::CellVariant v = read_variant(cell, activations, clip, input_forget, reset_after);
  with_float_dtype(x, [&](auto scalar) {
    backward_typed<decltype(scalar)>(cell, v, x, h0, c0, w_ih, w_hh, w_hr, w_ch, out, workspace, d_out, d_h_n, d_c_n, d_x, d_h0,
                          d_c0, d_w_ih, d_w_hh, d_b_ih, d_b_hh, d_w_hr, d_w_ch, lengths);
  });
}

// Streaming for the cell variants (stepper/variant_stepper.h): float32 or float64 by the weights' dtype.
class PyVariantStepper {
 public:
  PyVariantStepper(const std::string& cell_name, const std::vector<ActivationTuple>& activations, double clip,
                   bool input_forget, bool reset_after, std::int64_t hidden, std::int64_t proj, std::int64_t batch,
                   const py::list& layers)
      : cell_(parse_cell(cell_name)), hidden_(hidden), proj_(proj), batch_(batch),
        num_layers_(static_cast<ssize_t>(layers.size())) {
    const rnnfast::CellVariant v = read_variant(cell_, activations, clip, input_forget, reset_after);
    if (layers.empty()) throw py::value_error("a stepper needs at least one layer");
    if (hidden <= 0 || batch <= 0 || proj < 0 || proj >= hidden)
      throw py::value_error("hidden size and batch must be positive, and 0 <= proj_size < hidden size");
    const double elements = static_cast<double>(batch) * static_cast<double>(hidden) *
                            static_cast<double>(rnnfast::gate_count(cell_)) * static_cast<double>(num_layers_ + 2);
    if (elements * sizeof(double) > 0x1p62)
      throw py::value_error("batch " + std::to_string(batch) + " with hidden size " + std::to_string(hidden) +
                            " is too large: the stepper's buffers would need more than 2**62 bytes");
    const py::array first = layers[0].cast<py::tuple>()[0].cast<py::array>();
    if (first.dtype().equal(py::dtype::of<float>()))
      impl_ = make<float>(v, layers);
    else if (first.dtype().equal(py::dtype::of<double>()))
      impl_ = make<double>(v, layers);
    else
      throw py::type_error("weights must have dtype float32 or float64, got " + std::string(py::str(first.dtype())));
  }

  // x: [S, B, I] (or [B, I] for one step) -> out: [S, B, R] (or [B, R]); the state advances.
  void run(const py::array& x, py::array& y) {
    std::visit([&](auto& impl) {
      using Scalar = typename std::decay_t<decltype(*impl)>::ScalarType;
      const ArrayChecker<Scalar> chk;
      const ssize_t I = impl->input_size(), R = output_size();
      const bool one_step = x.ndim() == 2;
      if (!one_step && x.ndim() != 3)
        throw py::value_error("x must be (batch, input_size) for one step or (steps, batch, input_size)");
      const ssize_t steps = one_step ? 1 : x.shape(0);
      const Scalar* px = one_step ? chk.in("x", x, {batch_, I}) : chk.in("x", x, {steps, batch_, I});
      Scalar* py_ = one_step ? chk.out("out", y, {batch_, R}) : chk.out("out", y, {steps, batch_, R});
      KernelGilRelease release;
      std::lock_guard<std::mutex> lock(mutex_);
      impl->run(steps, px, py_);
    }, impl_);
  }

  void reset(const std::optional<py::array>& h0, const std::optional<py::array>& c0) {
    std::visit([&](auto& impl) {
      using Scalar = typename std::decay_t<decltype(*impl)>::ScalarType;
      const ArrayChecker<Scalar> chk;
      const Scalar* h = chk.optional_in("h0", h0, {num_layers_, batch_, output_size()});
      if (cell_ != rnnfast::Cell::kLstm && c0) throw py::value_error("c0 is only used by the LSTM");
      const Scalar* c = chk.optional_in("c0", c0, {num_layers_, batch_, hidden_});
      KernelGilRelease release;
      std::lock_guard<std::mutex> lock(mutex_);
      impl->reset(h, c);
    }, impl_);
  }

  // Copies the state into h [L, B, R] (and c [L, B, H], for the LSTM).
  void get_state(py::array& h, std::optional<py::array>& c) {
    std::visit([&](auto& impl) {
      using Scalar = typename std::decay_t<decltype(*impl)>::ScalarType;
      const ArrayChecker<Scalar> chk;
      Scalar* ph = chk.out("h", h, {num_layers_, batch_, output_size()});
      if (cell_ != rnnfast::Cell::kLstm && c) throw py::value_error("c is only kept by the LSTM");
      Scalar* pc = chk.optional_out("c", c, {num_layers_, batch_, hidden_});
      std::lock_guard<std::mutex> lock(mutex_);
      std::copy(impl->h(), impl->h() + num_layers_ * batch_ * output_size(), ph);
      if (pc != nullptr) std::copy(impl->c(), impl->c() + num_layers_ * batch_ * hidden_, pc);
    }, impl_);
  }

 private:
  template <typename Scalar>
  struct Typed : rnnfast::VariantStepper<Scalar> {
    using ScalarType = Scalar;
    using rnnfast::VariantStepper<Scalar>::VariantStepper;
  };

  ssize_t output_size() const { return proj_ > 0 ? proj_ : hidden_; }

  // Each layer (w_ih, w_hh, b_ih, b_hh, w_hr, w_ch), the optional ones None; every array checked here.
  template <typename Scalar>
  std::unique_ptr<Typed<Scalar>> make(const rnnfast::CellVariant& v, const py::list& layers) {
    const ArrayChecker<Scalar> chk;
    const ssize_t H = hidden_, R = output_size(), GH = rnnfast::gate_count(cell_) * H;
    const bool lstm = cell_ == rnnfast::Cell::kLstm;
    std::vector<rnnfast::VariantStepperLayer<Scalar>> specs;
    for (ssize_t k = 0; k < num_layers_; ++k) {
      const py::tuple t = layers[k].cast<py::tuple>();
      if (t.size() != 6) throw py::value_error("each layer is (w_ih, w_hh, b_ih, b_hh, w_hr, w_ch)");
      auto array = [&](int i) { return t[i].is_none() ? std::optional<py::array>() : t[i].cast<py::array>(); };
      const py::array w_ih = t[0].cast<py::array>();
      if (w_ih.ndim() != 2) throw py::value_error("w_ih must be 2-D");
      rnnfast::VariantStepperLayer<Scalar> spec;
      spec.input_size = k == 0 ? w_ih.shape(1) : R;
      spec.w_ih = chk.in("w_ih", w_ih, {GH, spec.input_size});
      spec.w_hh = chk.in("w_hh", t[1].cast<py::array>(), {GH, R});
      spec.b_ih = chk.optional_in("b_ih", array(2), {GH});
      spec.b_hh = chk.optional_in("b_hh", array(3), {GH});
      if ((proj_ > 0) != !t[4].is_none()) throw py::value_error("w_hr must be given exactly when proj_size > 0");
      spec.w_hr = chk.optional_in("w_hr", array(4), {proj_, H});
      if (!lstm && !t[5].is_none()) throw py::value_error("w_ch (peepholes) is only used by the LSTM");
      spec.w_ch = chk.optional_in("w_ch", array(5), {3 * H});
      specs.push_back(spec);
    }
    try {
      return std::make_unique<Typed<Scalar>>(cell_, v, hidden_, proj_, batch_, specs);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }

  rnnfast::Cell cell_;
  ssize_t hidden_, proj_, batch_, num_layers_;
  std::variant<std::unique_ptr<Typed<float>>, std::unique_ptr<Typed<double>>> impl_;
  std::mutex mutex_;
};

}  // namespace

void register_variant_ops(py::module_& m) {
  py::class_<PyVariantStepper>(m, "VariantStepper",
                               "Streaming inference over a stack of unidirectional cell-variant layers "
                               "(stepper/variant_stepper.h; see rnnfast.Stepper).")
      .def(py::init<const std::string&, const std::vector<ActivationTuple>&, double, bool, bool, std::int64_t,
                    std::int64_t, std::int64_t, const py::list&>(),
           py::arg("cell"), py::arg("activations"), py::arg("clip"), py::arg("input_forget"), py::arg("reset_after"),
           py::arg("hidden_size"), py::arg("proj_size"), py::arg("batch"), py::arg("layers"))
      .def("run", &PyVariantStepper::run, py::arg("x"), py::arg("out"),
           "Advance len(x) steps (x 3-D) or one step (x 2-D), writing the top layer's outputs into out.")
      .def("reset", &PyVariantStepper::reset, py::arg("h0").none(true), py::arg("c0").none(true))
      .def("get_state", &PyVariantStepper::get_state, py::arg("h"), py::arg("c").none(true));
  m.def("variant_forward", &forward, py::arg("cell"), py::arg("activations"), py::arg("clip"),
        py::arg("input_forget"), py::arg("reset_after"), py::arg("x"), py::arg("h0").none(true),
        py::arg("c0").none(true), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih").none(true),
        py::arg("b_hh").none(true), py::arg("w_hr").none(true), py::arg("w_ch").none(true), py::arg("out"),
        py::arg("h_n"), py::arg("c_n").none(true), py::arg("workspace").none(true),
        py::arg("lengths").none(true) = py::none(),
        "One layer, one direction of a cell variant, forward (layer/variant_layer.h). activations: one "
        "(kind, alpha, beta) per gate role; clip 0 for none. Writes out, h_n, c_n (LSTM), workspace (when given).");
  m.def("variant_backward", &backward, py::arg("cell"), py::arg("activations"), py::arg("clip"),
        py::arg("input_forget"), py::arg("reset_after"), py::arg("x"), py::arg("h0").none(true),
        py::arg("c0").none(true), py::arg("w_ih"), py::arg("w_hh"), py::arg("w_hr").none(true),
        py::arg("w_ch").none(true), py::arg("out"), py::arg("workspace"), py::arg("d_out").none(true),
        py::arg("d_h_n").none(true), py::arg("d_c_n").none(true), py::arg("d_x"), py::arg("d_h0"),
        py::arg("d_c0").none(true), py::arg("d_w_ih"), py::arg("d_w_hh"), py::arg("d_b_ih"), py::arg("d_b_hh"),
        py::arg("d_w_hr").none(true), py::arg("d_w_ch").none(true), py::arg("lengths").none(true) = py::none(),
        "One layer, one direction of a cell variant, backward through time. Overwrites every d_* output.");
  m.def("activation_names", []() {
    std::vector<std::string> names(rnnfast::kActivationNames, rnnfast::kActivationNames + rnnfast::kActivationCount);
    return names;
  }, "The activations of the cell variants, in the kernels' order (rnnfast checks its table against it).");
  m.def("variant_workspace_slots", [](const std::string& cell) {
    return rnnfast::variant_workspace_slots(parse_cell(cell));
  }, py::arg("cell"));
}

}  // namespace rnnfast_binding
