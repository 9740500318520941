// What the variant layer's forward and backward share (layer/variant_layer.h): the argument checks and
// the way a step's row-by-row cell arithmetic is shared among threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "rnnfast/core/cell.h"
#include "rnnfast/core/cell_variant.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/layer/sequence_rows.h"
#include "rnnfast/step/variant_activations.h"

namespace rnnfast {

// Checks what VariantForward and VariantBackward have in common, the sizes, options and weights
// (std::invalid_argument); the other arrays are checked where they are used.
template <typename Args>
void check_variant_args(const Args& a) {
  check_sizes(a);
  check_lengths(a);
  check_variant(a.variant);
  const bool lstm = a.cell == Cell::kLstm;
  if (a.proj < 0 || (a.proj > 0 && (!lstm || a.proj >= a.hidden)))
    throw std::invalid_argument("rnnfast: a projection needs the LSTM and 0 < proj < hidden");
  if (a.proj > 0 && a.w_hr == nullptr) throw std::invalid_argument("rnnfast: the projection needs w_hr");
  if (!lstm && (a.w_ch != nullptr || a.variant.input_forget))
    throw std::invalid_argument("rnnfast: peepholes and input_forget are the LSTM's");
  if (a.cell != Cell::kGru && !a.variant.reset_after)
    throw std::invalid_argument("rnnfast: reset_after = false is the GRU's");
  if (a.w_ih == nullptr || a.w_hh == nullptr) throw std::invalid_argument("rnnfast: variant layer: missing weights");
}

// fn(r0, r1) over rows [0, rows) in chunks of at least kMinValues values (a chunk's rows of `width`
// values each), on the pool when there are several chunks. Each row's values depend on that row alone,
// so the cut does not change a bit.
template <typename Fn>
void for_row_chunks(std::int64_t rows, std::int64_t width, Fn&& fn) {
  constexpr std::int64_t kMinValues = 16384;
  const std::int64_t per_chunk = std::max<std::int64_t>(1, kMinValues / std::max<std::int64_t>(1, width));
  const std::int64_t chunks = std::min<std::int64_t>((rows + per_chunk - 1) / per_chunk, 4 * num_threads());
  if (chunks <= 1) {
    if (rows > 0) fn(std::int64_t(0), rows);
    return;
  }
  parallel_for(chunks, [&](std::int64_t i) { fn(rows * i / chunks, rows * (i + 1) / chunks); });
}

// The LSTM's gates i, f and g of one row of H units from their pre-activations (f = 1 - i with
// input_forget), as the forward computes them and the backward recomputes them.
template <typename Scalar>
void lstm_input_gates(const VariantActivationKernels<Scalar>& act, const CellVariant& v, std::int64_t H,
                      const Scalar* ai, const Scalar* af, const Scalar* ag, Scalar* gi, Scalar* gf, Scalar* gg) {
  act.activate(v.act[kGateRole], v.clip, H, ai, gi);
  if (v.input_forget)
    for (std::int64_t j = 0; j < H; ++j) gf[j] = Scalar(1) - gi[j];
  else
    act.activate(v.act[kGateRole], v.clip, H, af, gf);
  act.activate(v.act[kCandidateRole], v.clip, H, ag, gg);
}

}  // namespace rnnfast
