// A layer's configuration (config.h): the activations' defaults, the checks, what runs where, and the
// parameters. The rules are the Python package's (rnnfast/_variants.py make_options and Activation,
// _layer_options.py, _rnn_base.py, quantization.py, _quantized.py), restated so that a model made here
// is exactly the layer Python would make of the same configuration.
#include "rnnfast/model/config.h"

#include <cmath>

#include "rnnfast/model/error.h"
#include "rnnfast/reduced/reduced_weights.h"

namespace rnnfast::model {
namespace {

// The default alpha and beta of each activation (ONNX's); NaN where it takes none (rnnfast/_variants.py).
struct ActivationDefaults {
  double alpha, beta;
};
constexpr double kNone = NAN;
constexpr ActivationDefaults kDefaults[kActivationCount] = {
    {kNone, kNone}, {kNone, kNone}, {kNone, kNone},  // sigmoid, tanh, relu
    {1.0, 0.0},                                      // affine
    {0.01, kNone},                                   // leaky_relu
    {1.0, kNone},                                    // thresholded_relu
    {1.0, 1.0},                                      // scaled_tanh
    {0.2, 0.5},                                      // hard_sigmoid
    {1.0, kNone},                                    // elu
    {kNone, kNone}, {kNone, kNone}, {kNone, kNone},  // softsign, softplus, selu
    {kNone, kNone}, {kNone, kNone}, {kNone, kNone},  // exponential, silu, relu6
};

[[noreturn]] void invalid(const std::string& message) { fail(ErrorKind::kInvalidArgument, message); }

std::string family_title(Family f) { return f == Family::kRnn ? "RNN" : f == Family::kLstm ? "LSTM" : "GRU"; }

// a * b for non-negative a and b, or -1 when it exceeds 2^62 (no parameter array can be that large).
std::int64_t checked_product(std::int64_t a, std::int64_t b) {
  constexpr std::int64_t kLimit = std::int64_t(1) << 62;
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > kLimit / a) return -1;
  return a * b;
}

bool is_default_acts(const std::vector<ActivationChoice>& acts, Family family) {
  if (family == Family::kRnn) return acts[0].kind == Activation::kTanh || acts[0].kind == Activation::kRelu;
  const std::vector<ActivationChoice> defaults = default_activations(family);
  for (std::size_t r = 0; r < acts.size(); ++r)
    if (acts[r].kind != defaults[r].kind) return false;  // sigmoid and tanh take no alpha or beta
  return true;
}

}  // namespace

const char* dtype_name(DType type) {
  switch (type) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt8: return "int8";
    case DType::kUint16: return "uint16";
  }
  return "unknown";
}

ActivationChoice make_activation(int kind, std::optional<double> alpha, std::optional<double> beta,
                                 const std::string& label) {
  if (kind < 0 || kind >= kActivationCount) invalid(label + ": unknown activation number " + std::to_string(kind));
  ActivationChoice a;
  a.kind = static_cast<Activation>(kind);
  const ActivationDefaults& d = kDefaults[kind];
  const char* name = kActivationNames[kind];
  auto resolve = [&](std::optional<double> value, double fallback, const char* param) {
    if (!value) return std::isnan(fallback) ? 0.0 : fallback;
    if (std::isnan(fallback))
      invalid(label + ": activation '" + name + "' takes no " + param + ", got " + std::to_string(*value));
    if (!std::isfinite(*value)) invalid(label + ": activation '" + name + "': " + param + " must be a finite number");
    return *value == 0.0 ? 0.0 : *value;  // -0.0 -> 0.0, as the Python layer's `alpha or 0.0`
  };
  a.alpha = resolve(alpha, d.alpha, "alpha");
  a.beta = resolve(beta, d.beta, "beta");
  return a;
}

const char* activation_name(Activation kind) { return kActivationNames[static_cast<int>(kind)]; }

int activation_from_name(const std::string& name) {
  for (int k = 0; k < kActivationCount; ++k)
    if (name == kActivationNames[k]) return k;
  return -1;
}

int role_count(Family family) { return family == Family::kLstm ? 3 : family == Family::kGru ? 2 : 1; }

std::vector<ActivationChoice> default_activations(Family family) {
  const ActivationChoice sigmoid{Activation::kSigmoid}, tanh{Activation::kTanh};
  if (family == Family::kRnn) return {tanh};
  if (family == Family::kLstm) return {sigmoid, tanh, tanh};
  return {sigmoid, tanh};
}

std::vector<int> LayerConfig::direction_ids() const {
  if (direction == Direction::kBidirectional) return {0, 1};
  return {direction == Direction::kReverse ? 1 : 0};
}

