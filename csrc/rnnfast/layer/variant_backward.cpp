// One recurrent layer, one direction, of a cell variant: backward through time (layer/variant_layer.h has
// the arguments and the workspace layout).
//
// A reverse loop over the steps computes the gates' pre-activation gradients dA_t (activations recomputed
// from the saved pre-activations, step/variant_activations.h) and dh_{t-1} = dA_t W_hh (plus the direct
// paths: the cell state, the GRU's z * h_{t-1}, the reset gate's r * d(r h) when it comes before the
// product, the peepholes); the weight and bias gradients are then products and column sums over all S*B
// rows. Every product is gemm.h's and every sum runs in row order, so results do not depend on the thread
// count.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/isa.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/variant_layer.h"
#include "rnnfast/layer/variant_rows.h"
#include "rnnfast/step/gate_grads.h"
#include "rnnfast/step/variant_activations.h"

namespace rnnfast {
namespace {

template <typename Scalar>
class VariantBackwardLoop {
 public:
  explicit VariantBackwardLoop(const VariantBackward<Scalar>& a);
  void run();

 private:
  void rnn_step(std::int64_t t, std::int64_t rows, const Scalar* dh, Scalar* dh_prev);
  void lstm_step(std::int64_t t, std::int64_t rows, const Scalar* dh, Scalar* dh_prev);
  void gru_step(std::int64_t t, std::int64_t rows, const Scalar* dh, Scalar* dh_prev);
  void parameter_gradients();
  // c_{t-1} of row b: the workspace's c_t of step t - 1, or c0.
  const Scalar* c_prev(std::int64_t t, std::int64_t b) const {
    return t > 0 ? a_.workspace + ((t - 1) * B_ + b) * W_ + 4 * H_ : c0_ + b * H_;
  }
  const Scalar* h_prev(std::int64_t t, std::int64_t b) const {
    return t > 0 ? a_.out + ((t - 1) * B_ + b) * R_ : h0_ + b * R_;
  }

