// Packed GEMM driver: cache blocking and packing, portable code. The register-tile arithmetic is the
// micro-kernel of the active instruction set (micro_kernel.h), so this file needs no instruction-set
// flags.
#include "rnnfast/gemm/gemm.h"

#include "rnnfast/core/threadpool.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

namespace rnnfast {

template <typename Scalar>
void PackedMatrix<Scalar>::pack(bool transposed, std::int64_t k, std::int64_t n, const Scalar* b,
                                std::int64_t ldb) {
  kernel_ = &active_micro_kernel<Scalar>();
  const std::int64_t tile_cols = kernel_->nr, block_depth = kernel_->kc;
  k_ = k;
  n_ = n;
  n_padded_ = (n + tile_cols - 1) / tile_cols * tile_cols;
  data_.resize(k * n_padded_, /*zeroed=*/false);  // every element, padding included, is written below
  const std::int64_t panels = n_padded_ / tile_cols;
  // One task per run of panels (all K blocks of them); a large matrix is packed by several threads.
  const std::int64_t panels_per_task = k * n >= (std::int64_t(1) << 16) ? 4 : panels;
  const std::int64_t tasks = panels_per_task > 0 ? (panels + panels_per_task - 1) / panels_per_task : 0;
  parallel_for(tasks, [&](std::int64_t task) {
    const std::int64_t p_end = std::min(panels, (task + 1) * panels_per_task);
    for (std::int64_t p = task * panels_per_task; p < p_end; ++p) {
      const std::int64_t n0 = p * tile_cols, nr = std::min(tile_cols, n - n0);
      for (std::int64_t k0 = 0; k0 < k; k0 += block_depth) {
        const std::int64_t kc = std::min(block_depth, k - k0);
        Scalar* dst = data_.data() + k0 * n_padded_ + p * kc * tile_cols;
        if (transposed) {  // read along B's rows (contiguous), write down the panel's columns (in L1)
          for (std::int64_t j = 0; j < nr; ++j) {
            const Scalar* src = b + (n0 + j) * ldb + k0;
            for (std::int64_t kk = 0; kk < kc; ++kk) dst[kk * tile_cols + j] = src[kk];
          }
        } else {
          for (std::int64_t kk = 0; kk < kc; ++kk)
            for (std::int64_t j = 0; j < nr; ++j) dst[kk * tile_cols + j] = b[(k0 + kk) * ldb + (n0 + j)];
        }
        for (std::int64_t kk = 0; kk < kc; ++kk)  // the last panel's columns past n
          for (std::int64_t j = nr; j < tile_cols; ++j) dst[kk * tile_cols + j] = Scalar(0);
      }
    }
  });
}

template <typename Scalar>
const Scalar* PackedMatrix<Scalar>::panel(std::int64_t k0, std::int64_t panel_index) const {
  const std::int64_t kc = std::min<std::int64_t>(kernel_->kc, k_ - k0);
  return data_.data() + k0 * n_padded_ + panel_index * kc * kernel_->nr;
}

namespace {

// The rows of a block of mc rows are cut into row_tiles(mc) micro-panels of nearly equal height, at
// most tile_rows each: tile j holds rows [tile_start(j), tile_start(j + 1)). 32 rows run as
// 6+6+5+5+5+5 rather than 6+6+6+6+6+2, whose short tile has too few independent accumulators to keep
// the FMA units busy. (Each element's multiply-adds are the same whatever its tile's height.)
inline std::int64_t row_tiles(std::int64_t mc, int tile_rows) { return (mc + tile_rows - 1) / tile_rows; }
inline std::int64_t tile_start(std::int64_t j, std::int64_t tiles, std::int64_t mc) { return mc * j / tiles; }

// Packs rows [0, mc) x depth [0, kc) of op(A) (origin already applied) into the micro-panels above,
// panel j at dst + j * kc * tile_rows, each stored k-major with stride tile_rows: panel[kk * tile_rows
// + i] = op(A)[i0 + i][kk]. A panel of mr < tile_rows rows is not padded: the row-exact kernel
// rows[mr] reads only its first mr rows (which saves most of the packing when the batch is 1).
template <typename Scalar>
void pack_a(std::int64_t mc, std::int64_t kc, int tile_rows, bool transposed, const Scalar* a, std::int64_t lda,
            Scalar* dst) {
  const std::int64_t tiles = row_tiles(mc, tile_rows);
  for (std::int64_t j = 0; j < tiles; ++j) {
    const std::int64_t i0 = tile_start(j, tiles, mc), mr = tile_start(j + 1, tiles, mc) - i0;
    if (transposed) {
      for (std::int64_t kk = 0; kk < kc; ++kk)
        for (std::int64_t i = 0; i < mr; ++i) dst[kk * tile_rows + i] = a[kk * lda + (i0 + i)];
    } else {
      for (std::int64_t i = 0; i < mr; ++i)
        for (std::int64_t kk = 0; kk < kc; ++kk) dst[kk * tile_rows + i] = a[(i0 + i) * lda + kk];
    }
    dst += kc * tile_rows;
  }
}

// Scratch for the packed A block, one per thread, grown on demand and then reused: a GEMM in steady
// state (every step of a sequence or of a stepper) allocates nothing. pack_a writes every element it
// hands to the kernel, so the buffer needs no zeroing.
template <typename Scalar>
Scalar* a_block_scratch(std::int64_t count) {
  struct Scratch {
    Scalar* data = nullptr;
    std::int64_t capacity = 0;
    ~Scratch() { std::free(data); }
  };
  thread_local Scratch scratch;
  if (scratch.capacity < count) {
    const std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(Scalar) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::free(scratch.data);
    scratch.data = static_cast<Scalar*>(p);
    scratch.capacity = count;
  }
  return scratch.data;
}

// Rows [i0, i0 + mc) (mc <= the kernel's mc) by panels [p_begin, p_end) of C, over the whole depth:
// one task of gemm. Every element's multiply-adds run in the same order whatever the task cut.
template <typename Scalar>
void gemm_block(std::int64_t i0, std::int64_t mc, bool a_transposed, const Scalar* a, std::int64_t lda,
                const PackedMatrix<Scalar>& b, std::int64_t p_begin, std::int64_t p_end, bool accumulate, Scalar* c,
                std::int64_t ldc, const Scalar* c_row = nullptr) {
  const MicroKernel<Scalar>& kernel = b.kernel();
  const int tile_rows = kernel.mr, tile_cols = kernel.nr;
  const std::int64_t block_depth = kernel.kc, n = b.n(), k = b.k();
  if (mc <= 0 || p_begin >= p_end) return;
  if (c_row != nullptr) {  // the block's rows start from c_row (gemm's contract)
    const std::int64_t j0 = std::min(n, p_begin * tile_cols), j1 = std::min(n, p_end * tile_cols);
    for (std::int64_t i = i0; i < i0 + mc; ++i) std::copy(c_row + j0, c_row + j1, c + i * ldc + j0);
    accumulate = true;
  }
  if (k == 0) {
    if (!accumulate)
      for (std::int64_t i = i0; i < i0 + mc; ++i)
        std::fill(c + i * ldc + p_begin * tile_cols, c + i * ldc + std::min(n, p_end * tile_cols), Scalar(0));
    return;
  }
  Scalar* a_packed = a_block_scratch<Scalar>((mc + tile_rows - 1) / tile_rows * tile_rows * std::min(block_depth, k));
  for (std::int64_t k0 = 0; k0 < k; k0 += block_depth) {
    const std::int64_t kc = std::min(block_depth, k - k0);
    const bool acc = accumulate || k0 > 0;
    const Scalar* a_block = a_transposed ? a + k0 * lda + i0 : a + i0 * lda + k0;
    pack_a(mc, kc, tile_rows, a_transposed, a_block, lda, a_packed);
    std::int64_t p = p_begin;
    if (mc == 1) {  // a matrix-vector product: several panels per call for independent chains
      constexpr int kGroup = MicroKernel<Scalar>::kRowPanels;
      for (; p + kGroup <= p_end && (p + kGroup) * tile_cols <= n; p += kGroup)
        kernel.row_panels(kc, a_packed, b.panel(k0, p), c + i0 * ldc + p * tile_cols, acc);
      if (p + 2 <= p_end && (p + 2) * tile_cols <= n) {
        kernel.row_panel_pair(kc, a_packed, b.panel(k0, p), c + i0 * ldc + p * tile_cols, acc);
        p += 2;
      }
    }
    const std::int64_t tiles = row_tiles(mc, tile_rows);
    for (; p < p_end; ++p) {
      const Scalar* b_panel = b.panel(k0, p);
      const int nr = static_cast<int>(std::min<std::int64_t>(tile_cols, n - p * tile_cols));
      for (std::int64_t j = 0; j < tiles; ++j) {
        const std::int64_t i = tile_start(j, tiles, mc);
        const int mr = static_cast<int>(tile_start(j + 1, tiles, mc) - i);
        kernel.rows[mr](kc, a_packed + j * kc * tile_rows, b_panel, c + (i0 + i) * ldc + p * tile_cols, ldc, acc, nr);
      }
    }
  }
}

}  // namespace

// The work is cut into tasks, each a block of at most kernel.mc rows of C by a run of panels, computed
// with the whole depth K. Every C element is computed by one task with the same sequence of multiply-adds (the
// k blocks are fixed by the kernel), however the panels are grouped into runs, so the result is the
// same for any number of threads.
template <typename Scalar>
void gemm(std::int64_t m, bool a_transposed, const Scalar* a, std::int64_t lda, const PackedMatrix<Scalar>& b,
          bool accumulate, Scalar* c, std::int64_t ldc, const Scalar* c_row) {
  const MicroKernel<Scalar>& kernel = b.kernel();
  const int tile_cols = kernel.nr;
  const std::int64_t n = b.n(), k = b.k();
  if (m <= 0 || n <= 0) return;
  const std::int64_t panels = (n + tile_cols - 1) / tile_cols;
  // Enough tasks to keep a few threads busy when there are few row blocks, but runs of panels long
  // enough (>= 8) that packing the A block again for each run costs little; one task for small work.
  // Cut only when other threads can take the pieces: run inline (inside a task, or on one thread),
  // extra runs would just pack the same A block again.
  const std::int64_t work = m * n * k;
  const bool cut = work >= (std::int64_t(1) << 18) && pool_can_help();
  std::int64_t row_blocks = (m + kernel.mc - 1) / kernel.mc;
  // Few row blocks that the threads cannot share evenly (a weight gradient's 1024 rows are 11 blocks
  // of 96: one thread of two idles for a twelfth of the product) are cut into a multiple of the
  // thread count, of equal height.
  if (cut && row_blocks < 8 * num_threads()) row_blocks = (row_blocks + num_threads() - 1) / num_threads() * num_threads();
  const std::int64_t block_rows = (m + row_blocks - 1) / row_blocks;  // <= kernel.mc
  row_blocks = (m + block_rows - 1) / block_rows;
  const std::int64_t panel_runs = cut ? std::max<std::int64_t>(1, std::min(panels / 8, 8 / row_blocks)) : 1;
  const std::int64_t panels_per_task = (panels + panel_runs - 1) / panel_runs;
  parallel_for(row_blocks * panel_runs, [&](std::int64_t task) {
    const std::int64_t i0 = (task / panel_runs) * block_rows;
    const std::int64_t p_begin = (task % panel_runs) * panels_per_task;
    gemm_block(i0, std::min(block_rows, m - i0), a_transposed, a, lda, b, p_begin, std::min(panels, p_begin + panels_per_task),
               accumulate, c, ldc, c_row);
  });
}

template <typename Scalar>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool a_transposed, const Scalar* a, std::int64_t lda,
          bool b_transposed, const Scalar* b, std::int64_t ldb, bool accumulate, Scalar* c, std::int64_t ldc) {
  PackedMatrix<Scalar> packed;
  packed.pack(b_transposed, k, n, b, ldb);
  gemm(m, a_transposed, a, lda, packed, accumulate, c, ldc);
}

#define RNNFAST_INSTANTIATE_GEMM(Scalar)                                                                         \
  template class PackedMatrix<Scalar>;                                                                           \
  template void gemm<Scalar>(std::int64_t, bool, const Scalar*, std::int64_t, const PackedMatrix<Scalar>&, bool, \
                             Scalar*, std::int64_t, const Scalar*);                                              \
  template void gemm<Scalar>(std::int64_t, std::int64_t, std::int64_t, bool, const Scalar*, std::int64_t, bool,  \
                             const Scalar*, std::int64_t, bool, Scalar*, std::int64_t);
RNNFAST_INSTANTIATE_GEMM(float)
RNNFAST_INSTANTIATE_GEMM(double)
#undef RNNFAST_INSTANTIATE_GEMM

}  // namespace rnnfast
