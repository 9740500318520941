// The LSTM cell, PyTorch's gates i, f, g, o:
//   i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)   (each of x W_ih^T + b_ih + h W_hh^T + b_hh)
//   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
// Training saves the activated gates, c_t and tanh(c_t), so backward needs no transcendental function.
// See cell_unit.h for the contract of the members.
#pragma once

#include <cstdint>

#include "rnnfast/cells/cell_unit.h"
#include "rnnfast/core/cell.h"

namespace rnnfast {

struct LstmCell {
  static constexpr Cell kCell = Cell::kLstm;
  static constexpr int kGates = 4;
  // The workspace of a (t, b) row: [i, f, g, o, c_t, tanh(c_t)], each H wide.
  enum Slot { kInput, kForget, kCandidate, kOutput, kCellValue, kTanhCell, kSlotCount };
  static constexpr int kSlots = kSlotCount;
  static constexpr bool kCellState = true;
  static constexpr bool kReadsHPrev = false;
  static constexpr int kBlockVectors = 1;  // a block: one vector of units of each of the four gates
  static constexpr int kRecurrentBiasGate = -1;
  static constexpr int kCellStateSlot = kCellValue;
  static constexpr bool kRecurrentSideGradients = false;

  template <class M>
  static void forward(const typename M::Scalar* gx, const typename M::Scalar* gh, std::int64_t gate_stride,
                      std::int64_t gh_stride, const typename M::Scalar* /*h_prev*/, const typename M::Scalar* c_prev,
                      typename M::Scalar* h, typename M::Scalar* c, typename M::Scalar* ws) {
    using Vec = typename M::Vec;
    const std::int64_t s = gate_stride, q = gh_stride;
    const Vec i = M::sigmoid(M::load(gx) + M::load(gh));
    const Vec f = M::sigmoid(M::load(gx + s) + M::load(gh + q));
    const Vec g = M::tanh(M::load(gx + 2 * s) + M::load(gh + 2 * q));
    const Vec o = M::sigmoid(M::load(gx + 3 * s) + M::load(gh + 3 * q));
    const Vec cn = M::mul_add(f, M::load(c_prev), i * g);  // the product GCC fused (pinned bits)
    const Vec tc = M::tanh(cn);
    M::store(c, cn);
    M::store(h, o * tc);
    if (ws != nullptr) {
      M::store(ws + kInput * s, i);
      M::store(ws + kForget * s, f);
      M::store(ws + kCandidate * s, g);
      M::store(ws + kOutput * s, o);
      M::store(ws + kCellValue * s, cn);
      M::store(ws + kTanhCell * s, tc);
    }
  }

  template <class M>
  static void backward(std::int64_t stride, const typename M::Scalar* dh, const typename M::Scalar* d_out,
                       typename M::Scalar* dc, const typename M::Scalar* ws, const typename M::Scalar* c_prev,
                       const typename M::Scalar* /*h_prev*/, const typename M::Scalar* /*h*/,
                       typename M::Scalar* dg, typename M::Scalar* /*dgh*/, typename M::Scalar* /*dh_prev*/) {
    using Scalar = typename M::Scalar;
    using Vec = typename M::Vec;
    const std::int64_t s = stride;
    const Vec i = M::load(ws + kInput * s), f = M::load(ws + kForget * s), g = M::load(ws + kCandidate * s),
              o = M::load(ws + kOutput * s), tc = M::load(ws + kTanhCell * s);
    const Vec dht = gradient_of_h<M>(dh, d_out);
    const Vec dct = M::load(dc) + dht * o * (Scalar(1) - tc * tc);
    M::store(dg, dct * g * i * (Scalar(1) - i));
    M::store(dg + s, dct * M::load(c_prev) * f * (Scalar(1) - f));
    M::store(dg + 2 * s, dct * i * (Scalar(1) - g * g));
    M::store(dg + 3 * s, dht * tc * o * (Scalar(1) - o));
    M::store(dc, dct * f);  // becomes dc_{t-1}
  }
};

static_assert(LstmCell::kGates == kCellInfo[int(Cell::kLstm)].gates &&
                  LstmCell::kSlots == kCellInfo[int(Cell::kLstm)].workspace_slots &&
                  LstmCell::kCellState == kCellInfo[int(Cell::kLstm)].cell_state,
              "the LSTM cell disagrees with core/cell.h");

}  // namespace rnnfast
