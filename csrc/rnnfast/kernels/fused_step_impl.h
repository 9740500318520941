// The fused recurrent step (step/fused_step.h) shared by every instruction set. Include it only from a
// kernels/fused_step_<isa>.cpp file, after its kernels/isa_<isa>.h, and invoke
// RNNFAST_DEFINE_FUSED_STEP(). As with the GEMM micro-kernel, everything lives in the instruction set's
// namespace and calls no inline non-template function of another header (the ODR trap,
// docs/design.md). The cells' gate updates (cells/<cell>.h) run here on float32 vectors; float64's run
// through the portable table (PortableGateUpdates).
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/step/fused_step.h"
#include "vector_math_impl.h"
#include "gate_loops_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// ---- the tile ----

// A vector loaded from unaligned memory, returned by value. (memcpy straight into an element of an array of
// vectors made GCC 12 keep that array, and the AVX2 accumulators with it, on the stack: see accumulate_tile.)
template <typename Vec, typename Scalar>
inline Vec load_vec(const Scalar* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

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
      for (int v = 0; v < kNV; ++v) b[v] = load_vec<Vec>(panels + p * panel_size + k * kWidth + v * kLanes);
      for (int i = 0; i < kRows; ++i) {
        const Scalar av = a[i * lda + k];
        for (int v = 0; v < kNV; ++v) acc[p][i][v] += av * b[v];
      }
    }
  }
  for (int p = 0; p < kPanels; ++p)
    for (int i = 0; i < kRows; ++i)
      for (int v = 0; v < kNV; ++v) std::memcpy(out + ((p * kRows + i) * kNV + v) * kLanes, &acc[p][i][v], sizeof(Vec));
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

// A cell whose recurrent bias of one gate stays in the step (the GRU's b_hn, which the reset gate
// multiplies together with W_hn h): adds bias[0, U) to that gate's block of each of a tile's `rows`
// rows ([row][G][U]).
template <class CellT, typename Scalar>
void add_recurrent_bias(const Scalar* bias, std::int64_t U, std::int64_t rows, Scalar* tile) {
  constexpr int G = CellT::kGates, kGate = CellT::kRecurrentBiasGate;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < U; ++j) tile[i * G * U + kGate * U + j] += bias[j];
}

