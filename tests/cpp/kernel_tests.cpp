// Tests of the C++ kernel library alone (no Python), on every instruction set this CPU runs, for float
// and double:
//   gemm        both overloads, all four transpose combinations, accumulate on and off, against a naive
//               triple loop, over shapes that hit every tail of the register tile (mr, nr) and of the
//               cache blocks (mc, kc), with a tolerance derived from k and epsilon;
//   activations exp, sigmoid, tanh against the float64 C library, within the bounds documented in
//               kernels/cells_impl.h (float: 1, 2, 2 ulp; double: the C library itself);
//   layers      layer_forward/layer_backward of every cell against naive_rnn.h (straight loops), with
//               lengths and absent h0/c0/biases; gradients against central finite differences;
//   stepper     bit-identical to layer_forward of the same layers stacked by hand;
//   threads     bit-identical results for 1, 2 and 3 threads;
//   grads       the float32 backward kernels (step/gate_grads.h) of each instruction set against the
//               portable float64 ones, over widths that hit every vector tail, with guard cells
//               checked for out-of-bounds writes; column sums bit-identical to an in-order loop.
// Prints failures to stderr and closes with "N passed, M failed"; exits non-zero on any failure.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "naive_rnn.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/step/activation_kernels.h"
#include "rnnfast/step/gate_grads.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/rnnfast.h"
#include "rnnfast/core/step_scheduler.h"

#include <atomic>
#include <thread>

using check::Context;
using check::Rng;
using rnnfast::Cell;
using rnnfast::Isa;
using std::int64_t;
using std::vector;

