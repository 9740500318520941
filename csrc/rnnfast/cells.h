// Gate updates of one time step, shared by the sequence kernels (rnn.cpp) and the stepper
// (stepper.cpp), so that both compute bit-identical results. Portable code: no instruction-set flags.
#pragma once

#include <cstdint>

#include "rnnfast/activations.h"
#include "rnnfast/rnn.h"

namespace rnnfast {
namespace detail {

// Gate updates of one time step for a block of rows (batch entries). Inputs per row b:
//   gx[b*GH ..]: input projection W_ih x_t + bias (see layer_forward for which biases it holds)
//   gh[b*GH ..]: recurrent projection W_hh h_{t-1} (GRU: + b_hh)
//   h_prev, c_prev [B, H]; writes h [B, H], c [B, H] (LSTM) and the workspace row ws [B, W] if given.
// This is where a fused GEMM epilogue will apply the same math to a register tile.
template <typename Scalar>
inline void rnn_step_rows(Cell cell, std::int64_t rows, std::int64_t hidden, const Scalar* gx, const Scalar* gh,
                   Scalar* h) {
  for (std::int64_t b = 0; b < rows; ++b) {
    const Scalar* gxr = gx + b * hidden;
    const Scalar* ghr = gh + b * hidden;
    Scalar* hr = h + b * hidden;
    if (cell == Cell::kRnnTanh) {
      for (std::int64_t j = 0; j < hidden; ++j) hr[j] = tanh_act(gxr[j] + ghr[j]);
    } else {
      for (std::int64_t j = 0; j < hidden; ++j) hr[j] = relu(gxr[j] + ghr[j]);
    }
  }
}

template <typename Scalar>
inline void lstm_step_rows(std::int64_t rows, std::int64_t hidden, const Scalar* gx, const Scalar* gh,
                    const Scalar* c_prev, Scalar* h, Scalar* c, Scalar* ws) {
  const std::int64_t H = hidden, GH = 4 * hidden;
  for (std::int64_t b = 0; b < rows; ++b) {
    const Scalar* gxr = gx + b * GH;
    const Scalar* ghr = gh + b * GH;
    const Scalar* cpr = c_prev + b * H;
    Scalar* hr = h + b * H;
    Scalar* cr = c + b * H;
    Scalar* wr = ws != nullptr ? ws + b * 6 * H : nullptr;
    for (std::int64_t j = 0; j < H; ++j) {
      const Scalar i = sigmoid(gxr[j] + ghr[j]);
      const Scalar f = sigmoid(gxr[H + j] + ghr[H + j]);
      const Scalar g = tanh_act(gxr[2 * H + j] + ghr[2 * H + j]);
      const Scalar o = sigmoid(gxr[3 * H + j] + ghr[3 * H + j]);
      const Scalar cn = f * cpr[j] + i * g;
      const Scalar tc = tanh_act(cn);
      cr[j] = cn;
      hr[j] = o * tc;
      if (wr != nullptr) {
        wr[j] = i;
        wr[H + j] = f;
        wr[2 * H + j] = g;
        wr[3 * H + j] = o;
        wr[4 * H + j] = cn;
        wr[5 * H + j] = tc;
      }
    }
  }
}

template <typename Scalar>
inline void gru_step_rows(std::int64_t rows, std::int64_t hidden, const Scalar* gx, const Scalar* gh,
                   const Scalar* h_prev, Scalar* h, Scalar* ws) {
  const std::int64_t H = hidden, GH = 3 * hidden;
  for (std::int64_t b = 0; b < rows; ++b) {
    const Scalar* gxr = gx + b * GH;
    const Scalar* ghr = gh + b * GH;
    const Scalar* hpr = h_prev + b * H;
    Scalar* hr = h + b * H;
    Scalar* wr = ws != nullptr ? ws + b * 4 * H : nullptr;
    for (std::int64_t j = 0; j < H; ++j) {
      const Scalar r = sigmoid(gxr[j] + ghr[j]);
      const Scalar z = sigmoid(gxr[H + j] + ghr[H + j]);
      const Scalar ghn = ghr[2 * H + j];
      const Scalar n = tanh_act(gxr[2 * H + j] + r * ghn);
      hr[j] = (Scalar(1) - z) * n + z * hpr[j];
      if (wr != nullptr) {
        wr[j] = r;
        wr[H + j] = z;
        wr[2 * H + j] = n;
        wr[3 * H + j] = ghn;
      }
    }
  }
}

}  // namespace detail
}  // namespace rnnfast