Cell LayerConfig::kernel_cell() const {
  if (family == Family::kLstm) return Cell::kLstm;
  if (family == Family::kGru) return Cell::kGru;
  return activations[0][0].kind == Activation::kRelu ? Cell::kRnnRelu : Cell::kRnnTanh;
}

bool LayerConfig::fast(int slot) const {
  const std::vector<ActivationChoice>& acts = activations[slot];
  if (!is_default_acts(acts, family) || clip != 0.0 || input_forget || !reset_after || proj_size != 0 || peepholes)
    return false;
  // An RNN slot whose activation is not the one of the kernel cell (tanh one way, relu the other) is a variant.
  return family != Family::kRnn || acts[0].kind == activations[0][0].kind;
}

bool LayerConfig::is_variant() const {
  for (int s = 0; s < num_directions(); ++s)
    if (!fast(s)) return true;
  return false;
}

CellVariant LayerConfig::variant(int slot) const {
  CellVariant v;
  for (std::size_t r = 0; r < activations[slot].size(); ++r) {
    const ActivationChoice& a = activations[slot][r];
    v.act[r] = ActivationSpec{a.kind, a.alpha, a.beta};
  }
  v.clip = clip;
  v.input_forget = input_forget;
  v.reset_after = reset_after;
  return v;
}

void validate(const LayerConfig& c) {
  const std::string title = family_title(c.family);
  if (c.family != Family::kRnn && c.family != Family::kLstm && c.family != Family::kGru)
    invalid("cell must be RNNFAST_CELL_RNN, _LSTM or _GRU, got " + std::to_string(static_cast<int>(c.family)));
  for (const auto& [name, value] : {std::pair<const char*, std::int64_t>{"input_size", c.input_size},
                                    {"hidden_size", c.hidden_size}, {"num_layers", c.num_layers}})
    if (value < 1) invalid(std::string(name) + " must be a positive int, got " + std::to_string(value));
  // Far beyond any memory, and small enough that the products of sizes below cannot overflow.
  constexpr std::int64_t kMaxSize = std::int64_t(1) << 40;
  if (c.input_size > kMaxSize || c.hidden_size > kMaxSize || c.num_layers > kMaxSize || c.proj_size > kMaxSize)
    invalid(title + "(input_size=" + std::to_string(c.input_size) + ", hidden_size=" + std::to_string(c.hidden_size) +
            ", num_layers=" + std::to_string(c.num_layers) + ") has more parameters than can be held");
  if (c.direction != Direction::kForward && c.direction != Direction::kReverse &&
      c.direction != Direction::kBidirectional)
    invalid("direction must be forward, reverse or bidirectional, got " + std::to_string(static_cast<int>(c.direction)));
  if (c.weight_dtype == WeightDtype::kFloat64)
    fail(ErrorKind::kUnsupported, "float64 layers are not supported by the C API (it computes in float32); save a "
                                  "float32 copy of the layer (load_state_dict into a layer made with dtype='float32')");
  if (!c.quantized() && c.weight_dtype != WeightDtype::kFloat32)
    invalid("weight_dtype must be float32, int8 or bf16, got " + std::to_string(static_cast<int>(c.weight_dtype)));
  if (c.family != Family::kLstm) {
    if (c.input_forget) invalid("input_forget is an LSTM option; a " + title + " has none");
    if (c.proj_size != 0) invalid("proj_size is an LSTM option; a " + title + " has none");
    if (c.peepholes) invalid("peepholes is an LSTM option; a " + title + " has none");
  }
  if (c.family != Family::kGru && !c.reset_after) invalid("reset_after is a GRU option; a " + title + " has none");
  if (c.proj_size < 0) invalid("proj_size must be a non-negative int, got " + std::to_string(c.proj_size));
  if (c.proj_size != 0 && c.proj_size >= c.hidden_size)
    invalid("proj_size has to be smaller than hidden_size, got proj_size=" + std::to_string(c.proj_size) +
            " and hidden_size=" + std::to_string(c.hidden_size));
  if (!(c.clip >= 0.0) || std::isinf(c.clip)) invalid("clip must be 0 (none) or a positive finite number");
  if (static_cast<int>(c.activations.size()) != c.num_directions())
    invalid("activations must have one list per direction (" + std::to_string(c.num_directions()) + ")");
  for (const auto& acts : c.activations)
    if (static_cast<int>(acts.size()) != role_count(c.family))
      invalid("activations must have one activation per gate role of the " + title + ": " +
              std::to_string(role_count(c.family)) + ", got " + std::to_string(acts.size()));
  if (c.quantized()) {
    if (c.is_variant())
      invalid("quantized layers (int8, bf16) run PyTorch's cells only: this " + title + " is a cell variant");
    if (c.weight_dtype == WeightDtype::kInt8 &&
        std::max(c.layer_input_size(c.num_layers > 1 ? 1 : 0), std::max(c.input_size, c.hidden_size)) > kMaxInt8Depth)
      invalid("int8 products accumulate in int32, which holds any sum of at most " + std::to_string(kMaxInt8Depth) +
              " products: input_size and hidden_size (and num_directions * hidden_size above the first layer) "
              "must not exceed it; use bf16");
  }
  // The parameters' element count must fit (no allocation is attempted for an impossible layer): per
  // direction G*H*(I_k + R + 2) + 3H + P*H at most, for the first layer and the others.
  const std::int64_t GH = checked_product(c.gates(), c.hidden_size);
  const std::int64_t extra = checked_product(c.proj_size + 3, c.hidden_size);
  auto per_direction = [&](std::int64_t layer) {
    const std::int64_t columns = c.layer_input_size(layer) + c.state_size() + 2;  // each < 2^62: no overflow
    const std::int64_t n = checked_product(GH, columns);
    return n < 0 || extra < 0 ? -1 : n + extra;
  };
  const std::int64_t first = per_direction(0), rest = per_direction(1);
  const std::int64_t rest_total = checked_product(rest, c.num_layers - 1);
  const std::int64_t total = first < 0 || rest_total < 0 ? -1 : checked_product(first + rest_total, c.num_directions());
  if (GH < 0 || total < 0 || checked_product(c.num_directions(), c.state_size()) < 0)
    invalid(title + "(input_size=" + std::to_string(c.input_size) + ", hidden_size=" + std::to_string(c.hidden_size) +
            ", num_layers=" + std::to_string(c.num_layers) + ") has more parameters than can be held");
}

