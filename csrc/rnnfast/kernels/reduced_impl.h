// The reduced-precision kernels (reduced/reduced_weights.h) around an instruction set's dot-product
// tile: activation quantization, the input projection's epilogue, and the recurrent step fused with
// the float32 gate update. Include it only from a kernels/reduced_<type>_<isa>.cpp file, after its
// kernels/isa_<isa>.h and its Dot policy, then invoke RNNFAST_DEFINE_REDUCED_KERNEL(type, Dot, "name").
// Everything lives in the instruction set's namespace (the ODR trap, docs/design.md).
//
// A Dot policy provides:
//   using Operand = std::uint8_t (int8: activations unsigned, weights signed) or std::uint16_t (bf16 bits);
//   using Acc = std::int32_t or float;
//   static constexpr int kOperandBias: what its int8 operand bytes subtract from q (ReducedKernel);
//   static constexpr int tile_rows(int gates): rows of a one-panel tile (<= kReducedTileRows);
//   static constexpr int row_panels(int gates): panels of a one-row pass (panels * gates * 16 <=
//       kTileValues);
//   static constexpr int block_panels(int gates), block_rows(int gates): panels and rows of a
//       several-row tile over several blocks (block_panels 1: none; block_panels * block_rows *
//       gates * 16 <= kTileValues), for a cell whose one-panel tile is too narrow to hide the loads;
//   static void tile(int rows, int panels, int gates, std::int64_t padded_depth, const Operand* a,
//                    const std::uint8_t* panel, std::int64_t panel_bytes, Acc* out):
//       out[(q * rows + i) * gates*16 + g*16 + j] = the product of operand row i (a + i * padded_depth)
//       with weight column (g, j) of panel q (panel + q * panel_bytes), over the whole depth: int8
//       exact sums of q_a q_w (q_a unsigned; the zero point is the epilogue's), bf16 the float32 chain
//       in the order of reduced_weights.h.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12 reports the AVX-512 headers' own placeholder operand (`__m512 __Y = __Y` in _mm512_undefined_*)
// as used uninitialized where their reductions and conversions are inlined: a known false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning (and warns of the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/reduced/reduced_weights.h"
#include "vector_math_impl.h"
#include "gate_loops_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

constexpr int kReducedTileRows = 8;
constexpr int kTileValues = kReducedTileRows * 4 * kReducedUnits;  // a tile's results, any shape

// ---- activations ----

// The range of a row for the int8 quantization: lo = min(0, min row), hi = max(0, max row) (NaNs
// skipped), and whether any value is a NaN or an infinity.
inline void row_range(const float* row, std::int64_t depth, float& lo_out, float& hi_out, bool& not_finite_out) {
  float lo = 0.0f, hi = 0.0f;
  int not_finite = 0;
  std::int64_t k = 0;
#if defined(__AVX512F__)
  __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
  __mmask16 finite = 0xffff;
  const __m512 largest = _mm512_set1_ps(3.402823466e38f);
  for (; k + 16 <= depth; k += 16) {
    const __m512 v = _mm512_loadu_ps(row + k);
    vlo = _mm512_min_ps(v, vlo);  // (a NaN picks vlo: skipped)
    vhi = _mm512_max_ps(v, vhi);
    finite &= _mm512_cmp_ps_mask(_mm512_abs_ps(v), largest, _CMP_LE_OQ);
  }
  lo = _mm512_reduce_min_ps(vlo);
  hi = _mm512_reduce_max_ps(vhi);
  not_finite = finite != 0xffff;
#endif
  for (; k < depth; ++k) {
    const float v = row[k];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    not_finite |= !(std::fabs(v) <= 3.402823466e38f);
  }
  lo_out = lo;
  hi_out = hi;
  not_finite_out = not_finite != 0;
}

// q[k] = clamp(rint(row[k] * inverse) + zero_point, 0, 255) - kBias for k < depth. The products and
// their rounding to nearest even are the same operations in the vector code and the scalar tail.
template <int kBias>
inline void quantize_row(const float* row, std::int64_t depth, float inverse, std::int32_t zero_point,
                         std::uint8_t* q) {
  std::int64_t k = 0;
#if defined(__AVX512F__)
  const __m512 vinverse = _mm512_set1_ps(inverse);
  const __m512i vzero_point = _mm512_set1_epi32(zero_point), top = _mm512_set1_epi32(255),
                bias = _mm512_set1_epi32(kBias);
  for (; k + 16 <= depth; k += 16) {
    // vcvtps2dq rounds to nearest even (the default rounding mode), as nearbyint does.
    __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + k), vinverse)), vzero_point);
    r = _mm512_min_epi32(_mm512_max_epi32(r, _mm512_setzero_si512()), top);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k), _mm512_cvtepi32_epi8(_mm512_sub_epi32(r, bias)));
  }
