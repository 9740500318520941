// The C API's models (rnnfast.h): loading a file, making one from a configuration and raw arrays,
// asking its sizes, and running it over a sequence.
#include <cmath>
#include <string>
#include <vector>

#include "rnnfast/capi/errors.h"
#include "rnnfast/capi/handles.h"
#include "rnnfast/model/error.h"
#include "rnnfast/model/model_file.h"

namespace model = rnnfast::model;
using rnnfast::capi::guard;
using rnnfast::capi::require;

namespace {

[[noreturn]] void invalid(const std::string& message) { model::fail(model::ErrorKind::kInvalidArgument, message); }

// An enumeration value of the config, checked to be one of `count` values from 0.
template <typename Enum>
Enum enum_value(std::int32_t value, std::int32_t count, const char* what) {
  if (value < 0 || value >= count) invalid(std::string("config->") + what + " is " + std::to_string(value) + ", not a known value");
  return static_cast<Enum>(value);
}

std::optional<double> given(double value) { return std::isnan(value) ? std::nullopt : std::optional<double>(value); }

// The C configuration as a LayerConfig (checked by the Model).
model::LayerConfig layer_config(const rnnfast_config& in) {
  if (in.struct_size < sizeof(rnnfast_config))
    invalid("config->struct_size is " + std::to_string(in.struct_size) + ": initialise the config with rnnfast_config_init");
  if (in.struct_size > sizeof(rnnfast_config))
    model::fail(model::ErrorKind::kUnsupported, "config->struct_size is " + std::to_string(in.struct_size) +
                                                    ", larger than this library's " + std::to_string(sizeof(rnnfast_config)) +
                                                    ": the caller was built against a newer rnnfast");
  model::LayerConfig c;
  c.family = enum_value<model::Family>(in.cell, 3, "cell");
  c.input_size = in.input_size;
  c.hidden_size = in.hidden_size;
  c.num_layers = in.num_layers;
  c.bias = in.bias != 0;
  c.batch_first = in.batch_first != 0;
  c.direction = enum_value<model::Direction>(in.direction, 3, "direction");
  c.weight_dtype = enum_value<model::WeightDtype>(in.weight_dtype, 4, "weight_dtype");
  if (std::isnan(in.clip) || in.clip < 0.0) invalid("config->clip must be 0 (none) or a positive number");
  c.clip = std::isinf(in.clip) ? 0.0 : in.clip;
  c.input_forget = in.input_forget != 0;
  c.reset_after = in.reset_after != 0;
  c.peepholes = in.peepholes != 0;
  c.proj_size = in.proj_size;
  // Slot 0's default roles are PyTorch's cell; slot 1's take slot 0's (rnnfast.h).
  const std::vector<model::ActivationChoice> defaults = model::default_activations(c.family);
  for (int slot = 0; slot < c.num_directions(); ++slot) {
    std::vector<model::ActivationChoice> acts;
    for (int r = 0; r < model::role_count(c.family); ++r) {
      const rnnfast_activation& a = in.activations[slot][r];
      const std::string label = "config->activations[" + std::to_string(slot) + "][" + std::to_string(r) + "]";
      if (a.kind == RNNFAST_ACTIVATION_DEFAULT)
        acts.push_back(slot == 0 ? defaults[r] : c.activations[0][r]);
      else
        acts.push_back(model::make_activation(a.kind, given(a.alpha), given(a.beta), label));
    }
    c.activations.push_back(std::move(acts));
  }
  return c;
}

model::DType tensor_dtype(std::int32_t dtype, const char* name) {
  switch (dtype) {
    case RNNFAST_DTYPE_FLOAT32: return model::DType::kFloat32;
    case RNNFAST_DTYPE_INT8: return model::DType::kInt8;
    case RNNFAST_DTYPE_BF16: return model::DType::kUint16;
    case RNNFAST_DTYPE_FLOAT64: return model::DType::kFloat64;
  }
  invalid(std::string("tensor '") + name + "' has an unknown dtype " + std::to_string(dtype));
}

int set_model(rnnfast_model** out, std::unique_ptr<const model::Model> m) {
  auto handle = std::make_unique<rnnfast_model>();
  handle->model = std::move(m);
  *out = handle.release();
  return RNNFAST_OK;
}

}  // namespace

