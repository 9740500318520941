// Packed matrix multiplication for the RNN kernels.
//
// Every GEMM an RNN layer needs has one operand that is reused many times: the weights in the input
// projection and in every recurrent step, the activations in the weight-gradient products. That operand
// is the right-hand side here and is packed once (PackedMatrix) into panels of kNR columns that the
// micro-kernel streams with unit stride; the left-hand side is read in place and packed per cache
// block. Layout conventions: all matrices are row-major with an explicit leading dimension (elements
// between consecutive rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "rnnfast/core/buffer.h"
#include "rnnfast/gemm/micro_kernel.h"

namespace rnnfast {

// op(B), a K x N matrix, packed for the micro-kernel of the instruction set active when it is packed
// (it keeps that kernel, so a pack is always multiplied by the kernel whose layout it has).
//
// Layout: K is cut into blocks of kc rows; within a block, N is cut into panels of nr columns (the
// last panel zero-padded); each panel is stored k-major (kc rows of nr contiguous values). kc and nr
// are the kernel's.
template <typename Scalar>
class PackedMatrix {
 public:
  // Packs op(B). With `transposed` false, op(B) = B stored K x N (op(B)[k][n] = b[k*ldb + n]);
  // with `transposed` true, op(B) = B^T where B is stored N x K (op(B)[k][n] = b[n*ldb + k]),
  // which is how PyTorch-layout weights (G*H, I) enter `x @ W^T`.
  void pack(bool transposed, std::int64_t k, std::int64_t n, const Scalar* b, std::int64_t ldb);

  std::int64_t k() const { return k_; }
  std::int64_t n() const { return n_; }
  std::int64_t panels() const { return kernel_ == nullptr ? 0 : n_padded_ / kernel_->nr; }
  const MicroKernel<Scalar>& kernel() const { return *kernel_; }
  // Start of the panel covering columns [panel*nr, panel*nr + nr) of the K block starting at k0.
  const Scalar* panel(std::int64_t k0, std::int64_t panel_index) const;

 private:
  const MicroKernel<Scalar>* kernel_ = nullptr;
  std::int64_t k_ = 0, n_ = 0, n_padded_ = 0;
  Buffer<Scalar> data_;
};

// C[M, N] = (accumulate ? C : 0) + op(A)[M, K] @ op(B)[K, N], op(B) packed.
// With `a_transposed` false A is stored M x K (lda >= K), otherwise A is stored K x M (lda >= M).
// C is stored M x N with ldc >= N. M, N or K may be zero.
// c_row [N], when given, is what every row of C starts from instead (accumulate is then ignored): the
// bits of filling C's rows with it and accumulating, each task filling the block it then computes
// (in parallel, and while the block is in cache; a serial fill of a 100 x 512 projection took 7% of
// an edge LSTM call).
template <typename Scalar>
void gemm(std::int64_t m, bool a_transposed, const Scalar* a, std::int64_t lda, const PackedMatrix<Scalar>& b,
          bool accumulate, Scalar* c, std::int64_t ldc, const Scalar* c_row = nullptr);

// Convenience for a right-hand side used once: packs op(B) (see PackedMatrix::pack) and multiplies.
template <typename Scalar>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool a_transposed, const Scalar* a, std::int64_t lda,
          bool b_transposed, const Scalar* b, std::int64_t ldb, bool accumulate, Scalar* c, std::int64_t ldc);

}  // namespace rnnfast
