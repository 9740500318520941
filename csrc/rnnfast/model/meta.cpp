// Reading a model file's metadata (meta.h), in the order python/rnnfast/io.py checks it: the format and
// its version, the class, the configuration's exact keys and their JSON types (by version and class),
// the version-3 cell options (activations, direction, clip, the LSTM's and the GRU's own), the weight
// dtype, the parameters table; then what the layer constructors check (config.h validate, and the
// dropout and dtype arguments, which the C API otherwise ignores).
#include "rnnfast/model/meta.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "rnnfast/model/error.h"

namespace rnnfast::model {
namespace {

// The JSON type a configuration key must have (io.py _CONFIG_TYPES and _CLASS_CONFIG_TYPES).
enum class Want { kInt, kBool, kNumber, kString, kOptionalNumber, kList };

const char* want_name(Want w) {
  switch (w) {
    case Want::kInt: return "int";
    case Want::kBool: return "bool";
    case Want::kNumber: return "float";
    case Want::kString: return "str";
    case Want::kOptionalNumber: return "null or a number";
    case Want::kList: return "list";
  }
  return "value";
}

bool has_type(const Json& v, Want w) {
  switch (w) {
    case Want::kInt: return v.is_integer();
    case Want::kBool: return v.is(Json::Type::kBool);
    case Want::kNumber: return v.is(Json::Type::kNumber);
    case Want::kString: return v.is(Json::Type::kString);
    case Want::kOptionalNumber: return v.is(Json::Type::kNull) || v.is(Json::Type::kNumber);
    case Want::kList: return v.is(Json::Type::kArray);
  }
  return false;
}

std::map<std::string, Want> config_types(std::int64_t version, Family family) {
  std::map<std::string, Want> t = {{"input_size", Want::kInt},   {"hidden_size", Want::kInt},
                                   {"num_layers", Want::kInt},   {"bias", Want::kBool},
                                   {"batch_first", Want::kBool}, {"bidirectional", Want::kBool},
                                   {"dropout", Want::kNumber},   {"dtype", Want::kString}};
  if (version >= 2) t["weight_dtype"] = Want::kString;
  if (version >= 3) {
    t["direction"] = Want::kString;
    t["clip"] = Want::kOptionalNumber;
    t["activations"] = Want::kList;
    if (family == Family::kLstm) {
      t["proj_size"] = Want::kInt;
      t["peepholes"] = Want::kBool;
      t["input_forget"] = Want::kBool;
    } else if (family == Family::kGru) {
      t["reset_after"] = Want::kBool;
    }
  }
  if (family == Family::kRnn) t["nonlinearity"] = Want::kString;
  return t;
}

std::string sorted_keys(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  std::string s = "[";
  for (std::size_t i = 0; i < keys.size(); ++i) s += (i ? ", '" : "'") + keys[i] + "'";
  return s + "]";
}

std::optional<double> optional_number(const Json& v) {
  if (v.is(Json::Type::kNull)) return std::nullopt;
  return v.as_double();
}

// config['activations'] (io.py _activations, then _layer_options._per_direction and make_options): one
// list per direction slot, each of one {"name", "alpha", "beta"} per gate role.
std::vector<std::vector<ActivationChoice>> read_activations(const Json& value, const LayerConfig& c) {
  std::vector<std::vector<ActivationChoice>> result;
  for (std::size_t d = 0; d < value.items().size(); ++d) {
    const Json& acts = value.items()[d];
    const std::string row = "config['activations'][" + std::to_string(d) + "]";
    if (!acts.is(Json::Type::kArray)) invalid_model(row + " must be a list (one activation per gate role)");
    std::vector<ActivationChoice> choices;
    for (std::size_t r = 0; r < acts.items().size(); ++r) {
      const Json& item = acts.items()[r];
      const std::string label = row + "[" + std::to_string(r) + "]";
      std::vector<std::string> keys = item.is(Json::Type::kObject) ? item.keys() : std::vector<std::string>{};
      std::sort(keys.begin(), keys.end());
      if (keys != std::vector<std::string>{"alpha", "beta", "name"})
        invalid_model(label + " must be an object with exactly name, alpha and beta");
      const Json &name = *item.find("name"), &alpha = *item.find("alpha"), &beta = *item.find("beta");
      if (!name.is(Json::Type::kString) || !has_type(alpha, Want::kOptionalNumber) ||
          !has_type(beta, Want::kOptionalNumber))
        invalid_model(label + " must have a str name and null or numeric alpha and beta");
      const int kind = activation_from_name(name.as_string());
      if (kind < 0) invalid_model(label + ": unknown activation '" + name.as_string() + "'");
      try {
        choices.push_back(make_activation(kind, optional_number(alpha), optional_number(beta), label));
      } catch (const ModelError& e) {
        invalid_model(e.what());
      }
    }
    result.push_back(std::move(choices));
  }
  if (static_cast<int>(result.size()) != c.num_directions())
    invalid_model("invalid configuration: activations has " + std::to_string(result.size()) +
                  " per-direction lists, but the layer has " + std::to_string(c.num_directions()) + " direction(s)");
  return result;
}

}  // namespace

ModelMeta read_meta(const Json& meta) {
  if (!meta.is(Json::Type::kObject)) invalid_model("entry '__rnnfast__' must be a JSON object, got " + meta.describe());
  const Json* format = meta.find("format");
  if (format == nullptr || !format->is(Json::Type::kString) || format->as_string() != "rnnfast")
    invalid_model("not an rnnfast model file (format " + (format ? format->describe() : std::string("missing")) + ")");
  const Json* version = meta.find("format_version");
  if (version == nullptr || !version->is_integer() || version->as_int() < 1)
    invalid_model("invalid format_version " + (version ? version->describe() : std::string("(missing)")));
  ModelMeta m;
  m.format_version = version->as_int();
  if (m.format_version > kFormatVersion) {
    const Json* written_by = meta.find("rnnfast_version");
    fail(ErrorKind::kUnsupported,
         "format version " + std::to_string(m.format_version) + " was written by a newer rnnfast (" +
             (written_by && written_by->is(Json::Type::kString) ? written_by->as_string() : std::string("?")) +
             "); this library reads format versions up to " + std::to_string(kFormatVersion));
  }
  for (const char* key : {"class", "config", "parameters"})
    if (meta.find(key) == nullptr) invalid_model(std::string("metadata lacks '") + key + "'");
  const Json& cls = *meta.find("class");
  const std::string cls_name = cls.is(Json::Type::kString) ? cls.as_string() : "";
  LayerConfig& c = m.config;
  if (cls_name == "RNN") c.family = Family::kRnn;
  else if (cls_name == "LSTM") c.family = Family::kLstm;
  else if (cls_name == "GRU") c.family = Family::kGru;
  else invalid_model("class must be one of ['GRU', 'LSTM', 'RNN'], got " + cls.describe());

  const Json& config = *meta.find("config");
  if (!config.is(Json::Type::kObject)) invalid_model("config must be a JSON object, got " + config.describe());
  const std::map<std::string, Want> types = config_types(m.format_version, c.family);
  std::vector<std::string> wanted;
  for (const auto& kv : types) wanted.push_back(kv.first);
  if (sorted_keys(config.keys()) != sorted_keys(wanted))
    invalid_model("config of a " + cls_name + " must have exactly the keys " + sorted_keys(wanted) + ", got " +
                  sorted_keys(config.keys()));
  for (const auto& [key, want] : types)
    if (!has_type(*config.find(key), want))
      invalid_model("config['" + key + "'] must be a " + want_name(want) + ", got " + config.find(key)->describe());
  auto get = [&](const char* key) -> const Json& { return *config.find(key); };

  // The constructor's arguments.
  c.input_size = get("input_size").as_int();
  c.hidden_size = get("hidden_size").as_int();
  c.num_layers = get("num_layers").as_int();
  c.bias = get("bias").as_bool();
  c.batch_first = get("batch_first").as_bool();
  const bool bidirectional = get("bidirectional").as_bool();
  const double dropout = get("dropout").as_double();
  if (!(dropout >= 0.0 && dropout < 1.0)) invalid_model("invalid configuration: dropout must be a number in [0, 1)");
  const std::string dtype = get("dtype").as_string();
  if (dtype != "float32" && dtype != "float64")
    invalid_model("invalid configuration: dtype must be 'float32' or 'float64', got '" + dtype + "'");
  const std::string weight_dtype = m.format_version >= 2 ? get("weight_dtype").as_string() : dtype;
  if (weight_dtype == "int8" || weight_dtype == "bf16") {
    if (dtype != "float32")
      invalid_model("config['dtype'] must be 'float32' with weight_dtype '" + weight_dtype + "', got '" + dtype + "'");
    c.weight_dtype = weight_dtype == "int8" ? WeightDtype::kInt8 : WeightDtype::kBf16;
  } else if (weight_dtype != dtype) {
    invalid_model("config['weight_dtype'] must be one of float32, float64, int8, bf16 and equal config['dtype'] for a "
                  "float layer, got '" + weight_dtype + "' with dtype '" + dtype + "'");
  } else {
    c.weight_dtype = dtype == "float32" ? WeightDtype::kFloat32 : WeightDtype::kFloat64;
  }
  c.direction = bidirectional ? Direction::kBidirectional : Direction::kForward;
  if (m.format_version >= 3) {
    const std::string direction = get("direction").as_string();
    if (direction == "forward") c.direction = Direction::kForward;
    else if (direction == "reverse") c.direction = Direction::kReverse;
    else if (direction == "bidirectional") c.direction = Direction::kBidirectional;
    else invalid_model("invalid configuration: direction must be 'forward', 'reverse' or 'bidirectional'");
    if (bidirectional != (c.direction == Direction::kBidirectional))
      invalid_model("invalid configuration: direction='" + direction + "' disagrees with bidirectional");
    const Json& clip = get("clip");
    if (!clip.is(Json::Type::kNull)) {
      if (!(clip.as_double() > 0.0)) invalid_model("invalid configuration: clip must be None or a positive number");
      c.clip = std::isinf(clip.as_double()) ? 0.0 : clip.as_double();
    }
    if (c.family == Family::kLstm) {
      c.proj_size = get("proj_size").as_int();
      c.peepholes = get("peepholes").as_bool();
      c.input_forget = get("input_forget").as_bool();
    } else if (c.family == Family::kGru) {
      c.reset_after = get("reset_after").as_bool();
    }
    c.activations = read_activations(get("activations"), c);
    if (c.family == Family::kRnn) {  // redundant with the activations (kept for readers): must agree
      const std::vector<std::vector<ActivationChoice>>& a = c.activations;
      const std::string first = !a.empty() && !a[0].empty() ? activation_name(a[0][0].kind) : "";
      if (get("nonlinearity").as_string() != first)
        invalid_model("config['nonlinearity'] is '" + get("nonlinearity").as_string() +
                      "' but the forward direction's activation is '" + first + "'");
    }
  } else {
    std::vector<ActivationChoice> acts = default_activations(c.family);
    if (c.family == Family::kRnn) {  // any activation by name, with its default parameters
      const int kind = activation_from_name(get("nonlinearity").as_string());
      if (kind < 0) invalid_model("invalid configuration: unknown nonlinearity '" + get("nonlinearity").as_string() + "'");
      acts[0] = make_activation(kind, std::nullopt, std::nullopt, "nonlinearity");
    }
    c.activations.assign(static_cast<std::size_t>(c.num_directions()), acts);
  }

  const Json& parameters = *meta.find("parameters");
  if (!parameters.is(Json::Type::kObject))
    invalid_model("parameters must be a JSON object, got " + parameters.describe());
  try {
    validate(c);
  } catch (const ModelError& e) {
    if (e.kind() == ErrorKind::kUnsupported) throw;
    invalid_model(std::string("invalid configuration: ") + e.what());
  }
  for (std::size_t i = 0; i < parameters.keys().size(); ++i) {
    const std::string& name = parameters.keys()[i];
    const Json& info = parameters.values()[i];
    const std::string bad = "metadata of parameter '" + name + "' must have exactly shape, dtype and sha256";
    if (!info.is(Json::Type::kObject) || sorted_keys(info.keys()) != "['dtype', 'sha256', 'shape']") invalid_model(bad);
    RecordedParameter p;
    p.name = name;
    const Json &shape = *info.find("shape"), &dtype_value = *info.find("dtype"), &digest = *info.find("sha256");
    if (!shape.is(Json::Type::kArray) || !dtype_value.is(Json::Type::kString) || !digest.is(Json::Type::kString))
      invalid_model("metadata of parameter '" + name + "': shape must be a list, dtype and sha256 strings");
    for (const Json& d : shape.items()) {
      if (!d.is_integer()) invalid_model("metadata of parameter '" + name + "': the shape must hold integers");
      p.shape.push_back(d.as_int());
    }
    p.dtype = dtype_value.as_string();
    p.sha256 = digest.as_string();
    m.recorded.push_back(std::move(p));
  }
  return m;
}

}  // namespace rnnfast::model
