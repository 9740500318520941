// Making a Model from a configuration and named arrays (model.h): the checks of the Python layer's
// load_state_dict (python/rnnfast/_layer_parameters.py) and of a quantized layer's values
// (python/rnnfast/_quantized.py check_quantized_value), then the copies and the packs.
#include "rnnfast/model/model.h"

#include <cmath>
#include <cstring>
#include <map>

#include "rnnfast/model/error.h"

namespace rnnfast::model {
namespace {

// A shape as Python prints a tuple: (3, 4), (3,), ().
std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;  // the spec's shapes, whose counts validate() has bounded
  return n;
}

std::vector<float> copy_floats(const NamedArray& a) {
  std::vector<float> v(static_cast<std::size_t>(element_count(a.shape)));
  if (!v.empty()) std::memcpy(v.data(), a.data, v.size() * sizeof(float));
  return v;
}

// The first value a quantized parameter may not hold (quantization never gives it), as a message; empty
// when all are fine. int8 weights are symmetric, in [-127, 127]; scales finite and >= 0; bfloat16
// weights finite (exponent bits not all ones).
std::string quantized_value_problem(const ParameterSpec& s, const NamedArray& a) {
  const std::int64_t n = element_count(s.shape);
  if (s.role == ParameterRole::kScaleIh || s.role == ParameterRole::kScaleHh) {
    for (std::int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, static_cast<const char*>(a.data) + 4 * i, 4);
      if (!(std::isfinite(v) && v >= 0.0f))
        return s.name + " must hold finite non-negative row scales, got " + std::to_string(v) + " at row " +
               std::to_string(i);
    }
  } else if (s.dtype == DType::kInt8) {
    const auto* q = static_cast<const std::int8_t*>(a.data);
    for (std::int64_t i = 0; i < n; ++i)
      if (q[i] < -127) return s.name + " holds -128: int8 weights are symmetric, in [-127, 127]";
  } else if (s.dtype == DType::kUint16) {
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      std::uint16_t bits;
      std::memcpy(&bits, static_cast<const char*>(a.data) + 2 * i, 2);
      bad += (bits & 0x7f80) == 0x7f80;
    }
    if (bad > 0) return s.name + " holds " + std::to_string(bad) + " NaN or infinite bfloat16 values";
  }
  return "";
}

}  // namespace

SequenceSizes sequence_sizes(const LayerConfig& c, std::int64_t seq_len, std::int64_t batch) {
  if (seq_len < 0 || batch < 0)
    fail(ErrorKind::kInvalidArgument, "seq_len and batch must be >= 0, got " + std::to_string(seq_len) + " and " +
                                          std::to_string(batch));
  // Each count is a product of four factors: checked in long double, whose 64-bit mantissa holds every
  // product below the 2^62 bound exactly enough to compare.
  auto count = [&](std::int64_t a, std::int64_t b, std::int64_t d) {
    const long double n = static_cast<long double>(a) * b * d;
    if (n > static_cast<long double>(std::int64_t(1) << 60))
      fail(ErrorKind::kInvalidArgument, "seq_len " + std::to_string(seq_len) + " and batch " + std::to_string(batch) +
                                            " are too large for any buffer");
    return a * b * d;
  };
  const std::int64_t LD = c.num_layers * c.num_directions(), R = c.state_size();
  SequenceSizes s;
  s.x = count(seq_len, batch, c.input_size);
  s.out = count(seq_len, batch, c.num_directions() * R);
  s.h = count(LD, batch, R);
  s.c = c.family == Family::kLstm ? count(LD, batch, c.hidden_size) : 0;
  return s;
}

