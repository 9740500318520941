// The fused recurrent step (recurrent.h) shared by every instruction set. Include it only from a
// kernels/recurrent_<isa>.cpp file, after defining
//   RNNFAST_ISA_NAMESPACE, RNNFAST_VEC_BYTES  as for microkernel_impl.h
//   RNNFAST_VECTOR_REGISTERS  the vector registers the tile may plan for (16 or 32)
// and then invoke RNNFAST_DEFINE_RECURRENT(). As with the GEMM micro-kernel, everything lives in the
// instruction set's namespace and calls no inline function of another header (the ODR trap).
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

// This file uses cells_impl.h's vector units, not its test-hook table (apply).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "cells_impl.h"
#pragma GCC diagnostic pop
#include "rnnfast/recurrent.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// ---- float32 gate updates of a tile (GateBlockFns contract, recurrent.h), vectorised ----

void rnn_block(bool relu, std::int64_t rows, int units, int block_units, std::int64_t hidden, const float* gx,
               const float* gh, float* h) {
  const int L = kFloatLanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gxr = gx + r * hidden;
    const float* ghr = gh + r * block_units;
    float* hr = h + r * hidden;
    int j = 0;
    for (; j + L <= units; j += L) rnn_unit(relu, gxr + j, ghr + j, 0, hr + j);
    if (j < units) {  // the block's last units, through zero-padded stand-ins
      const int n = units - j;
      float tgx[kFloatLanes] = {}, th[kFloatLanes];
      copy_blocks(tgx, L, gxr + j, 0, 1, n);
      rnn_unit(relu, tgx, ghr + j, 0, th);  // the tile is a whole vector wide (zeros past the units)
      copy_blocks(hr + j, 0, th, L, 1, n);
    }
  }
}

void lstm_block(std::int64_t rows, int units, int block_units, std::int64_t hidden, const float* gx, const float* gh,
                const float* c_prev, float* h, float* c, float* ws) {
  const std::int64_t H = hidden, U = block_units;
  const int L = kFloatLanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gxr = gx + r * 4 * H;
    const float* ghr = gh + r * 4 * U;
    const float* cpr = c_prev + r * H;
    float* hr = h + r * H;
    float* cr = c + r * H;
    float* wr = ws != nullptr ? ws + r * 6 * H : nullptr;
    int j = 0;
    for (; j + L <= units; j += L)
      lstm_unit(gxr + j, ghr + j, H, U, cpr + j, hr + j, cr + j, wr != nullptr ? wr + j : nullptr);
    if (j < units) {
      const int n = units - j;
      float tgx[4 * kFloatLanes] = {}, tcp[kFloatLanes] = {}, th[kFloatLanes], tc[kFloatLanes],
                                   tws[6 * kFloatLanes];
      copy_blocks(tgx, L, gxr + j, H, 4, n);
      copy_blocks(tcp, L, cpr + j, H, 1, n);
      lstm_unit(tgx, ghr + j, L, U, tcp, th, tc, tws);
      copy_blocks(hr + j, H, th, L, 1, n);
      copy_blocks(cr + j, H, tc, L, 1, n);
      if (wr != nullptr) copy_blocks(wr + j, H, tws, L, 6, n);
    }
  }
}

void gru_block(std::int64_t rows, int units, int block_units, std::int64_t hidden, const float* gx, const float* gh,
               const float* h_prev, float* h, float* ws) {
  const std::int64_t H = hidden, U = block_units;
  const int L = kFloatLanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gxr = gx + r * 3 * H;
    const float* ghr = gh + r * 3 * U;
    const float* hpr = h_prev + r * H;
    float* hr = h + r * H;
    float* wr = ws != nullptr ? ws + r * 4 * H : nullptr;
    int j = 0;
    for (; j + L <= units; j += L) gru_unit(gxr + j, ghr + j, H, U, hpr + j, hr + j, wr != nullptr ? wr + j : nullptr);
    if (j < units) {
      const int n = units - j;
      float tgx[3 * kFloatLanes] = {}, thp[kFloatLanes] = {}, th[kFloatLanes], tws[4 * kFloatLanes];
      copy_blocks(tgx, L, gxr + j, H, 3, n);
      copy_blocks(thp, L, hpr + j, H, 1, n);
      gru_unit(tgx, ghr + j, L, U, thp, th, tws);
      copy_blocks(hr + j, H, th, L, 1, n);
      if (wr != nullptr) copy_blocks(wr + j, H, tws, L, 4, n);
    }
  }
}

template <typename Scalar>
const GateBlockFns<Scalar>& gate_blocks();