std::int64_t parameter_array_count(const LayerConfig& c) {
  const std::int64_t per = 2 + (c.weight_dtype == WeightDtype::kInt8 ? 2 : 0) + (c.bias ? 2 : 0) +
                           (c.peepholes ? 1 : 0) + (c.proj_size > 0 ? 1 : 0);
  return checked_product(checked_product(c.num_layers, c.num_directions()), per);
}

std::string parameter_name(const char* base, std::int64_t layer, int direction_id) {
  return std::string(base) + "_l" + std::to_string(layer) + (direction_id == 1 ? "_reverse" : "");
}

std::vector<ParameterSpec> parameter_spec(const LayerConfig& c) {
  const std::int64_t H = c.hidden_size, GH = c.gates() * H, R = c.state_size();
  const DType weight_type = c.weight_dtype == WeightDtype::kInt8   ? DType::kInt8
                            : c.weight_dtype == WeightDtype::kBf16 ? DType::kUint16
                                                                   : DType::kFloat32;
  const std::vector<int> ids = c.direction_ids();
  std::vector<ParameterSpec> spec;
  for (std::int64_t k = 0; k < c.num_layers; ++k)
    for (int slot = 0; slot < static_cast<int>(ids.size()); ++slot) {
      const int d = ids[slot];
      auto add = [&](const char* base, DType type, std::vector<std::int64_t> shape, ParameterRole role) {
        spec.push_back(ParameterSpec{parameter_name(base, k, d), type, std::move(shape), k, slot, role});
      };
      add("weight_ih", weight_type, {GH, c.layer_input_size(k)}, ParameterRole::kWeightIh);
      if (c.weight_dtype == WeightDtype::kInt8)
        spec.push_back(ParameterSpec{parameter_name("weight_ih", k, d) + "_scale", DType::kFloat32, {GH}, k, slot,
                                     ParameterRole::kScaleIh});
      add("weight_hh", weight_type, {GH, R}, ParameterRole::kWeightHh);
      if (c.weight_dtype == WeightDtype::kInt8)
        spec.push_back(ParameterSpec{parameter_name("weight_hh", k, d) + "_scale", DType::kFloat32, {GH}, k, slot,
                                     ParameterRole::kScaleHh});
      if (c.bias) {
        add("bias_ih", DType::kFloat32, {GH}, ParameterRole::kBiasIh);
        add("bias_hh", DType::kFloat32, {GH}, ParameterRole::kBiasHh);
      }
      if (c.peepholes) add("weight_ch", DType::kFloat32, {3 * H}, ParameterRole::kWeightCh);
      if (c.proj_size > 0) add("weight_hr", DType::kFloat32, {c.proj_size, H}, ParameterRole::kWeightHr);
    }
  return spec;
}

}  // namespace rnnfast::model