#endif
  for (; k < depth; ++k) {
    float r = std::nearbyint(row[k] * inverse) + static_cast<float>(zero_point);
    r = r > 255.0f ? 255.0f : r;
    r = r < 0.0f ? 0.0f : r;
    q[k] = static_cast<std::uint8_t>(static_cast<int>(r) - kBias);
  }
}

// int8: per row, asymmetric to unsigned bytes (reduced/reduced_weights.h): the range [lo, hi] (with
// 0 in it) in 255 steps. Float32 minima, maxima, multiplications and roundings to nearest even: the
// same bits on every instruction set (vectorized by hand for AVX-512, where a step's h_{t-1} is
// quantized on the critical path: GCC keeps nearbyint scalar).
template <int kBias>
void quantize_rows_int8(std::int64_t rows, std::int64_t depth, std::int64_t padded_depth, const float* a,
                        std::int64_t lda, void* quantized, ActivationScale* scales) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* row = a + i * lda;
    std::uint8_t* q = static_cast<std::uint8_t*>(quantized) + i * padded_depth;
    float lo, hi;
    bool not_finite;
    row_range(row, depth, lo, hi, not_finite);
    const float range = hi - lo;
    const bool measurable = !not_finite && range <= 3.402823466e38f;
    const float inverse = measurable && range > 0.0f ? 255.0f / range : 0.0f;
    // A zero row, or one whose range is below 255 / FLT_MAX (its inverse overflows), is a zero row;
    // one with a NaN or an infinity, or whose range overflows, has NaN products.
    if (!measurable || !(inverse <= 3.402823466e38f) || inverse == 0.0f) {
      std::memset(q, static_cast<std::uint8_t>(-kBias), padded_depth);  // q = 0
      scales[i].scale = measurable ? 0.0f : __builtin_nanf("");
      scales[i].zero_point = 0;
      continue;
    }
    float zero_point = std::nearbyint(-lo * inverse);
    zero_point = zero_point > 255.0f ? 255.0f : zero_point;
    scales[i].scale = range / 255.0f;
    scales[i].zero_point = static_cast<std::int32_t>(zero_point);
    quantize_row<kBias>(row, depth, inverse, scales[i].zero_point, q);
    for (std::int64_t k = depth; k < padded_depth; ++k) q[k] = static_cast<std::uint8_t>(-kBias);
  }
}

// bf16: each value rounded to bfloat16 (to_bf16), the padding zero.
void quantize_rows_bf16(std::int64_t rows, std::int64_t depth, std::int64_t padded_depth, const float* a,
                        std::int64_t lda, void* quantized, ActivationScale*) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* row = a + i * lda;
    std::uint16_t* q = static_cast<std::uint16_t*>(quantized) + i * padded_depth;
    for (std::int64_t k = 0; k < depth; ++k) {
      std::uint32_t bits;
      std::memcpy(&bits, row + k, 4);
      const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
      q[k] = nan ? static_cast<std::uint16_t>((bits >> 16) | 0x40u)
                 : static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    }
    for (std::int64_t k = depth; k < padded_depth; ++k) q[k] = 0;
  }
}

// ---- the epilogue: a tile's raw products to float32 ----

// out[g*H + j] = the float32 value of row `sums` [G*16] for units [0, units) of each gate: int8
// float(sum - zero_point * column_sum) * (scale * column_scale); bf16 the chain itself. bias (offset
// like out) is added when not nullptr.
// acc - zero_point * column_sum in wrapping 32-bit arithmetic (the tiles' sums wrap too): exact
// whenever the true value fits in int32.
inline std::int32_t centered(std::int32_t acc, std::int32_t zero_point, std::int32_t column_sum) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(acc) -
                                   static_cast<std::uint32_t>(zero_point) * static_cast<std::uint32_t>(column_sum));
}

