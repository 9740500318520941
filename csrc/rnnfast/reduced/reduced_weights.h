// Reduced-precision weights for inference (docs/design.md, "Reduced precision"): int8 weights with a
// float32 scale per output row, or bfloat16 weights; float32 activations in and out, float32 state.
//
// The arithmetic every instruction set computes (python/rnnfast/reference_reduced.py defines it in NumPy):
//   int8: weights symmetric per output row (q_w in [-127, 127], a float32 scale each). Each row of
//         activations a [K] (a row of x for the input projection, a row of h_{t-1} at a step) is
//         quantized at run time on its own, asymmetric, to unsigned bytes: lo = min(0, min a),
//         hi = max(0, max a), scale = (hi - lo) / 255, inverse = 255 / (hi - lo),
//         zero_point = rint(-lo * inverse), q = clamp(rint(a * inverse) + zero_point, 0, 255) (all in
//         float32; hi == lo, or hi - lo below 255 / FLT_MAX: scale 0, zero point 0, q 0; a value or
//         hi - lo not finite: scale NaN). The
//         product sum_k (q_a[k] - zero_point) * q_w[n][k] is exact in int32 on every instruction set
//         (sums wrap modulo 2^32, so exact whenever the true sum fits: always for K <= 65793 even at
//         the extremes 255 x -128),
//         then y = float(acc) * (scale_a * scale_w[n]) in float32. (ONNX Runtime's dynamic
//         quantization quantizes activations the same way: 255 steps over the row's own range, so a
//         one-sided row loses no half of them.)
//   bf16: activations rounded to bfloat16 (nearest even); each output is one float32 chain over the
//         depth in pairs, acc += a[2j+1] w[2j+1], then acc += a[2j] w[2j], each product exact and each
//         sum rounded: what AVX512_BF16's vdpbf16ps computes, so every instruction set gives the same
//         bits (except that the hardware flushes denormals).
// The gate updates are the float32 cells' (cells/<cell>.h).
//
// The packing does not depend on the instruction set (so a pack made once serves every kernel): the
// G*H output rows are cut into blocks of kReducedUnits hidden units, and block p's panel holds, for
// every group of kGroup consecutive depths, the G gates' kReducedUnits units side by side, each unit's
// kGroup weights contiguous (the operand layout of vpdpbusd and vdpbf16ps):
//   int8 (kGroup 4): panel(p)[((k/4) * G + g) * 64 + j * 4 + k % 4] = Wq[g*H + p*16 + j][k]  (signed)
//   bf16 (kGroup 2): panel(p)[((k/2) * G + g) * 32 + j * 2 + k % 2] = W[g*H + p*16 + j][k]
// zero past unit H and past depth K.
#pragma once

#include <cstdint>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/cell.h"
#include "rnnfast/core/isa.h"

