// A cell variant's weights packed for its forward (layer/variant_layer.h: VariantWeights, VariantTeamPacks):
// the products' right-hand sides, packed once by a stepper or found in the weight cache by every call of
// variant_forward, the biases folded as the forward adds them, and the products cut by chunks of units for a
// team sharing each step of a small batch.
#include <algorithm>
#include <cstdint>
#include <memory>

#include "rnnfast/core/buffer.h"
#include "rnnfast/core/isa.h"
#include "rnnfast/core/weight_cache.h"
#include "rnnfast/gemm/gemm.h"
#include "rnnfast/layer/variant_layer.h"
#include "rnnfast/layer/variant_rows.h"

namespace rnnfast {
namespace {

// Tags of the weight cache's keys (core/weight_cache.h) for the variant layer's packs.
enum PackTag : std::int64_t {
  kInputT = 20, kRecurrentT = 21, kResetGatesT = 22, kNewGateT = 23, kProjectionT = 24, kTeamT = 25  // and 26
};

// op(B) = w^T for w [n, k] (PyTorch layout, rows ld apart): found in the weight cache (or packed and cached)
// when `cached`, else packed afresh.
template <typename Scalar>
std::shared_ptr<const PackedMatrix<Scalar>> transposed_pack(bool cached, std::int64_t tag, const Scalar* w,
                                                            std::int64_t n, std::int64_t k, std::int64_t ld) {
  auto pack = [&](PackedMatrix<Scalar>& p) { p.pack(true, k, n, w, ld); };
  if (!cached) {
    auto p = std::make_shared<PackedMatrix<Scalar>>();
    pack(*p);
    return p;
  }
  const PackKey key{tag, n, k, static_cast<std::int64_t>(active_isa()), static_cast<std::int64_t>(sizeof(Scalar))};
  return cached_pack<PackedMatrix<Scalar>>(key, w, n * ld, static_cast<const Scalar*>(nullptr), 0, pack);
}

// Units per chunk of a team's step (VariantTeamPacks): two AVX-512 vectors, so that a small layer still has
// chunks for every member (H=128: 4 chunks) and a chunk's activations run on whole vectors.
constexpr std::int64_t kTeamChunkUnits = 32;

// The products of VariantTeamPacks for the weights of `a` (cell, sizes, w_hh, w_hr, b_hh).
template <typename Scalar>
void pack_team(const VariantForward<Scalar>& a, VariantTeamPacks<Scalar>& t) {
  const std::int64_t H = a.hidden, G = gate_count(a.cell), R = a.proj > 0 ? a.proj : H, P = a.proj;
  const bool reset_before = a.cell == Cell::kGru && !a.variant.reset_after;
  const std::int64_t U = kTeamChunkUnits, gates = reset_before ? 2 : G;
  t.chunk_units = U;
  t.chunks = (H + U - 1) / U;
  Buffer<Scalar> rows(gates * U * R, /*zeroed=*/false);
  for (std::int64_t c = 0; c < t.chunks; ++c) {
    const std::int64_t u0 = c * U, n = std::min(U, H - u0);
    for (std::int64_t g = 0; g < gates; ++g) copy_n(rows.data() + g * n * R, a.w_hh + (g * H + u0) * R, n * R);
    t.recurrent.push_back(std::make_unique<PackedMatrix<Scalar>>());
    t.recurrent.back()->pack(true, R, gates * n, rows.data(), R);
    if (reset_before) {
      t.new_gate.push_back(std::make_unique<PackedMatrix<Scalar>>());
      t.new_gate.back()->pack(true, H, n, a.w_hh + (2 * H + u0) * H, H);
    }
    if (P > 0) {
      const std::int64_t p0 = P * c / t.chunks, p1 = P * (c + 1) / t.chunks;
      t.projection.push_back(std::make_unique<PackedMatrix<Scalar>>());
      t.projection.back()->pack(true, H, p1 - p0, a.w_hr + p0 * H, H);
    }
  }
  if (a.cell == Cell::kGru && a.variant.reset_after && a.b_hh != nullptr) {
    t.kept_bias.resize(3 * H);  // chunk by chunk: [0 (r) | 0 (z) | b_hn] of its units
    for (std::int64_t c = 0; c < t.chunks; ++c) {
      const std::int64_t u0 = c * U, n = std::min(U, H - u0);
      copy_n(t.kept_bias.data() + 3 * u0 + 2 * n, a.b_hh + 2 * H + u0, n);
    }
  }
}

}  // namespace

template <typename Scalar>
std::shared_ptr<const VariantTeamPacks<Scalar>> variant_team_packs(const VariantForward<Scalar>& a, bool cached) {
  const std::int64_t G = gate_count(a.cell), H = a.hidden, R = a.proj > 0 ? a.proj : H;
  if (!cached) {
    auto t = std::make_shared<VariantTeamPacks<Scalar>>();
    pack_team(a, *t);
    return t;
  }
  // One cache entry for all the chunks, keyed by W_hh with W_hr (or b_hh) beside it.
  const Scalar* extra = a.proj > 0 ? a.w_hr : a.b_hh;
  const std::int64_t extra_count = a.proj > 0 ? a.proj * H : (a.b_hh != nullptr ? G * H : 0);
  const PackKey key{kTeamT + (a.variant.reset_after ? 0 : 1), G * H, R, static_cast<std::int64_t>(active_isa()),
                    static_cast<std::int64_t>(sizeof(Scalar))};
  return cached_pack<VariantTeamPacks<Scalar>>(key, a.w_hh, G * H * R, extra, extra_count,
                                               [&](VariantTeamPacks<Scalar>& t) { pack_team(a, t); });
}

template <typename Scalar>
VariantWeights<Scalar>::VariantWeights(const VariantForward<Scalar>& a, bool cached)
    : cell(a.cell), variant(a.variant), input_size(a.input_size), hidden(a.hidden), proj(a.proj) {
  check_variant_args(a);
  const bool gru = a.cell == Cell::kGru;
  const std::int64_t I = a.input_size, H = a.hidden, GH = gate_count(a.cell) * H, R = a.proj > 0 ? a.proj : H;
  // The biases the input projection starts from: b_ih + b_hh, except the GRU's b_hn when the reset gate
  // multiplies it (reset_after), which the recurrent product starts from instead.
  const bool kept_bhn = gru && variant.reset_after && a.b_hh != nullptr;
  if (a.b_ih != nullptr || a.b_hh != nullptr) {
    bias.resize(GH);
    for (std::int64_t j = 0; j < GH; ++j) {
      const bool kept = kept_bhn && j >= 2 * H;
      bias.data()[j] = (a.b_ih != nullptr ? a.b_ih[j] : Scalar(0)) + (a.b_hh != nullptr && !kept ? a.b_hh[j] : Scalar(0));
    }
  }
  if (kept_bhn) {
    kept_bias.resize(GH);  // zeros but for the n block
    copy_n(kept_bias.data() + 2 * H, a.b_hh + 2 * H, H);
  }
  if (a.w_ch != nullptr) {
    w_ch.resize(3 * H, /*zeroed=*/false);
    copy_n(w_ch.data(), a.w_ch, 3 * H);
  }
  w_ih_t = transposed_pack(cached, kInputT, a.w_ih, GH, I, I);
  if (gru && !variant.reset_after) {
    w_rz_t = transposed_pack(cached, kResetGatesT, a.w_hh, 2 * H, H, H);
    w_n_t = transposed_pack(cached, kNewGateT, a.w_hh + 2 * H * H, H, H, H);
  } else {
    w_hh_t = transposed_pack(cached, kRecurrentT, a.w_hh, GH, R, R);
  }
  if (a.proj > 0) w_hr_t = transposed_pack(cached, kProjectionT, a.w_hr, R, H, H);
  if (!cached) team = variant_team_packs(a, false);
}

template struct VariantWeights<float>;
template struct VariantWeights<double>;
template std::shared_ptr<const VariantTeamPacks<float>> variant_team_packs(const VariantForward<float>&, bool);
template std::shared_ptr<const VariantTeamPacks<double>> variant_team_packs(const VariantForward<double>&, bool);

}  // namespace rnnfast