Model::Model(LayerConfig config, const std::vector<NamedArray>& arrays) : config_(std::move(config)) {
  const LayerConfig& c = config_;
  validate(c);
  const std::int64_t expected_count = parameter_array_count(c);
  const std::int64_t given = static_cast<std::int64_t>(arrays.size());
  if (expected_count < 0 || expected_count > given + 4096)  // too many to list: say how many
    fail(ErrorKind::kInvalidArgument, "the layer has " + std::to_string(expected_count) + " parameter arrays, got " +
                                          std::to_string(given));
  const std::vector<ParameterSpec> spec = parameter_spec(c);

  // Names: each once, exactly the layer's (load_state_dict's "missing keys" and "unexpected keys").
  std::map<std::string, const NamedArray*> by_name;
  for (const NamedArray& a : arrays)
    if (!by_name.emplace(a.name, &a).second)
      fail(ErrorKind::kInvalidArgument, "parameter '" + a.name + "' is given twice");
  std::string missing, unexpected;
  std::map<std::string, bool> known;
  for (const ParameterSpec& s : spec) {
    known[s.name] = true;
    if (!by_name.count(s.name)) missing += (missing.empty() ? "" : ", ") + ("'" + s.name + "'");
  }
  for (const NamedArray& a : arrays)
    if (!known.count(a.name)) unexpected += (unexpected.empty() ? "" : ", ") + ("'" + a.name + "'");
  if (!missing.empty() || !unexpected.empty())
    fail(ErrorKind::kInvalidArgument,
         "the parameters do not match the configuration: " + (missing.empty() ? "" : "missing " + missing) +
             (!missing.empty() && !unexpected.empty() ? "; " : "") +
             (unexpected.empty() ? "" : "unexpected " + unexpected));
  // Shapes and element types, then the values quantization can give.
  for (const ParameterSpec& s : spec) {
    const NamedArray& a = *by_name[s.name];
    if (a.shape != s.shape)
      fail(ErrorKind::kSizeMismatch,
           "parameter '" + s.name + "' has shape " + shape_text(a.shape) + ", expected " + shape_text(s.shape));
    if (a.dtype != s.dtype)
      fail(ErrorKind::kSizeMismatch, "parameter '" + s.name + "' has dtype " + dtype_name(a.dtype) + ", expected " +
                                         dtype_name(s.dtype));
    if (a.data == nullptr && element_count(s.shape) > 0)
      fail(ErrorKind::kNullArgument, "parameter '" + s.name + "' has no data (NULL)");
    if (c.quantized()) {
      const std::string problem = quantized_value_problem(s, a);
      if (!problem.empty()) fail(ErrorKind::kInvalidArgument, problem);
    }
  }

  // The copies (and packs): every slot of every layer.
  const std::int64_t D = c.num_directions(), H = c.hidden_size;
  weights_.resize(static_cast<std::size_t>(c.num_layers * D));
  const WeightType type = c.weight_dtype == WeightDtype::kInt8 ? WeightType::kInt8 : WeightType::kBf16;
  for (const ParameterSpec& s : spec) {
    const NamedArray& a = *by_name[s.name];
    DirectionWeights& w = weights_[static_cast<std::size_t>(s.layer * D + s.slot)];
    const bool weight = s.role == ParameterRole::kWeightIh || s.role == ParameterRole::kWeightHh;
    if (c.quantized() && weight) {
      // int8 weights take their scales (the spec lists them right after); packed once, as the Python
      // layer's QuantizedWeight.native() packs them, for the kernel cell.
      const float* scales = nullptr;
      std::vector<float> scale_copy;
      if (type == WeightType::kInt8) {
        const std::string scale_name = s.name + "_scale";
        scale_copy = copy_floats(*by_name[scale_name]);
        scales = scale_copy.data();
      }
      auto packed = std::make_shared<const ReducedWeights>(c.kernel_cell(), type, H, s.shape[1], a.data, scales);
      (s.role == ParameterRole::kWeightIh ? w.q_ih : w.q_hh) = std::move(packed);
      continue;
    }
    switch (s.role) {
      case ParameterRole::kWeightIh: w.w_ih = copy_floats(a); break;
      case ParameterRole::kWeightHh: w.w_hh = copy_floats(a); break;
      case ParameterRole::kBiasIh: w.b_ih = copy_floats(a); break;
      case ParameterRole::kBiasHh: w.b_hh = copy_floats(a); break;
      case ParameterRole::kWeightCh: w.w_ch = copy_floats(a); break;
      case ParameterRole::kWeightHr: w.w_hr = copy_floats(a); break;
      case ParameterRole::kScaleIh:
      case ParameterRole::kScaleHh: break;  // packed with their weights
    }
  }
}

}  // namespace rnnfast::model
