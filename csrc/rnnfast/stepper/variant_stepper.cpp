// Streaming inference for the cell variants (stepper/variant_stepper.h).
#include "rnnfast/stepper/variant_stepper.h"

#include <algorithm>
#include <stdexcept>

#include "rnnfast/layer/sequence_rows.h"

namespace rnnfast {

template <typename Scalar>
VariantStepper<Scalar>::VariantStepper(Cell cell, const CellVariant& variant, std::int64_t hidden, std::int64_t proj,
                                       std::int64_t batch, const std::vector<VariantStepperLayer<Scalar>>& layers)
    : cell_(cell), hidden_(hidden), proj_(proj), batch_(batch) {
  if (layers.empty()) throw std::invalid_argument("rnnfast: a stepper needs at least one layer");
  if (hidden <= 0 || batch <= 0) throw std::invalid_argument("rnnfast: hidden size and batch must be positive");
  const std::int64_t R = proj > 0 ? proj : hidden, L = static_cast<std::int64_t>(layers.size());
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const VariantStepperLayer<Scalar>& l = layers[k];
    if (l.input_size <= 0 || (k > 0 && l.input_size != R))
      throw std::invalid_argument("rnnfast: a layer's input size must be positive, and R above the first");
    VariantForward<Scalar> a;
    a.cell = cell, a.variant = variant, a.batch = batch, a.input_size = l.input_size, a.hidden = hidden;
    a.proj = proj, a.w_ih = l.w_ih, a.w_hh = l.w_hh, a.b_ih = l.b_ih, a.b_hh = l.b_hh, a.w_hr = l.w_hr;
    a.w_ch = l.w_ch;
    weights_.push_back(std::make_unique<const VariantWeights<Scalar>>(a, /*cached=*/false));
  }
  for (int s = 0; s < 2; ++s) {
    h_[s].resize(L * batch * R);
    c_[s].resize(cell == Cell::kLstm ? L * batch * hidden : 0);
  }
}

template <typename Scalar>
void VariantStepper<Scalar>::reset(const Scalar* h0, const Scalar* c0) {
  Buffer<Scalar>& h = h_[current_];
  Buffer<Scalar>& c = c_[current_];
  if (h0 != nullptr)
    copy_n(h.data(), h0, h.size());
  else
    std::fill(h.data(), h.data() + h.size(), Scalar(0));
  if (c0 != nullptr)
    copy_n(c.data(), c0, c.size());
  else
    std::fill(c.data(), c.data() + c.size(), Scalar(0));
}

template <typename Scalar>
void VariantStepper<Scalar>::run(std::int64_t steps, const Scalar* x, Scalar* y) {
  if (steps <= 0) return;
  const std::int64_t B = batch_, H = hidden_, R = output_size(), L = num_layers();
  const bool lstm = cell_ == Cell::kLstm;
  const int from = current_, to = 1 - current_;
  for (int s = 0; s < 2; ++s)
    if (L > 1 && between_[s].size() < steps * B * R) between_[s].resize(steps * B * R, /*zeroed=*/false);
  const Scalar* input = x;
  for (std::int64_t k = 0; k < L; ++k) {
    const VariantWeights<Scalar>& w = *weights_[k];
    Scalar* out = k == L - 1 ? y : between_[k % 2].data();
    VariantForward<Scalar> a;
    a.cell = cell_, a.variant = w.variant, a.seq_len = steps, a.batch = B, a.input_size = w.input_size;
    a.hidden = H, a.proj = proj_, a.x = input, a.out = out;
    a.h0 = h_[from].data() + k * B * R;
    a.h_n = h_[to].data() + k * B * R;
    if (lstm) {
      a.c0 = c_[from].data() + k * B * H;
      a.c_n = c_[to].data() + k * B * H;
    }
    variant_forward(w, a);
    input = out;
  }
  current_ = to;
}

template class VariantStepper<float>;
template class VariantStepper<double>;

}  // namespace rnnfast
