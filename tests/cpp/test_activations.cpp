// activations: the vector exp, sigmoid and tanh of each instruction set against the float64 C library,
// within the bounds documented in kernels/cells_impl.h (float: 1, 2, 2 ulp; double: the C library
// itself, sigmoid within 4 ulp), with special values (NaN, infinities, signed zeros, huge arguments) and
// every vector tail and alignment.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/step/activation_kernels.h"
#include "test_support.h"

using check::Context;
using rnnfast::Isa;
using std::int64_t;
using std::vector;

namespace {

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

}  // namespace

TEST(activations, float_within_documented_ulps) { support::for_each_isa(test_float_activations); }

TEST(activations, double_as_the_c_library) { support::for_each_isa(test_double_activations); }
