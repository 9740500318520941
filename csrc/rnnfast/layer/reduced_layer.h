// The forward of one recurrent layer in one direction with reduced-precision weights (inference only):
// float32 input, state and output; the products by int8 or bfloat16 weights (reduced/reduced_weights.h
// defines the arithmetic). Shapes and conventions as in layer.h: S = sequence length, B = batch,
// I = input size, H = hidden size, G = gates; every array dense and row-major.
#pragma once

#include <cstdint>

#include "rnnfast/reduced/reduced_weights.h"

namespace rnnfast {

struct ReducedLayerForward {
  std::int64_t seq_len = 0, batch = 0;
  const ReducedWeights* w_ih = nullptr;  // [G*H, I] packed; its cell, type and H are the layer's
  const ReducedWeights* w_hh = nullptr;  // [G*H, H] packed; the same cell, type and H
  const float* x = nullptr;              // [S, B, I]
  const float* h0 = nullptr;             // [B, H] or nullptr (zeros)
  const float* c0 = nullptr;             // [B, H] or nullptr (zeros); LSTM only
  const float* b_ih = nullptr;           // [G*H] or nullptr
  const float* b_hh = nullptr;           // [G*H] or nullptr
  float* out = nullptr;                  // [S, B, H] written
  float* h_n = nullptr;                  // [B, H] written
  float* c_n = nullptr;                  // [B, H] written, LSTM only
  const std::int64_t* lengths = nullptr;  // [B] sorted non-increasing, or nullptr (LayerForward::lengths)
};

// Throws std::invalid_argument for negative sizes, missing arrays, weights that do not belong together
// or lengths out of range or unsorted; std::bad_alloc when scratch memory cannot be had.
void reduced_layer_forward(const ReducedLayerForward& args);

}  // namespace rnnfast
