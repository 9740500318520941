// The reduced-precision inference ops of rnnfast._core (int8 and bf16 weights): the packed weights
// object, one layer direction's forward, the code path's name, and the test hooks of
// rnnfast._core.testing that expose the kernels' own activation quantization and raw products.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "binding_common.h"
#include "rnnfast/rnnfast.hpp"

namespace rnnfast_binding {
namespace {

using rnnfast::ReducedWeights;
using rnnfast::WeightType;

WeightType parse_type(const std::string& name) {
  if (name == "int8") return WeightType::kInt8;
  if (name == "bf16") return WeightType::kBf16;
  throw py::value_error("weight_dtype must be 'int8' or 'bf16', got '" + name + "'");
}

// ReducedWeights(cell, weight_dtype, weights, scales): packs W [G*H, K] (int8 with float32 row scales
// [G*H], or bfloat16 bits as uint16).
std::shared_ptr<ReducedWeights> make_weights(const std::string& cell_name, const std::string& type_name,
                                             const py::array& weights, const std::optional<py::array>& scales) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  const WeightType type = parse_type(type_name);
  if (weights.ndim() != 2) throw py::value_error("weights must be 2-D (gates * hidden, depth)");
  const ssize_t rows = weights.shape(0), depth = weights.shape(1), gates = rnnfast::gate_count(cell);
  if (rows % gates != 0)
    throw py::value_error("weights has " + std::to_string(rows) + " rows, not a multiple of the " + cell_name + "'s " +
                          std::to_string(gates) + " gates");
  const void* data;
  const float* scale_data = nullptr;
  if (type == WeightType::kInt8) {
    data = ArrayChecker<std::int8_t>().in("weights", weights, {rows, depth});
    if (!scales) throw py::value_error("int8 weights need their scales");
    scale_data = ArrayChecker<float>().in("scales", *scales, {rows});
  } else {
    data = ArrayChecker<std::uint16_t>().in("weights", weights, {rows, depth});
    if (scales) throw py::value_error("bf16 weights take no scales");
  }
  if (type == WeightType::kInt8 && depth > rnnfast::kMaxInt8Depth)
    throw py::value_error("int8 weights of depth " + std::to_string(depth) + " exceed " +
                          std::to_string(rnnfast::kMaxInt8Depth) + ", the deepest whose products are exact in int32");
  KernelGilRelease release;
  return std::make_shared<ReducedWeights>(cell, type, rows / gates, depth, data, scale_data);
}

py::tuple reduced_forward(const std::string& cell_name, const py::array& x, const std::optional<py::array>& h0,
                          const std::optional<py::array>& c0, const ReducedWeights& w_ih, const ReducedWeights& w_hh,
                          const std::optional<py::array>& b_ih, const std::optional<py::array>& b_hh,
                          const std::optional<py::array>& lengths) {
  const rnnfast::Cell cell = parse_cell(cell_name);
  if (w_ih.cell() != cell || w_hh.cell() != cell)
    throw py::value_error("w_ih and w_hh must be packed for the " + cell_name);
  if (w_ih.type() != w_hh.type()) throw py::value_error("w_ih and w_hh must have the same weight dtype");
  if (w_ih.hidden() != w_hh.hidden() || w_hh.depth() != w_hh.hidden())
    throw py::value_error("w_hh must be (gates * hidden, hidden) with the hidden size of w_ih");
  if (x.ndim() != 3) throw py::value_error("x must be 3-D (seq_len, batch, input_size)");
  const ArrayChecker<float> chk;
  const bool lstm = rnnfast::cell_info(cell).cell_state;
  const ssize_t S = x.shape(0), B = x.shape(1), I = w_ih.depth(), H = w_hh.hidden(), GH = w_hh.gates() * H;
  rnnfast::ReducedLayerForward a;
  a.seq_len = S;
  a.batch = B;
  a.w_ih = &w_ih;
  a.w_hh = &w_hh;
  a.x = chk.in("x", x, {S, B, I});
  a.h0 = chk.optional_in("h0", h0, {B, H});
  if (!lstm && c0) throw py::value_error("c0 is only used by the LSTM");
  a.c0 = chk.optional_in("c0", c0, {B, H});
  a.b_ih = chk.optional_in("b_ih", b_ih, {GH});
  a.b_hh = chk.optional_in("b_hh", b_hh, {GH});
  a.lengths = ArrayChecker<std::int64_t>().optional_in("lengths", lengths, {B});
  py::array_t<float> out({S, B, H}), h_n({B, H});
  std::optional<py::array_t<float>> c_n;
  a.out = out.mutable_data();
  a.h_n = h_n.mutable_data();
  if (lstm) {
    c_n.emplace(std::vector<ssize_t>{B, H});
    a.c_n = c_n->mutable_data();
  }
  {
    KernelGilRelease release;
    rnnfast::reduced_layer_forward(a);
  }
  return py::make_tuple(out, h_n, c_n ? py::object(*c_n) : py::object(py::none()));
}

// The kernels' own quantization of the rows of a [M, K]: (q uint8 [M, K], scales float32 [M],
// zero points int32 [M]) for int8, (bfloat16 bits uint16 [M, K], None, None) for bf16.
py::tuple quantize_rows(const std::string& type_name, const py::array& a) {
  const WeightType type = parse_type(type_name);
  if (a.ndim() != 2) throw py::value_error("a must be 2-D");
  const ssize_t M = a.shape(0), K = a.shape(1);
  const float* data = ArrayChecker<float>().in("a", a, {M, K});
  const rnnfast::ReducedKernel& kernel = rnnfast::active_reduced_kernel(type);
  const ssize_t group = rnnfast::reduced_group(type), Kp = (K + group - 1) / group * group;
  std::vector<rnnfast::ActivationScale> row_scales(static_cast<std::size_t>(M) + 1);
  if (type == WeightType::kInt8) {
    py::array_t<std::uint8_t> padded({M, Kp});
    kernel.quantize_rows(M, K, Kp, data, K, padded.mutable_data(), row_scales.data());
    for (ssize_t i = 0; i < M * Kp; ++i)  // the kernel's bytes are q - operand_bias
      padded.mutable_data()[i] = static_cast<std::uint8_t>(padded.data()[i] + kernel.operand_bias);
    py::array_t<float> scales(M);
    py::array_t<std::int32_t> zero_points(M);
    for (ssize_t i = 0; i < M; ++i) {
      scales.mutable_data()[i] = row_scales[i].scale;
      zero_points.mutable_data()[i] = row_scales[i].zero_point;
    }
    return py::make_tuple(padded[py::make_tuple(py::ellipsis(), py::slice(0, K, 1))].attr("copy")(), scales,
                          zero_points);
  }
  py::array_t<std::uint16_t> padded({M, Kp});
  kernel.quantize_rows(M, K, Kp, data, K, padded.mutable_data(), row_scales.data());
  return py::make_tuple(padded[py::make_tuple(py::ellipsis(), py::slice(0, K, 1))].attr("copy")(), py::none(),
                        py::none());
}

// The raw products [M, G*H] of the kernels' quantization of a [M, K] with every row of w: int8 exact
// int32 sums of (q_a - zero_point) q_w, bf16 the float32 chains.
py::array raw_product(const py::array& a, const ReducedWeights& w) {
  if (a.ndim() != 2) throw py::value_error("a must be 2-D");
  const ssize_t M = a.shape(0), K = w.depth(), N = w.gates() * w.hidden(), Kp = w.padded_depth();
  const float* data = ArrayChecker<float>().in("a", a, {M, K});
  const rnnfast::ReducedKernel& kernel = rnnfast::active_reduced_kernel(w.type());
  const bool int8 = w.type() == WeightType::kInt8;
  std::vector<std::uint8_t> quantized(static_cast<std::size_t>(M * Kp * (int8 ? 1 : 2)) + 1);
  std::vector<rnnfast::ActivationScale> scales(static_cast<std::size_t>(M) + 1);
  kernel.quantize_rows(M, K, Kp, data, K, quantized.data(), scales.data());
  if (int8) {
    py::array_t<std::int32_t> out({M, N});
    kernel.raw_product(w, M, quantized.data(), scales.data(), out.mutable_data());
    return out;
  }
  py::array_t<float> out({M, N});
  kernel.raw_product(w, M, quantized.data(), scales.data(), out.mutable_data());
  return out;
}

}  // namespace