template <>
const GateBlockFns<float>& gate_blocks<float>() {
  static const GateBlockFns<float> fns{&rnn_block, &lstm_block, &gru_block};
  return fns;
}

// float64 keeps the portable gate code (the C library's exp and tanh), reached through pointers.
template <>
const GateBlockFns<double>& gate_blocks<double>() {
  return portable_gate_blocks_f64();
}

// ---- the tile ----

// out[p][i][v] = sum over k in [0, depth) of a[i*lda + k] * panel_p[k*kNV*L + v], for kPanels
// consecutive panels (panel_p = panels + p*panel_size) and kRows rows. Each element is one chain of
// multiply-adds in k order, whatever kRows and kPanels are: tiles of any height give the same bits.
// a: rows of h_{t-1}, read in place (broadcast one value at a time, so no packing).
template <typename Scalar, int kNV, int kRows, int kPanels>
void accumulate_tile(std::int64_t depth, const Scalar* a, std::int64_t lda, const Scalar* panels,
                     std::int64_t panel_size, Scalar* out) {
  typedef Scalar Vec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
  constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  constexpr int kWidth = kNV * kLanes;
  Vec acc[kPanels][kRows][kNV];
  for (int p = 0; p < kPanels; ++p)
    for (int i = 0; i < kRows; ++i)
      for (int v = 0; v < kNV; ++v) acc[p][i][v] = Vec{};
  for (std::int64_t k = 0; k < depth; ++k) {
    for (int p = 0; p < kPanels; ++p) {
      Vec b[kNV];
      for (int v = 0; v < kNV; ++v) std::memcpy(&b[v], panels + p * panel_size + k * kWidth + v * kLanes, sizeof(Vec));
      for (int i = 0; i < kRows; ++i) {
        const Scalar av = a[i * lda + k];
        for (int v = 0; v < kNV; ++v) acc[p][i][v] += av * b[v];
      }
    }
  }
  std::memcpy(out, acc, sizeof(acc));
}

inline std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

template <typename Scalar>
using TileFn = void (*)(std::int64_t, const Scalar*, std::int64_t, const Scalar*, std::int64_t, Scalar*);

// fn[r] accumulates an r-row tile of one panel, 1 <= r <= kMR.
template <typename Scalar, int kMR>
struct TileTable {
  TileFn<Scalar> fn[kMR + 1];
};

template <typename Scalar, int kNV, int kMR, int... kRowsMinusOne>
constexpr TileTable<Scalar, kMR> make_tiles(std::integer_sequence<int, kRowsMinusOne...>) {
  return TileTable<Scalar, kMR>{{nullptr, &accumulate_tile<Scalar, kNV, kRowsMinusOne + 1, 1>...}};
}

// The GRU's W_hn h meets the reset gate as a whole with b_hn: adds b_hn[0, U) to the n block of each
// of a tile's `rows` rows ([row][3][U]).
template <typename Scalar>
void add_b_hn(const Scalar* b_hn, std::int64_t U, std::int64_t rows, Scalar* tile) {
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < U; ++j) tile[i * 3 * U + 2 * U + j] += b_hn[j];
}

// The gate update of an mr-row tile of block p (rows [i0, i0 + mr) of the slice).
template <typename Scalar>
void apply_gates(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t p, std::int64_t i0,
                 std::int64_t mr, Scalar* tile) {
  const std::int64_t H = w.hidden(), U = w.block_units(), u0 = p * U;
  const int units = static_cast<int>(min64(U, H - u0));
  const GateBlockFns<Scalar>& gates = gate_blocks<Scalar>();
  switch (w.cell()) {
    case Cell::kLstm:
      gates.lstm(mr, units, static_cast<int>(U), H, s.gx + i0 * 4 * H + u0, tile, s.c_prev + i0 * H + u0,
                 s.h + i0 * H + u0, s.c + i0 * H + u0, s.ws != nullptr ? s.ws + i0 * 6 * H + u0 : nullptr);
      break;
    case Cell::kGru:
      if (const Scalar* b_hn = w.b_hn(); b_hn != nullptr) add_b_hn(b_hn + u0, U, mr, tile);
      gates.gru(mr, units, static_cast<int>(U), H, s.gx + i0 * 3 * H + u0, tile, s.h_prev + i0 * H + u0,
                s.h + i0 * H + u0, s.ws != nullptr ? s.ws + i0 * 4 * H + u0 : nullptr);
      break;
    default:
      gates.rnn(w.cell() == Cell::kRnnRelu, mr, units, static_cast<int>(U), H, s.gx + i0 * H + u0, tile,
                s.h + i0 * H + u0);
  }
}

