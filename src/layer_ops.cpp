// The layer ops of rnnfast._core: one layer, one direction, forward and backward, and the cells' facts.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "binding_common.h"
#include "rnnfast/rnnfast.hpp"

namespace rnnfast_binding {
namespace {

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
  const bool lstm = rnnfast::cell_info(cell).cell_state;  // the LSTM: c0, c_n, d_c0, d_c_n
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
  const bool lstm = rnnfast::cell_info(cell).cell_state;  // the LSTM: c0, c_n, d_c0, d_c_n
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
  with_float_dtype(x, [&](auto scalar) {
    forward_typed<decltype(scalar)>(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, out, h_n, c_n, workspace, lengths);
  });
}

void backward(const std::string& cell_name, const py::array& x, const std::optional<py::array>& h0,
              const std::optional<py::array>& c0, const py::array& w_ih, const py::array& w_hh, const py::array& out,
              const py::array& workspace, const std::optional<py::array>& d_out,
              const std::optional<py::array>& d_h_n, const std::optional<py::array>& d_c_n, py::array d_x,
              py::array d_h0, std::optional<py::array> d_c0, py::array d_w_ih, py::array d_w_hh, py::array d_b_ih,
              py::array d_b_hh, const std::optional<py::array>& lengths) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  with_float_dtype(x, [&](auto scalar) {
    backward_typed<decltype(scalar)>(cell, x, h0, c0, w_ih, w_hh, out, workspace, d_out, d_h_n, d_c_n, d_x, d_h0, d_c0, d_w_ih,
                          d_w_hh, d_b_ih, d_b_hh, lengths);
  });
}

}  // namespace

void register_layer_ops(py::module_& m) {
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
  m.def("cell_facts", []() {
    py::list facts;
    for (const rnnfast::CellInfo& info : rnnfast::kCellInfo) {
      py::dict d;
      d["name"] = info.name;
      d["gates"] = info.gates;
      d["workspace_slots"] = info.workspace_slots;
      d["cell_state"] = info.cell_state;
      facts.append(d);
    }
    return facts;
  }, "The cells the kernels compute, in their order: name, gates (weights have gates*H rows), workspace_slots "
     "(the training workspace holds slots*H values per row) and cell_state (a second state, the LSTM's c). "
     "rnnfast checks its own table against this at import.");
  m.def("workspace_width", [](const std::string& cell, std::int64_t hidden) {
    return rnnfast::workspace_width(parse_cell(cell), hidden);
  }, py::arg("cell"), py::arg("hidden_size"));
}

}  // namespace rnnfast_binding