namespace rnnfast {

enum class WeightType { kInt8 = 0, kBf16 = 1 };

const char* weight_type_name(WeightType type);
WeightType parse_weight_type(const char* name);  // "int8" or "bf16"; throws std::invalid_argument

// Hidden units per packed block: one 64-byte vector of 16 int32 or float32 results per gate.
constexpr int kReducedUnits = 16;

// A row of int8-quantized activations: what each unsigned byte q stands for, scale * (q - zero_point).
struct ActivationScale {
  float scale;
  std::int32_t zero_point;
};

// The deepest int8 product whose sums always fit in int32: K * 255 * 128 < 2^31.
constexpr std::int64_t kMaxInt8Depth = (std::int64_t(1) << 31) / (255 * 128);

// Depths per packed group: 4 int8 (a 32-bit lane of vpdpbusd) or 2 bfloat16 (of vdpbf16ps).
constexpr int reduced_group(WeightType type) { return type == WeightType::kInt8 ? 4 : 2; }

// float32 to bfloat16, round to nearest even (NaN stays a quiet NaN). Exact integer operations: the
// same bits everywhere.
inline std::uint16_t to_bf16(float value) {
  std::uint32_t bits;
  __builtin_memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// One layer direction's weight matrix W [G*H, K] (W_ih with K = I, or W_hh with K = H) in reduced
// precision, packed (see above). Immutable once packed; shared by every call and thread.
class ReducedWeights {
 public:
  // int8: weights [G*H, K] quantized per row, scales [G*H] (the rows' float32 scales);
  // bf16: weights [G*H, K] as bfloat16 bits, scales nullptr.
  // Throws std::invalid_argument for a negative size, a missing array, or an int8 depth above
  // kMaxInt8Depth.
  ReducedWeights(Cell cell, WeightType type, std::int64_t hidden, std::int64_t depth, const void* weights,
                 const float* scales);

  Cell cell() const { return cell_; }
  WeightType type() const { return type_; }
  std::int64_t hidden() const { return hidden_; }
  std::int64_t gates() const { return gates_; }
  std::int64_t depth() const { return depth_; }
  // The depth rounded up to whole groups: the row length of a quantized activation operand.
  std::int64_t padded_depth() const { return padded_depth_; }
  std::int64_t blocks() const { return blocks_; }
  // Bytes of one block's panel: padded_depth * G * kReducedUnits weights.
  std::int64_t panel_bytes() const { return panel_bytes_; }
  const std::uint8_t* panel(std::int64_t block) const { return panels_.data() + block * panel_bytes_; }
  // int8: per block, [G][kReducedUnits] float32 scales of the weight rows (0 past unit H), and the
  // rows' sums of q_w (int32; a product of activations with a zero point subtracts zero_point times it).
  const float* column_scales(std::int64_t block) const { return scales_.data() + block * gates_ * kReducedUnits; }
  const std::int32_t* column_sums(std::int64_t block) const {
    return sums_.data() + block * gates_ * kReducedUnits;
  }

 private:
  Cell cell_;
  WeightType type_;
  std::int64_t hidden_ = 0, gates_ = 0, depth_ = 0, padded_depth_ = 0, blocks_ = 0, panel_bytes_ = 0;
  Buffer<std::uint8_t> panels_;
  Buffer<float> scales_;
  Buffer<std::int32_t> sums_;
};

// One step's arrays for rows [0, rows) of a slice (row strides as in step/fused_step.h's StepArgs:
// gx G*H, states H).
struct ReducedStepArgs {
  std::int64_t rows = 0;
  const void* h_quantized = nullptr;  // [rows, padded_depth] h_{t-1} as quantize_rows wrote it
  const ActivationScale* h_scales = nullptr;  // [rows] int8 only
  const float* gx = nullptr;          // [rows, G*H] the input projection with the folded biases
  const float* h_prev = nullptr;      // [rows, H] float32 h_{t-1} (the GRU's update reads it)
  const float* c_prev = nullptr;      // [rows, H] LSTM only
  const float* kept_bias = nullptr;   // [H] the GRU's b_hn (added inside r * (..)), or nullptr
  float* h = nullptr;                 // [rows, H] written
  float* c = nullptr;                 // [rows, H] written, LSTM only
};

// One instruction set's reduced-precision kernels for one weight type (kernels/reduced_<type>_<isa>.cpp).
struct ReducedKernel {
  const char* name;  // the code path, as rnnfast.isa(weight_dtype) reports it
  // int8: what quantize_rows subtracts from each activation byte q before storing it (128 for NEON's
  // sdot, whose operands are both signed: the byte is then q - 128 as int8_t; 0 elsewhere).
  int operand_bias;
  // The activation operand of `rows` rows of a [rows, depth] (row stride lda): int8 rows of
  // padded_depth bytes (q - operand_bias) and scales [rows]; bf16 rows of padded_depth bfloat16 (uint16_t),
  // scales unused. The padding is 0 (the weights there are 0). The same bits on every instruction set.
  void (*quantize_rows)(std::int64_t rows, std::int64_t depth, std::int64_t padded_depth, const float* a,
                        std::int64_t lda, void* quantized, ActivationScale* scales);
  // out[i][g*H + u] = bias[g*H + u] (0 when nullptr) + the product of operand row i with weight row
  // g*H + u, for rows [0, rows), units of blocks [b0, b1); out rows ldo apart.
  void (*project)(const ReducedWeights& w, std::int64_t rows, const void* quantized, const ActivationScale* scales,
                  const float* bias, float* out, std::int64_t ldo, std::int64_t b0, std::int64_t b1);
  // Blocks [b0, b1) of one recurrent step: h_{t-1} W_hh^T and the gate update, fused.
  void (*step)(const ReducedWeights& w, const ReducedStepArgs& args, std::int64_t b0, std::int64_t b1);
  // For tests: the raw products [rows, G*H] of operand rows with every weight row (int8: exact int32
  // sums of (q_a - zero_point) q_w; bf16: the float32 chains), no scales and no bias.
  void (*raw_product)(const ReducedWeights& w, std::int64_t rows, const void* quantized,
                      const ActivationScale* scales, void* out);
};

// The kernels for `type` on instruction set `isa`: on avx512, the VNNI (int8) or BF16 (bf16)
// instructions when the CPU has them and extensions are enabled, plain AVX-512BW code otherwise (or
// avx2's where the CPU lacks AVX-512BW); on aarch64 (generic), int8 by sdot when the CPU has the dot
// product and extensions are enabled, portable NEON code otherwise.
const ReducedKernel& reduced_kernel(WeightType type, Isa isa);
inline const ReducedKernel& active_reduced_kernel(WeightType type) { return reduced_kernel(type, active_isa()); }

// Whether the kernels may use the extensions above (default true, or false when the environment has
// RNNFAST_REDUCED_EXTENSIONS=0; tests turn them off to run the plain code on a CPU that has them).
// Not thread-safe to change while kernels run.
void set_reduced_extensions(bool enabled);
bool reduced_extensions();

}  // namespace rnnfast