namespace {

template <typename T>
const char* type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

const char* cell_name(Cell cell) {
  switch (cell) {
    case Cell::kRnnTanh:
      return "rnn_tanh";
    case Cell::kRnnRelu:
      return "rnn_relu";
    case Cell::kLstm:
      return "lstm";
    case Cell::kGru:
      return "gru";
  }
  return "?";
}

const Cell kCells[] = {Cell::kRnnTanh, Cell::kRnnRelu, Cell::kLstm, Cell::kGru};

// Every instruction set this build knows (isa_name is not "unknown") and this CPU runs; written
// without naming the enumerators, so that a new one (NEON) is tested without a change here.
vector<Isa> available_isas() {
  vector<Isa> isas;
  for (int i = 0; i < 16; ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (std::string(rnnfast::isa_name(isa)) != "unknown" && rnnfast::isa_available(isa)) isas.push_back(isa);
  }
  return isas;
}

// Pointer to a vector's data that is never nullptr (the kernels take nullptr to mean "absent").
template <typename T>
T* ptr(vector<T>& v) {
  static T dummy[1];
  return v.empty() ? dummy : v.data();
}
template <typename T>
const T* ptr(const vector<T>& v) {
  static const T dummy[1] = {};
  return v.empty() ? dummy : v.data();
}

template <typename T>
vector<T> convert(const vector<double>& v) {
  return vector<T>(v.begin(), v.end());
}

template <typename T>
vector<T> nans(int64_t n) {
  return vector<T>(static_cast<std::size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// ---------------------------------------------------------------------------------------------------
// GEMM

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

// ---------------------------------------------------------------------------------------------------
// Activations

vector<float> float_sweep() {
  vector<float> x;
  for (int i = 0; i <= 400000; ++i) x.push_back(float(-100.0 + 200.0 * i / 400000.0));
  for (int i = 0; i <= 200000; ++i) x.push_back(float(-1.0 + 2.0 * i / 200000.0));
  for (double e : {0.0, -0.0, 0.25, -0.25, double(std::nextafter(0.25f, 0.0f)), 86.0, -86.0, 88.0, 1e-30, -1e-30,
                   1e-8, -1e-8, 0.5, -0.5})
    x.push_back(float(e));
  return x;
}

double ref_sigmoid(double x) {
  const double e = std::exp(-std::fabs(x));  // neither overflows nor cancels
  return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

using FloatFn = void (*)(int64_t, const float*, float*);

void test_float_activations(Isa isa) {
  const rnnfast::ActivationKernels<float>& ck = rnnfast::kernels_for<rnnfast::ActivationKernels<float>>(isa);
  const vector<float> x = float_sweep();
  const int64_t n = static_cast<int64_t>(x.size());
  struct Fn {
    const char* name;
    FloatFn fn;
    double (*ref)(double);
    int ulps;
  };
  const Fn fns[] = {{"exp", ck.exp, [](double v) { return std::exp(v); }, 1},
                    {"sigmoid", ck.sigmoid, ref_sigmoid, 2},
                    {"tanh", ck.tanh, [](double v) { return std::tanh(v); }, 2}};
  for (const Fn& f : fns) {
    Context ctx(f.name, " over [-100, 100]");
    vector<float> y(x.size());
    f.fn(n, x.data(), y.data());
    // Relative error in units of 2^-23 where the documented bound applies: exp on [-86, 88], sigmoid
    // for x >= -86 (below, exp's clamp: absolute error under 5e-38), tanh everywhere (tanh(0) = 0).
    double worst = 0.0, worst_abs_left = 0.0;
    int64_t wi = 0;
    bool denormal = false, zero_ok = true;
    for (int64_t i = 0; i < n; ++i) {
      const double want = f.ref(double(x[i])), got = double(y[i]);
      if (std::string(f.name) != "tanh" && y[i] != 0.0f && std::fabs(y[i]) < std::numeric_limits<float>::min())
        denormal = true;
      if (std::string(f.name) == "exp" && (x[i] < -86.0f || x[i] > 88.0f)) continue;
      if (std::string(f.name) == "sigmoid" && x[i] < -86.0f) {
        worst_abs_left = std::max(worst_abs_left, std::fabs(got - want));
        continue;
      }
      if (want == 0.0) {
        zero_ok = zero_ok && got == 0.0;
        continue;
      }
      const double ulps = std::fabs(got - want) / std::fabs(want) / 0x1.0p-23;
      if (!(ulps <= worst)) {
        worst = std::isnan(ulps) ? INFINITY : ulps;
        wi = i;
      }
    }
    CHECK(worst <= f.ulps, f.name, "(", x[wi], ") = ", y[wi], ", want ", f.ref(double(x[wi])), ": ", worst,
          " ulp > the documented ", f.ulps);
    std::printf("  %-6s %-7s max error %.3f ulp (bound %d)\n", rnnfast::isa_name(isa), f.name, worst, f.ulps);
    CHECK(!denormal, f.name, " returned a denormal");
    CHECK(zero_ok, f.name, "(0) is not exactly 0");
    CHECK(worst_abs_left <= 5e-38, f.name, " below -86: absolute error ", worst_abs_left, " > 5e-38");

    // Any count (the vector tail) and any alignment give the same values as the whole sweep.
    bool same = true;
    for (int64_t count = 0; count <= 40; ++count) {
      vector<float> out(count + 1, 7.0f);
      f.fn(count, x.data() + 3 + count, out.data());
      same = same && out[count] == 7.0f &&
             std::memcmp(out.data(), y.data() + 3 + count, count * sizeof(float)) == 0;
    }
    CHECK(same, f.name, ": results for counts 0..40 at odd offsets differ from the bulk call or write past n");
  }

  Context ctx("special values");
  const float inf = INFINITY, nan = NAN;
  const vector<float> special = {nan, inf, -inf, 1e4f, -1e4f, -0.0f, 0.0f};
  vector<float> e(special.size()), s(special.size()), t(special.size());
  ck.exp(7, special.data(), e.data());
  ck.sigmoid(7, special.data(), s.data());
  ck.tanh(7, special.data(), t.data());
  CHECK(std::isnan(e[0]) && std::isnan(s[0]) && std::isnan(t[0]), "NaN must propagate: exp ", e[0], " sigmoid ",
        s[0], " tanh ", t[0]);
  CHECK(std::isfinite(e[1]) && std::isfinite(e[3]), "exp clamps instead of overflowing: exp(inf) = ", e[1]);
  CHECK(e[2] >= std::numeric_limits<float>::min() && e[4] >= std::numeric_limits<float>::min(),
        "exp of a large negative number must be a normal number: exp(-inf) = ", e[2]);
  CHECK(s[1] == 1.0f && s[3] == 1.0f && s[2] <= 5e-38f && s[2] >= 0.0f && s[4] <= 5e-38f,
        "sigmoid(+-inf, +-1e4) = ", s[1], " ", s[2], " ", s[3], " ", s[4]);
  CHECK(t[1] == 1.0f && t[2] == -1.0f && t[3] == 1.0f && t[4] == -1.0f && t[5] == 0.0f && t[6] == 0.0f,
        "tanh(+-inf, +-1e4, -0, 0) = ", t[1], " ", t[2], " ", t[3], " ", t[4], " ", t[5], " ", t[6]);
}

void test_double_activations(Isa isa) {
  const rnnfast::ActivationKernels<double>& ck = rnnfast::kernels_for<rnnfast::ActivationKernels<double>>(isa);
  Context ctx("double activations");
  vector<double> x;
  for (int i = 0; i <= 10000; ++i) x.push_back(-30.0 + 60.0 * i / 10000.0);
  for (double v : {0.0, -0.0, 1e-300, -1e-300, 700.0, -700.0, -745.0, 36.0, -36.0}) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  vector<double> e(n), s(n), t(n);
  ck.exp(n, x.data(), e.data());
  ck.sigmoid(n, x.data(), s.data());
  ck.tanh(n, x.data(), t.data());
  bool exp_same = true, tanh_same = true;
  double worst = 0.0;
  int64_t wi = 0;
  for (int64_t i = 0; i < n; ++i) {
    exp_same = exp_same && e[i] == std::exp(x[i]);
    tanh_same = tanh_same && t[i] == std::tanh(x[i]);
    const double want = ref_sigmoid(x[i]);
    const double ulps = want == 0.0 ? std::fabs(s[i]) : std::fabs(s[i] - want) / want / 0x1.0p-52;
    if (!(ulps <= worst)) worst = std::isnan(ulps) ? INFINITY : ulps, wi = i;
  }
  CHECK(exp_same, "exp differs from the C library's std::exp");
  CHECK(tanh_same, "tanh differs from the C library's std::tanh");
  CHECK(worst <= 4.0, "sigmoid(", x[wi], ") = ", s[wi], ", want ", ref_sigmoid(x[wi]), ": ", worst, " ulp > 4");
  const double nan = NAN;
  double out[3];
  ck.exp(1, &nan, &out[0]);
  ck.sigmoid(1, &nan, &out[1]);
  ck.tanh(1, &nan, &out[2]);
  CHECK(std::isnan(out[0]) && std::isnan(out[1]) && std::isnan(out[2]), "NaN must propagate");
}

// ---------------------------------------------------------------------------------------------------
// Layers

// Which of the optional arrays are given as nullptr.
enum Absent : unsigned {
  kNoH0 = 1,
  kNoC0 = 2,
  kNoBIh = 4,
  kNoBHh = 8,
  kNoDOut = 16,
  kNoDHn = 32,
  kNoDCn = 64,
};

struct LayerCase {
  int64_t S, B, I, H;
  vector<int64_t> lengths;  // empty: none
  unsigned absent;
  bool full_fd;  // every gradient element by finite differences (else a sample and one direction)
};

// Inputs are rounded to float so that the float and double kernels see the same numbers.
double rounded(double v) { return double(float(v)); }

naive::Problem make_problem(Cell cell, const LayerCase& lc, Rng& rng) {
  naive::Problem p;
  p.cell = cell;
  p.S = lc.S, p.B = lc.B, p.I = lc.I, p.H = lc.H;
  const int64_t S = lc.S, B = lc.B, I = lc.I, H = lc.H, GH = p.gates() * H;
  auto fill = [&](vector<double>& v, int64_t count, double scale, bool absent) {
    v.assign(count, 0.0);
    if (!absent)
      for (double& e : v) e = rounded(scale * rng.uniform());
  };
  // Pre-activations of order one: weights scaled by 1/sqrt(fan-in).
  fill(p.x, S * B * I, 1.0, false);
  fill(p.w_ih, GH * I, 1.5 / std::sqrt(double(std::max<int64_t>(I, 1))), false);
  fill(p.w_hh, GH * H, 1.5 / std::sqrt(double(std::max<int64_t>(H, 1))), false);
  fill(p.h0, B * H, 1.0, lc.absent & kNoH0);
  fill(p.c0, B * H, 1.0, (lc.absent & kNoC0) || !p.lstm());
  fill(p.b_ih, GH, 0.5, lc.absent & kNoBIh);
  fill(p.b_hh, GH, 0.5, lc.absent & kNoBHh);
  fill(p.d_out, S * B * H, 1.0, lc.absent & kNoDOut);
  fill(p.d_h_n, B * H, 1.0, lc.absent & kNoDHn);
  fill(p.d_c_n, B * H, 1.0, (lc.absent & kNoDCn) || !p.lstm());
  p.has_h0 = !(lc.absent & kNoH0);
  p.has_c0 = !(lc.absent & kNoC0) && p.lstm();
  p.has_b_ih = !(lc.absent & kNoBIh);
  p.has_b_hh = !(lc.absent & kNoBHh);
  p.has_d_out = !(lc.absent & kNoDOut);
  p.has_d_h_n = !(lc.absent & kNoDHn);
  p.has_d_c_n = !(lc.absent & kNoDCn) && p.lstm();
  p.lengths = lc.lengths;
  return p;
}

std::string describe(const LayerCase& lc, unsigned absent) {
  std::string s = check::str("S=", lc.S, " B=", lc.B, " I=", lc.I, " H=", lc.H);
  if (!lc.lengths.empty()) {
    s += " lengths=";
    for (std::size_t b = 0; b < lc.lengths.size(); ++b) s += (b ? "," : "") + std::to_string(lc.lengths[b]);
  }
  const char* names[] = {"h0", "c0", "b_ih", "b_hh", "d_out", "d_h_n", "d_c_n"};
  for (int q = 0; q < 7; ++q)
    if (absent & (1u << q)) s += check::str(" no ", names[q]);
  return s;
}

template <typename T>
struct KernelForward {
  vector<T> out, h_n, c_n, ws;
};

// The problem's inputs converted to T, kept alive for the pointers handed to the kernels.
template <typename T>
struct Inputs {
  vector<T> x, h0, c0, w_ih, w_hh, b_ih, b_hh, d_out, d_h_n, d_c_n;
  explicit Inputs(const naive::Problem& p)
      : x(convert<T>(p.x)), h0(convert<T>(p.h0)), c0(convert<T>(p.c0)), w_ih(convert<T>(p.w_ih)),
        w_hh(convert<T>(p.w_hh)), b_ih(convert<T>(p.b_ih)), b_hh(convert<T>(p.b_hh)), d_out(convert<T>(p.d_out)),
        d_h_n(convert<T>(p.d_h_n)), d_c_n(convert<T>(p.d_c_n)) {}
};

// The fields LayerForward and LayerBackward share: sizes, input sequence, initial state, weights.
template <typename Args, typename T>
void set_common_inputs(Args& a, const naive::Problem& p, Inputs<T>& in) {
  a.cell = p.cell;
  a.seq_len = p.S, a.batch = p.B, a.input_size = p.I, a.hidden = p.H;
  a.x = ptr(in.x);
  a.h0 = p.has_h0 ? ptr(in.h0) : nullptr;
  a.c0 = p.has_c0 ? ptr(in.c0) : nullptr;
  a.w_ih = ptr(in.w_ih);
  a.w_hh = ptr(in.w_hh);
}

template <typename T>
KernelForward<T> kernel_forward(const naive::Problem& p, bool training) {
  Inputs<T> in(p);
  const int64_t W = rnnfast::workspace_width(p.cell, p.H);
  KernelForward<T> f{nans<T>(p.S * p.B * p.H), nans<T>(p.B * p.H), nans<T>(p.lstm() ? p.B * p.H : 0),
                     nans<T>(training ? p.S * p.B * W : 0)};  // NaN: anything left unwritten shows
  rnnfast::LayerForward<T> a;
  set_common_inputs(a, p, in);
  a.b_ih = p.has_b_ih ? ptr(in.b_ih) : nullptr;
  a.b_hh = p.has_b_hh ? ptr(in.b_hh) : nullptr;
  a.out = ptr(f.out);
  a.h_n = ptr(f.h_n);
  a.c_n = p.lstm() ? ptr(f.c_n) : nullptr;
  a.workspace = training && W > 0 ? ptr(f.ws) : nullptr;
  a.lengths = p.lengths.empty() ? nullptr : p.lengths.data();
  rnnfast::layer_forward(a);
  return f;
}

// Gradients in the order of naive::inputs (d_x, d_h0, [d_c0], d_w_ih, d_w_hh, d_b_ih, d_b_hh).
template <typename T>
vector<vector<T>> kernel_backward(const naive::Problem& p, const KernelForward<T>& f) {
  Inputs<T> in(p);
  const int64_t GH = p.gates() * p.H;
  vector<T> d_x = nans<T>(p.S * p.B * p.I), d_h0 = nans<T>(p.B * p.H), d_c0 = nans<T>(p.lstm() ? p.B * p.H : 0),
            d_w_ih = nans<T>(GH * p.I), d_w_hh = nans<T>(GH * p.H), d_b_ih = nans<T>(GH), d_b_hh = nans<T>(GH);
  rnnfast::LayerBackward<T> a;
  set_common_inputs(a, p, in);
  a.out = ptr(f.out);
  a.workspace = f.ws.empty() ? nullptr : f.ws.data();
  a.d_out = p.has_d_out ? ptr(in.d_out) : nullptr;
  a.d_h_n = p.has_d_h_n ? ptr(in.d_h_n) : nullptr;
  a.d_c_n = p.has_d_c_n ? ptr(in.d_c_n) : nullptr;
  a.d_x = ptr(d_x);
  a.d_h0 = ptr(d_h0);
  a.d_c0 = p.lstm() ? ptr(d_c0) : nullptr;
  a.d_w_ih = ptr(d_w_ih);
  a.d_w_hh = ptr(d_w_hh);
  a.d_b_ih = ptr(d_b_ih);
  a.d_b_hh = ptr(d_b_hh);
  a.lengths = p.lengths.empty() ? nullptr : p.lengths.data();
  rnnfast::layer_backward(a);
  vector<vector<T>> g = {d_x, d_h0};
  if (p.lstm()) g.push_back(d_c0);
  g.insert(g.end(), {d_w_ih, d_w_hh, d_b_ih, d_b_hh});
  return g;
}

// The gradient references of one problem, computed once for every instruction set and type: all
// elements (full) or a sample of elements per input plus one directional derivative.
struct GradientReference {
  vector<vector<double>> full;                            // per input, every element
  vector<vector<std::pair<std::size_t, double>>> sample;  // per input, (index, value)
  vector<vector<double>> direction;                       // per input, a random direction
  double directional = 0.0;                               // d loss / d step along `direction`
};

GradientReference gradient_reference(naive::Problem p, bool full, Rng& rng) {
  GradientReference r;
  const auto in = naive::inputs(p);
  for (std::size_t q = 0; q < in.size(); ++q) {
    const std::size_t count = in[q].second->size();
    if (full) {
      r.full.emplace_back();
      for (std::size_t i = 0; i < count; ++i) r.full.back().push_back(naive::finite_difference(p, q, i));
    } else {
      r.sample.emplace_back();
      for (int s = 0; s < 6 && count > 0; ++s) {
        const std::size_t i = static_cast<std::size_t>(rng.below(static_cast<int64_t>(count)));
        r.sample.back().push_back({i, naive::finite_difference(p, q, i)});
      }
    }
  }
  // Directional derivative: (loss(p + h v) - loss(p - h v)) / 2h.
  naive::Problem up = p, down = p;
  for (naive::Problem* x : {&up, &down}) x->has_h0 = x->has_c0 = x->has_b_ih = x->has_b_hh = true;
  const auto in_up = naive::inputs(up), in_down = naive::inputs(down);
  const double step = 1e-6;
  for (std::size_t q = 0; q < in.size(); ++q) {
    r.direction.emplace_back();
    for (std::size_t i = 0; i < in[q].second->size(); ++i) {
      const double v = rng.uniform();
      r.direction.back().push_back(v);
      (*in_up[q].second)[i] += step * v;
      (*in_down[q].second)[i] -= step * v;
    }
  }
  r.directional = (naive::loss(up) - naive::loss(down)) / (2 * step);
  return r;
}

// Compares the forward arrays; `tolerance` relative to max(|want|, 1).
template <typename T>
void compare_forward(const KernelForward<T>& f, const naive::Forward& ref, double tolerance) {
  const struct {
    const char* name;
    const vector<T>& got;
    const vector<double>& want;
  } arrays[] = {{"out", f.out, ref.out}, {"h_n", f.h_n, ref.h_n}, {"c_n", f.c_n, ref.c_n}, {"workspace", f.ws, ref.ws}};
  for (const auto& [name, got, want] : arrays) {
    const check::Worst w = check::worst_relative(got, want, 1.0);
    CHECK(w.error <= tolerance, "forward ", name, ": ", check::describe(w), " > ", tolerance);
  }
}

// Float results against float64 (DESIGN.md: within 1e-5 relative): forward values relative to
// max(|want|, 1), as states are of order one; gradients relative to the larger of |want| and a tenth of
// the array's largest magnitude, as they are sums over all steps whose terms may cancel. Measured
// maxima: about 7e-7 forward, 3e-6 gradients.
constexpr double kFloatTolerance = 1e-5;

// One problem on the active instruction set in T: forward against the naive reference; backward against
// finite differences (double; its gradients are kept in *keep) or against the double gradients (float).
template <typename T>
void test_layer_case(const naive::Problem& p, const naive::Forward& ref, const GradientReference& gref,
                     const vector<vector<double>>& grads_f64, vector<vector<double>>* keep) {
  const bool is_double = sizeof(T) == 8;
  const KernelForward<T> f = kernel_forward<T>(p, true);
  compare_forward(f, ref, is_double ? 1e-12 : kFloatTolerance);
  const KernelForward<T> inference = kernel_forward<T>(p, false);
  CHECK(check::bitwise_equal(inference.out, f.out) && check::bitwise_equal(inference.h_n, f.h_n) &&
            check::bitwise_equal(inference.c_n, f.c_n),
        "forward without a workspace differs from the training forward");

  const vector<vector<T>> g = kernel_backward<T>(p, f);
  naive::Problem names = p;
  const auto in = naive::inputs(names);
  if (is_double) {
    // Against finite differences of the naive forward: every element, or the sample and a direction.
    for (std::size_t q = 0; q < in.size(); ++q) {
      if (!gref.full.empty()) {
        const check::Worst w = check::worst_relative(g[q], gref.full[q], 1.0);
        CHECK(w.error <= 1e-6, "d_", in[q].first, " vs finite differences: ", check::describe(w));
      } else {
        double worst = 0.0;
        for (const auto& [i, want] : gref.sample[q])
          worst = std::max(worst, std::fabs(double(g[q][i]) - want) / std::max(1.0, std::fabs(want)));
        CHECK(worst <= 1e-6, "d_", in[q].first, " vs finite differences at sampled elements: error ", worst);
      }
    }
    double dot = 0.0, magnitude = 0.0;
    for (std::size_t q = 0; q < in.size(); ++q)
      for (std::size_t i = 0; i < g[q].size(); ++i) {
        dot += double(g[q][i]) * gref.direction[q][i];
        magnitude += std::fabs(double(g[q][i]) * gref.direction[q][i]);
      }
    CHECK(std::fabs(dot - gref.directional) <= 1e-6 * (magnitude + 1.0), "directional derivative ", dot,
          ", finite difference ", gref.directional, " (sum |g v| ", magnitude, ")");
    if (keep != nullptr) {
      keep->clear();
      for (const vector<T>& v : g) keep->push_back(vector<double>(v.begin(), v.end()));
    }
  } else {
    for (std::size_t q = 0; q < in.size(); ++q) {
      double largest = 0.0;
      for (double v : grads_f64[q]) largest = std::max(largest, std::fabs(v));
      const check::Worst w = check::worst_relative(g[q], grads_f64[q], std::max(0.1 * largest, 1e-6));
      CHECK(w.error <= kFloatTolerance, "float d_", in[q].first, " vs double: ", check::describe(w));
    }
  }
}

// Lengths out of [0, S] or not sorted non-increasing are rejected with std::invalid_argument.
void test_bad_lengths() {
  Rng rng(3);
  for (const vector<int64_t>& lengths : {vector<int64_t>{2, 3}, vector<int64_t>{4, 1}, vector<int64_t>{3, -1}}) {
    naive::Problem p = make_problem(Cell::kGru, {3, 2, 2, 3, lengths, 0, false}, rng);
    bool forward_threw = false, backward_threw = false;
    try {
      kernel_forward<double>(p, true);
    } catch (const std::invalid_argument&) {
      forward_threw = true;
    }
    p.lengths.clear();
    const KernelForward<double> f = kernel_forward<double>(p, true);
    p.lengths = lengths;
    try {
      kernel_backward<double>(p, f);
    } catch (const std::invalid_argument&) {
      backward_threw = true;
    }
    CHECK(forward_threw && backward_threw, "lengths ", lengths[0], ",", lengths[1],
          " with S=3 must throw std::invalid_argument (forward ", forward_threw, ", backward ", backward_threw, ")");
  }
}

void test_layers(const vector<Isa>& isas) {
  // S, B, I, H, lengths, absent arrays, full finite differences.
  const vector<LayerCase> cases = {
      {3, 2, 3, 2, {}, 0, true},
      {4, 4, 2, 3, {4, 3, 1, 0}, kNoC0 | kNoBIh | kNoDHn, true},
      {2, 3, 1, 1, {2, 0, 0}, kNoH0 | kNoBIh | kNoBHh, true},
      {7, 1, 4, 5, {}, kNoDOut, true},                       // batch 1: matrix-vector steps
      {3, 2, 3, 4, {0, 0}, 0, true},                         // every length 0
      {0, 2, 3, 4, {}, kNoC0 | kNoDCn, true},                // no steps: h_n = h0
      {3, 0, 2, 3, {}, 0, true},                             // empty batch
      {5, 6, 19, 21, {5, 5, 4, 2, 2, 1}, kNoBHh, false},     // tails of every vector width
      {6, 9, 40, 37, {}, kNoH0 | kNoC0, false},              // more rows than a tile
      {3, 5, 260, 20, {3, 2, 2, 2, 0}, kNoDCn, false},       // input deeper than kc
      {70, 61, 3, 5, {}, kNoH0, false},                      // S*B > 4096: weight gradients in chunks
  };
  Rng rng(7);
  for (Cell cell : kCells) {
    for (const LayerCase& lc : cases) {
      const naive::Problem p = make_problem(cell, lc, rng);
      Context ctx(cell_name(cell), " ", describe(lc, lc.absent));
      const naive::Forward ref = naive::forward(p);
      const GradientReference gref = gradient_reference(p, lc.full_fd, rng);
      for (Isa isa : isas) {
        rnnfast::set_active_isa(isa);
        vector<vector<double>> grads_f64;
        {
          Context c2(rnnfast::isa_name(isa), " double");
          test_layer_case<double>(p, ref, gref, grads_f64, &grads_f64);
        }
        Context c2(rnnfast::isa_name(isa), " float");
        test_layer_case<float>(p, ref, gref, grads_f64, nullptr);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Stepper

// A stack of L layers run by the Stepper in chunks, against layer_forward layer by layer (layer k+1
// takes layer k's out): outputs and final state bit-identical.
template <typename T>
void test_stepper_case(Cell cell, int64_t B, int64_t I, int64_t H, int64_t L, int64_t steps, bool biases,
                       bool state, Rng& rng) {
  Context ctx("stepper ", cell_name(cell), " ", type_name<T>(), " B=", B, " I=", I, " H=", H, " L=", L,
              " steps=", steps, biases ? "" : " no biases", state ? "" : " zero state");
  const int64_t GH = rnnfast::gate_count(cell) * H;
  const bool lstm = cell == Cell::kLstm;
  auto random = [&](int64_t n, double scale) {
    vector<T> v(n);
    for (T& e : v) e = T(scale * rng.uniform());
    return v;
  };
  vector<vector<T>> w_ih, w_hh, b_ih, b_hh;
  vector<rnnfast::StepperLayer<T>> layers;
  for (int64_t k = 0; k < L; ++k) {
    const int64_t in = k == 0 ? I : H;
    w_ih.push_back(random(GH * in, 1.0 / std::sqrt(double(in))));
    w_hh.push_back(random(GH * H, 1.0 / std::sqrt(double(H))));
    b_ih.push_back(random(GH, 0.5));
    b_hh.push_back(random(GH, 0.5));
  }
  for (int64_t k = 0; k < L; ++k)
    layers.push_back({k == 0 ? I : H, w_ih[k].data(), w_hh[k].data(), biases ? b_ih[k].data() : nullptr,
                      biases ? b_hh[k].data() : nullptr});
  const vector<T> x = random(steps * B * I, 1.0), h0 = random(L * B * H, 1.0), c0 = random(L * B * H, 1.0);

  rnnfast::Stepper<T> stepper(cell, H, B, layers);
  stepper.reset(state ? h0.data() : nullptr, state && lstm ? c0.data() : nullptr);
  vector<T> y(steps * B * H);
  for (int64_t t = 0, chunk = 1; t < steps; t += chunk, chunk *= 2) {  // chunks of 1, 2, 4, ...
    chunk = std::min(chunk, steps - t);
    stepper.run(chunk, x.data() + t * B * I, y.data() + t * B * H);
  }

  vector<T> input = x, h_n_all, c_n_all;
  for (int64_t k = 0; k < L; ++k) {
    vector<T> out(steps * B * H), h_n(B * H), c_n(B * H);
    rnnfast::LayerForward<T> a;
    a.cell = cell;
    a.seq_len = steps, a.batch = B, a.input_size = k == 0 ? I : H, a.hidden = H;
    a.x = input.data();
    a.h0 = state ? h0.data() + k * B * H : nullptr;
    a.c0 = state && lstm ? c0.data() + k * B * H : nullptr;
    a.w_ih = w_ih[k].data();
    a.w_hh = w_hh[k].data();
    a.b_ih = biases ? b_ih[k].data() : nullptr;
    a.b_hh = biases ? b_hh[k].data() : nullptr;
    a.out = out.data();
    a.h_n = h_n.data();
    a.c_n = lstm ? c_n.data() : nullptr;
    rnnfast::layer_forward(a);
    input = out;
    h_n_all.insert(h_n_all.end(), h_n.begin(), h_n.end());
    c_n_all.insert(c_n_all.end(), c_n.begin(), c_n.end());
  }
  CHECK(check::bitwise_equal(y, input), "outputs differ from layer_forward at element ",
        check::first_difference(y, input), " (", y[check::first_difference(y, input) % y.size()], " vs ",
        input[check::first_difference(y, input) % y.size()], ")");
  const vector<T> h(stepper.h(), stepper.h() + L * B * H), c(stepper.c(), stepper.c() + L * B * H);
  CHECK(check::bitwise_equal(h, h_n_all), "state h differs from layer_forward's h_n at element ",
        check::first_difference(h, h_n_all));
  if (lstm)
    CHECK(check::bitwise_equal(c, c_n_all), "state c differs from layer_forward's c_n at element ",
          check::first_difference(c, c_n_all));

  // reset() restarts: the whole sequence in one call gives the same outputs again.
  stepper.reset(state ? h0.data() : nullptr, state && lstm ? c0.data() : nullptr);
  vector<T> again(steps * B * H);
  stepper.run(steps, x.data(), again.data());
  CHECK(check::bitwise_equal(again, y), "after reset, one call of ", steps, " steps differs from chunked calls");
}

template <typename T>
void test_stepper(Rng& rng) {
  for (Cell cell : kCells) {
    test_stepper_case<T>(cell, 3, 5, 11, 2, 7, true, true, rng);
    test_stepper_case<T>(cell, 1, 3, 4, 3, 5, false, false, rng);
    test_stepper_case<T>(cell, 7, 33, 18, 2, 4, true, true, rng);
  }
}

// ---------------------------------------------------------------------------------------------------
// Threads

template <typename T>
void append(vector<unsigned char>& blob, const vector<T>& v) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  blob.insert(blob.end(), p, p + v.size() * sizeof(T));
}

// Results of a GEMM large enough to be split over row blocks and runs of panels, the forward and
// backward of every cell with lengths, and a stepper; each as raw bytes, named.
template <typename T>
vector<std::pair<std::string, vector<unsigned char>>> threaded_results(Isa isa) {
  vector<std::pair<std::string, vector<unsigned char>>> results;
  const rnnfast::MicroKernel<T>& mk = rnnfast::micro_kernel<T>(isa);
  Rng rng(99);
  {
    const int64_t m = mk.mc + 3, n = 16 * mk.nr + 5, k = mk.kc + 9;
    vector<T> a(m * k), b(k * n), c(m * n);
    for (T& v : a) v = T(rng.uniform());
    for (T& v : b) v = T(rng.uniform());
    rnnfast::gemm(m, n, k, false, a.data(), k, false, b.data(), n, false, c.data(), n);
    results.push_back({check::str("gemm ", m, "x", n, "x", k), {}});
    append(results.back().second, c);
  }
  const LayerCase lc{5, 7, 13, 19, {5, 5, 4, 3, 3, 1, 0}, 0, false};
  for (Cell cell : kCells) {
    const naive::Problem p = make_problem(cell, lc, rng);
    const KernelForward<T> f = kernel_forward<T>(p, true);
    results.push_back({check::str(cell_name(cell), " forward ", describe(lc, 0)), {}});
    for (const vector<T>* v : {&f.out, &f.h_n, &f.c_n, &f.ws}) append(results.back().second, *v);
    results.push_back({check::str(cell_name(cell), " backward ", describe(lc, 0)), {}});
    for (const vector<T>& v : kernel_backward<T>(p, f)) append(results.back().second, v);

    const int64_t B = 6, I = 9, H = 10, GH = rnnfast::gate_count(cell) * H, steps = 3;
    vector<T> w_ih(GH * I), w_hh(GH * H), x(steps * B * I), y(steps * B * H);
    for (vector<T>* v : {&w_ih, &w_hh, &x})
      for (T& e : *v) e = T(0.4 * rng.uniform());
    rnnfast::Stepper<T> stepper(cell, H, B, {{I, w_ih.data(), w_hh.data(), nullptr, nullptr}});
    stepper.run(steps, x.data(), y.data());
    results.push_back({check::str(cell_name(cell), " stepper"), {}});
    append(results.back().second, y);
  }
  return results;
}

template <typename T>
void test_threads(Isa isa) {
  const int before = rnnfast::num_threads();
  rnnfast::set_num_threads(1);
  const auto one = threaded_results<T>(isa);
  // The results on 2 and 3 threads under the policies set, against one thread's, bit for bit.
  auto compare_with_one = [&](const std::string& policies) {
    for (int threads : {2, 3}) {
      rnnfast::set_num_threads(threads);
      const auto many = threaded_results<T>(isa);
      for (std::size_t i = 0; i < one.size(); ++i)
        CHECK(check::bitwise_equal(many[i].second, one[i].second), type_name<T>(), " ", one[i].first, ": ", threads,
              " threads, ", policies, " differ from 1 thread at byte ",
              check::first_difference(many[i].second, one[i].second));
    }
  };
  // Every way of sharing the forward's time loop (batch slices; unit blocks through the step
  // scheduler, which also runs when a member is late or never starts) gives the same bits.
  using rnnfast::SplitPolicy;
  for (SplitPolicy policy : {SplitPolicy::kAuto, SplitPolicy::kBatch, SplitPolicy::kHidden}) {
    rnnfast::set_split_policy(policy);
    compare_with_one(check::str("split ", static_cast<int>(policy)));
  }
  // And every placement of the input projection, in a team sharing the steps (the forward's rows
  // are the whole batch there, so 'ahead' runs too, with ragged lengths and a last run of one step).
  using rnnfast::ProjectionPolicy;
  rnnfast::set_split_policy(SplitPolicy::kHidden);
  for (ProjectionPolicy projection :
       {ProjectionPolicy::kUpFront, ProjectionPolicy::kPerStep, ProjectionPolicy::kInStep, ProjectionPolicy::kAhead}) {
    rnnfast::set_projection_policy(projection);
    compare_with_one(check::str("hidden split, projection ", static_cast<int>(projection)));
  }
  rnnfast::set_projection_policy(ProjectionPolicy::kAuto);
  rnnfast::set_split_policy(SplitPolicy::kAuto);
  rnnfast::set_num_threads(before);
}

// The step scheduler alone: every (block, step) is done exactly once, no block of step t+1 starts
// before every block of step t is done, whatever the team size, and with a member that starts only
// after the others have finished (the shape of a descheduled thread).
void test_step_scheduler() {
  for (int members : {1, 2, 3, 5}) {
    for (int64_t blocks : {1, 2, 7}) {
      const int64_t steps = 40;
      rnnfast::StepScheduler scheduler(members, blocks);
      vector<std::atomic<int>> done_count(static_cast<std::size_t>(steps * blocks));
      std::atomic<int64_t> finished_blocks{0};
      std::atomic<bool> order_ok{true}, after_own_ok{true};
      vector<int> after_own_calls(static_cast<std::size_t>(members * steps));  // each member's own
      auto member_run = [&](int m) {
        for (int64_t t = 0; t < steps; ++t) {
          vector<int64_t> mine;  // the blocks this member did in step t, in order
          scheduler.run_step(
              m, t,
              [&](int64_t b) {
                if (finished_blocks.load() < t * blocks) order_ok = false;  // step t-1 not complete
                done_count[static_cast<std::size_t>(t * blocks + b)]++;
                finished_blocks++;
                mine.push_back(b);
              },
              [&] {  // within step t: after step t-1 is complete, before any block of t+1
                after_own_calls[static_cast<std::size_t>(m * steps + t)]++;
                if (finished_blocks.load() < t * blocks) after_own_ok = false;
                for (int64_t b : mine)
                  if (b < scheduler.own_begin(m) || b >= scheduler.own_end(m)) after_own_ok = false;  // not yet
              });
        }
      };
      vector<std::thread> threads;
      for (int m = 0; m + 1 < members; ++m) threads.emplace_back(member_run, m);
      for (std::thread& th : threads) th.join();
      member_run(members - 1);  // the last member arrives after the others have finished
      bool once = true;
      for (auto& c : done_count) once = once && c.load() == 1;
      CHECK(once, "step scheduler: ", members, " members, ", blocks, " blocks: a block-step done twice or never");
      CHECK(order_ok.load(), "step scheduler: ", members, " members, ", blocks, " blocks: a step began too early");
      CHECK(std::all_of(after_own_calls.begin(), after_own_calls.end(), [](int n) { return n == 1; }),
            "step scheduler: ", members, " members, ", blocks, " blocks: after_own not called once per step");
      CHECK(after_own_ok.load(), "step scheduler: ", members, " members, ", blocks,
            " blocks: after_own called out of place (before step t-1 was complete, or after taking others' blocks)");
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Backward kernels

// Every output gets kGuard trailing cells of a sentinel that must survive.
constexpr int64_t kGuard = 17;

void test_grad_kernels(Isa isa) {
  const rnnfast::GateGradKernels<float>& gk = rnnfast::kernels_for<rnnfast::GateGradKernels<float>>(isa);
  const rnnfast::GateGradKernels<double>& ref = rnnfast::kernels_for<rnnfast::GateGradKernels<double>>(isa);
  Rng rng(31 + static_cast<int>(isa));
  const float sentinel = 12345.0f;
  for (Cell cell : kCells) {
    for (int64_t H : {1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 37, 64}) {
      for (int64_t rows : {1, 3}) {
        for (bool with_d_out : {false, true}) {
          Context ctx("grads ", cell_name(cell), " H=", H, " rows=", rows, with_d_out ? " d_out" : "");
          const int64_t GH = rnnfast::gate_count(cell) * H, W = rnnfast::workspace_width(cell, H);
          const int64_t c_stride = W > 0 ? W : H;
          auto random = [&](int64_t n, double lo, double hi) {
            vector<float> v(static_cast<std::size_t>(n));
            for (float& e : v) e = float(rng.uniform(lo, hi));
            return v;
          };
          // Activated gates lie in (0, 1) or (-1, 1): draw the workspace in (-1, 1) (relu: h of both signs).
          const vector<float> dh = random(rows * H, -1, 1), d_out = random(rows * H, -1, 1),
                              h_t = random(rows * H, -1, 1), h_prev = random(rows * H, -1, 1),
                              ws = random(rows * W, -1, 1), c_prev = random(rows * c_stride, -2, 2),
                              dc0 = random(rows * H, -1, 1);
          auto guarded = [&](int64_t n) { return vector<float>(static_cast<std::size_t>(n + kGuard), sentinel); };
          vector<float> dc = guarded(rows * H), dg = guarded(rows * GH), dgh = guarded(rows * GH),
                        dhp = guarded(rows * H);
          std::copy(dc0.begin(), dc0.end(), dc.begin());
          const bool gru = cell == Cell::kGru;
          gk.gate_gradients[static_cast<int>(cell)](rows, H, dh.data(), with_d_out ? d_out.data() : nullptr, dc.data(), h_t.data(),
                            h_prev.data(), ptr(ws), c_prev.data(), c_stride, dg.data(), gru ? dgh.data() : dg.data(),
                            dhp.data());
          auto wide = [](const vector<float>& v) { return vector<double>(v.begin(), v.end()); };
          const vector<double> ddh = wide(dh), ddo = wide(d_out), dht = wide(h_t), dhpv = wide(h_prev),
                               dws = wide(ws), dcp = wide(c_prev);
          vector<double> rdc = wide(dc0), rdg(rows * GH), rdgh(rows * GH), rdhp(rows * H);
          ref.gate_gradients[static_cast<int>(cell)](rows, H, ddh.data(), with_d_out ? ddo.data() : nullptr, rdc.data(), dht.data(),
                             dhpv.data(), ptr(dws), dcp.data(), c_stride, rdg.data(), gru ? rdgh.data() : rdg.data(),
                             rdhp.data());
          auto compare = [&](const char* name, const vector<float>& got, const vector<double>& want) {
            for (std::size_t i = 0; i < want.size(); ++i)
              CHECK(std::fabs(got[i] - want[i]) <= 1e-5 * (1.0 + std::fabs(want[i])), name, "[", i, "] = ", got[i],
                    ", float64 gives ", want[i]);
            for (std::size_t i = want.size(); i < got.size(); ++i)
              CHECK(got[i] == sentinel, name, ": written out of bounds at ", i);
          };
          compare("d_gates", dg, rdg);
          if (cell == Cell::kLstm) compare("dc", dc, rdc);
          if (gru) {
            compare("d_gates_hh", dgh, rdgh);
            compare("dh_prev", dhp, rdhp);
          }
        }
      }
    }
  }
  // Column sums: pure additions in row order, so bit-identical to the plain loop.
  for (int64_t cols : {1, 5, 16, 31, 64, 65, 100, 129}) {
    for (int64_t rows : {0, 1, 7, 50}) {
      Context ctx("column_sums cols=", cols, " rows=", rows);
      const int64_t ld = cols + 3;
      vector<float> src(static_cast<std::size_t>(rows * ld));
      for (float& e : src) e = float(rng.uniform());
      vector<float> got(static_cast<std::size_t>(cols + kGuard), sentinel), want(static_cast<std::size_t>(cols), 0.0f);
      gk.column_sums(rows, cols, src.data(), ld, got.data());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) want[j] += src[r * ld + j];
      for (int64_t j = 0; j < cols; ++j) CHECK(got[j] == want[j], "sum[", j, "] = ", got[j], ", expected ", want[j]);
      for (int64_t j = cols; j < cols + kGuard; ++j) CHECK(got[j] == sentinel, "written out of bounds at ", j);
    }
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  const vector<Isa> isas = available_isas();
  std::printf("instruction sets:");
  for (Isa isa : isas) std::printf(" %s", rnnfast::isa_name(isa));
  std::printf(" (threads: %d)\n", rnnfast::num_threads());
  CHECK(!isas.empty() && isas.front() == Isa::kGeneric, "the generic instruction set must always be available");
  try {
    for (Isa isa : isas) {
      rnnfast::set_active_isa(isa);
      Context ctx(rnnfast::isa_name(isa));
      const long failed_before = check::tally().failed, passed_before = check::tally().passed;
      {
        Context c2("float");
        test_gemm<float>(isa);
      }
      {
        Context c2("double");
        test_gemm<double>(isa);
      }
      test_float_activations(isa);
      test_double_activations(isa);
      Rng rng(5);
      test_stepper<float>(rng);
      test_stepper<double>(rng);
      test_threads<float>(isa);
      test_threads<double>(isa);
      test_grad_kernels(isa);
      std::printf("%s: gemm, activations, stepper, threads, grads: %s, %ld checks (%.1f s)\n", rnnfast::isa_name(isa),
                  check::tally().failed == failed_before ? "ok" : "FAILED",
                  check::tally().passed + check::tally().failed - passed_before - failed_before, seconds_since(start));
    }
    const long failed_before = check::tally().failed, passed_before = check::tally().passed;
    test_layers(isas);
    test_bad_lengths();
    test_step_scheduler();
    std::printf("layers on every instruction set, step scheduler: %s, %ld checks (%.1f s)\n",
                check::tally().failed == failed_before ? "ok" : "FAILED",
                check::tally().passed + check::tally().failed - passed_before - failed_before, seconds_since(start));
  } catch (const std::exception& e) {
    CHECK(false, "unexpected exception: ", e.what());
  }
  return check::finish();
}
