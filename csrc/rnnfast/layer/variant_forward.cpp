// One recurrent layer, one direction, of a cell variant: the forward (layer/variant_layer.h has the
// arguments and the workspace layout).
//
// The input projection of every step is one GEMM up front (gx = X W_ih^T + the foldable biases), or, when
// gx of all steps would be large, each step's just before it (kUpFrontGxBytes; the same bits). Each
// step then multiplies h_{t-1} by the packed recurrent weights, accumulating into that step's gx rows,
// which become the gates' pre-activations, and runs the cell arithmetic row by row (for_row_chunks):
// activations through step/variant_activations.h, the rest as plain loops. The GRU with the reset gate
// before the product needs r before its second product, (r * h_{t-1}) W_hn^T; the LSTM's projection is one
// more product, m_t W_hr^T. Every product is gemm.h's, whose bits do not depend on the thread count or on
// how many rows it is given, so neither do the results.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/isa.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/layer/tuning.h"
#include "rnnfast/core/weight_cache.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/variant_layer.h"
#include "rnnfast/layer/variant_rows.h"
#include "rnnfast/step/variant_activations.h"

namespace rnnfast {
namespace {

// Tags of the weight cache's keys (core/weight_cache.h) for the variant layer's packs.
enum PackTag : std::int64_t { kInputT = 20, kRecurrentT = 21, kResetGatesT = 22, kNewGateT = 23, kProjectionT = 24 };

// op(B) = w^T for w [n, k] (PyTorch layout, rows ld apart), packed once and found again by later calls.
template <typename Scalar>
std::shared_ptr<const PackedMatrix<Scalar>> packed_transpose(std::int64_t tag, const Scalar* w, std::int64_t n,
                                                             std::int64_t k, std::int64_t ld) {
  const PackKey key{tag, n, k, static_cast<std::int64_t>(active_isa()), static_cast<std::int64_t>(sizeof(Scalar))};
  return cached_pack<PackedMatrix<Scalar>>(key, w, n * ld, static_cast<const Scalar*>(nullptr), 0,
                                           [&](PackedMatrix<Scalar>& p) { p.pack(true, k, n, w, ld); });
}

// op(B) = w^T for w [n, k] (PyTorch layout, rows ld apart): found in the weight cache, or packed afresh.
template <typename Scalar>
std::shared_ptr<const PackedMatrix<Scalar>> transposed_pack(bool cached, std::int64_t tag, const Scalar* w,
                                                            std::int64_t n, std::int64_t k, std::int64_t ld) {
  if (cached) return packed_transpose(tag, w, n, k, ld);
  auto p = std::make_shared<PackedMatrix<Scalar>>();
  p->pack(true, k, n, w, ld);
  return p;
}

template <typename Scalar>
class VariantForwardLoop {
 public:
  VariantForwardLoop(const VariantWeights<Scalar>& w, const VariantForward<Scalar>& a);
  void run();

 private:
  // The time loop over rows [r0, r1) of the batch; every pointer below is offset to row r0.
  void run_rows(std::int64_t r0, std::int64_t r1);
  void rnn_step(std::int64_t r0, std::int64_t rows, Scalar* a, const Scalar* h_prev, Scalar* h, Scalar* ws);
  void lstm_step(std::int64_t r0, std::int64_t rows, Scalar* a, const Scalar* h_prev, const Scalar* c_prev, Scalar* h,
                 Scalar* c, Scalar* ws);
  void gru_step(std::int64_t r0, std::int64_t rows, Scalar* a, const Scalar* h_prev, Scalar* h, Scalar* ws);

