// The GEMM micro-kernels for the generic instruction set (kernels/gemm_tile_impl.h).
#include "isa_generic.h"
#include "gemm_tile_impl.h"

namespace rnnfast::generic {
namespace {
// float: 6 x 8 tile (12 of 16 registers), double: 6 x 4.
constexpr GemmTileShape kFloatTile{/*rows=*/6, /*vectors=*/2, /*kc=*/256, /*mc=*/96};
constexpr GemmTileShape kDoubleTile{/*rows=*/6, /*vectors=*/2, /*kc=*/256, /*mc=*/48};
}  // namespace
}  // namespace rnnfast::generic

RNNFAST_DEFINE_GEMM_KERNELS(kFloatTile, kDoubleTile)
