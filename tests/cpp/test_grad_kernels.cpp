// grad_kernels: the float32 backward kernels (step/gate_grads.h) of each instruction set against the
// portable float64 ones, over widths that hit every vector tail, with guard cells checked for
// out-of-bounds writes; column sums bit-identical to an in-order loop.
#include <algorithm>
#include <cmath>
#include <vector>

#include "check.h"
#include "rnnfast/step/gate_grads.h"
#include "rnnfast/rnnfast.hpp"
#include "test_support.h"

using check::Context;
using check::Rng;
using rnnfast::Cell;
using rnnfast::Isa;
using std::int64_t;
using std::vector;
using support::cell_name;
using support::ptr;

namespace {

// Every output gets kGuard trailing cells of a sentinel that must survive.
constexpr int64_t kGuard = 17;

void test_grad_kernels(Isa isa) {
  const rnnfast::GateGradKernels<float>& gk = rnnfast::kernels_for<rnnfast::GateGradKernels<float>>(isa);
  const rnnfast::GateGradKernels<double>& ref = rnnfast::kernels_for<rnnfast::GateGradKernels<double>>(isa);
  Rng rng(31 + static_cast<int>(isa));
  const float sentinel = 12345.0f;
  for (Cell cell : support::kCells) {
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

}  // namespace

TEST(grad_kernels, float_against_float64) { support::for_each_isa(test_grad_kernels); }
