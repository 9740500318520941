// The backward's per-step kernels (step/gate_grads.h) for every instruction set: the cells' backward
// units (cells/<cell>.h) on float32 vectors over rows and units (kernels/gate_loops_impl.h), and the
// bias column sums. Include it only from a kernels/gate_grads_<isa>.cpp file, after its
// kernels/isa_<isa>.h, and invoke RNNFAST_DEFINE_GATE_GRADS(). Everything lives in the instruction
// set's namespace (the ODR trap, docs/design.md). float64's table is the portable one.
#include <cstdint>
#include <cstring>

#include "rnnfast/cells/all_cells.h"
#include "rnnfast/step/gate_grads.h"
#include "vector_math_impl.h"
#include "gate_loops_impl.h"

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// Column sums, a strip of kStrip vectors of columns at a time (each lane a column, rows added in
// order), then single vectors, then the last columns through a zero-padded stand-in.
constexpr int kStrip = 4;

void column_sums(std::int64_t rows, std::int64_t cols, const float* src, std::int64_t ld, float* dst) {
  const std::int64_t L = kFloatLanes;
  std::int64_t j = 0;
  for (; j + kStrip * L <= cols; j += kStrip * L) {
    FloatVec acc[kStrip] = {};
    for (std::int64_t r = 0; r < rows; ++r)
      for (int q = 0; q < kStrip; ++q) acc[q] += VectorMath::load(src + r * ld + j + q * L);
    for (int q = 0; q < kStrip; ++q) VectorMath::store(dst + j + q * L, acc[q]);
  }
  for (; j + L <= cols; j += L) {
    FloatVec acc = {};
    for (std::int64_t r = 0; r < rows; ++r) acc += VectorMath::load(src + r * ld + j);
    VectorMath::store(dst + j, acc);
  }
  if (j < cols) {
    const int n = static_cast<int>(cols - j);
    float t[kFloatLanes] = {};
    FloatVec acc = {};
    for (std::int64_t r = 0; r < rows; ++r) {
      copy_blocks(t, L, src + r * ld + j, 0, 1, n);
      acc += VectorMath::load(t);
    }
    VectorMath::store(t, acc);
    copy_blocks(dst + j, 0, t, L, 1, n);
  }
}

GateGradKernels<float> make_gate_grads() {
  GateGradKernels<float> k{};
  for (int c = 0; c < kCellCount; ++c)
    k.gate_gradients[c] = with_cell_type(static_cast<Cell>(c), [](auto cell) {
      return &gate_gradients<decltype(cell), VectorMath>;
    });
  k.column_sums = &column_sums;
  return k;
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast

#define RNNFAST_DEFINE_GATE_GRADS()                                          \
  namespace rnnfast {                                                        \
  namespace RNNFAST_ISA_NAMESPACE {                                          \
  template <>                                                                \
  const GateGradKernels<float>& isa_table<GateGradKernels<float>>() {        \
    static const GateGradKernels<float> k = make_gate_grads();               \
    return k;                                                                \
  }                                                                          \
  template <>                                                                \
  const GateGradKernels<double>& isa_table<GateGradKernels<double>>() {      \
    return portable_gate_grads();                                            \
  }                                                                          \
  }                                                                          \
  }