  const VariantWeights<Scalar>& w_;
  const VariantForward<Scalar>& a_;
  const CellVariant& v_;
  const VariantActivationKernels<Scalar>& act_;
  const std::int64_t B_, I_, H_, GH_, R_, W_;
  const ActiveRows active_;
  // Whether each step projects its own rows of x (gx_ then holds one step) instead of all steps up front.
  bool per_step_ = false;
  Buffer<Scalar> gx_, gh_, gates_, m_, zeros_, cells_;
};

// The input projection of all steps runs up front while its result, gx [steps, B, GH], stays this small;
// above, each step projects its own rows just before its recurrent product, so that gx never makes a
// round trip through memory and the forward's scratch stays small (at the batch shape, T=50, B=64, H=512,
// gx is 26 MB; the time did not change measurably, 50.5 ms either way for the clipped LSTM on 2 threads).
// The bits are the same either way: gemm's do not depend on the number of rows.
constexpr std::int64_t kUpFrontGxBytes = std::int64_t(512) << 10;

}  // namespace

template <typename Scalar>
VariantWeights<Scalar>::VariantWeights(const VariantForward<Scalar>& a, bool cached)
    : cell(a.cell), variant(a.variant), input_size(a.input_size), hidden(a.hidden), proj(a.proj) {
  check_variant_args(a);
  const bool gru = a.cell == Cell::kGru;
  const std::int64_t I = a.input_size, H = a.hidden, GH = gate_count(a.cell) * H, R = a.proj > 0 ? a.proj : H;
  // The biases the input projection starts from: b_ih + b_hh, except the GRU's b_hn when the reset gate
  // multiplies it (reset_after), which the recurrent product starts from instead.
  const bool kept_bhn = gru && variant.reset_after && a.b_hh != nullptr;
  if (a.b_ih != nullptr || a.b_hh != nullptr) {
    bias.resize(GH);
    for (std::int64_t j = 0; j < GH; ++j) {
      const bool kept = kept_bhn && j >= 2 * H;
      bias.data()[j] = (a.b_ih != nullptr ? a.b_ih[j] : Scalar(0)) + (a.b_hh != nullptr && !kept ? a.b_hh[j] : Scalar(0));
    }
  }
  if (kept_bhn) {
    kept_bias.resize(GH);  // zeros but for the n block
    copy_n(kept_bias.data() + 2 * H, a.b_hh + 2 * H, H);
  }
  if (a.w_ch != nullptr) {
    w_ch.resize(3 * H, /*zeroed=*/false);
    copy_n(w_ch.data(), a.w_ch, 3 * H);
  }
  w_ih_t = transposed_pack(cached, kInputT, a.w_ih, GH, I, I);
  if (gru && !variant.reset_after) {
    w_rz_t = transposed_pack(cached, kResetGatesT, a.w_hh, 2 * H, H, H);
    w_n_t = transposed_pack(cached, kNewGateT, a.w_hh + 2 * H * H, H, H, H);
  } else {
    w_hh_t = transposed_pack(cached, kRecurrentT, a.w_hh, GH, R, R);
  }
  if (a.proj > 0) w_hr_t = transposed_pack(cached, kProjectionT, a.w_hr, R, H, H);
}

namespace {

template <typename Scalar>
VariantForwardLoop<Scalar>::VariantForwardLoop(const VariantWeights<Scalar>& w, const VariantForward<Scalar>& a)
    : w_(w),
      a_(a),
      v_(w.variant),
      act_(kernels_for<VariantActivationKernels<Scalar>>(active_isa())),
      B_(a.batch),
      I_(a.input_size),
      H_(a.hidden),
      GH_(gate_count(a.cell) * a.hidden),
      R_(a.proj > 0 ? a.proj : a.hidden),
      W_(variant_workspace_slots(a.cell) * a.hidden),
      active_(a.lengths, a.batch, a.seq_len) {
  const bool lstm = a.cell == Cell::kLstm, gru = a.cell == Cell::kGru;
  if (a.cell != w.cell || a.input_size != w.input_size || a.hidden != w.hidden || a.proj != w.proj)
    throw std::invalid_argument("rnnfast: variant layer: the arguments' cell or sizes are not the packed weights'");
  if (a.x == nullptr || a.out == nullptr || a.h_n == nullptr || (lstm && a.c_n == nullptr))
    throw std::invalid_argument("rnnfast: variant layer: missing array");
  const std::int64_t B = B_, I = I_, H = H_, GH = GH_, R = R_, steps = active_.steps();
  per_step_ = steps * B * GH * static_cast<std::int64_t>(sizeof(Scalar)) > kUpFrontGxBytes;
  gx_.resize((per_step_ ? 1 : steps) * B * GH, /*zeroed=*/false);
  if (!per_step_ && steps * B > 0)
    gemm(steps * B, false, a.x, I, *w.w_ih_t, /*accumulate=*/false, gx_.data(), GH,
         w.bias.size() > 0 ? w.bias.data() : nullptr);
  if (gru) gh_.resize(B * GH, /*zeroed=*/false);
  gates_.resize(B * GH, /*zeroed=*/false);
  if (lstm && a.proj > 0) m_.resize(B * H, /*zeroed=*/false);
  zeros_.resize(B * std::max(H, R));
  if (lstm) cells_.resize(2 * B * H, /*zeroed=*/false);
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::run() {
  // Slices of the batch, each running the whole time loop with its products inline (no barrier at all), when
  // each thread has rows enough for the products' register tiles; else one loop whose products and row
  // arithmetic the threads share at every step. A row's values do not depend on the slice it is in.
  const std::int64_t slices = variant_forward_slices(B_);
  if (slices <= 1) return run_rows(0, B_);
  parallel_for(slices, [&](std::int64_t i) { run_rows(B_ * i / slices, B_ * (i + 1) / slices); });
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::run_rows(std::int64_t r0, std::int64_t r1) {
  const VariantForward<Scalar>& a = a_;
  const std::int64_t B = B_, I = I_, H = H_, R = R_, W = W_, GH = GH_, width = r1 - r0;
  const bool lstm = a.cell == Cell::kLstm;
  const Scalar* h_prev = (a.h0 != nullptr ? a.h0 : zeros_.data()) + r0 * R;
  const Scalar* c_prev = (a.c0 != nullptr ? a.c0 : zeros_.data()) + r0 * H;
  // Rows of length 0 end before the first step: their final state is the initial one.
  const std::int64_t at_start = active_.in_slice(0, r0, r1);
  copy_n(a.h_n + (r0 + at_start) * R, h_prev + at_start * R, (width - at_start) * R);
  if (lstm) copy_n(a.c_n + (r0 + at_start) * H, c_prev + at_start * H, (width - at_start) * H);
  for (std::int64_t t = 0; t < a.seq_len; ++t) {
    const std::int64_t rows = active_.in_slice(t, r0, r1);
    Scalar* h = a.out + (t * B + r0) * R;
    Scalar* ws = a.workspace != nullptr ? a.workspace + (t * B + r0) * W : nullptr;
    // Past a sequence's end the output (and the saved workspace) is zero, as in PyTorch.
    std::fill(h + rows * R, h + width * R, Scalar(0));
    if (ws != nullptr) std::fill(ws + rows * W, ws + width * W, Scalar(0));
    if (rows == 0) continue;
    Scalar* pre = gx_.data() + ((per_step_ ? 0 : t * B) + r0) * GH;  // becomes the pre-activations
    if (per_step_)
      gemm(rows, false, a.x + (t * B + r0) * I, I, *w_.w_ih_t, /*accumulate=*/false, pre, GH,
           w_.bias.size() > 0 ? w_.bias.data() : nullptr);
    Scalar* c = lstm ? cells_.data() + ((t % 2) * B + r0) * H : nullptr;
    if (lstm)
      lstm_step(r0, rows, pre, h_prev, c_prev, h, c, ws);
    else if (a.cell == Cell::kGru)
      gru_step(r0, rows, pre, h_prev, h, ws);
    else
      rnn_step(r0, rows, pre, h_prev, h, ws);
    // Rows whose last step this was hand their state to h_n (c_n).
    const std::int64_t still = active_.in_slice(t + 1, r0, r1);
    copy_n(a.h_n + (r0 + still) * R, h + still * R, (rows - still) * R);
    if (lstm) copy_n(a.c_n + (r0 + still) * H, c + still * H, (rows - still) * H);
    h_prev = h;
    c_prev = c;
  }
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::rnn_step(std::int64_t /*r0*/, std::int64_t rows, Scalar* a, const Scalar* h_prev,
                                          Scalar* h, Scalar* ws) {
  const std::int64_t H = H_, W = W_;
  gemm(rows, false, h_prev, H, *w_.w_hh_t, /*accumulate=*/true, a, H);
  for_row_chunks(rows, H, [&](std::int64_t r0, std::int64_t r1) {
    act_.activate(v_.act[kGateRole], v_.clip, (r1 - r0) * H, a + r0 * H, h + r0 * H);
    if (ws != nullptr)
      for (std::int64_t r = r0; r < r1; ++r) copy_n(ws + r * W, a + r * H, H);
  });
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::lstm_step(std::int64_t r0, std::int64_t rows, Scalar* a, const Scalar* h_prev,
                                           const Scalar* c_prev, Scalar* h, Scalar* c, Scalar* ws) {
  const std::int64_t H = H_, GH = GH_, R = R_, W = W_;
  const Scalar* p = w_.w_ch.size() > 0 ? w_.w_ch.data() : nullptr;  // [p_i | p_f | p_o]
  const ActivationSpec &gate = v_.act[kGateRole], &cell_out = v_.act[kOutputRole];
  const double clip = v_.clip;
  Scalar* m = a_.proj > 0 ? m_.data() + r0 * H : h;  // m_t = o * h(c_t), projected into h_t by a projection
  Scalar* gates = gates_.data() + r0 * GH;
  gemm(rows, false, h_prev, R, *w_.w_hh_t, /*accumulate=*/true, a, GH);
  for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      Scalar *ai = a + r * GH, *af = ai + H, *ag = ai + 2 * H, *ao = ai + 3 * H;
      Scalar *gi = gates + r * GH, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
      const Scalar* cp = c_prev + r * H;
      Scalar* cr = c + r * H;
      Scalar* mr = m + r * H;
      if (p != nullptr)
        for (std::int64_t j = 0; j < H; ++j) {
          ai[j] += p[j] * cp[j];
          af[j] += p[H + j] * cp[j];
        }
      lstm_input_gates(act_, v_, H, ai, af, ag, gi, gf, gg);
      for (std::int64_t j = 0; j < H; ++j) cr[j] = gf[j] * cp[j] + gi[j] * gg[j];
      if (p != nullptr)
        for (std::int64_t j = 0; j < H; ++j) ao[j] += p[2 * H + j] * cr[j];
      act_.activate(gate, clip, H, ao, go);
      act_.activate(cell_out, 0.0, H, cr, gg);  // h(c_t), in the candidate's place (no longer needed)
      for (std::int64_t j = 0; j < H; ++j) mr[j] = go[j] * gg[j];
      if (ws != nullptr) {
        Scalar* wr = ws + r * W;
        copy_n(wr, ai, 4 * H);
        copy_n(wr + 4 * H, cr, H);
        copy_n(wr + 5 * H, mr, H);
      }
    }
  });
  if (a_.proj > 0) gemm(rows, false, m, H, *w_.w_hr_t, /*accumulate=*/false, h, R);
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::gru_step(std::int64_t r0, std::int64_t rows, Scalar* a, const Scalar* h_prev,
                                          Scalar* h, Scalar* ws) {
  const std::int64_t H = H_, GH = GH_, W = W_;
  const ActivationSpec &gate = v_.act[kGateRole], &cand = v_.act[kCandidateRole];
  const double clip = v_.clip;
  Scalar* gh = gh_.data() + r0 * GH;
  Scalar* gates = gates_.data() + r0 * GH;
  if (v_.reset_after) {
    // gh = h_{t-1} W_hh^T (+ b_hn in the n block); a_r, a_z = gx + gh; a_n = gx_n + r * gh_n.
    gemm(rows, false, h_prev, H, *w_.w_hh_t, /*accumulate=*/false, gh, GH,
         w_.kept_bias.size() > 0 ? w_.kept_bias.data() : nullptr);
    for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        Scalar *ar = a + r * GH, *an = ar + 2 * H;
        const Scalar* ghr = gh + r * GH;
        Scalar *gr = gates + r * GH, *gz = gr + H, *gn = gr + 2 * H;
        for (std::int64_t j = 0; j < 2 * H; ++j) ar[j] += ghr[j];
        act_.activate(gate, clip, 2 * H, ar, gr);  // r and z, adjacent
        for (std::int64_t j = 0; j < H; ++j) an[j] += gr[j] * ghr[2 * H + j];
        act_.activate(cand, clip, H, an, gn);
        const Scalar* hp = h_prev + r * H;
        Scalar* hr = h + r * H;
        for (std::int64_t j = 0; j < H; ++j) hr[j] = (Scalar(1) - gz[j]) * gn[j] + gz[j] * hp[j];
        if (ws != nullptr) {
          copy_n(ws + r * W, ar, 3 * H);
          copy_n(ws + r * W + 3 * H, ghr + 2 * H, H);
        }
      }
    });
    return;
  }
  // The reset gate before the product: a_r, a_z first, then u = r * h_{t-1} and a_n = gx_n + u W_hn^T.
  Scalar* u = gh;  // [rows, H] rows H apart
  gemm(rows, false, h_prev, H, *w_.w_rz_t, /*accumulate=*/true, a, GH);
  for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      Scalar* gr = gates + r * GH;
      act_.activate(gate, clip, 2 * H, a + r * GH, gr);
      const Scalar* hp = h_prev + r * H;
      Scalar* ur = u + r * H;
      for (std::int64_t j = 0; j < H; ++j) ur[j] = gr[j] * hp[j];
    }
  });
  gemm(rows, false, u, H, *w_.w_n_t, /*accumulate=*/true, a + 2 * H, GH);
  for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      Scalar* ar = a + r * GH;
      Scalar *gz = gates + r * GH + H, *gn = gz + H;
      act_.activate(cand, clip, H, ar + 2 * H, gn);
      const Scalar* hp = h_prev + r * H;
      Scalar* hr = h + r * H;
      for (std::int64_t j = 0; j < H; ++j) hr[j] = (Scalar(1) - gz[j]) * gn[j] + gz[j] * hp[j];
      if (ws != nullptr) {
        copy_n(ws + r * W, ar, 3 * H);
        copy_n(ws + r * W + 3 * H, u + r * H, H);
      }
    }
  });
}

}  // namespace

template <typename Scalar>
void variant_forward(const VariantWeights<Scalar>& w, const VariantForward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  VariantForwardLoop<Scalar>(w, a).run();
}

template <typename Scalar>
void variant_forward(const VariantForward<Scalar>& a) {
  check_variant_args(a);
  if (a.h_n == nullptr || (a.cell == Cell::kLstm && a.c_n == nullptr))
    throw std::invalid_argument("rnnfast: variant layer: missing array");
  variant_forward(VariantWeights<Scalar>(a, /*cached=*/true), a);
}

template struct VariantWeights<float>;
template struct VariantWeights<double>;
template void variant_forward<float>(const VariantWeights<float>&, const VariantForward<float>&);
template void variant_forward<double>(const VariantWeights<double>&, const VariantForward<double>&);
template void variant_forward<float>(const VariantForward<float>&);
template void variant_forward<double>(const VariantForward<double>&);

}  // namespace rnnfast