// dequantize_row's arithmetic over `count` units of one gate: a full block has a count known at compile
// time (kReducedUnits), so that every compiler makes one vector of it. (With the count a run-time value,
// clang vectorized for 64 units and ran a 16-unit block through its scalar remainder, after run-time checks
// that the output overlaps no input, which __restrict makes unnecessary: the int8 stepper was 12% slower
// than GCC's build, found by benchmarks/toolchain_speed.py.) The same operations either way.
template <class Dot, class Count>
inline void dequantize_gate(Count count, const typename Dot::Acc* __restrict s, const float* __restrict cs,
                            const std::int32_t* __restrict column_sums, float scale, std::int32_t zero_point,
                            const float* __restrict b, float* __restrict o) {
  if constexpr (Dot::kType == WeightType::kInt8) {
    if (b != nullptr)
      for (int j = 0; j < count; ++j)
        o[j] = b[j] + static_cast<float>(centered(s[j], zero_point, column_sums[j])) * (scale * cs[j]);
    else
      for (int j = 0; j < count; ++j)
        o[j] = static_cast<float>(centered(s[j], zero_point, column_sums[j])) * (scale * cs[j]);
  } else {
    if (b != nullptr)
      for (int j = 0; j < count; ++j) o[j] = b[j] + s[j];
    else
      for (int j = 0; j < count; ++j) o[j] = s[j];
  }
}

template <class Dot>
inline void dequantize_row(const ReducedWeights& w, std::int64_t block, int units, std::int64_t gate_stride,
                           const typename Dot::Acc* sums, const ActivationScale* row, const float* bias, float* out) {
  const int gates = static_cast<int>(w.gates());
  for (int g = 0; g < gates; ++g) {
    const typename Dot::Acc* s = sums + g * kReducedUnits;
    float* o = out + g * gate_stride;
    const float* b = bias != nullptr ? bias + g * gate_stride : nullptr;
    const float* cs = nullptr;
    const std::int32_t* column_sums = nullptr;
    float scale = 0.0f;
    std::int32_t zero_point = 0;
    if constexpr (Dot::kType == WeightType::kInt8) {
      cs = w.column_scales(block) + g * kReducedUnits;
      column_sums = w.column_sums(block) + g * kReducedUnits;
      scale = row->scale;
      zero_point = row->zero_point - Dot::kOperandBias;  // the operand's bytes are q - bias
    }
    if (units == kReducedUnits)
      dequantize_gate<Dot>(std::integral_constant<int, kReducedUnits>{}, s, cs, column_sums, scale, zero_point, b, o);
    else
      dequantize_gate<Dot>(units, s, cs, column_sums, scale, zero_point, b, o);
  }
}

// ---- the input projection ----

// The epilogue of a projection tile: `count` blocks from p by `rows` rows from first_row (sums
// [count][rows][G*16], the tile's layout) into out (rows ldo apart) with the biases. Out of line, so
// that every tile shape runs the one body: a column's arithmetic is the same instructions whichever
// tile computed it (inlined into each caller, the compiler may fuse a multiply and an add in one copy
// and not in another: one rounding instead of two).
template <class Dot>
__attribute__((noinline)) void project_epilogue(const ReducedWeights& w, std::int64_t p, int count,
                                                std::int64_t first_row, int rows, const typename Dot::Acc* sums,
                                                const ActivationScale* scales, const float* bias, float* out,
                                                std::int64_t ldo) {
  const int G = static_cast<int>(w.gates());
  const std::int64_t H = w.hidden(), U = kReducedUnits;
  for (int q = 0; q < count; ++q) {
    const std::int64_t u0 = (p + q) * U;
    const int units = static_cast<int>(std::min<std::int64_t>(U, H - u0));
    for (int i = 0; i < rows; ++i)
      dequantize_row<Dot>(w, p + q, units, H, sums + (q * rows + i) * G * U, scales + first_row + i,
                          bias != nullptr ? bias + u0 : nullptr, out + (first_row + i) * ldo + u0);
  }
}

template <class Dot>
void project(const ReducedWeights& w, std::int64_t rows, const void* quantized, const ActivationScale* scales,
             const float* bias, float* out, std::int64_t ldo, std::int64_t b0, std::int64_t b1) {
  using Operand = typename Dot::Operand;
  const int G = static_cast<int>(w.gates());
  const std::int64_t Kp = w.padded_depth();
  const int mr_max = Dot::tile_rows(G);
  const Operand* a = static_cast<const Operand*>(quantized);
  alignas(64) typename Dot::Acc tile[kTileValues];
  std::int64_t p = b0;
  // Several blocks a tile, where the cell's one-block tile is narrow (the RNN's single gate).
  if (const int PB = Dot::block_panels(G); PB > 1 && rows > 1) {
    const int mr_block = Dot::block_rows(G);
    for (; p + PB <= b1; p += PB)
      for (std::int64_t i0 = 0; i0 < rows; i0 += mr_block) {
        const int mr = static_cast<int>(std::min<std::int64_t>(mr_block, rows - i0));
        Dot::tile(mr, PB, G, Kp, a + i0 * Kp, w.panel(p), w.panel_bytes(), tile);
        project_epilogue<Dot>(w, p, PB, i0, mr, tile, scales, bias, out, ldo);
      }
  }
  for (; p < b1; ++p)
    for (std::int64_t i0 = 0; i0 < rows; i0 += mr_max) {
      const int mr = static_cast<int>(std::min<std::int64_t>(mr_max, rows - i0));
      Dot::tile(mr, 1, G, Kp, a + i0 * Kp, w.panel(p), w.panel_bytes(), tile);
      project_epilogue<Dot>(w, p, 1, i0, mr, tile, scales, bias, out, ldo);
    }
}

