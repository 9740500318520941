// The GEMM micro-kernel source shared by every instruction set. Include it only from a
// kernels/gemm_<isa>.cpp file, after its kernels/isa_<isa>.h, and define the tables with
// RNNFAST_DEFINE_GEMM_KERNELS(float shape, double shape) (GemmTileShape, gemm/micro_kernel.h).
// Everything here lives in that namespace and uses no inline function from another header: an inline
// function compiled with -mavx512f and merged by the linker with the generic copy would crash CPUs
// without AVX-512 (the ODR trap, docs/design.md).
#include <cstdint>
#include <cstring>
#include <utility>

#include "rnnfast/gemm/micro_kernel.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// kRows x (kNV vectors) tile; see MicroKernel::Fn for the contract. The accumulators stay in
// registers: kRows * kNV vectors plus kNV for the B row and one broadcast.
template <typename Scalar, int kMR, int kNV, int kRows>
void tile(std::int64_t kc, const Scalar* a_panel, const Scalar* b_panel, Scalar* c, std::int64_t ldc,
          bool accumulate, int n) {
  typedef Scalar Vec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
  constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  constexpr int kNR = kNV * kLanes;
  Vec acc[kRows][kNV];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kNV; ++j) acc[i][j] = Vec{};
  for (std::int64_t k = 0; k < kc; ++k) {
    Vec b[kNV];
    for (int j = 0; j < kNV; ++j) std::memcpy(&b[j], b_panel + k * kNR + j * kLanes, sizeof(Vec));
    for (int i = 0; i < kRows; ++i) {
      const Scalar a = a_panel[k * kMR + i];
      for (int j = 0; j < kNV; ++j) acc[i][j] += a * b[j];
    }
  }
  if (n == kNR) {
    for (int i = 0; i < kRows; ++i) {
      for (int j = 0; j < kNV; ++j) {
        Vec v = acc[i][j];
        if (accumulate) {
          Vec old;
          std::memcpy(&old, c + i * ldc + j * kLanes, sizeof(Vec));
          v += old;
        }
        std::memcpy(c + i * ldc + j * kLanes, &v, sizeof(Vec));
      }
    }
    return;
  }
  Scalar spill[kRows][kNR];  // edge tile: write only the n columns that exist
  std::memcpy(spill, acc, sizeof(spill));
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : Scalar(0)) + spill[i][j];
}

// One row by kPanels consecutive full panels of one k block (panel q at b_panels + q*kc*nr, its C
// columns at c + q*nr): the matrix-vector case, where a one-row tile would have only kNV independent
// multiply-add chains to cover the FMA latency. Each element's chain is the one `tile` computes.
template <typename Scalar, int kMR, int kNV, int kPanels>
void row_panels(std::int64_t kc, const Scalar* a_panel, const Scalar* b_panels, Scalar* c, bool accumulate) {
  typedef Scalar Vec __attribute__((vector_size(RNNFAST_VEC_BYTES)));
  constexpr int kLanes = RNNFAST_VEC_BYTES / sizeof(Scalar);
  constexpr int kNR = kNV * kLanes;
  Vec acc[kPanels][kNV];
  for (int q = 0; q < kPanels; ++q)
    for (int j = 0; j < kNV; ++j) acc[q][j] = Vec{};
  for (std::int64_t k = 0; k < kc; ++k) {
    const Scalar a = a_panel[k * kMR];
    for (int q = 0; q < kPanels; ++q) {
      for (int j = 0; j < kNV; ++j) {
        Vec b;
        std::memcpy(&b, b_panels + q * kc * kNR + k * kNR + j * kLanes, sizeof(Vec));
        acc[q][j] += a * b;
      }
    }
  }
  for (int q = 0; q < kPanels; ++q) {
    for (int j = 0; j < kNV; ++j) {
      Vec v = acc[q][j];
      if (accumulate) {
        Vec old;
        std::memcpy(&old, c + q * kNR + j * kLanes, sizeof(Vec));
        v += old;
      }
      std::memcpy(c + q * kNR + j * kLanes, &v, sizeof(Vec));
    }
  }
}

template <typename Scalar, int kMR, int kNV, int... kRowsMinusOne>
MicroKernel<Scalar> make_kernel(GemmTileShape shape, std::integer_sequence<int, kRowsMinusOne...>) {
  static_assert(kMR <= kMaxTileRows, "tile taller than the table");
  return MicroKernel<Scalar>{RNNFAST_ISA_ENUM,
                             kMR,
                             kNV * int(RNNFAST_VEC_BYTES / sizeof(Scalar)),
                             shape.kc,
                             shape.mc,
                             {nullptr, &tile<Scalar, kMR, kNV, kRowsMinusOne + 1>...},
                             &row_panels<Scalar, kMR, kNV, 4>,
                             &row_panels<Scalar, kMR, kNV, 2>};
}

template <typename Scalar, const GemmTileShape& kShape>
MicroKernel<Scalar> make_kernel() {
  return make_kernel<Scalar, kShape.rows, kShape.vectors>(kShape, std::make_integer_sequence<int, kShape.rows>{});
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

// Defines this instruction set's isa_table<MicroKernel<float/double>>() with the named tile shapes
// (constexpr GemmTileShape objects of the including file).
#define RNNFAST_DEFINE_GEMM_KERNELS(kFloatShape, kDoubleShape)                        \
  namespace rnnfast {                                                                 \
  namespace RNNFAST_ISA_NAMESPACE {                                                   \
  template <>                                                                         \
  const MicroKernel<float>& isa_table<MicroKernel<float>>() {                         \
    static const MicroKernel<float> k = make_kernel<float, kFloatShape>();            \
    return k;                                                                         \
  }                                                                                   \
  template <>                                                                         \
  const MicroKernel<double>& isa_table<MicroKernel<double>>() {                       \
    static const MicroKernel<double> k = make_kernel<double, kDoubleShape>();         \
    return k;                                                                         \
  }                                                                                   \
  }                                                                                   \
  }