void register_reduced(py::module_& m, py::module_& t) {
  py::class_<ReducedWeights, std::shared_ptr<ReducedWeights>>(
      m, "ReducedWeights",
      "A layer direction's weight matrix (gates * hidden, depth) in int8 (with float32 row scales) or bfloat16, "
      "packed once for the reduced-precision kernels (any instruction set).")
      .def(py::init(&make_weights), py::arg("cell"), py::arg("weight_dtype"), py::arg("weights"),
           py::arg("scales") = py::none())
      .def_property_readonly("cell",
                             [](const ReducedWeights& w) { return std::string(rnnfast::cell_info(w.cell()).name); })
      .def_property_readonly("weight_dtype",
                             [](const ReducedWeights& w) { return std::string(rnnfast::weight_type_name(w.type())); })
      .def_property_readonly("rows", [](const ReducedWeights& w) { return w.gates() * w.hidden(); })
      .def_property_readonly("depth", &ReducedWeights::depth)
      .def_property_readonly("hidden", &ReducedWeights::hidden)
      .def("__repr__", [](const ReducedWeights& w) {
        return "ReducedWeights(cell='" + std::string(rnnfast::cell_info(w.cell()).name) + "', weight_dtype='" +
               rnnfast::weight_type_name(w.type()) + "', rows=" + std::to_string(w.gates() * w.hidden()) +
               ", depth=" + std::to_string(w.depth()) + ")";
      });
  m.def("reduced_forward", &reduced_forward, py::arg("cell"), py::arg("x"), py::arg("h0"), py::arg("c0"),
        py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("lengths"),
        "One layer direction's inference forward with reduced-precision weights: (out, h_n, c_n or None).");
  m.def("reduced_isa",
        [](const std::string& type) { return std::string(rnnfast::active_reduced_kernel(parse_type(type)).name); },
        py::arg("weight_dtype"), "The code path the kernels for this weight dtype run on.");
  t.def("reduced_quantize_rows", &quantize_rows, py::arg("weight_dtype"), py::arg("a"));
  t.def("reduced_product", &raw_product, py::arg("a"), py::arg("w"));
  t.def("set_reduced_extensions", &rnnfast::set_reduced_extensions, py::arg("enabled"));
  t.def("get_reduced_extensions", &rnnfast::reduced_extensions);
}

}  // namespace rnnfast_binding
