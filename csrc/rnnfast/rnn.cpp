// One recurrent layer, one direction: forward (inference and training) and backward through time.
// See rnn.h for the argument shapes and the workspace layout.
#include "rnnfast/rnn.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "rnnfast/gemm.h"
#include "rnnfast/microkernel.h"

namespace rnnfast {

int gate_count(Cell cell) {
  switch (cell) {
    case Cell::kRnnTanh:
    case Cell::kRnnRelu:
      return 1;
    case Cell::kLstm:
      return 4;
    case Cell::kGru:
      return 3;
  }
  throw std::invalid_argument("unknown cell");
}

std::int64_t workspace_width(Cell cell, std::int64_t hidden) {
  switch (cell) {
    case Cell::kRnnTanh:
    case Cell::kRnnRelu:
      return 0;
    case Cell::kLstm:
      return 6 * hidden;
    case Cell::kGru:
      return 4 * hidden;
  }
  throw std::invalid_argument("unknown cell");
}

namespace {

template <typename Args>
void check_sizes(const Args& a) {
  if (a.seq_len < 0 || a.batch < 0 || a.input_size < 0 || a.hidden < 0)
    throw std::invalid_argument("rnnfast: negative size");
  gate_count(a.cell);  // throws on an unknown cell
}

// memcpy with a count that may be zero (memcpy's pointers must be valid even then).
template <typename Scalar>
void copy_n(Scalar* dst, const Scalar* src, std::int64_t count) {
  if (count > 0) std::memcpy(dst, src, sizeof(Scalar) * count);
}

template <typename Scalar>
void copy_or_zero(Scalar* dst, const Scalar* src, std::int64_t count) {
  if (src != nullptr)
    copy_n(dst, src, count);
  else
    std::fill(dst, dst + count, Scalar(0));
}

// Rows of the batch still running at step t, given lengths sorted non-increasing: a prefix of the
// batch whose size only shrinks as t grows. Without lengths every row runs all S steps.
class ActiveRows {
 public:
  ActiveRows(const std::int64_t* lengths, std::int64_t batch, std::int64_t seq_len)
      : lengths_(lengths), batch_(batch), seq_len_(seq_len) {}
  std::int64_t at(std::int64_t t) const {
    if (lengths_ == nullptr) return t < seq_len_ ? batch_ : 0;
    // Binary search for the first row whose length is <= t.
    std::int64_t lo = 0, hi = batch_;
    while (lo < hi) {
      const std::int64_t mid = (lo + hi) / 2;
      if (lengths_[mid] > t)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }
  // Steps that any row runs: the longest length.
  std::int64_t steps() const { return lengths_ == nullptr ? seq_len_ : (batch_ > 0 ? lengths_[0] : 0); }

 private:
  const std::int64_t* lengths_;
  std::int64_t batch_, seq_len_;
};

template <typename Args>
void check_lengths(const Args& a) {
  if (a.lengths == nullptr) return;
  for (std::int64_t b = 0; b < a.batch; ++b) {
    if (a.lengths[b] < 0 || a.lengths[b] > a.seq_len)
      throw std::invalid_argument("rnnfast: a length is outside [0, seq_len]");
    if (b > 0 && a.lengths[b] > a.lengths[b - 1])
      throw std::invalid_argument("rnnfast: lengths must be sorted non-increasing");
  }
}

}  // namespace

template <typename Scalar>
void layer_forward(const LayerForward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  const std::int64_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const std::int64_t G = gate_count(a.cell), GH = G * H, W = workspace_width(a.cell, H);
  const bool lstm = a.cell == Cell::kLstm, gru = a.cell == Cell::kGru;
  if (a.x == nullptr || a.w_ih == nullptr || a.w_hh == nullptr || a.out == nullptr || a.h_n == nullptr ||
      (lstm && a.c_n == nullptr))
    throw std::invalid_argument("rnnfast: layer_forward: missing array");
  const ActiveRows active(a.lengths, B, S);
  const std::int64_t steps = active.steps();  // steps past every sequence's end are not computed

  // Input projection for all steps: gx[steps*B, GH] = X W_ih^T + bias. The recurrent bias is folded
  // in here too, except for the GRU, whose reset gate multiplies W_hn h + b_hn as a whole.
  Buffer<Scalar> gx(steps * B * GH);  // zero-filled
  const Scalar* folded_b_hh = gru ? nullptr : a.b_hh;
  if (a.b_ih != nullptr || folded_b_hh != nullptr) {
    for (std::int64_t row = 0; row < steps * B; ++row) {
      Scalar* dst = gx.data() + row * GH;
      for (std::int64_t j = 0; j < GH; ++j)
        dst[j] = (a.b_ih != nullptr ? a.b_ih[j] : Scalar(0)) + (folded_b_hh != nullptr ? folded_b_hh[j] : Scalar(0));
    }
  }
  gemm(steps * B, GH, I, false, a.x, I, true, a.w_ih, I, /*accumulate=*/true, gx.data(), GH);

  PackedMatrix<Scalar> w_hh_t;  // op(B) = W_hh^T, [H, GH], packed once for all steps
  w_hh_t.pack(true, H, GH, a.w_hh, H);
  const CellKernels<Scalar>& cells = cell_kernels<Scalar>(w_hh_t.kernel().isa);

  Buffer<Scalar> zeros(B * H);  // the initial state when none is given
  const Scalar* h0 = a.h0 != nullptr ? a.h0 : zeros.data();
  const Scalar* c0 = a.c0 != nullptr ? a.c0 : zeros.data();
  // Rows of length 0 end before the first step: their final state is the initial one.
  const std::int64_t running_at_start = active.at(0);
  copy_n(a.h_n + running_at_start * H, h0 + running_at_start * H, (B - running_at_start) * H);
  if (lstm) copy_n(a.c_n + running_at_start * H, c0 + running_at_start * H, (B - running_at_start) * H);

  const Scalar* h_prev = h0;
  const Scalar* c_prev = c0;
  Buffer<Scalar> cell_state(2 * B * H);  // LSTM c_{t-1}, c_t, ping-ponged
  Buffer<Scalar> gh(B * GH);
  for (std::int64_t t = 0; t < S; ++t) {
    const std::int64_t rows = active.at(t);  // rows [0, rows) run this step
    Scalar* h_t = a.out + t * B * H;
    Scalar* ws_t = a.workspace != nullptr ? a.workspace + t * B * W : nullptr;
    // Past a sequence's end the output (and the saved workspace) is zero, as in PyTorch.
    std::fill(h_t + rows * H, h_t + B * H, Scalar(0));
    if (ws_t != nullptr) std::fill(ws_t + rows * W, ws_t + B * W, Scalar(0));
    if (rows == 0) continue;

    if (gru && a.b_hh != nullptr)
      for (std::int64_t b = 0; b < rows; ++b) copy_n(gh.data() + b * GH, a.b_hh, GH);
    gemm(rows, false, h_prev, H, w_hh_t, /*accumulate=*/gru && a.b_hh != nullptr, gh.data(), GH);
    const Scalar* gx_t = gx.data() + t * B * GH;
    Scalar* c_t = cell_state.data() + (t % 2) * B * H;
    if (lstm) {
      cells.lstm_rows(rows, H, gx_t, gh.data(), c_prev, h_t, c_t, ws_t);
    } else if (gru) {
      cells.gru_rows(rows, H, gx_t, gh.data(), h_prev, h_t, ws_t);
    } else {
      cells.rnn_rows(a.cell, rows, H, gx_t, gh.data(), h_t);
    }
    // Rows whose last step this was hand their state to h_n/c_n.
    const std::int64_t still_running = active.at(t + 1);
    copy_n(a.h_n + still_running * H, h_t + still_running * H, (rows - still_running) * H);
    if (lstm) copy_n(a.c_n + still_running * H, c_t + still_running * H, (rows - still_running) * H);
    h_prev = h_t;
    c_prev = c_t;
  }
}

template <typename Scalar>
void layer_backward(const LayerBackward<Scalar>& a) {
  check_sizes(a);
  check_lengths(a);
  const std::int64_t S = a.seq_len, B = a.batch, I = a.input_size, H = a.hidden;
  const std::int64_t G = gate_count(a.cell), GH = G * H, W = workspace_width(a.cell, H);
  const bool lstm = a.cell == Cell::kLstm, gru = a.cell == Cell::kGru;
  if (a.x == nullptr || a.w_ih == nullptr || a.w_hh == nullptr || a.out == nullptr ||
      (W > 0 && S * B > 0 && a.workspace == nullptr) || a.d_x == nullptr || a.d_h0 == nullptr ||
      (lstm && a.d_c0 == nullptr) || a.d_w_ih == nullptr || a.d_w_hh == nullptr || a.d_b_ih == nullptr ||
      a.d_b_hh == nullptr)
    throw std::invalid_argument("rnnfast: layer_backward: missing array");
  const ActiveRows active(a.lengths, B, S);

  // Pre-activation gate gradients of every step (zero-filled, so rows past a sequence's end add
  // nothing to the products below): d_gates feeds the input-side products (d_x, d_w_ih, d_b_ih);
  // the recurrent side (d_w_hh, d_b_hh, dh_{t-1}) uses the same values except for the GRU, whose n
  // block is scaled by r on the recurrent side, so the GRU keeps a second array.
  Buffer<Scalar> d_gates(S * B * GH);
  Buffer<Scalar> d_gates_hh_storage(gru ? S * B * GH : 0);
  Scalar* d_gates_hh = gru ? d_gates_hh_storage.data() : d_gates.data();

  PackedMatrix<Scalar> w_hh;  // op(B) = W_hh, [GH, H], for dh_{t-1} = dG_t W_hh
  w_hh.pack(false, GH, H, a.w_hh, H);

  Buffer<Scalar> zeros(B * H);
  const Scalar* h0 = a.h0 != nullptr ? a.h0 : zeros.data();
  const Scalar* c0 = a.c0 != nullptr ? a.c0 : zeros.data();
  const Scalar* d_h_n = a.d_h_n != nullptr ? a.d_h_n : zeros.data();
  const Scalar* d_c_n = a.d_c_n != nullptr ? a.d_c_n : zeros.data();
  // dh, dc: gradients flowing into h_t, c_t of the rows running at step t.
  Buffer<Scalar> dh(B * H), dh_prev(B * H), dc(B * H);

  for (std::int64_t t = active.steps() - 1; t >= 0; --t) {
    const std::int64_t rows = active.at(t);
    // Rows whose last step is t start here, with the gradient of their final state.
    const std::int64_t running_after = active.at(t + 1);
    copy_n(dh.data() + running_after * H, d_h_n + running_after * H, (rows - running_after) * H);
    if (lstm) copy_n(dc.data() + running_after * H, d_c_n + running_after * H, (rows - running_after) * H);
    Scalar* dhv = dh.data();
    if (a.d_out != nullptr) {
      const Scalar* d_out_t = a.d_out + t * B * H;
      for (std::int64_t k = 0; k < rows * H; ++k) dhv[k] += d_out_t[k];
    }
    const Scalar* h_t = a.out + t * B * H;
    const Scalar* h_prev = t > 0 ? a.out + (t - 1) * B * H : h0;
    const Scalar* ws_t = a.workspace + t * B * W;
    Scalar* dg_t = d_gates.data() + t * B * GH;
    Scalar* dgh_t = d_gates_hh + t * B * GH;
    for (std::int64_t b = 0; b < rows; ++b) {
      const Scalar* dhr = dhv + b * H;
      Scalar* dgr = dg_t + b * GH;
      if (a.cell == Cell::kRnnTanh || a.cell == Cell::kRnnRelu) {
        const Scalar* hr = h_t + b * H;
        for (std::int64_t j = 0; j < H; ++j) {
          const Scalar deriv = a.cell == Cell::kRnnTanh ? Scalar(1) - hr[j] * hr[j] : Scalar(hr[j] > 0);
          dgr[j] = dhr[j] * deriv;
        }
      } else if (lstm) {
        const Scalar* wr = ws_t + b * W;
        const Scalar* cpr = t > 0 ? a.workspace + (t - 1) * B * W + b * W + 4 * H : c0 + b * H;
        Scalar* dcr = dc.data() + b * H;
        for (std::int64_t j = 0; j < H; ++j) {
          const Scalar i = wr[j], f = wr[H + j], g = wr[2 * H + j], o = wr[3 * H + j], tc = wr[5 * H + j];
          const Scalar dct = dcr[j] + dhr[j] * o * (Scalar(1) - tc * tc);
          dgr[j] = dct * g * i * (Scalar(1) - i);
          dgr[H + j] = dct * cpr[j] * f * (Scalar(1) - f);
          dgr[2 * H + j] = dct * i * (Scalar(1) - g * g);
          dgr[3 * H + j] = dhr[j] * tc * o * (Scalar(1) - o);
          dcr[j] = dct * f;  // becomes dc_{t-1}
        }
      } else {  // GRU
        const Scalar* wr = ws_t + b * W;
        const Scalar* hpr = h_prev + b * H;
        Scalar* dghr = dgh_t + b * GH;
        Scalar* dhp = dh_prev.data() + b * H;
        for (std::int64_t j = 0; j < H; ++j) {
          const Scalar r = wr[j], z = wr[H + j], n = wr[2 * H + j], ghn = wr[3 * H + j];
          const Scalar dn = dhr[j] * (Scalar(1) - z) * (Scalar(1) - n * n);
          const Scalar dz = dhr[j] * (hpr[j] - n) * z * (Scalar(1) - z);
          const Scalar dr = dn * ghn * r * (Scalar(1) - r);
          dgr[j] = dghr[j] = dr;
          dgr[H + j] = dghr[H + j] = dz;
          dgr[2 * H + j] = dn;
          dghr[2 * H + j] = dn * r;
          dhp[j] = dhr[j] * z;  // the direct path h_{t-1} -> h_t
        }
      }
    }
    // dh_{t-1} = dG_t W_hh (+ the GRU's direct path, already in dh_prev) for the running rows.
    gemm(rows, false, dgh_t, GH, w_hh, /*accumulate=*/gru, dh_prev.data(), H);
    std::swap(dh, dh_prev);
  }
  // Rows that ran at least one step carry their gradient back to the initial state; rows of length 0
  // pass d_h_n (d_c_n) straight through.
  const std::int64_t ran = active.at(0);
  copy_n(a.d_h0, dh.data(), ran * H);
  copy_n(a.d_h0 + ran * H, d_h_n + ran * H, (B - ran) * H);
  if (lstm) {
    copy_n(a.d_c0, dc.data(), ran * H);
    copy_n(a.d_c0 + ran * H, d_c_n + ran * H, (B - ran) * H);
  }

  // Products over all S*B rows, after the loop.
  // d_x[S*B, I] = dG[S*B, GH] W_ih[GH, I]
  gemm(S * B, I, GH, false, d_gates.data(), GH, false, a.w_ih, I, false, a.d_x, I);
  // d_w_ih[GH, I] = dG^T X
  gemm(GH, I, S * B, true, d_gates.data(), GH, false, a.x, I, false, a.d_w_ih, I);
  // d_w_hh[GH, H] = dGh^T H_prev, where H_prev stacks h0 (first B rows) over out[0 .. S-2].
  gemm(GH, H, B * std::min<std::int64_t>(S, 1), true, d_gates_hh, GH, false, h0, H, false, a.d_w_hh, H);
  if (S > 1) gemm(GH, H, (S - 1) * B, true, d_gates_hh + B * GH, GH, false, a.out, H, true, a.d_w_hh, H);
  // Bias gradients: column sums.
  std::fill(a.d_b_ih, a.d_b_ih + GH, Scalar(0));
  std::fill(a.d_b_hh, a.d_b_hh + GH, Scalar(0));
  for (std::int64_t row = 0; row < S * B; ++row) {
    const Scalar* dg = d_gates.data() + row * GH;
    const Scalar* dgh = d_gates_hh + row * GH;
    for (std::int64_t j = 0; j < GH; ++j) {
      a.d_b_ih[j] += dg[j];
      a.d_b_hh[j] += dgh[j];
    }
  }
}

template void layer_forward<float>(const LayerForward<float>&);
template void layer_forward<double>(const LayerForward<double>&);
template void layer_backward<float>(const LayerBackward<float>&);
template void layer_backward<double>(const LayerBackward<double>&);

}  // namespace rnnfast