  const VariantBackward<Scalar>& a_;
  const CellVariant& v_;
  const VariantActivationKernels<Scalar>& act_;
  const std::int64_t S_, B_, I_, H_, GH_, R_, P_, W_;
  const ActiveRows active_;
  const bool recurrent_side_;  // the GRU with reset_after: the recurrent side's n gradient is dA_n * r
  PackedMatrix<Scalar> w_hh_, w_rz_, w_n_, w_hr_;
  Buffer<Scalar> zeros_, d_a_, d_a_hh_, d_h_total_, dh_, dh_prev_, dc_, dm_, gates_, scratch_;
  const Scalar *h0_ = nullptr, *c0_ = nullptr;
};

template <typename Scalar>
VariantBackwardLoop<Scalar>::VariantBackwardLoop(const VariantBackward<Scalar>& a)
    : a_(a),
      v_(a.variant),
      act_(kernels_for<VariantActivationKernels<Scalar>>(active_isa())),
      S_(a.seq_len),
      B_(a.batch),
      I_(a.input_size),
      H_(a.hidden),
      GH_(gate_count(a.cell) * a.hidden),
      R_(a.proj > 0 ? a.proj : a.hidden),
      P_(a.proj),
      W_(variant_workspace_slots(a.cell) * a.hidden),
      active_(a.lengths, a.batch, a.seq_len),
      recurrent_side_(a.cell == Cell::kGru && a.variant.reset_after) {
  const bool lstm = a.cell == Cell::kLstm;
  if (a.x == nullptr || a.out == nullptr || (S_ * B_ > 0 && a.workspace == nullptr) || a.d_x == nullptr || a.d_h0 == nullptr || a.d_w_ih == nullptr ||
      a.d_w_hh == nullptr || a.d_b_ih == nullptr || a.d_b_hh == nullptr || (lstm && a.d_c0 == nullptr) ||
      (P_ > 0 && a.d_w_hr == nullptr) || (a.w_ch != nullptr && a.d_w_ch == nullptr))
    throw std::invalid_argument("rnnfast: variant layer backward: missing array");
  const std::int64_t B = B_, H = H_, GH = GH_, R = R_, SB = S_ * B_;
  if (a.cell == Cell::kGru && !v_.reset_after) {
    w_rz_.pack(false, 2 * H, H, a.w_hh, H);        // op(B) = W_h[rz] [2H, H]
    w_n_.pack(false, H, H, a.w_hh + 2 * H * H, H);  // op(B) = W_hn [H, H]
  } else {
    w_hh_.pack(false, GH, R, a.w_hh, R);  // op(B) = W_hh [GH, R]
  }
  if (P_ > 0) w_hr_.pack(false, P_, H, a.w_hr, H);  // op(B) = W_hr [P, H]
  zeros_.resize(B * std::max(H, R));
  h0_ = a.h0 != nullptr ? a.h0 : zeros_.data();
  c0_ = a.c0 != nullptr ? a.c0 : zeros_.data();
  d_a_.resize(SB * GH, /*zeroed=*/false);
  d_a_hh_.resize(recurrent_side_ ? SB * GH : 0, /*zeroed=*/false);
  d_h_total_.resize(P_ > 0 ? SB * P_ : 0, /*zeroed=*/false);
  dh_.resize(B * R);
  dh_prev_.resize(B * R);
  dc_.resize(lstm ? B * H : 0);
  dm_.resize(B * H, /*zeroed=*/false);
  gates_.resize(B * GH, /*zeroed=*/false);
  scratch_.resize(B * GH, /*zeroed=*/false);
}

template <typename Scalar>
void VariantBackwardLoop<Scalar>::run() {
  const VariantBackward<Scalar>& a = a_;
  const std::int64_t B = B_, H = H_, GH = GH_, R = R_;
  const bool lstm = a.cell == Cell::kLstm;
  Scalar* dh = dh_.data();
  Scalar* dh_prev = dh_prev_.data();
  for (std::int64_t t = S_ - 1; t >= 0; --t) {
    const std::int64_t rows = active_.at(t), after = active_.at(t + 1);
    // Rows whose last step is t start here, with the gradient of their final state.
    if (a.d_h_n != nullptr)
      copy_n(dh + after * R, a.d_h_n + after * R, (rows - after) * R);
    else
      std::fill(dh + after * R, dh + rows * R, Scalar(0));
    if (lstm) {
      if (a.d_c_n != nullptr)
        copy_n(dc_.data() + after * H, a.d_c_n + after * H, (rows - after) * H);
      else
        std::fill(dc_.data() + after * H, dc_.data() + rows * H, Scalar(0));
    }
    // Rows not running at step t add nothing to the products over all rows.
    std::fill(d_a_.data() + (t * B + rows) * GH, d_a_.data() + (t + 1) * B * GH, Scalar(0));
    if (recurrent_side_) std::fill(d_a_hh_.data() + (t * B + rows) * GH, d_a_hh_.data() + (t + 1) * B * GH, Scalar(0));
    if (P_ > 0) std::fill(d_h_total_.data() + (t * B + rows) * P_, d_h_total_.data() + (t + 1) * B * P_, Scalar(0));
    if (rows == 0) continue;
    // dh_t = the gradient from step t + 1 plus that of the output h_t.
    if (a.d_out != nullptr) {
      const Scalar* d_out = a.d_out + t * B * R;
      for (std::int64_t j = 0; j < rows * R; ++j) dh[j] += d_out[j];
    }
    if (lstm)
      lstm_step(t, rows, dh, dh_prev);
    else if (a.cell == Cell::kGru)
      gru_step(t, rows, dh, dh_prev);
    else
      rnn_step(t, rows, dh, dh_prev);
    std::swap(dh, dh_prev);
  }
  // Rows that ran at least one step carry their gradient back to the initial state; rows of length 0 pass
  // d_h_n (d_c_n) straight through.
  const std::int64_t ran = active_.at(0);
  copy_n(a.d_h0, dh, ran * R);
  if (a.d_h_n != nullptr)
    copy_n(a.d_h0 + ran * R, a.d_h_n + ran * R, (B - ran) * R);
  else
    std::fill(a.d_h0 + ran * R, a.d_h0 + B * R, Scalar(0));
  if (lstm) {
    copy_n(a.d_c0, dc_.data(), ran * H);
    if (a.d_c_n != nullptr)
      copy_n(a.d_c0 + ran * H, a.d_c_n + ran * H, (B - ran) * H);
    else
      std::fill(a.d_c0 + ran * H, a.d_c0 + B * H, Scalar(0));
  }
  parameter_gradients();
}

template <typename Scalar>
void VariantBackwardLoop<Scalar>::rnn_step(std::int64_t t, std::int64_t rows, const Scalar* dh, Scalar* dh_prev) {
  const std::int64_t H = H_, W = W_;
  Scalar* d_a = d_a_.data() + t * B_ * H;
  const Scalar* ws = a_.workspace + t * B_ * W;
  for_row_chunks(rows, H, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) act_.gradient(v_.act[kGateRole], v_.clip, H, ws + r * W, dh + r * H, d_a + r * H);
  });
  gemm(rows, false, d_a, H, w_hh_, /*accumulate=*/false, dh_prev, H);
}

