// One recurrent layer, one direction, of a cell variant: the forward (layer/variant_layer.h has the
// arguments and the workspace layout; layer/variant_weights.cpp packs the weights).
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
#include "rnnfast/core/step_scheduler.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/tuning.h"
#include "rnnfast/layer/variant_layer.h"
#include "rnnfast/layer/variant_rows.h"
#include "rnnfast/step/variant_activations.h"

namespace rnnfast {
namespace {

template <typename Scalar>
class VariantForwardLoop {
 public:
  VariantForwardLoop(const VariantWeights<Scalar>& w, const VariantForward<Scalar>& a);
  void run();

 private:
  // One step of rows [r0, r0 + rows) (a slice's running rows; every pointer offset to row r0).
  struct Step {
    std::int64_t t, r0, rows;
    Scalar* a;              // [rows, GH] gx of the step, made the pre-activations by the products
    const Scalar* h_prev;   // [rows, R]
    const Scalar* c_prev;   // [rows, H], LSTM
    Scalar *h, *c, *ws;     // [rows, R], [rows, H] (LSTM), [rows, W] or nullptr
    Scalar *gh, *gates, *m;  // scratch rows: [rows, GH] (the GRU's recurrent product, or u = r h), [rows, GH], [rows, H]
  };
  // 2 for the GRU with the reset gate before the product (r and z, then n) and the LSTM with a projection
  // (the cell, then the projection); else 1.
  int phases() const {
    return (a_.cell == Cell::kGru && !v_.reset_after) || (a_.cell == Cell::kLstm && a_.proj > 0) ? 2 : 1;
  }
  Step step_of(std::int64_t t, std::int64_t r0, std::int64_t rows, const Scalar* h_prev, const Scalar* c_prev);
  // The time loop over rows [r0, r1) of the batch, each step's products shared by gemm's tasks and its rows
  // by for_row_chunks (or inline, inside a slice's task).
  void run_rows(std::int64_t r0, std::int64_t r1);
  // The time loop of a team of `members` sharing each phase of each step by chunks of units (StepScheduler).
  void run_team(int members);
  // Phase `phase`'s products of the whole step, and of chunk c only (the team's).
  void products(const Step& s, int phase);
  void chunk_products(const Step& s, int phase, std::int64_t c);
  // Phase `phase`'s cell arithmetic for rows [i0, i1) and units [u0, u1) (nothing in the projection's phase).
  void cells(const Step& s, int phase, std::int64_t i0, std::int64_t i1, std::int64_t u0, std::int64_t u1);
  // Rows whose last step this was hand their state to h_n (c_n): rows [still, rows) of the step, the columns
  // [h0, h1) of h and units [u0, u1) of c.
  void hand_over(const Step& s, std::int64_t still, std::int64_t h0, std::int64_t h1, std::int64_t u0,
                 std::int64_t u1);

  const VariantWeights<Scalar>& w_;
  const VariantForward<Scalar>& a_;
  const CellVariant& v_;
  const VariantActivationKernels<Scalar>& act_;
  const std::int64_t B_, I_, H_, G_, GH_, R_, W_;
  const ActiveRows active_;
  VariantSplit split_;
  std::shared_ptr<const VariantTeamPacks<Scalar>> team_;
  // Whether each step projects its own rows of x (gx_ then holds one step) instead of all steps up front.
  bool per_step_ = false;
  Buffer<Scalar> gx_, gh_, gates_, m_, zeros_, cells_, chunk_scratch_;
};

// The input projection of all steps runs up front while its result, gx [steps, B, GH], stays this small;
// above, each step projects its own rows just before its recurrent product, so that gx never makes a
// round trip through memory and the forward's scratch stays small (at the batch shape, T=50, B=64, H=512,
// gx is 26 MB; the time did not change measurably, 50.5 ms either way for the clipped LSTM on 2 threads).
// The bits are the same either way: gemm's do not depend on the number of rows. A team projects up front.
constexpr std::int64_t kUpFrontGxBytes = std::int64_t(512) << 10;

}  // namespace

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
      G_(gate_count(a.cell)),
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
  // Multiply-adds of one step's recurrent products, and of the whole call.
  const std::int64_t step_work = B * (GH * R + a.proj * H);
  split_ = variant_forward_split(B, step_work, step_work * steps + steps * B * GH * I, phases());
  if (split_.team > 1) {
    team_ = w.team != nullptr ? w.team : variant_team_packs(a, /*cached=*/true);
    chunk_scratch_.resize(B * GH, /*zeroed=*/false);
  }
  per_step_ = split_.team <= 1 && steps * B * GH * static_cast<std::int64_t>(sizeof(Scalar)) > kUpFrontGxBytes;
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
  // Slices of the batch, each running the whole time loop with its products inline (no barrier at all); a
  // team sharing each step by chunks of units (a small batch); or one loop whose products and rows gemm and
  // for_row_chunks share (tuning.h, variant_forward_split). A value does not depend on which.
  if (split_.team > 1) return run_team(split_.team);
  const std::int64_t slices = split_.slices;
  if (slices <= 1) return run_rows(0, B_);
  parallel_for(slices, [&](std::int64_t i) { run_rows(B_ * i / slices, B_ * (i + 1) / slices); });
}

