// A whole recurrent layer as rnnfast's Python RNN, LSTM and GRU hold it (stacked layers, one or two
// directions, PyTorch's cells or cell variants, float32 or int8/bf16 weights), made from a configuration
// and its named parameter arrays, and its inference forward over a sequence, composed from the kernel
// library's one-layer, one-direction forwards exactly as python/rnnfast/_rnn_base.py composes them (the
// same kernel calls on the same data), so that the results are the Python layer's bit for bit.
//
// Shapes: T sequence length, B batch, I input size, H hidden size, L layers, D directions (2
// bidirectional, else 1), R = proj_size or H, G gates; arrays dense and C-ordered.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rnnfast/model/config.h"
#include "rnnfast/reduced/reduced_weights.h"

namespace rnnfast::model {

// A parameter array given by name (a model file's entry, or a C caller's array).
struct NamedArray {
  std::string name;                  // as state_dict names it
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;        // C order; read by the Model constructor only
};

// One layer's parameters in one direction slot.
struct DirectionWeights {
  // A float layer's: w_ih [G*H, I_k], w_hh [G*H, R], b_ih and b_hh [G*H] (empty without bias), w_ch [3H]
  // (peepholes, else empty), w_hr [P, H] (a projection, else empty).
  std::vector<float> w_ih, w_hh, b_ih, b_hh, w_ch, w_hr;
  // A quantized layer's weights, packed once (the biases stay in b_ih and b_hh).
  std::shared_ptr<const ReducedWeights> q_ih, q_hh;
};

// One forward call: the arrays of rnnfast_forward (rnnfast.h), their sizes already checked.
struct SequenceCall {
  std::int64_t seq_len = 0, batch = 0;
  const float* x = nullptr;                // (T, B, I), or (B, T, I) when the layer is batch_first
  const float* h0 = nullptr;               // (L*D, B, R) or nullptr (zeros)
  const float* c0 = nullptr;               // (L*D, B, H) or nullptr (zeros); the LSTM only
  const std::int64_t* lengths = nullptr;   // (B,) in [0, T], any order, or nullptr (T each)
  float* out = nullptr;                    // (T, B, D*R), or (B, T, D*R) when batch_first
  float* h_n = nullptr;                    // (L*D, B, R) or nullptr (not wanted)
  float* c_n = nullptr;                    // (L*D, B, H) or nullptr (not wanted); the LSTM only
};

// The element counts of a call's arrays for T and B; ModelError(kInvalidArgument) for negative sizes or
// counts that overflow.
struct SequenceSizes {
  std::int64_t x, out, h, c;  // c is 0 for a layer without a cell state
};
SequenceSizes sequence_sizes(const LayerConfig& c, std::int64_t seq_len, std::int64_t batch);

class Model {
 public:
  // Checks the configuration (validate) and the arrays against it: exactly the names of
  // parameter_spec(config), each once (ModelError kInvalidArgument naming the missing and unexpected
  // ones), each of its dtype and shape (kSizeMismatch), a quantized layer's values as quantization
  // gives them (int8 weights in [-127, 127], scales finite and >= 0, bfloat16 weights finite:
  // kInvalidArgument); then copies them and packs a quantized layer's weights. std::bad_alloc when
  // memory cannot be had.
  Model(LayerConfig config, const std::vector<NamedArray>& arrays);

  const LayerConfig& config() const { return config_; }
  const DirectionWeights& weights(std::int64_t layer, int slot) const {
    return weights_[static_cast<std::size_t>(layer * config_.num_directions() + slot)];
  }

  // Inference over a sequence (model_forward.cpp): rnnfast's model(x, state, lengths=lengths). Lengths
  // outside [0, T] are ModelError(kInvalidArgument). Any number of threads may call it at once.
  void forward(const SequenceCall& call) const;

 private:
  LayerConfig config_;
  std::vector<DirectionWeights> weights_;  // index layer * D + slot
};

}  // namespace rnnfast::model