// out[j] = a[j] + b[j] for j in [0, n): whole vectors, then the rest one by one. (The compiler's own
// loop, with its alias checks and tails around runs of 16 values, cost 5% of a small-batch LSTM.)
template <typename Scalar>
inline void add_values(std::int64_t n, const Scalar* a, const Scalar* b, Scalar* out) {
  typedef Scalar Vec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
  constexpr std::int64_t kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    Vec va, vb;
    std::memcpy(&va, a + j, sizeof(Vec));
    std::memcpy(&vb, b + j, sizeof(Vec));
    va += vb;
    std::memcpy(out + j, &va, sizeof(Vec));
  }
  for (; j < n; ++j) out[j] = a[j] + b[j];
}

// The gate updates of a one-row pass over blocks [p, p + count) (tile: [block][G*U]). float32 over
// whole blocks runs them as one straight run of inlined unit updates, which the out-of-order core
// overlaps: block by block through the gate table, each block's activation chains (a few hundred
// cycles of latency for a single vector) waited on the previous one's (edge LSTM, B=1, T=100, I=64,
// H=128 on 2 threads: 0.263 -> 0.247 ms). The same operations in the same order: the same bits.
template <typename Scalar>
void apply_row_gates(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t p, int count,
                     Scalar* tile) {
  const std::int64_t H = w.hidden(), U = w.block_units(), G = w.gates(), u0 = p * U;
  if constexpr (std::is_same<Scalar, float>::value) {
    const int L = kFloatLanes;
    if ((p + count) * U <= H && U % L == 0) {
      for (int q = 0; q < count; ++q) {
        const std::int64_t u = u0 + q * U;
        float* gh = tile + q * G * U;
        float* ws = s.ws != nullptr ? s.ws + u : nullptr;
        if (w.cell() == Cell::kGru && w.b_hn() != nullptr) add_b_hn(w.b_hn() + u, U, 1, gh);  // as apply_gates
        for (std::int64_t j = 0; j < U; j += L) {
          switch (w.cell()) {
            case Cell::kLstm:
              lstm_unit(s.gx + u + j, gh + j, H, U, s.c_prev + u + j, s.h + u + j, s.c + u + j,
                        ws != nullptr ? ws + j : nullptr);
              break;
            case Cell::kGru:
              gru_unit(s.gx + u + j, gh + j, H, U, s.h_prev + u + j, s.h + u + j, ws != nullptr ? ws + j : nullptr);
              break;
            default:
              rnn_unit(w.cell() == Cell::kRnnRelu, s.gx + u + j, gh + j, 0, s.h + u + j);
          }
        }
      }
      return;
    }
  }
  for (int q = 0; q < count; ++q) apply_gates(w, s, p + q, 0, 1, tile + q * G * U);
}

// The input projection of rows [i0, i0 + mr) of blocks [p, p + panels) (StepArgs::w_x): gx_out's
// columns g*H + u of those blocks' units get bias + x W_ih^T, accumulated by `accumulate` (a tile
// function, writing [panel][row][G*U]) over chunks of the GEMM's k-block depth, each chunk's sum
// added to the total as gemm adds a k block's tile to C (acc + C; the first to the bias, or alone):
// the GEMM's bits, so a forward may project either way.
template <typename Scalar, typename Accumulate>
void project_blocks(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t p, int panels,
                    std::int64_t i0, std::int64_t mr, Scalar* tile, Accumulate&& accumulate) {
  const RecurrentWeights<Scalar>& wx = *s.w_x;
  const std::int64_t H = w.hidden(), U = w.block_units(), G = w.gates(), width = G * U, GH = G * H;
  const std::int64_t I = wx.depth(), chunk = wx.projection_chunk();
  for (std::int64_t k0 = 0; k0 < I; k0 += chunk) {
    accumulate(min64(chunk, I - k0), s.x + i0 * I + k0, I, wx.panel(p) + k0 * width, I * width, tile);
    for (int q = 0; q < panels; ++q) {
      const std::int64_t u0 = (p + q) * U, units = min64(U, H - u0);
      for (std::int64_t i = 0; i < mr; ++i) {
        const Scalar* sums = tile + (q * mr + i) * width;
        Scalar* out = s.gx_out + (i0 + i) * GH + u0;
        for (std::int64_t g = 0; g < G; ++g) {
          if (k0 > 0)
            add_values(units, sums + g * U, out + g * H, out + g * H);
          else if (s.bias != nullptr)
            add_values(units, sums + g * U, s.bias + g * H + u0, out + g * H);
          else
            std::memcpy(out + g * H, sums + g * U, units * sizeof(Scalar));
        }
      }
    }
  }
}

