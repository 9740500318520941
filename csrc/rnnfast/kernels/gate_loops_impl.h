// The loops that run a cell's unit arithmetic (cells/<cell>.h) over rows and hidden units, for any cell
// and math policy M: the gate update of a fused-step tile (forward) and one step's gate gradients
// (backward). Units come a vector of M's lanes at a time; a block's last units, when they do not fill
// a vector, go through zero-padded stand-in buffers of one vector per gate or slot, so nothing is read
// or written out of bounds. Every value depends only on its own row and unit, so results do not depend
// on how rows or units are cut.
//
// Include it only from a per-ISA file (after its kernels/isa_<isa>.h) or kernels/portable_f64.cpp:
// everything lives in that file's namespace (the ODR trap, docs/design.md).
#include <cstdint>
#include <cstring>

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// Copies `blocks` blocks of `count` values, `src_stride` apart, into blocks `dst_stride` apart.
template <typename Scalar>
inline void copy_blocks(Scalar* dst, std::int64_t dst_stride, const Scalar* src, std::int64_t src_stride, int blocks,
                        int count) {
  for (int q = 0; q < blocks; ++q) std::memcpy(dst + q * dst_stride, src + q * src_stride, count * sizeof(Scalar));
}

// The gate update of `rows` rows by `units` (<= U) hidden units of one unit block, from the tile of
// recurrent pre-activations gh [rows][G][U] (row stride G*U, gate stride U). gx rows are G*H apart
// (gate blocks H apart), h_prev, c_prev, h and c rows H apart, ws rows W = kSlots*H apart (slots H
// apart), all offset to the block's first unit; h_prev, c_prev, c and ws may be nullptr where the cell
// does not use them (ws: inference).
template <class CellT, class M>
void forward_block(std::int64_t rows, int units, int block_units, std::int64_t hidden, const typename M::Scalar* gx,
                   const typename M::Scalar* gh, const typename M::Scalar* h_prev, const typename M::Scalar* c_prev,
                   typename M::Scalar* h, typename M::Scalar* c, typename M::Scalar* ws) {
  using Scalar = typename M::Scalar;
  constexpr int G = CellT::kGates, W = CellT::kSlots, L = M::kLanes;
  const std::int64_t H = hidden, U = block_units;
  for (std::int64_t r = 0; r < rows; ++r) {
    const Scalar* gxr = gx + r * G * H;
    const Scalar* ghr = gh + r * G * U;
    const Scalar* hpr = CellT::kReadsHPrev ? h_prev + r * H : nullptr;
    const Scalar* cpr = CellT::kCellState ? c_prev + r * H : nullptr;
    Scalar* hr = h + r * H;
    Scalar* cr = CellT::kCellState ? c + r * H : nullptr;
    Scalar* wr = ws != nullptr && W > 0 ? ws + r * W * H : nullptr;
    int j = 0;
    for (; j + L <= units; j += L)
      CellT::template forward<M>(gxr + j, ghr + j, H, U, hpr != nullptr ? hpr + j : nullptr,
                                 cpr != nullptr ? cpr + j : nullptr, hr + j, cr != nullptr ? cr + j : nullptr,
                                 wr != nullptr ? wr + j : nullptr);
    if (j < units) {  // the block's last units, through zero-padded stand-ins
      const int n = units - j;
      Scalar tgx[G * L] = {}, thp[L] = {}, tcp[L] = {}, th[L], tc[L], tws[(W > 0 ? W : 1) * L];
      copy_blocks(tgx, L, gxr + j, H, G, n);
      if (hpr != nullptr) copy_blocks(thp, L, hpr + j, H, 1, n);
      if (cpr != nullptr) copy_blocks(tcp, L, cpr + j, H, 1, n);
      // The tile is whole vectors wide (zeros past the units), so gh is read in place.
      CellT::template forward<M>(tgx, ghr + j, L, U, thp, tcp, th, tc, wr != nullptr ? tws : nullptr);
      copy_blocks(hr + j, H, th, L, 1, n);
      if (cr != nullptr) copy_blocks(cr + j, H, tc, L, 1, n);
      if (wr != nullptr) copy_blocks(wr + j, H, tws, L, W, n);
    }
  }
}