// ---- the recurrent step ----

// The gate update of `count` blocks from p by `rows` rows from first_row, from their raw products
// (sums [count][rows][G*16], the tile's layout): every row of every block dequantized first, then the
// gate updates one after another, which the out-of-order core overlaps across blocks (as the float32
// step's apply_row_gates does for a single row; block by block, each block's activation chains waited
// on the previous one's). Out of line for the reason project_epilogue is: a unit's arithmetic is the
// same instructions whether a one-row pass, a tile of rows or a several-block tile computed it, so that
// the results do not depend on how the rows are cut (inlined, a one-row pass and a tile of rows once
// rounded one unit differently, at -O2 with the sanitizers).
template <class Dot, class CellT>
__attribute__((noinline)) void update_blocks(const ReducedWeights& w, const ReducedStepArgs& s, std::int64_t p,
                                             int count, std::int64_t first_row, int rows,
                                             const typename Dot::Acc* sums) {
  constexpr int G = CellT::kGates, U = kReducedUnits;
  const std::int64_t H = w.hidden();
  alignas(64) float gh[kTileValues];  // [count][rows][G*U]
  for (int q = 0; q < count; ++q) {
    const std::int64_t u0 = (p + q) * U;
    const int units = static_cast<int>(std::min<std::int64_t>(U, H - u0));
    for (int i = 0; i < rows; ++i) {
      float* row = gh + (q * rows + i) * G * U;
      // Zeros past the units: forward_block reads the tile in whole vectors.
      if (units < U) std::memset(row, 0, sizeof(float) * G * U);
      dequantize_row<Dot>(w, p + q, units, U, sums + (q * rows + i) * G * U, s.h_scales + first_row + i, nullptr,
                          row);
      if constexpr (CellT::kRecurrentBiasGate >= 0)
        if (s.kept_bias != nullptr)
          for (int j = 0; j < units; ++j) row[CellT::kRecurrentBiasGate * U + j] += s.kept_bias[u0 + j];
    }
  }
  for (int q = 0; q < count; ++q) {
    const std::int64_t u0 = (p + q) * U, r = first_row;
    const int units = static_cast<int>(std::min<std::int64_t>(U, H - u0));
    forward_block<CellT, VectorMath>(rows, units, U, H, s.gx + r * G * H + u0, gh + q * rows * G * U,
                                     CellT::kReadsHPrev ? s.h_prev + r * H + u0 : nullptr,
                                     CellT::kCellState ? s.c_prev + r * H + u0 : nullptr, s.h + r * H + u0,
                                     CellT::kCellState ? s.c + r * H + u0 : nullptr, nullptr);
  }
}

