// Portable packed GEMM. The micro-kernel is written with GCC/Clang vector extensions of 16 bytes, which
// every target the wheels support has (SSE2 on x86-64, NEON on aarch64), so this file needs no
// instruction-set flags. Wider per-ISA micro-kernels plug in behind the same PackedMatrix layout.
#include "rnnfast/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace rnnfast {

template <typename Scalar>
void Buffer<Scalar>::Free::operator()(Scalar* p) const {
  std::free(p);
}

template <typename Scalar>
void Buffer<Scalar>::resize(std::int64_t count) {
  if (count < 0) throw std::bad_alloc();
  // Round the byte count up to the alignment, as aligned_alloc requires; allocate at least one line.
  std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(count, 1)) * sizeof(Scalar);
  bytes = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  data_.reset(static_cast<Scalar*>(p));
  size_ = count;
}

template <typename Scalar>
void PackedMatrix<Scalar>::pack(bool transposed, std::int64_t k, std::int64_t n, const Scalar* b,
                                std::int64_t ldb) {
  constexpr std::int64_t kNR = GemmTile<Scalar>::kNR;
  constexpr std::int64_t kKC = GemmTile<Scalar>::kKC;
  k_ = k;
  n_ = n;
  n_padded_ = (n + kNR - 1) / kNR * kNR;
  data_.resize(k * n_padded_);  // zero-filled, so padding columns stay zero
  for (std::int64_t k0 = 0; k0 < k; k0 += kKC) {
    const std::int64_t kc = std::min(kKC, k - k0);
    for (std::int64_t p = 0; p * kNR < n; ++p) {
      Scalar* dst = data_.data() + k0 * n_padded_ + p * kc * kNR;
      const std::int64_t n0 = p * kNR, nr = std::min(kNR, n - n0);
      for (std::int64_t kk = 0; kk < kc; ++kk) {
        for (std::int64_t j = 0; j < nr; ++j) {
          dst[kk * kNR + j] = transposed ? b[(n0 + j) * ldb + (k0 + kk)] : b[(k0 + kk) * ldb + (n0 + j)];
        }
      }
    }
  }
}

template <typename Scalar>
const Scalar* PackedMatrix<Scalar>::panel(std::int64_t k0, std::int64_t panel_index) const {
  const std::int64_t kc = std::min<std::int64_t>(GemmTile<Scalar>::kKC, k_ - k0);
  return data_.data() + k0 * n_padded_ + panel_index * kc * GemmTile<Scalar>::kNR;
}

namespace {

// Packs rows [0, mc) x depth [0, kc) of op(A) (origin already applied) into micro-panels of kMR rows,
// each stored k-major: panel[kk * kMR + i] = op(A)[i][kk]. Rows past mc are zero.
template <typename Scalar>
void pack_a(std::int64_t mc, std::int64_t kc, bool transposed, const Scalar* a, std::int64_t lda, Scalar* dst) {
  constexpr int kMR = GemmTile<Scalar>::kMR;
  for (std::int64_t i0 = 0; i0 < mc; i0 += kMR) {
    const std::int64_t mr = std::min<std::int64_t>(kMR, mc - i0);
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      for (std::int64_t i = 0; i < kMR; ++i) {
        Scalar v = 0;
        if (i < mr) v = transposed ? a[kk * lda + (i0 + i)] : a[(i0 + i) * lda + kk];
        dst[kk * kMR + i] = v;
      }
    }
    dst += kc * kMR;
  }
}

