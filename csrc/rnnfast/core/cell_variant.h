// The cell variants: the options that change a cell's arithmetic away from PyTorch's (docs/design.md,
// "Cell variants"). A leaf header: the activations by role, ONNX's clip and input_forget, the GRU's
// reset_after; proj_size and peepholes are given by the arrays a variant layer receives (layer/variant_layer.h).
// The Python package names the same things in rnnfast/_variants.py and checks its activation table against
// this one at import (_core.activation_names).
#pragma once

#include <cstdint>
#include <stdexcept>

namespace rnnfast {

// The order is the table's (and the binding's): values index kActivationNames.
enum class Activation : int {
  kSigmoid = 0,       // 1 / (1 + exp(-a))
  kTanh,              // tanh(a)
  kRelu,              // max(a, 0)
  kAffine,            // alpha * a + beta
  kLeakyRelu,         // a >= 0 ? a : alpha * a
  kThresholdedRelu,   // a > alpha ? a : 0
  kScaledTanh,        // alpha * tanh(beta * a)
  kHardSigmoid,       // max(0, min(1, alpha * a + beta))
  kElu,               // a >= 0 ? a : alpha * (exp(a) - 1)
  kSoftsign,          // a / (1 + |a|)
  kSoftplus,          // log(1 + exp(a))
  kSelu,              // scale * (a >= 0 ? a : alpha * (exp(a) - 1)), Keras's constants
  kExponential,       // exp(a)
  kSilu,              // a * sigmoid(a)
  kRelu6,             // min(max(a, 0), 6)
  kCount
};

constexpr int kActivationCount = static_cast<int>(Activation::kCount);
constexpr const char* kActivationNames[kActivationCount] = {
    "sigmoid", "tanh",     "relu",     "affine", "leaky_relu",  "thresholded_relu", "scaled_tanh", "hard_sigmoid",
    "elu",     "softsign", "softplus", "selu",   "exponential", "silu",             "relu6"};

// Keras's SELU constants (keras.activations.selu).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// One gate role's activation, with ONNX's alpha and beta (ignored by the activations that take none).
struct ActivationSpec {
  Activation kind = Activation::kTanh;
  double alpha = 0.0, beta = 0.0;
};

// Gate roles, in ONNX's order: the RNN has one (its activation), the LSTM three (f: the gates i, f, o;
// g: the candidate; h: the cell output), the GRU two (f: r, z; g: n).
enum Role : int { kGateRole = 0, kCandidateRole = 1, kOutputRole = 2, kRoleCount = 3 };

struct CellVariant {
  ActivationSpec act[kRoleCount] = {{Activation::kSigmoid}, {Activation::kTanh}, {Activation::kTanh}};
  // Gate pre-activations are clamped to [-clip, clip] before their activation (ONNX); 0 means none.
  // Not the cell output's (the LSTM's h role): ONNX Runtime clamps only the gates.
  double clip = 0.0;
  bool input_forget = false;  // LSTM: f = 1 - i
  bool reset_after = true;    // GRU: true is PyTorch's r * (W_hn h + b_hn); false is W_hn (r * h) + b_hn
};

// Throws std::invalid_argument for an activation outside the enumeration or a negative or NaN clip.
inline void check_variant(const CellVariant& v) {
  for (const ActivationSpec& a : v.act)
    if (static_cast<int>(a.kind) < 0 || static_cast<int>(a.kind) >= kActivationCount)
      throw std::invalid_argument("rnnfast: unknown activation");
  if (!(v.clip >= 0.0)) throw std::invalid_argument("rnnfast: clip must be >= 0 (0: none)");
}

}  // namespace rnnfast