template <typename Scalar>
void VariantBackwardLoop<Scalar>::lstm_step(std::int64_t t, std::int64_t rows, const Scalar* dh, Scalar* dh_prev) {
  const std::int64_t B = B_, H = H_, GH = GH_, R = R_, W = W_;
  const Scalar* p = a_.w_ch;
  const ActivationSpec &gate = v_.act[kGateRole], &cand = v_.act[kCandidateRole], &cell_out = v_.act[kOutputRole];
  const double clip = v_.clip;
  Scalar* d_a = d_a_.data() + t * B * GH;
  const Scalar* ws = a_.workspace + t * B * W;
  // dm = the gradient of m_t = o * h(c_t): dh_t itself, or dh_t W_hr through the projection.
  const Scalar* dm = dh;
  if (P_ > 0) {
    copy_n(d_h_total_.data() + t * B * P_, dh, rows * P_);
    gemm(rows, false, dh, P_, w_hr_, /*accumulate=*/false, dm_.data(), H);
    dm = dm_.data();
  }
  for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const Scalar *ai = ws + r * W, *af = ai + H, *ag = ai + 2 * H, *ao = ai + 3 * H, *c = ai + 4 * H;
      const Scalar* cp = c_prev(t, r);
      Scalar *gi = gates_.data() + r * GH, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
      Scalar *s0 = scratch_.data() + r * GH, *s1 = s0 + H, *s2 = s0 + 2 * H, *s3 = s0 + 3 * H;
      Scalar *dai = d_a + r * GH, *daf = dai + H, *dag = dai + 2 * H, *dao = dai + 3 * H;
      const Scalar* dmr = dm + r * H;
      Scalar* dc = dc_.data() + r * H;
      lstm_input_gates(act_, v_, H, ai, af, ag, gi, gf, gg);
      act_.activate(gate, clip, H, ao, go);
      act_.activate(cell_out, 0.0, H, c, s0);  // h(c_t)
      for (std::int64_t j = 0; j < H; ++j) {
        s1[j] = dmr[j] * s0[j];  // d o
        s2[j] = dmr[j] * go[j];  // d h(c_t)
      }
      act_.gradient(gate, clip, H, ao, s1, dao);
      act_.gradient(cell_out, 0.0, H, c, s2, s2);  // through h: dc_t's share from m_t
      for (std::int64_t j = 0; j < H; ++j) {
        Scalar d = dc[j] + s2[j];
        if (p != nullptr) d += dao[j] * p[2 * H + j];  // o's peephole reads c_t
        dc[j] = d;                                      // dc_t, whole
        s0[j] = d * gg[j];                              // d i
        s1[j] = d * cp[j];                              // d f
        s3[j] = d * gi[j];                              // d g
      }
      if (v_.input_forget) {  // f = 1 - i: f's gradient reaches i, negated
        for (std::int64_t j = 0; j < H; ++j) s0[j] -= s1[j];
        std::fill(daf, daf + H, Scalar(0));
      } else {
        act_.gradient(gate, clip, H, af, s1, daf);
      }
      act_.gradient(gate, clip, H, ai, s0, dai);
      act_.gradient(cand, clip, H, ag, s3, dag);
      for (std::int64_t j = 0; j < H; ++j) {
        Scalar d = dc[j] * gf[j];
        if (p != nullptr) d += dai[j] * p[j] + daf[j] * p[H + j];
        dc[j] = d;  // dc_{t-1}
      }
    }
  });
  gemm(rows, false, d_a, GH, w_hh_, /*accumulate=*/false, dh_prev, R);
}