template <typename Scalar>
typename VariantForwardLoop<Scalar>::Step VariantForwardLoop<Scalar>::step_of(std::int64_t t, std::int64_t r0,
                                                                              std::int64_t rows,
                                                                              const Scalar* h_prev,
                                                                              const Scalar* c_prev) {
  const VariantForward<Scalar>& a = a_;
  const std::int64_t B = B_, H = H_, R = R_, W = W_, GH = GH_;
  Step s;
  s.t = t, s.r0 = r0, s.rows = rows, s.h_prev = h_prev, s.c_prev = c_prev;
  s.a = gx_.data() + ((per_step_ ? 0 : t * B) + r0) * GH;
  s.h = a.out + (t * B + r0) * R;
  s.c = a.cell == Cell::kLstm ? cells_.data() + ((t % 2) * B + r0) * H : nullptr;
  s.ws = a.workspace != nullptr ? a.workspace + (t * B + r0) * W : nullptr;
  s.gh = gh_.size() > 0 ? gh_.data() + r0 * GH : nullptr;
  s.gates = gates_.data() + r0 * GH;
  s.m = m_.size() > 0 ? m_.data() + r0 * H : s.h;  // m_t = o * h(c_t): h_t itself without a projection
  return s;
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
    const Step s = step_of(t, r0, rows, h_prev, c_prev);
    // Past a sequence's end the output (and the saved workspace) is zero, as in PyTorch.
    std::fill(s.h + rows * R, s.h + width * R, Scalar(0));
    if (s.ws != nullptr) std::fill(s.ws + rows * W, s.ws + width * W, Scalar(0));
    if (rows == 0) continue;
    if (per_step_)
      gemm(rows, false, a.x + (t * B + r0) * I, I, *w_.w_ih_t, /*accumulate=*/false, s.a, GH,
           w_.bias.size() > 0 ? w_.bias.data() : nullptr);
    for (int phase = 0; phase < phases(); ++phase) {
      products(s, phase);
      for_row_chunks(rows, GH, [&](std::int64_t i0, std::int64_t i1) { cells(s, phase, i0, i1, 0, H); });
    }
    hand_over(s, active_.in_slice(t + 1, r0, r1), 0, R, 0, H);
    h_prev = s.h;
    c_prev = s.c;
  }
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::run_team(int members) {
  const VariantForward<Scalar>& a = a_;
  const std::int64_t B = B_, H = H_, R = R_, W = W_, U = team_->chunk_units, chunks = team_->chunks;
  const bool lstm = a.cell == Cell::kLstm;
  const Scalar* h_start = a.h0 != nullptr ? a.h0 : zeros_.data();
  const Scalar* c_start = a.c0 != nullptr ? a.c0 : zeros_.data();
  const std::int64_t at_start = active_.at(0);
  copy_n(a.h_n + at_start * R, h_start + at_start * R, (B - at_start) * R);
  if (lstm) copy_n(a.c_n + at_start * H, c_start + at_start * H, (B - at_start) * H);
  StepScheduler team(members, chunks);
  const int phases_per_step = phases();
  parallel_team(members, [&](int member, int /*team_size*/) {
    const Scalar* h_prev = h_start;
    const Scalar* c_prev = c_start;
    std::int64_t index = 0;  // the scheduler's step: every member counts the same phases
    for (std::int64_t t = 0; t < a.seq_len; ++t) {
      const std::int64_t rows = active_.at(t);
      const Step s = step_of(t, 0, rows, h_prev, c_prev);
      if (member == 0) {  // past a sequence's end the output (and the saved workspace) is zero
        std::fill(s.h + rows * R, s.h + B * R, Scalar(0));
        if (s.ws != nullptr) std::fill(s.ws + rows * W, s.ws + B * W, Scalar(0));
      }
      if (rows == 0) continue;  // as for every member: rows only shrink
      const std::int64_t still = active_.at(t + 1);
      for (int phase = 0; phase < phases_per_step; ++phase) {
        const bool last = phase + 1 == phases_per_step;
        team.run_step(member, index++, [&](std::int64_t c) {
          const std::int64_t u0 = c * U, u1 = std::min(H, u0 + U);
          chunk_products(s, phase, c);
          cells(s, phase, 0, rows, u0, u1);
          if (!last) return;
          // The chunk's share of h: its units, or its columns of the projection.
          const std::int64_t h0 = a.proj > 0 ? a.proj * c / chunks : u0, h1 = a.proj > 0 ? a.proj * (c + 1) / chunks : u1;
          hand_over(s, still, h0, h1, u0, u1);
        });
      }
      h_prev = s.h;
      c_prev = s.c;
    }
  });
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::hand_over(const Step& s, std::int64_t still, std::int64_t h0, std::int64_t h1,
                                           std::int64_t u0, std::int64_t u1) {
  const std::int64_t R = R_, H = H_;
  for (std::int64_t r = still; r < s.rows; ++r) {
    copy_n(a_.h_n + (s.r0 + r) * R + h0, s.h + r * R + h0, h1 - h0);
    if (s.c != nullptr) copy_n(a_.c_n + (s.r0 + r) * H + u0, s.c + r * H + u0, u1 - u0);
  }
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::products(const Step& s, int phase) {
  const std::int64_t rows = s.rows, H = H_, GH = GH_, R = R_;
  switch (a_.cell) {
    case Cell::kLstm:
      if (phase == 0)
        gemm(rows, false, s.h_prev, R, *w_.w_hh_t, /*accumulate=*/true, s.a, GH);
      else  // the projection: h_t = m_t W_hr^T
        gemm(rows, false, s.m, H, *w_.w_hr_t, /*accumulate=*/false, s.h, R);
      return;
    case Cell::kGru:
      if (v_.reset_after)  // gh = h_{t-1} W_hh^T (+ b_hn in the n block)
        gemm(rows, false, s.h_prev, H, *w_.w_hh_t, /*accumulate=*/false, s.gh, GH,
             w_.kept_bias.size() > 0 ? w_.kept_bias.data() : nullptr);
      else if (phase == 0)  // a_r, a_z += h_{t-1} W_h[rz]^T
        gemm(rows, false, s.h_prev, H, *w_.w_rz_t, /*accumulate=*/true, s.a, GH);
      else  // a_n += u W_hn^T, u = r * h_{t-1} (rows H apart in gh)
        gemm(rows, false, s.gh, H, *w_.w_n_t, /*accumulate=*/true, s.a + 2 * H, GH);
      return;
    default:
      gemm(rows, false, s.h_prev, H, *w_.w_hh_t, /*accumulate=*/true, s.a, H);
  }
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::chunk_products(const Step& s, int phase, std::int64_t c) {
  // The chunk's columns of the step's products, computed into a compact [rows, k*n] and moved to their places:
  // each column gate by gate, n units each. Where the whole-step product accumulates into the
  // pre-activations, the chunk's are copied in first, so each value gets the same additions in the same
  // order: the bits of products().
  const VariantTeamPacks<Scalar>& t = *team_;
  const std::int64_t rows = s.rows, H = H_, GH = GH_, R = R_, U = t.chunk_units, u0 = c * U, n = std::min(U, H - u0);
  Scalar* tmp = chunk_scratch_.data() + G_ * u0;  // rows GH apart: the chunks' columns tile [0, GH)
  auto move = [&](Scalar* full, std::int64_t gates, std::int64_t full_gate0, bool into_tmp) {
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t g = 0; g < gates; ++g) {
        Scalar* f = full + r * GH + (full_gate0 + g) * H + u0;
        Scalar* q = tmp + r * GH + g * n;
        if (into_tmp)
          copy_n(q, f, n);
        else
          copy_n(f, q, n);
      }
  };
  if (a_.cell == Cell::kLstm && phase == 1) {  // the projection: the chunk's columns [p0, p1) of h_t
    const std::int64_t p0 = a_.proj * c / t.chunks;
    gemm(rows, false, s.m, H, *t.projection[c], /*accumulate=*/false, s.h + p0, R);
    return;
  }
  if (a_.cell == Cell::kGru && v_.reset_after) {
    gemm(rows, false, s.h_prev, H, *t.recurrent[c], /*accumulate=*/false, tmp, GH,
         t.kept_bias.size() > 0 ? t.kept_bias.data() + 3 * u0 : nullptr);
    move(s.gh, 3, 0, false);
    return;
  }
  if (a_.cell == Cell::kGru && phase == 1) {  // a_n += u W_hn^T
    move(s.a, 1, 2, true);
    gemm(rows, false, s.gh, H, *t.new_gate[c], /*accumulate=*/true, tmp, GH);
    move(s.a, 1, 2, false);
    return;
  }
  const std::int64_t gates = a_.cell == Cell::kGru ? 2 : G_;  // the GRU's phase 0: r and z
  move(s.a, gates, 0, true);
  gemm(rows, false, s.h_prev, R, *t.recurrent[c], /*accumulate=*/true, tmp, GH);
  move(s.a, gates, 0, false);
}

template <typename Scalar>
void VariantForwardLoop<Scalar>::cells(const Step& s, int phase, std::int64_t i0, std::int64_t i1, std::int64_t u0,
                                       std::int64_t u1) {
  const std::int64_t H = H_, GH = GH_, R = R_, W = W_, n = u1 - u0;
  const ActivationSpec &gate = v_.act[kGateRole], &cand = v_.act[kCandidateRole], &cell_out = v_.act[kOutputRole];
  const double clip = v_.clip;
  if (a_.cell == Cell::kLstm) {
    if (phase == 1) return;  // the projection's phase: products only
    const Scalar* p = w_.w_ch.size() > 0 ? w_.w_ch.data() : nullptr;  // [p_i | p_f | p_o]
    for (std::int64_t r = i0; r < i1; ++r) {
      Scalar *ai = s.a + r * GH + u0, *af = ai + H, *ag = ai + 2 * H, *ao = ai + 3 * H;
      Scalar *gi = s.gates + r * GH + u0, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
      const Scalar* cp = s.c_prev + r * H + u0;
      Scalar* cr = s.c + r * H + u0;
      Scalar* mr = s.m + r * (a_.proj > 0 ? H : R) + u0;
      if (p != nullptr)
        for (std::int64_t j = 0; j < n; ++j) {
          ai[j] += p[u0 + j] * cp[j];
          af[j] += p[H + u0 + j] * cp[j];
        }
      lstm_input_gates(act_, v_, n, ai, af, ag, gi, gf, gg);
      for (std::int64_t j = 0; j < n; ++j) cr[j] = gf[j] * cp[j] + gi[j] * gg[j];
      if (p != nullptr)
        for (std::int64_t j = 0; j < n; ++j) ao[j] += p[2 * H + u0 + j] * cr[j];
      act_.activate(gate, clip, n, ao, go);
      act_.activate(cell_out, 0.0, n, cr, gg);  // h(c_t), in the candidate's place (no longer needed)
      for (std::int64_t j = 0; j < n; ++j) mr[j] = go[j] * gg[j];
      if (s.ws != nullptr) {
        Scalar* wr = s.ws + r * W + u0;
        for (std::int64_t g = 0; g < 4; ++g) copy_n(wr + g * H, ai + g * H, n);
        copy_n(wr + 4 * H, cr, n);
        copy_n(wr + 5 * H, mr, n);
      }
    }
    return;
  }
  if (a_.cell == Cell::kGru) {
    for (std::int64_t r = i0; r < i1; ++r) {
      Scalar *ar = s.a + r * GH + u0, *az = ar + H, *an = ar + 2 * H;
      Scalar *gr = s.gates + r * GH + u0, *gz = gr + H, *gn = gr + 2 * H;
      const Scalar* hp = s.h_prev + r * H + u0;
      Scalar* ur = s.gh + r * (v_.reset_after ? GH : H) + u0;  // reset before: u = r h, rows H apart
      if (v_.reset_after || phase == 0) {
        if (v_.reset_after) {
          const Scalar* ghr = s.gh + r * GH + u0;
          for (std::int64_t j = 0; j < n; ++j) {
            ar[j] += ghr[j];
            az[j] += ghr[H + j];
          }
        }
        act_.activate(gate, clip, n, ar, gr);
        act_.activate(gate, clip, n, az, gz);
        if (!v_.reset_after) {  // u = r * h_{t-1}, for the second product
          for (std::int64_t j = 0; j < n; ++j) ur[j] = gr[j] * hp[j];
          continue;
        }
        for (std::int64_t j = 0; j < n; ++j) an[j] += gr[j] * ur[2 * H + j];  // r * (W_hn h + b_hn)
      }
      act_.activate(cand, clip, n, an, gn);
      Scalar* hr = s.h + r * H + u0;
      for (std::int64_t j = 0; j < n; ++j) hr[j] = (Scalar(1) - gz[j]) * gn[j] + gz[j] * hp[j];
      if (s.ws != nullptr) {
        Scalar* wr = s.ws + r * W + u0;
        for (std::int64_t g = 0; g < 3; ++g) copy_n(wr + g * H, ar + g * H, n);
        copy_n(wr + 3 * H, v_.reset_after ? ur + 2 * H : ur, n);
      }
    }
    return;
  }
  for (std::int64_t r = i0; r < i1; ++r) {
    act_.activate(gate, clip, n, s.a + r * H + u0, s.h + r * H + u0);
    if (s.ws != nullptr) copy_n(s.ws + r * W + u0, s.a + r * H + u0, n);
  }
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

template void variant_forward<float>(const VariantWeights<float>&, const VariantForward<float>&);
template void variant_forward<double>(const VariantWeights<double>&, const VariantForward<double>&);
template void variant_forward<float>(const VariantForward<float>&);
template void variant_forward<double>(const VariantForward<double>&);

}  // namespace rnnfast
