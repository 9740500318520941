// The vanilla (Elman) RNN cell, tanh or relu: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).
// One gate; the output h_t alone gives the activation's derivative, so training saves no workspace.
// See cell_unit.h for the contract of the members.
#pragma once

#include <cstdint>

#include "rnnfast/cells/cell_unit.h"
#include "rnnfast/core/cell.h"

namespace rnnfast {

template <bool kRelu>
struct RnnCell {
  static constexpr Cell kCell = kRelu ? Cell::kRnnRelu : Cell::kRnnTanh;
  static constexpr int kGates = 1;
  static constexpr int kSlots = 0;
  static constexpr bool kCellState = false;
  static constexpr bool kReadsHPrev = false;
  static constexpr int kBlockVectors = 4;  // one gate: a block is four vectors of units
  static constexpr int kRecurrentBiasGate = -1;
  static constexpr int kCellStateSlot = -1;
  static constexpr bool kRecurrentSideGradients = false;

  template <class M>
  static void forward(const typename M::Scalar* gx, const typename M::Scalar* gh, std::int64_t /*gate_stride*/,
                      std::int64_t /*gh_stride*/, const typename M::Scalar* /*h_prev*/,
                      const typename M::Scalar* /*c_prev*/, typename M::Scalar* h, typename M::Scalar* /*c*/,
                      typename M::Scalar* /*ws*/) {
    const typename M::Vec pre = M::load(gx) + M::load(gh);
    M::store(h, kRelu ? M::relu(pre) : M::tanh(pre));
  }

  // d pre = dh_t * act'(pre), from h_t: 1 - h^2 for tanh, [h > 0] for relu.
  template <class M>
  static void backward(std::int64_t /*stride*/, const typename M::Scalar* dh, const typename M::Scalar* d_out,
                       typename M::Scalar* /*dc*/, const typename M::Scalar* /*ws*/,
                       const typename M::Scalar* /*c_prev*/, const typename M::Scalar* /*h_prev*/,
                       const typename M::Scalar* h, typename M::Scalar* dg, typename M::Scalar* /*dgh*/,
                       typename M::Scalar* /*dh_prev*/) {
    using Scalar = typename M::Scalar;
    const typename M::Vec hv = M::load(h);
    const typename M::Vec derivative = kRelu ? M::step(hv) : Scalar(1) - hv * hv;
    M::store(dg, gradient_of_h<M>(dh, d_out) * derivative);
  }
};

using RnnTanhCell = RnnCell<false>;
using RnnReluCell = RnnCell<true>;

static_assert(RnnTanhCell::kGates == kCellInfo[int(Cell::kRnnTanh)].gates &&
                  RnnTanhCell::kSlots == kCellInfo[int(Cell::kRnnTanh)].workspace_slots &&
                  RnnReluCell::kGates == kCellInfo[int(Cell::kRnnRelu)].gates &&
                  RnnReluCell::kSlots == kCellInfo[int(Cell::kRnnRelu)].workspace_slots,
              "the RNN cell disagrees with core/cell.h");

}  // namespace rnnfast