// One step's gate gradients for `rows` rows (the GateGradKernels::gate_gradients contract,
// step/gate_grads.h).
template <class CellT, class M>
void gate_gradients(std::int64_t rows, std::int64_t hidden, const typename M::Scalar* dh,
                    const typename M::Scalar* d_out, typename M::Scalar* dc, const typename M::Scalar* h_t,
                    const typename M::Scalar* h_prev, const typename M::Scalar* ws, const typename M::Scalar* c_prev,
                    std::int64_t c_prev_stride, typename M::Scalar* d_gates, typename M::Scalar* d_gates_hh,
                    typename M::Scalar* dh_prev) {
  using Scalar = typename M::Scalar;
  constexpr int G = CellT::kGates, W = CellT::kSlots, L = M::kLanes;
  constexpr bool kRecurrentSide = CellT::kRecurrentSideGradients;
  const std::int64_t H = hidden;
  for (std::int64_t b = 0; b < rows; ++b) {
    const Scalar* dhr = dh + b * H;
    const Scalar* dor = d_out != nullptr ? d_out + b * H : nullptr;
    Scalar* dcr = CellT::kCellState ? dc + b * H : nullptr;
    const Scalar* hr = h_t + b * H;
    const Scalar* hpr = CellT::kReadsHPrev ? h_prev + b * H : nullptr;  // the GRU reads h_{t-1}
    const Scalar* wr = W > 0 ? ws + b * W * H : nullptr;
    const Scalar* cpr = CellT::kCellState ? c_prev + b * c_prev_stride : nullptr;
    Scalar* dgr = d_gates + b * G * H;
    Scalar* dghr = kRecurrentSide ? d_gates_hh + b * G * H : nullptr;
    Scalar* dhp = kRecurrentSide ? dh_prev + b * H : nullptr;
    auto at = [](auto* p, std::int64_t j) { return p != nullptr ? p + j : nullptr; };
    std::int64_t j = 0;
    for (; j + L <= H; j += L)
      CellT::template backward<M>(H, dhr + j, at(dor, j), at(dcr, j), at(wr, j), at(cpr, j), at(hpr, j), hr + j,
                                  dgr + j, at(dghr, j), at(dhp, j));
    if (j < H) {  // the last H - j units, through zero-padded stand-ins of one vector per block
      const int n = static_cast<int>(H - j);
      Scalar tdh[L] = {}, tdo[L] = {}, tdc[L] = {}, th[L] = {}, thp[L] = {}, tcp[L] = {};
      Scalar tws[(W > 0 ? W : 1) * L] = {}, tdg[G * L], tdgh[G * L], tdhp[L];
      copy_blocks(tdh, L, dhr + j, H, 1, n);
      if (dor != nullptr) copy_blocks(tdo, L, dor + j, H, 1, n);
      if (dcr != nullptr) copy_blocks(tdc, L, dcr + j, H, 1, n);
      copy_blocks(th, L, hr + j, H, 1, n);
      if (hpr != nullptr) copy_blocks(thp, L, hpr + j, H, 1, n);
      if (wr != nullptr) copy_blocks(tws, L, wr + j, H, W, n);
      if (cpr != nullptr) copy_blocks(tcp, L, cpr + j, H, 1, n);
      CellT::template backward<M>(L, tdh, dor != nullptr ? tdo : nullptr, tdc, tws, tcp, thp, th, tdg, tdgh, tdhp);
      copy_blocks(dgr + j, H, tdg, L, G, n);
      if (dcr != nullptr) copy_blocks(dcr + j, H, tdc, L, 1, n);
      if (dghr != nullptr) copy_blocks(dghr + j, H, tdgh, L, G, n);
      if (dhp != nullptr) copy_blocks(dhp + j, H, tdhp, L, 1, n);
    }
  }
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