template <typename Scalar>
void VariantBackwardLoop<Scalar>::gru_step(std::int64_t t, std::int64_t rows, const Scalar* dh, Scalar* dh_prev) {
  const std::int64_t B = B_, H = H_, GH = GH_, W = W_;
  const ActivationSpec &gate = v_.act[kGateRole], &cand = v_.act[kCandidateRole];
  const double clip = v_.clip;
  Scalar* d_a = d_a_.data() + t * B * GH;
  const Scalar* ws = a_.workspace + t * B * W;
  // dA_z, dA_n and the direct path z * dh_t into dh_{t-1}; r into gates_ for what follows.
  for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const Scalar *ar = ws + r * W, *az = ar + H, *an = ar + 2 * H;
      const Scalar* hp = h_prev(t, r);
      const Scalar* dhr = dh + r * H;
      Scalar *gr = gates_.data() + r * GH, *gz = gr + H, *gn = gr + 2 * H;
      Scalar *s0 = scratch_.data() + r * GH, *s1 = s0 + H;
      Scalar *daz = d_a + r * GH + H, *dan = daz + H;
      act_.activate(gate, clip, 2 * H, ar, gr);
      act_.activate(cand, clip, H, an, gn);
      Scalar* dhp = dh_prev + r * H;
      for (std::int64_t j = 0; j < H; ++j) {
        s0[j] = dhr[j] * (Scalar(1) - gz[j]);  // d n
        s1[j] = dhr[j] * (hp[j] - gn[j]);      // d z
        dhp[j] = dhr[j] * gz[j];
      }
      act_.gradient(cand, clip, H, an, s0, dan);
      act_.gradient(gate, clip, H, az, s1, daz);
    }
  });
  if (v_.reset_after) {
    // dr = dA_n * u (u = W_hn h + b_hn); the recurrent side's n gradient is dA_n * r.
    Scalar* d_a_hh = d_a_hh_.data() + t * B * GH;
    for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const Scalar *ar = ws + r * W, *u = ar + 3 * H;
        const Scalar* gr = gates_.data() + r * GH;
        Scalar* dar = d_a + r * GH;
        Scalar* s0 = scratch_.data() + r * GH;
        for (std::int64_t j = 0; j < H; ++j) s0[j] = dar[2 * H + j] * u[j];
        act_.gradient(gate, clip, H, ar, s0, dar);
        Scalar* dhh = d_a_hh + r * GH;
        copy_n(dhh, dar, 2 * H);
        for (std::int64_t j = 0; j < H; ++j) dhh[2 * H + j] = dar[2 * H + j] * gr[j];
      }
    });
    gemm(rows, false, d_a_hh, GH, w_hh_, /*accumulate=*/true, dh_prev, H);
    return;
  }
  // The reset gate before the product: d(r h) = dA_n W_hn; dr = d(r h) * h_{t-1}; dh_{t-1} += d(r h) * r.
  Scalar* d_u = dm_.data();
  gemm(rows, false, d_a + 2 * H, GH, w_n_, /*accumulate=*/false, d_u, H);
  for_row_chunks(rows, GH, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const Scalar* ar = ws + r * W;
      const Scalar* hp = h_prev(t, r);
      const Scalar* gr = gates_.data() + r * GH;
      const Scalar* du = d_u + r * H;
      Scalar* s0 = scratch_.data() + r * GH;
      Scalar* dhp = dh_prev + r * H;
      for (std::int64_t j = 0; j < H; ++j) {
        s0[j] = du[j] * hp[j];
        dhp[j] += du[j] * gr[j];
      }
      act_.gradient(gate, clip, H, ar, s0, d_a + r * GH);
    }
  });
  gemm(rows, false, d_a, GH, w_rz_, /*accumulate=*/true, dh_prev, H);
}

