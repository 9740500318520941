// The GEMM micro-kernels for the avx512 instruction set (kernels/gemm_tile_impl.h).
#include "isa_avx512.h"
#include "gemm_tile_impl.h"

namespace rnnfast::avx512 {
namespace {
// float: 6 x 64 tile (24 accumulators + 4 B vectors + a broadcast of 32 zmm registers: 10 loads per 24
// FMAs, against 14 for 12 x 32; measured 5-10% faster on Zen 4), double: 12 x 16.
// kc: 256 for float (a 64 KiB B panel streams from L2; fewer passes over C measured faster than an
// L1-resident 128-deep panel), 128 for double (a 128 x 16 panel, 16 KiB, stays in L1).
constexpr GemmTileShape kFloatTile{/*rows=*/6, /*vectors=*/4, /*kc=*/256, /*mc=*/96};
constexpr GemmTileShape kDoubleTile{/*rows=*/12, /*vectors=*/2, /*kc=*/128, /*mc=*/48};
}  // namespace
}  // namespace rnnfast::avx512

RNNFAST_DEFINE_GEMM_KERNELS(kFloatTile, kDoubleTile)