// C tile [mr x nr] (mr <= kMR, nr <= kNR) = (accumulate ? C : 0) + a_panel @ b_panel over depth kc.
// a_panel: kc x kMR (k-major), b_panel: kc x kNR (k-major); both zero-padded to full tiles.
template <typename Scalar>
void micro_kernel(std::int64_t kc, const Scalar* a_panel, const Scalar* b_panel, Scalar* c, std::int64_t ldc,
                  bool accumulate, int mr, int nr) {
  constexpr int kMR = GemmTile<Scalar>::kMR;
  constexpr int kNR = GemmTile<Scalar>::kNR;
  typedef Scalar Vec __attribute__((vector_size(16)));
  constexpr int kLanes = 16 / sizeof(Scalar);
  constexpr int kNV = kNR / kLanes;
  static_assert(kNR % kLanes == 0, "panel width must be whole vectors");

  Vec acc[kMR][kNV];
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNV; ++j) acc[i][j] = Vec{};
  for (std::int64_t kk = 0; kk < kc; ++kk) {
    Vec b[kNV];
    for (int j = 0; j < kNV; ++j) std::memcpy(&b[j], b_panel + kk * kNR + j * kLanes, sizeof(Vec));
    for (int i = 0; i < kMR; ++i) {
      const Scalar a = a_panel[kk * kMR + i];
      for (int j = 0; j < kNV; ++j) acc[i][j] += a * b[j];
    }
  }
  if (mr == kMR && nr == kNR) {
    for (int i = 0; i < kMR; ++i) {
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
  // Edge tile: spill to a local array and write only the rows and columns that exist.
  Scalar tile[kMR][kNR];
  std::memcpy(tile, acc, sizeof(tile));
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : Scalar(0)) + tile[i][j];
}

}  // namespace

template <typename Scalar>
void gemm(std::int64_t m, bool a_transposed, const Scalar* a, std::int64_t lda, const PackedMatrix<Scalar>& b,
          bool accumulate, Scalar* c, std::int64_t ldc) {
  constexpr int kMR = GemmTile<Scalar>::kMR;
  constexpr int kNR = GemmTile<Scalar>::kNR;
  constexpr std::int64_t kKC = GemmTile<Scalar>::kKC;
  constexpr std::int64_t kMC = GemmTile<Scalar>::kMC;
  const std::int64_t n = b.n(), k = b.k();
  if (m <= 0 || n <= 0) return;
  if (k == 0) {
    if (!accumulate)
      for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, Scalar(0));
    return;
  }
  Buffer<Scalar> a_packed(kMC * kKC);
  for (std::int64_t k0 = 0; k0 < k; k0 += kKC) {
    const std::int64_t kc = std::min(kKC, k - k0);
    const bool acc = accumulate || k0 > 0;
    for (std::int64_t i0 = 0; i0 < m; i0 += kMC) {
      const std::int64_t mc = std::min(kMC, m - i0);
      const Scalar* a_block = a_transposed ? a + k0 * lda + i0 : a + i0 * lda + k0;
      pack_a(mc, kc, a_transposed, a_block, lda, a_packed.data());
      for (std::int64_t p = 0; p * kNR < n; ++p) {
        const Scalar* b_panel = b.panel(k0, p);
        const int nr = static_cast<int>(std::min<std::int64_t>(kNR, n - p * kNR));
        for (std::int64_t i = 0; i < mc; i += kMR) {
          const int mr = static_cast<int>(std::min<std::int64_t>(kMR, mc - i));
          micro_kernel(kc, a_packed.data() + i * kc, b_panel, c + (i0 + i) * ldc + p * kNR, ldc, acc, mr, nr);
        }
      }
    }
  }
}

template <typename Scalar>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool a_transposed, const Scalar* a, std::int64_t lda,
          bool b_transposed, const Scalar* b, std::int64_t ldb, bool accumulate, Scalar* c, std::int64_t ldc) {
  PackedMatrix<Scalar> packed;
  packed.pack(b_transposed, k, n, b, ldb);
  gemm(m, a_transposed, a, lda, packed, accumulate, c, ldc);
}

#define RNNFAST_INSTANTIATE_GEMM(Scalar)                                                                         \
  template class Buffer<Scalar>;                                                                                 \
  template class PackedMatrix<Scalar>;                                                                           \
  template void gemm<Scalar>(std::int64_t, bool, const Scalar*, std::int64_t, const PackedMatrix<Scalar>&, bool, \
                             Scalar*, std::int64_t);                                                             \
  template void gemm<Scalar>(std::int64_t, std::int64_t, std::int64_t, bool, const Scalar*, std::int64_t, bool,  \
                             const Scalar*, std::int64_t, bool, Scalar*, std::int64_t);
RNNFAST_INSTANTIATE_GEMM(float)
RNNFAST_INSTANTIATE_GEMM(double)
#undef RNNFAST_INSTANTIATE_GEMM

}  // namespace rnnfast
