// The GRU cell, PyTorch's gates r, z, n (linear_before_reset: the reset gate multiplies h W_hn^T + b_hn):
//   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr),  z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
//   n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}
// b_hn cannot be folded into the input projection (r multiplies it), so the fused step adds it to the
// recurrent tile (kRecurrentBiasGate). Training saves r, z, n and h W_hn^T + b_hn.
// See cell_unit.h for the contract of the members.
#pragma once

#include <cstdint>

#include "rnnfast/cells/cell_unit.h"
#include "rnnfast/core/cell.h"

namespace rnnfast {

struct GruCell {
  static constexpr Cell kCell = Cell::kGru;
  static constexpr int kGates = 3;
  // The workspace of a (t, b) row: [r, z, n, h W_hn^T + b_hn], each H wide.
  enum Slot { kReset, kUpdate, kNew, kRecurrentNew, kSlotCount };
  static constexpr int kSlots = kSlotCount;
  static constexpr bool kCellState = false;
  static constexpr bool kReadsHPrev = true;
  static constexpr int kBlockVectors = 1;  // a block: one vector of units of each of the three gates
  static constexpr int kRecurrentBiasGate = 2;
  static constexpr int kCellStateSlot = -1;
  static constexpr bool kRecurrentSideGradients = true;

  template <class M>
  static void forward(const typename M::Scalar* gx, const typename M::Scalar* gh, std::int64_t gate_stride,
                      std::int64_t gh_stride, const typename M::Scalar* h_prev, const typename M::Scalar* /*c_prev*/,
                      typename M::Scalar* h, typename M::Scalar* /*c*/, typename M::Scalar* ws) {
    using Scalar = typename M::Scalar;
    using Vec = typename M::Vec;
    const std::int64_t s = gate_stride, q = gh_stride;
    const Vec r = M::sigmoid(M::load(gx) + M::load(gh));
    const Vec z = M::sigmoid(M::load(gx + s) + M::load(gh + q));
    const Vec ghn = M::load(gh + 2 * q);
    const Vec n = M::tanh(M::load(gx + 2 * s) + r * ghn);
    M::store(h, M::mul_add(Scalar(1) - z, n, z * M::load(h_prev)));  // the product GCC fused (pinned bits)
    if (ws != nullptr) {
      M::store(ws + kReset * s, r);
      M::store(ws + kUpdate * s, z);
      M::store(ws + kNew * s, n);
      M::store(ws + kRecurrentNew * s, ghn);
    }
  }

  // The n block's gradient differs between the sides: dn on the input side, dn * r on the recurrent
  // side (dgh); h_{t-1} also reaches h_t directly, through z (dh_prev).
  template <class M>
  static void backward(std::int64_t stride, const typename M::Scalar* dh, const typename M::Scalar* d_out,
                       typename M::Scalar* /*dc*/, const typename M::Scalar* ws,
                       const typename M::Scalar* /*c_prev*/, const typename M::Scalar* h_prev,
                       const typename M::Scalar* /*h*/, typename M::Scalar* dg, typename M::Scalar* dgh,
                       typename M::Scalar* dh_prev) {
    using Scalar = typename M::Scalar;
    using Vec = typename M::Vec;
    const std::int64_t s = stride;
    const Vec r = M::load(ws + kReset * s), z = M::load(ws + kUpdate * s), n = M::load(ws + kNew * s),
              ghn = M::load(ws + kRecurrentNew * s);
    const Vec dht = gradient_of_h<M>(dh, d_out);
    const Vec dn = dht * (Scalar(1) - z) * (Scalar(1) - n * n);
    const Vec dz = dht * (M::load(h_prev) - n) * z * (Scalar(1) - z);
    const Vec dr = dn * ghn * r * (Scalar(1) - r);
    M::store(dg, dr);
    M::store(dg + s, dz);
    M::store(dg + 2 * s, dn);
    M::store(dgh, dr);
    M::store(dgh + s, dz);
    M::store(dgh + 2 * s, dn * r);
    M::store(dh_prev, dht * z);  // the direct path h_{t-1} -> h_t
  }
};

static_assert(GruCell::kGates == kCellInfo[int(Cell::kGru)].gates &&
                  GruCell::kSlots == kCellInfo[int(Cell::kGru)].workspace_slots,
              "the GRU cell disagrees with core/cell.h");

}  // namespace rnnfast