// Blocks [b0, b1) of one step: tiles of rows by one block (several blocks for a single row, for
// more independent accumulators), each tile's gate update while it is in cache.
template <class Dot, class CellT>
void step_cell(const ReducedWeights& w, const ReducedStepArgs& s, std::int64_t b0, std::int64_t b1) {
  using Operand = typename Dot::Operand;
  constexpr int G = CellT::kGates;
  const std::int64_t Kp = w.padded_depth();
  const Operand* a = static_cast<const Operand*>(s.h_quantized);
  alignas(64) typename Dot::Acc tile[kTileValues];
  std::int64_t p = b0;
  static_assert(Dot::tile_rows(G) <= kReducedTileRows && Dot::row_panels(G) * G * kReducedUnits <= kTileValues &&
                    Dot::block_panels(G) * Dot::block_rows(G) * G * kReducedUnits <= kTileValues,
                "a tile's results must fit the tile buffers");
  if (s.rows == 1) {
    constexpr int P = Dot::row_panels(G);
    for (; p + P <= b1; p += P) {
      Dot::tile(1, P, G, Kp, a, w.panel(p), w.panel_bytes(), tile);
      update_blocks<Dot, CellT>(w, s, p, P, 0, 1, tile);
    }
  }
  if constexpr (Dot::block_panels(G) > 1) {  // several blocks a tile, as in project
    constexpr int PB = Dot::block_panels(G);
    const int mr_block = Dot::block_rows(G);
    const std::int64_t block_tiles = (s.rows + mr_block - 1) / mr_block;
    if (s.rows > 1)
      for (; p + PB <= b1; p += PB)
        for (std::int64_t t = 0, i0 = 0; t < block_tiles; ++t) {
          const int mr = static_cast<int>((s.rows * (t + 1)) / block_tiles - i0);
          Dot::tile(mr, PB, G, Kp, a + i0 * Kp, w.panel(p), w.panel_bytes(), tile);
          update_blocks<Dot, CellT>(w, s, p, PB, i0, mr, tile);
          i0 += mr;
        }
  }
  const int mr_max = Dot::tile_rows(G);
  // Rows cut into tiles of nearly equal height, as the float32 step does.
  const std::int64_t row_tiles = (s.rows + mr_max - 1) / mr_max;
  for (; p < b1; ++p) {
    for (std::int64_t t = 0, i0 = 0; t < row_tiles; ++t) {
      const int mr = static_cast<int>((s.rows * (t + 1)) / row_tiles - i0);
      Dot::tile(mr, 1, G, Kp, a + i0 * Kp, w.panel(p), w.panel_bytes(), tile);
      update_blocks<Dot, CellT>(w, s, p, 1, i0, mr, tile);
      i0 += mr;
    }
  }
}

template <class Dot>
void step(const ReducedWeights& w, const ReducedStepArgs& s, std::int64_t b0, std::int64_t b1) {
  if (s.rows <= 0 || b0 >= b1) return;
  with_cell_type(w.cell(), [&](auto cell) { step_cell<Dot, decltype(cell)>(w, s, b0, b1); });
}

// ---- for tests ----

template <class Dot>
void raw_product(const ReducedWeights& w, std::int64_t rows, const void* quantized, const ActivationScale* scales,
                 void* out) {
  using Operand = typename Dot::Operand;
  using Acc = typename Dot::Acc;
  const int G = static_cast<int>(w.gates());
  const std::int64_t H = w.hidden(), Kp = w.padded_depth(), U = kReducedUnits, GH = G * H;
  const int mr_max = Dot::tile_rows(G);
  alignas(64) Acc tile[kTileValues];
  for (std::int64_t p = 0; p < w.blocks(); ++p) {
    const int units = static_cast<int>(std::min<std::int64_t>(U, H - p * U));
    for (std::int64_t i0 = 0; i0 < rows; i0 += mr_max) {
      const int mr = static_cast<int>(std::min<std::int64_t>(mr_max, rows - i0));
      Dot::tile(mr, 1, G, Kp, static_cast<const Operand*>(quantized) + i0 * Kp, w.panel(p), w.panel_bytes(), tile);
      for (int i = 0; i < mr; ++i)
        for (int g = 0; g < G; ++g) {
          Acc* o = static_cast<Acc*>(out) + (i0 + i) * GH + g * H + p * U;
          const Acc* t = tile + (i * G + g) * U;
          if constexpr (Dot::kType == WeightType::kInt8) {
            const std::int32_t zero_point = scales[i0 + i].zero_point - Dot::kOperandBias;
            const std::int32_t* column_sums = w.column_sums(p) + g * U;
            for (int j = 0; j < units; ++j) o[j] = centered(t[j], zero_point, column_sums[j]);
          } else {
            std::memcpy(o, t, sizeof(Acc) * units);
          }
        }
    }
  }
}

template <class Dot>
ReducedKernel make_reduced_kernel(const char* name) {
  ReducedKernel k{};
  k.name = name;
  k.operand_bias = Dot::kOperandBias;
  k.quantize_rows = Dot::kType == WeightType::kInt8 ? &quantize_rows_int8<Dot::kOperandBias> : &quantize_rows_bf16;
  k.project = &project<Dot>;
  k.step = &step<Dot>;
  k.raw_product = &raw_product<Dot>;
  return k;
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

// Defines RNNFAST_ISA_NAMESPACE::reduced_<type>_kernel() (declared in reduced/reduced_weights.cpp).
#define RNNFAST_DEFINE_REDUCED_KERNEL(type, Dot, name)          \
  namespace rnnfast {                                           \
  namespace RNNFAST_ISA_NAMESPACE {                             \
  const ReducedKernel& reduced_##type##_kernel() {              \
    static const ReducedKernel k = make_reduced_kernel<Dot>(name); \
    return k;                                                   \
  }                                                             \
  }                                                             \
  }