extern "C" {

int rnnfast_model_load(const char* path, rnnfast_model** out) {
  if (out != nullptr) *out = nullptr;
  return guard([&] {
    require(out, "model (the output handle)");
    require(path, "path");
    set_model(out, model::load_model_file(path));
  });
}

int rnnfast_model_load_buffer(const void* data, size_t size, rnnfast_model** out) {
  if (out != nullptr) *out = nullptr;
  return guard([&] {
    require(out, "model (the output handle)");
    if (size > 0) require(data, "data");
    set_model(out, model::load_model_bytes(static_cast<const std::uint8_t*>(data), size));
  });
}

int rnnfast_model_create(const rnnfast_config* config, const rnnfast_tensor* tensors, size_t count,
                         rnnfast_model** out) {
  if (out != nullptr) *out = nullptr;
  return guard([&] {
    require(out, "model (the output handle)");
    require(config, "config");
    if (count > 0) require(tensors, "tensors");
    model::LayerConfig c = layer_config(*config);
    std::vector<model::NamedArray> arrays;
    for (size_t i = 0; i < count; ++i) {
      const rnnfast_tensor& t = tensors[i];
      if (t.name == nullptr)
        model::fail(model::ErrorKind::kNullArgument, "tensors[" + std::to_string(i) + "].name is NULL");
      if (t.ndim < 1 || t.ndim > 2)
        invalid(std::string("tensor '") + t.name + "' has ndim " + std::to_string(t.ndim) + " (parameters have 1 or 2)");
      model::NamedArray a;
      a.name = t.name;
      a.dtype = tensor_dtype(t.dtype, t.name);
      a.shape.assign(t.shape, t.shape + t.ndim);
      for (std::int64_t d : a.shape)
        if (d < 0) invalid(std::string("tensor '") + t.name + "' has a negative dimension");
      a.data = t.data;
      arrays.push_back(std::move(a));
    }
    set_model(out, std::make_unique<const model::Model>(std::move(c), arrays));
  });
}

void rnnfast_model_free(rnnfast_model* m) { delete m; }

int rnnfast_model_get(const rnnfast_model* m, int32_t property, int64_t* value) {
  return guard([&] {
    require(m, "model (no model loaded?)");
    require(value, "value");
    const model::LayerConfig& c = m->model->config();
    const std::int64_t D = c.num_directions();
    switch (property) {
      case RNNFAST_PROP_CELL: *value = static_cast<std::int64_t>(c.family); break;
      case RNNFAST_PROP_INPUT_SIZE: *value = c.input_size; break;
      case RNNFAST_PROP_HIDDEN_SIZE: *value = c.hidden_size; break;
      case RNNFAST_PROP_PROJ_SIZE: *value = c.proj_size; break;
      case RNNFAST_PROP_STATE_SIZE: *value = c.state_size(); break;
      case RNNFAST_PROP_OUTPUT_SIZE: *value = D * c.state_size(); break;
      case RNNFAST_PROP_NUM_LAYERS: *value = c.num_layers; break;
      case RNNFAST_PROP_NUM_DIRECTIONS: *value = D; break;
      case RNNFAST_PROP_NUM_STATES: *value = c.num_layers * D; break;
      case RNNFAST_PROP_DIRECTION: *value = static_cast<std::int64_t>(c.direction); break;
      case RNNFAST_PROP_WEIGHT_DTYPE: *value = static_cast<std::int64_t>(c.weight_dtype); break;
      case RNNFAST_PROP_BATCH_FIRST: *value = c.batch_first; break;
      case RNNFAST_PROP_BIAS: *value = c.bias; break;
      case RNNFAST_PROP_HAS_CELL_STATE: *value = c.family == model::Family::kLstm; break;
      case RNNFAST_PROP_IS_VARIANT: *value = c.is_variant(); break;
      default: invalid("unknown property " + std::to_string(property));
    }
  });
}

int rnnfast_forward(const rnnfast_model* m, int64_t seq_len, int64_t batch, const float* x, size_t x_count,
                    const float* h0, size_t h0_count, const float* c0, size_t c0_count, const int64_t* lengths,
                    size_t lengths_count, float* out, size_t out_count, float* h_n, size_t h_n_count, float* c_n,
                    size_t c_n_count) {
  return guard([&] {
    using rnnfast::capi::check_input;
    using rnnfast::capi::check_optional_input;
    using rnnfast::capi::check_optional_output;
    using rnnfast::capi::check_output;
    require(m, "model (no model loaded?)");
    const model::LayerConfig& c = m->model->config();
    const model::SequenceSizes n = model::sequence_sizes(c, seq_len, batch);
    const bool lstm = c.family == model::Family::kLstm;
    if (!lstm && (c0 != nullptr || c_n != nullptr)) invalid("c0 and c_n are only used by the LSTM: pass NULL");
    check_input("x", x, x_count, n.x);
    check_optional_input("h0", h0, h0_count, n.h);
    check_optional_input("c0", c0, c0_count, n.c);
    check_optional_input("lengths", lengths, lengths_count, batch);
    check_output("out", out, out_count, n.out);
    check_optional_output("h_n", h_n, h_n_count, n.h);
    check_optional_output("c_n", c_n, c_n_count, n.c);
    model::SequenceCall call;
    call.seq_len = seq_len, call.batch = batch, call.x = x, call.h0 = h0, call.c0 = c0, call.lengths = lengths;
    call.out = out, call.h_n = h_n, call.c_n = c_n;
    m->model->forward(call);
  });
}

}  // extern "C"
