// gemm: both overloads (plain and through a PackedMatrix), all four transpose combinations, accumulate
// on and off, against a float64 triple loop, over shapes that hit every tail of the register tile (mr,
// nr) and of the cache blocks (mc, kc), with a tolerance derived from k and epsilon; and C filled from
// a row (c_row) on 1-3 threads. On every instruction set, float and double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "check.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/core/threadpool.h"
#include "test_support.h"

using check::Context;
using check::Rng;
using rnnfast::Isa;
using std::int64_t;
using std::vector;
using support::ptr;

namespace {

// One product C = (accumulate ? C : 0) + op(A) op(B) with padded leading dimensions; checks every
// element against a float64 triple loop and that nothing outside C's m x n block was written.
// variant bits: 1 A transposed, 2 B transposed, 4 accumulate, 8 through an explicit PackedMatrix.
template <typename T>
void gemm_case(Isa isa, Rng& rng, int64_t m, int64_t n, int64_t k, int variant) {
  const bool ta = variant & 1, tb = variant & 2, acc = variant & 4, packed = variant & 8;
  Context ctx("gemm m=", m, " n=", n, " k=", k, ta ? " A^T" : "", tb ? " B^T" : "", acc ? " accumulate" : "",
              packed ? " packed" : " unpacked");
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
  vector<T> a((ta ? k : m) * lda + 1), b((tb ? n : k) * ldb + 1);
  for (T& v : a) v = T(rng.uniform());
  for (T& v : b) v = T(rng.uniform());
  const T sentinel = T(12345);
  vector<T> c((m + 1) * ldc, sentinel);  // one guard row below C, guard columns right of it
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = T(rng.uniform());
  const vector<T> before = c;

  if (packed) {
    rnnfast::PackedMatrix<T> pb;
    pb.pack(tb, k, n, ptr(b), ldb);
    CHECK(pb.k() == k && pb.n() == n && pb.kernel().isa == isa, "PackedMatrix reports k=", pb.k(), " n=", pb.n(),
          " isa=", rnnfast::isa_name(pb.kernel().isa));
    rnnfast::gemm(m, ta, ptr(a), lda, pb, acc, ptr(c), ldc);
  } else {
    rnnfast::gemm(m, n, k, ta, ptr(a), lda, tb, ptr(b), ldb, acc, ptr(c), ldc);
  }

  // Each result is a sum of k + 1 terms rounded in T (in any order, with or without FMA): its error is
  // at most (k + 1) eps sum|terms|; the float64 reference adds its own, smaller, error.
  const double eps = std::numeric_limits<T>::epsilon();
  double worst = 0.0;
  int64_t wi = 0, wj = 0;
  double wgot = 0, wwant = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = acc ? double(before[i * ldc + j]) : 0.0, magnitude = std::fabs(sum);
      for (int64_t q = 0; q < k; ++q) {
        const double term =
            double(ta ? a[q * lda + i] : a[i * lda + q]) * double(tb ? b[j * ldb + q] : b[q * ldb + j]);
        sum += term;
        magnitude += std::fabs(term);
      }
      const double bound = (2.0 * k + 3.0) * eps * magnitude;
      const double got = double(c[i * ldc + j]);
      const double error = std::fabs(got - sum);
      double ratio = bound > 0 ? error / bound : (error == 0 ? 0.0 : INFINITY);
      if (std::isnan(ratio)) ratio = INFINITY;
      if (ratio > worst) worst = ratio, wi = i, wj = j, wgot = got, wwant = sum;
    }
  }
  CHECK(worst <= 1.0, "C[", wi, "][", wj, "] = ", wgot, ", want ", wwant, " (error ", worst,
        " x the bound (2k+3) eps sum|a*b|)");
  int64_t stray = -1;
  for (int64_t i = 0; i <= m && stray < 0; ++i)
    for (int64_t j = 0; j < ldc; ++j)
      if ((i == m || j >= n) && std::memcmp(&c[i * ldc + j], &before[i * ldc + j], sizeof(T)) != 0) {
        stray = i * ldc + j;
        break;
      }
  CHECK(stray < 0, "wrote outside C: element ", stray / ldc, ",", stray % ldc, " (ldc ", ldc, ")");
}