// Blocks [b0, b1) of one step for one cell: a tile of kNV vectors (G gates x U units) by up to kMR
// rows. Blocks outermost, so a block's panel is read from L2 by every row tile, while the rows of
// h_{t-1} (a few KiB per tile) stream past. A single row gets four (or two) blocks per pass: more
// independent multiply-add chains and loads in flight for a matrix-vector product.
template <typename Scalar, int kNV, int kMR>
void step_cell(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t b0, std::int64_t b1) {
  constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  constexpr int kWidth = kNV * kLanes;
  const std::int64_t H = w.hidden(), panel_size = H * kWidth;
  static constexpr TileTable<Scalar, kMR> tiles = make_tiles<Scalar, kNV, kMR>(std::make_integer_sequence<int, kMR>{});
  alignas(64) Scalar tile[(kMR > 4 ? kMR : 4) * kWidth];
  const bool project = s.w_x != nullptr, recur = !s.project_only;
  std::int64_t p = b0;
  if (s.rows == 1) {
    for (; p + 4 <= b1; p += 4) {
      if (project) project_blocks(w, s, p, 4, 0, 1, tile, accumulate_tile<Scalar, kNV, 1, 4>);
      if (!recur) continue;
      accumulate_tile<Scalar, kNV, 1, 4>(H, s.h_prev, H, w.panel(p), panel_size, tile);
      apply_row_gates(w, s, p, 4, tile);
    }
    for (; p + 2 <= b1; p += 2) {
      if (project) project_blocks(w, s, p, 2, 0, 1, tile, accumulate_tile<Scalar, kNV, 1, 2>);
      if (!recur) continue;
      accumulate_tile<Scalar, kNV, 1, 2>(H, s.h_prev, H, w.panel(p), panel_size, tile);
      apply_row_gates(w, s, p, 2, tile);
    }
  }
  // Rows cut into tiles of nearly equal height (32 rows as 6+6+5+5+5+5 rather than 6+6+6+6+6+2): a
  // short tile has too few independent accumulators to keep the FMA units busy.
  const std::int64_t row_tiles = (s.rows + kMR - 1) / kMR;
  for (; p < b1; ++p) {
    for (std::int64_t tile_index = 0, i0 = 0; tile_index < row_tiles; ++tile_index) {
      const int mr = static_cast<int>((s.rows * (tile_index + 1)) / row_tiles - i0);
      if (project) project_blocks(w, s, p, 1, i0, mr, tile, tiles.fn[mr]);
      if (recur) {
        tiles.fn[mr](H, s.h_prev + i0 * H, H, w.panel(p), panel_size, tile);
        apply_gates(w, s, p, i0, mr, tile);
      }
      i0 += mr;
    }
  }
}

// Rows per tile: as many as the accumulators (rows x kNV vectors) allow, leaving registers for the
// kNV panel vectors and a broadcast.
constexpr int rows_for(int vectors) {
  const int rows = (RNNFAST_VECTOR_REGISTERS - vectors - 1) / vectors;
  return rows > 8 ? 8 : rows;
}

template <typename Scalar>
void step(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t b0, std::int64_t b1) {
  if (s.rows <= 0 || b0 >= b1) return;
  switch (w.cell()) {
    case Cell::kLstm:
      return step_cell<Scalar, 4, rows_for(4)>(w, s, b0, b1);
    case Cell::kGru:
      return step_cell<Scalar, 3, rows_for(3)>(w, s, b0, b1);
    default:  // one gate: a block is four vectors of units
      return step_cell<Scalar, 4, rows_for(4)>(w, s, b0, b1);
  }
}

template <typename Scalar>
RecurrentKernel<Scalar> make_recurrent() {
  constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  // Indexed by Cell: RNN tanh, RNN relu (four vectors of units), LSTM, GRU (one vector per gate).
  return RecurrentKernel<Scalar>{{4 * kLanes, 4 * kLanes, kLanes, kLanes}, &step<Scalar>};
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

#define RNNFAST_DEFINE_RECURRENT()                                                \
  namespace rnnfast {                                                             \
  namespace RNNFAST_ISA_NAMESPACE {                                               \
  const RecurrentKernel<float>& recurrent_f32() {                                 \
    static const RecurrentKernel<float> k = make_recurrent<float>();              \
    return k;                                                                     \
  }                                                                               \
  const RecurrentKernel<double>& recurrent_f64() {                                \
    static const RecurrentKernel<double> k = make_recurrent<double>();            \
    return k;                                                                     \
  }                                                                               \
  }                                                                               \
  }
