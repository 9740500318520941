// A whole layer's configuration (rnnfast's RNN, LSTM and GRU: stacked layers, directions, cell options,
// weight type), its checks, and the parameters it has (their names, shapes and element types, as the
// Python layer's state_dict names them). The C API's rnnfast_config and a model file's metadata both
// become a LayerConfig; what follows from it (which directions run on the fused kernels, the variant
// options the kernels take) is decided here once, as python/rnnfast/_layer_options.py decides it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rnnfast/core/cell.h"
#include "rnnfast/core/cell_variant.h"

namespace rnnfast::model {

// The values are the C API's (RNNFAST_CELL_*, RNNFAST_DIRECTION_*, RNNFAST_DTYPE_*).
enum class Family { kRnn = 0, kLstm = 1, kGru = 2 };
enum class Direction { kForward = 0, kReverse = 1, kBidirectional = 2 };
enum class WeightDtype { kFloat32 = 0, kInt8 = 1, kBf16 = 2, kFloat64 = 3 };

// The element type of a parameter array.
enum class DType { kFloat32, kFloat64, kInt8, kUint16 };
const char* dtype_name(DType type);  // NumPy's: "float32", "float64", "int8", "uint16"

// One gate role's activation as the kernels take it: alpha and beta resolved (the activation's defaults
// filled in; 0 where it takes none, as the Python layer passes `alpha or 0.0`).
struct ActivationChoice {
  Activation kind = Activation::kTanh;
  double alpha = 0.0, beta = 0.0;
};

// The activation `kind` (an Activation's number) with alpha and beta, nullopt meaning the default (or
// none). ModelError(kInvalidArgument) naming `label` for an unknown kind, a value given to an
// activation that takes none, or a value that is not finite (rnnfast.Activation's checks).
ActivationChoice make_activation(int kind, std::optional<double> alpha, std::optional<double> beta,
                                 const std::string& label);
// The activation's name ("tanh") and its number from a name (-1 when unknown).
const char* activation_name(Activation kind);
int activation_from_name(const std::string& name);
// The default activations of a family's gate roles (PyTorch's cells; the RNN's is tanh).
std::vector<ActivationChoice> default_activations(Family family);
int role_count(Family family);  // 1 RNN, 3 LSTM, 2 GRU

struct LayerConfig {
  Family family = Family::kLstm;
  std::int64_t input_size = 0, hidden_size = 0, num_layers = 1;
  bool bias = true, batch_first = false;
  Direction direction = Direction::kForward;
  WeightDtype weight_dtype = WeightDtype::kFloat32;
  // [direction slot][gate role]: num_directions() slots of role_count(family) activations each.
  std::vector<std::vector<ActivationChoice>> activations;
  double clip = 0.0;  // 0: none (an infinite clip is none too)
  bool input_forget = false, reset_after = true, peepholes = false;
  std::int64_t proj_size = 0;

  int num_directions() const { return direction == Direction::kBidirectional ? 2 : 1; }
  // The parameter-name direction (0: no suffix, 1: "_reverse") of each direction slot.
  std::vector<int> direction_ids() const;
  int gates() const { return family == Family::kLstm ? 4 : family == Family::kGru ? 3 : 1; }
  std::int64_t state_size() const { return proj_size > 0 ? proj_size : hidden_size; }  // R
  std::int64_t layer_input_size(std::int64_t layer) const {  // I_k
    return layer == 0 ? input_size : num_directions() * state_size();
  }
  bool quantized() const { return weight_dtype == WeightDtype::kInt8 || weight_dtype == WeightDtype::kBf16; }
  // The fused kernels' cell: the LSTM, the GRU, or the RNN of slot 0's activation (tanh unless relu).
  Cell kernel_cell() const;
  // Whether direction slot `slot` is PyTorch's cell of kernel_cell() and runs on the fused kernels (else
  // on the variant kernels).
  bool fast(int slot) const;
  bool is_variant() const;  // some slot is not fast
  // The variant kernels' options for slot `slot`.
  CellVariant variant(int slot) const;
};

// Checks `c` as the Python constructors and rnnfast.quantize check a layer: positive sizes, options that
// belong to the family, proj_size < hidden_size, a clip > 0, the activations' count per slot, PyTorch's
// cells for a quantized layer and int8 depths the kernels' int32 sums hold, sizes whose parameter counts
// fit. ModelError(kInvalidArgument) naming the option; kUnsupported for a float64 layer.
void validate(const LayerConfig& c);

// What a parameter is to the layer.
enum class ParameterRole { kWeightIh, kWeightHh, kBiasIh, kBiasHh, kWeightCh, kWeightHr, kScaleIh, kScaleHh };

struct ParameterSpec {
  std::string name;  // "weight_ih_l0", "bias_hh_l1_reverse", "weight_ih_l0_scale", ...
  DType dtype;
  std::vector<std::int64_t> shape;
  std::int64_t layer;
  int slot;  // the direction slot
  ParameterRole role;
};

// How many parameter arrays a validated layer has (what parameter_spec would list; -1 if that many
// cannot be counted), to compare with what a file or a caller gives before listing them.
std::int64_t parameter_array_count(const LayerConfig& c);

// The parameters of a (validated) layer in the Python layer's order: per layer, per direction slot,
// weight_ih, weight_hh, [bias_ih, bias_hh], [weight_ch], [weight_hr]; a quantized layer's weights int8
// each followed by its float32 "_scale" rows (int8) or uint16 bfloat16 bits (bf16), biases float32.
std::vector<ParameterSpec> parameter_spec(const LayerConfig& c);

// PyTorch's name of a parameter: parameter_name("weight_ih", 1, 1) is "weight_ih_l1_reverse".
std::string parameter_name(const char* base, std::int64_t layer, int direction_id);

}  // namespace rnnfast::model