// The gate update of an mr-row tile of block p (rows [i0, i0 + mr) of the slice).
template <class CellT, typename Scalar>
void apply_gates(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t p, std::int64_t i0,
                 std::int64_t mr, Scalar* tile) {
  constexpr int G = CellT::kGates, W = CellT::kSlots;
  const std::int64_t H = w.hidden(), U = w.block_units(), u0 = p * U;
  const int units = static_cast<int>(min64(U, H - u0));
  if constexpr (CellT::kRecurrentBiasGate >= 0)
    if (const Scalar* bias = w.b_hn(); bias != nullptr) add_recurrent_bias<CellT>(bias + u0, U, mr, tile);
  const Scalar* gx = s.gx + i0 * G * H + u0;
  const Scalar* h_prev = CellT::kReadsHPrev ? s.h_prev + i0 * H + u0 : nullptr;
  const Scalar* c_prev = CellT::kCellState ? s.c_prev + i0 * H + u0 : nullptr;
  Scalar* h = s.h + i0 * H + u0;
  Scalar* c = CellT::kCellState ? s.c + i0 * H + u0 : nullptr;
  Scalar* ws = s.ws != nullptr && W > 0 ? s.ws + i0 * W * H + u0 : nullptr;
  if constexpr (std::is_same<Scalar, float>::value)
    forward_block<CellT, VectorMath>(mr, units, static_cast<int>(U), H, gx, tile, h_prev, c_prev, h, c, ws);
  else
    portable_gate_updates().forward_block[static_cast<int>(CellT::kCell)](mr, units, static_cast<int>(U), H, gx,
                                                                          tile, h_prev, c_prev, h, c, ws);
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
// overlaps: block by block, each block's activation chains (a few hundred cycles of latency for a
// single vector) waited on the previous one's (edge LSTM, B=1, T=100, I=64, H=128 on 2 threads:
// 0.263 -> 0.247 ms). The same operations in the same order: the same bits.
template <class CellT, typename Scalar>
void apply_row_gates(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t p, int count,
                     Scalar* tile) {
  constexpr int G = CellT::kGates;
  const std::int64_t H = w.hidden(), U = w.block_units(), u0 = p * U;
  if constexpr (std::is_same<Scalar, float>::value) {
    const int L = kFloatLanes;
    if ((p + count) * U <= H && U % L == 0) {
      for (int q = 0; q < count; ++q) {
        const std::int64_t u = u0 + q * U;
        float* gh = tile + q * G * U;
        float* ws = s.ws != nullptr && CellT::kSlots > 0 ? s.ws + u : nullptr;
        if constexpr (CellT::kRecurrentBiasGate >= 0)  // as apply_gates
          if (w.b_hn() != nullptr) add_recurrent_bias<CellT>(w.b_hn() + u, U, 1, gh);
        for (std::int64_t j = 0; j < U; j += L)
          CellT::template forward<VectorMath>(s.gx + u + j, gh + j, H, U,
                                              CellT::kReadsHPrev ? s.h_prev + u + j : nullptr,
                                              CellT::kCellState ? s.c_prev + u + j : nullptr, s.h + u + j,
                                              CellT::kCellState ? s.c + u + j : nullptr,
                                              ws != nullptr ? ws + j : nullptr);
      }
      return;
    }
  }
  for (int q = 0; q < count; ++q) apply_gates<CellT>(w, s, p + q, 0, 1, tile + q * G * U);
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

// Rows per tile: as many as the accumulators (rows x kNV vectors) allow, leaving registers for the
// kNV panel vectors, a broadcast and one more. Without that one, the GRU's tile on 16 registers (AVX2, SSE2:
// 4 rows x 3 vectors + 3 + 1) filled them exactly, and clang (the wheels' compiler) then kept two
// accumulators on the stack: AVX2 GRU inference 1.7x slower than at 3 rows; GCC is as fast at 3 as at 4.
constexpr int rows_for(int vectors) {
  const int rows = (RNNFAST_VECTOR_REGISTERS - vectors - 2) / vectors;
  return rows > 8 ? 8 : rows;
}

// Blocks [b0, b1) of one step for one cell: a tile of kNV vectors (G gates x U units) by up to kMR
// rows. Blocks outermost, so a block's panel is read from L2 by every row tile, while the rows of
// h_{t-1} (a few KiB per tile) stream past. A single row gets four (or two) blocks per pass: more
// independent multiply-add chains and loads in flight for a matrix-vector product.
template <class CellT, typename Scalar>
void step_cell(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t b0, std::int64_t b1) {
  constexpr int kNV = CellT::kGates * CellT::kBlockVectors, kMR = rows_for(kNV);
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
      apply_row_gates<CellT>(w, s, p, 4, tile);
    }
    for (; p + 2 <= b1; p += 2) {
      if (project) project_blocks(w, s, p, 2, 0, 1, tile, accumulate_tile<Scalar, kNV, 1, 2>);
      if (!recur) continue;
      accumulate_tile<Scalar, kNV, 1, 2>(H, s.h_prev, H, w.panel(p), panel_size, tile);
      apply_row_gates<CellT>(w, s, p, 2, tile);
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
        apply_gates<CellT>(w, s, p, i0, mr, tile);
      }
      i0 += mr;
    }
  }
}

// The fused step of any cell: the switch on the cell, once per call.
template <typename Scalar>
void step(const RecurrentWeights<Scalar>& w, const StepArgs<Scalar>& s, std::int64_t b0, std::int64_t b1) {
  if (s.rows <= 0 || b0 >= b1) return;
  with_cell_type(w.cell(), [&](auto cell) { step_cell<decltype(cell)>(w, s, b0, b1); });
}

template <typename Scalar>
FusedStepKernel<Scalar> make_fused_step() {
  constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  FusedStepKernel<Scalar> k{};
  for (int c = 0; c < kCellCount; ++c)
    k.block_units[c] = with_cell_type(static_cast<Cell>(c), [](auto cell) { return decltype(cell)::kBlockVectors * kLanes; });
  k.step = &step<Scalar>;
  return k;
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

#define RNNFAST_DEFINE_FUSED_STEP()                                               \
  namespace rnnfast {                                                             \
  namespace RNNFAST_ISA_NAMESPACE {                                               \
  template <>                                                                     \
  const FusedStepKernel<float>& isa_table<FusedStepKernel<float>>() {             \
    static const FusedStepKernel<float> k = make_fused_step<float>();             \
    return k;                                                                     \
  }                                                                               \
  template <>                                                                     \
  const FusedStepKernel<double>& isa_table<FusedStepKernel<double>>() {           \
    static const FusedStepKernel<double> k = make_fused_step<double>();           \
    return k;                                                                     \
  }                                                                               \
  }                                                                               \
  }