template <typename T>
void test_gemm(Isa isa) {
  const rnnfast::MicroKernel<T>& mk = rnnfast::micro_kernel<T>(isa);
  const int64_t mr = mk.mr, nr = mk.nr, kc = mk.kc, mc = mk.mc;
  bool rows_ok = mk.mr >= 1 && mk.mr <= rnnfast::kMaxTileRows;
  for (int r = 1; rows_ok && r <= mk.mr; ++r) rows_ok = mk.rows[r] != nullptr;
  CHECK(mk.isa == isa && rows_ok && nr >= 1 && kc >= 1 && mc >= mr && mc % mr == 0, "micro-kernel table: isa ",
        rnnfast::isa_name(mk.isa), " mr=", mr, " nr=", nr, " kc=", kc, " mc=", mc);
  Rng rng(1000 + static_cast<int>(isa) * 2 + sizeof(T));
  // Every tile height 1..mr (and the first of the next tile), column tails of the panel, all 16
  // variants.
  for (int64_t m = 0; m <= mr + 1; ++m)
    for (int64_t n : {nr - 1, nr, nr + 1})
      for (int64_t k : {1, 5})
        for (int variant = 0; variant < 16; ++variant)
          if (n > 0) gemm_case<T>(isa, rng, m, n, k, variant);
  // Tails of the cache blocks over M (mc) and K (kc), and empty dimensions, variants in rotation.
  int variant = 0;
  for (int64_t m : {int64_t(1), mr, mc - 1, mc, mc + 1, 2 * mc + mr + 1})
    for (int64_t n : {int64_t(0), int64_t(1), nr + 1, 3 * nr - 1})
      for (int64_t k : {int64_t(0), kc - 1, kc, kc + 1, 2 * kc + 3}) gemm_case<T>(isa, rng, m, n, k, variant++ % 16);
  for (int v = 0; v < 16; ++v) gemm_case<T>(isa, rng, 0, nr + 1, v % 2 ? 0 : 7, v);

  // C starting from a row (gemm's c_row): the bits of filling every row with it and accumulating, on
  // one and several threads (a large product is cut into row blocks and runs of panels, each filling
  // its own block), and nothing written outside C.
  const int before_threads = rnnfast::num_threads();
  for (int64_t m : {int64_t(1), mr + 1, 2 * mc + 5})
    for (int64_t n : {nr - 1, 20 * nr + 3})
      for (int64_t k : {int64_t(0), int64_t(3), kc + 1})
        for (int threads : {1, 2, 3}) {
          Context ctx("gemm c_row m=", m, " n=", n, " k=", k, " threads=", threads);
          rnnfast::set_num_threads(threads);
          const int64_t ldc = n + 4;
          vector<T> a(m * k + 1), b(k * n + 1), row(n);
          for (T& v : a) v = T(rng.uniform());
          for (T& v : b) v = T(rng.uniform());
          for (T& v : row) v = T(rng.uniform());
          rnnfast::PackedMatrix<T> pb;
          pb.pack(false, k, n, ptr(b), n);
          const T sentinel = T(12345);
          vector<T> got((m + 1) * ldc, sentinel), want((m + 1) * ldc, sentinel);
          for (int64_t i = 0; i < m; ++i) std::copy(row.begin(), row.end(), want.begin() + i * ldc);
          rnnfast::gemm(m, false, ptr(a), k, pb, /*accumulate=*/true, ptr(want), ldc);
          rnnfast::gemm(m, false, ptr(a), k, pb, /*accumulate=*/false, ptr(got), ldc, ptr(row));
          CHECK(check::bitwise_equal(got, want), "differs from fill + accumulate at byte ",
                check::first_difference(got, want));
        }
  rnnfast::set_num_threads(before_threads);
}

}  // namespace

TEST(gemm, against_triple_loop_float) {
  support::for_each_isa([](Isa isa) {
    Context ctx("float");
    test_gemm<float>(isa);
  });
}

TEST(gemm, against_triple_loop_double) {
  support::for_each_isa([](Isa isa) {
    Context ctx("double");
    test_gemm<double>(isa);
  });
}