template <typename Scalar>
void VariantBackwardLoop<Scalar>::parameter_gradients() {
  const VariantBackward<Scalar>& a = a_;
  const std::int64_t S = S_, B = B_, I = I_, H = H_, GH = GH_, R = R_, W = W_, SB = S_ * B_;
  const Scalar* d_a = d_a_.data();
  // The recurrent side's gate gradients: the GRU's with reset_after differ in the n block.
  const Scalar* d_a_hh = recurrent_side_ ? d_a_hh_.data() : d_a;
  gemm(SB, I, GH, false, d_a, GH, false, a.w_ih, I, false, a.d_x, I);
  gemm(GH, I, SB, true, d_a, GH, false, a.x, I, false, a.d_w_ih, I);
  // d_w_hh = dA_hh^T H_prev, H_prev stacking h0 (B rows) over out[0 .. S-2]; with the reset gate before
  // the product, the n rows multiply u = r * h_{t-1} instead (the workspace's last block).
  const bool reset_before = a.cell == Cell::kGru && !v_.reset_after;
  const std::int64_t prev_rows = reset_before ? 2 * H : GH;
  gemm(prev_rows, R, std::min<std::int64_t>(S, 1) * B, true, d_a_hh, GH, false, h0_, R, false, a.d_w_hh, R);
  if (S > 1) gemm(prev_rows, R, (S - 1) * B, true, d_a_hh + B * GH, GH, false, a.out, R, true, a.d_w_hh, R);
  if (S == 0) std::fill(a.d_w_hh, a.d_w_hh + prev_rows * R, Scalar(0));
  if (reset_before) gemm(H, H, SB, true, d_a + 2 * H, GH, false, a.workspace + 3 * H, W, false, a.d_w_hh + 2 * H * H, H);
  if (P_ > 0) gemm(P_, H, SB, true, d_h_total_.data(), P_, false, a.workspace + 5 * H, W, false, a.d_w_hr, H);
  // Bias gradients: column sums over the S*B rows; tasks split the columns, never the rows.
  const GateGradKernels<Scalar>& sums = kernels_for<GateGradKernels<Scalar>>(active_isa());
  const std::int64_t chunk = 128, tasks = (GH + chunk - 1) / chunk;
  parallel_for(tasks, [&](std::int64_t task) {
    const std::int64_t j0 = task * chunk, cols = std::min(chunk, GH - j0);
    sums.column_sums(SB, cols, d_a + j0, GH, a.d_b_ih + j0);
    if (recurrent_side_)
      sums.column_sums(SB, cols, d_a_hh + j0, GH, a.d_b_hh + j0);
    else
      copy_n(a.d_b_hh + j0, a.d_b_ih + j0, cols);
  });
  // Peepholes: d p_i = sum dA_i * c_{t-1}, d p_f = sum dA_f * c_{t-1}, d p_o = sum dA_o * c_t, in row order.
  if (a.w_ch != nullptr) {
    parallel_for(3 * ((H + chunk - 1) / chunk), [&](std::int64_t task) {
      const std::int64_t gate = task % 3, j0 = (task / 3) * chunk, cols = std::min(chunk, H - j0);
      const std::int64_t block = gate == 2 ? 3 : gate;  // i, f, o among i, f, g, o
      Scalar* out = a.d_w_ch + gate * H + j0;
      std::fill(out, out + cols, Scalar(0));
      for (std::int64_t t = 0; t < S; ++t)
        for (std::int64_t b = 0; b < B; ++b) {
          const Scalar* d = d_a + (t * B + b) * GH + block * H + j0;
          const Scalar* c = gate == 2 ? a.workspace + (t * B + b) * W + 4 * H + j0 : c_prev(t, b) + j0;
          for (std::int64_t j = 0; j < cols; ++j) out[j] += d[j] * c[j];
        }
    });
  }
}

}  // namespace

template <typename Scalar>
void variant_backward(const VariantBackward<Scalar>& a) {
  check_variant_args(a);
  VariantBackwardLoop<Scalar>(a).run();
}

template void variant_backward<float>(const VariantBackward<float>&);
template void variant_backward<double>(const VariantBackward<double>&);

}  // namespace rnnfast
