// The GEMM micro-kernels for the avx2 instruction set (kernels/gemm_tile_impl.h).
#include "isa_avx2.h"
#include "gemm_tile_impl.h"

namespace rnnfast::avx2 {
namespace {
// float: 6 x 16 tile (12 accumulators + 2 B vectors + 1 broadcast of 16 ymm registers), double: 6 x 8.
constexpr GemmTileShape kFloatTile{/*rows=*/6, /*vectors=*/2, /*kc=*/256, /*mc=*/96};
constexpr GemmTileShape kDoubleTile{/*rows=*/6, /*vectors=*/2, /*kc=*/256, /*mc=*/48};
}  // namespace
}  // namespace rnnfast::avx2

RNNFAST_DEFINE_GEMM_KERNELS(kFloatTile, kDoubleTile)
