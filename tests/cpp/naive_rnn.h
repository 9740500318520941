// A naive float64 reference for one recurrent layer, written straight from PyTorch's equations with
// plain loops (no GEMM, no packing, no vectors), to test rnnfast::layer_forward/layer_backward against:
//   RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh)                      act = tanh or relu
//   LSTM: i, f, g, o = sig, sig, tanh, sig of (W_ih x + b_ih + W_hh h + b_hh), blocks in that order
//         c' = f c + i g,  h' = o tanh(c')
//   GRU:  r, z = sig(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
//         n = tanh(W_in x + b_in + r (W_hn h + b_hn))   (linear before reset)
//         h' = (1 - z) n + z h
// Row b runs steps [0, lengths[b]); outputs and workspace rows past its end are zero.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "rnnfast/rnnfast.hpp"

namespace naive {

// One layer's inputs and the loss weights that define its gradients:
//   loss = sum(out * d_out) + sum(h_n * d_h_n) + sum(c_n * d_c_n).
// Arrays are always allocated; a has_* flag false means the kernel is given nullptr (the array then
// holds zeros, which is what nullptr means).
struct Problem {
  rnnfast::Cell cell = rnnfast::Cell::kLstm;
  std::int64_t S = 0, B = 0, I = 0, H = 0;
  std::vector<double> x, h0, c0, w_ih, w_hh, b_ih, b_hh;
  bool has_h0 = true, has_c0 = true, has_b_ih = true, has_b_hh = true;
  std::vector<std::int64_t> lengths;  // empty: nullptr (every row runs S steps)
  std::vector<double> d_out, d_h_n, d_c_n;
  bool has_d_out = true, has_d_h_n = true, has_d_c_n = true;

  std::int64_t gates() const { return rnnfast::gate_count(cell); }
  bool lstm() const { return cell == rnnfast::Cell::kLstm; }
  std::int64_t length(std::int64_t b) const { return lengths.empty() ? S : lengths[b]; }
};

struct Forward {
  std::vector<double> out, h_n, c_n, ws;
};

inline double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

inline Forward forward(const Problem& p) {
  const std::int64_t S = p.S, B = p.B, I = p.I, H = p.H, G = p.gates();
  const std::int64_t W = rnnfast::workspace_width(p.cell, H);
  Forward f;
  f.out.assign(S * B * H, 0.0);
  f.ws.assign(S * B * W, 0.0);
  f.h_n.assign(B * H, 0.0);
  f.c_n.assign(p.lstm() ? B * H : 0, 0.0);
  std::vector<double> h(H), c(H), hn(H), cn(H), ax(G * H), ah(G * H);
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t j = 0; j < H; ++j) {
      h[j] = p.has_h0 ? p.h0[b * H + j] : 0.0;
      c[j] = p.has_c0 && p.lstm() ? p.c0[b * H + j] : 0.0;
    }
    for (std::int64_t t = 0; t < p.length(b); ++t) {
      const double* x = &p.x[(t * B + b) * I];
      for (std::int64_t r = 0; r < G * H; ++r) {  // ax = W_ih x + b_ih, ah = W_hh h + b_hh
        ax[r] = p.has_b_ih ? p.b_ih[r] : 0.0;
        ah[r] = p.has_b_hh ? p.b_hh[r] : 0.0;
        for (std::int64_t i = 0; i < I; ++i) ax[r] += p.w_ih[r * I + i] * x[i];
        for (std::int64_t k = 0; k < H; ++k) ah[r] += p.w_hh[r * H + k] * h[k];
      }
      double* ws = W > 0 ? &f.ws[(t * B + b) * W] : nullptr;
      for (std::int64_t j = 0; j < H; ++j) {
        switch (p.cell) {
          case rnnfast::Cell::kRnnTanh:
            hn[j] = std::tanh(ax[j] + ah[j]);
            break;
          case rnnfast::Cell::kRnnRelu:
            hn[j] = std::max(0.0, ax[j] + ah[j]);
            break;
          case rnnfast::Cell::kLstm: {
            const double i = sigmoid(ax[j] + ah[j]);
            const double fg = sigmoid(ax[H + j] + ah[H + j]);
            const double g = std::tanh(ax[2 * H + j] + ah[2 * H + j]);
            const double o = sigmoid(ax[3 * H + j] + ah[3 * H + j]);
            cn[j] = fg * c[j] + i * g;
            hn[j] = o * std::tanh(cn[j]);
            const double saved[6] = {i, fg, g, o, cn[j], std::tanh(cn[j])};
            for (int q = 0; q < 6; ++q) ws[q * H + j] = saved[q];
            break;
          }
          case rnnfast::Cell::kGru: {
            const double r = sigmoid(ax[j] + ah[j]);
            const double z = sigmoid(ax[H + j] + ah[H + j]);
            const double n = std::tanh(ax[2 * H + j] + r * ah[2 * H + j]);
            hn[j] = (1.0 - z) * n + z * h[j];
            const double saved[4] = {r, z, n, ah[2 * H + j]};
            for (int q = 0; q < 4; ++q) ws[q * H + j] = saved[q];
            break;
          }
        }
      }
      h.swap(hn);
      c.swap(cn);
      for (std::int64_t j = 0; j < H; ++j) f.out[(t * B + b) * H + j] = h[j];
    }
    for (std::int64_t j = 0; j < H; ++j) {
      f.h_n[b * H + j] = h[j];
      if (p.lstm()) f.c_n[b * H + j] = c[j];
    }
  }
  return f;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline double loss(const Problem& p) {
  const Forward f = forward(p);
  return (p.has_d_out ? dot(f.out, p.d_out) : 0.0) + (p.has_d_h_n ? dot(f.h_n, p.d_h_n) : 0.0) +
         (p.lstm() && p.has_d_c_n ? dot(f.c_n, p.d_c_n) : 0.0);
}

// The differentiable inputs, named, in the order of the kernel's gradients
// (d_x, d_h0, d_c0 (LSTM), d_w_ih, d_w_hh, d_b_ih, d_b_hh).
inline std::vector<std::pair<const char*, std::vector<double>*>> inputs(Problem& p) {
  std::vector<std::pair<const char*, std::vector<double>*>> v = {{"x", &p.x}, {"h0", &p.h0}};
  if (p.lstm()) v.push_back({"c0", &p.c0});
  v.insert(v.end(), {{"w_ih", &p.w_ih}, {"w_hh", &p.w_hh}, {"b_ih", &p.b_ih}, {"b_hh", &p.b_hh}});
  return v;
}

// Central difference of the loss with respect to element `index` of one input; the gradient with
// respect to an input given as nullptr is the gradient at zeros, so the flags are set for the probe.
inline double finite_difference(Problem p, std::size_t input, std::size_t index, double step = 1e-6) {
  p.has_h0 = p.has_c0 = p.has_b_ih = p.has_b_hh = true;
  std::vector<double>& v = *inputs(p)[input].second;
  const double saved = v[index];
  v[index] = saved + step;
  const double up = loss(p);
  v[index] = saved - step;
  const double down = loss(p);
  return (up - down) / (2 * step);
}

}  // namespace naive
