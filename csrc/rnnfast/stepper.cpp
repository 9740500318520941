#include "rnnfast/stepper.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "rnnfast/microkernel.h"

namespace rnnfast {

template <typename Scalar>
Stepper<Scalar>::Stepper(Cell cell, std::int64_t hidden, std::int64_t batch,
                         const std::vector<StepperLayer<Scalar>>& layers)
    : cell_(cell), hidden_(hidden), batch_(batch), gates_(gate_count(cell)) {
  if (layers.empty() || hidden <= 0 || batch <= 0)
    throw std::invalid_argument("rnnfast: Stepper needs at least one layer and positive hidden size and batch");
  const std::int64_t H = hidden, B = batch, GH = gates_ * H, L = static_cast<std::int64_t>(layers.size());
  const bool gru = cell == Cell::kGru;
  layers_.resize(layers.size());
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const StepperLayer<Scalar>& src = layers[k];
    if (src.w_ih == nullptr || src.w_hh == nullptr || src.input_size < 0)
      throw std::invalid_argument("rnnfast: Stepper layer without weights");
    Packed& dst = layers_[k];
    dst.input_size = src.input_size;
    dst.w_ih_t.pack(true, src.input_size, GH, src.w_ih, src.input_size);
    dst.w_hh.pack(cell, H, src.w_hh, gru && src.b_hh != nullptr ? src.b_hh + 2 * H : nullptr);
    // As in layer_forward: the biases fold into the input projection, except the GRU's b_hn.
    dst.gx_bias.resize(B * GH);
    fill_bias_rows(cell, H, src.b_ih, src.b_hh, B, dst.gx_bias.data());
  }
  h_.resize(L * B * H);
  c_.resize(L * B * H);
  h_next_.resize(B * H);
  c_next_.resize(B * H);
  gx_.resize(B * GH);
}

template <typename Scalar>
void Stepper<Scalar>::reset(const Scalar* h0, const Scalar* c0) {
  const std::int64_t count = num_layers() * batch_ * hidden_;
  if (h0 != nullptr)
    std::memcpy(h_.data(), h0, sizeof(Scalar) * count);
  else
    std::fill(h_.data(), h_.data() + count, Scalar(0));
  if (cell_ == Cell::kLstm && c0 != nullptr)
    std::memcpy(c_.data(), c0, sizeof(Scalar) * count);
  else
    std::fill(c_.data(), c_.data() + count, Scalar(0));
}

template <typename Scalar>
void Stepper<Scalar>::run(std::int64_t steps, const Scalar* x, Scalar* y) {
  const std::int64_t H = hidden_, B = batch_, GH = gates_ * H;
  for (std::int64_t t = 0; t < steps; ++t) {
    const Scalar* input = x + t * B * layers_.front().input_size;
    for (std::int64_t k = 0; k < num_layers(); ++k) {
      Packed& layer = layers_[k];
      Scalar* h = h_.data() + k * B * H;
      Scalar* c = c_.data() + k * B * H;
      std::memcpy(gx_.data(), layer.gx_bias.data(), sizeof(Scalar) * B * GH);
      gemm(B, false, input, layer.input_size, layer.w_ih_t, /*accumulate=*/true, gx_.data(), GH);
      StepArgs<Scalar> step;
      step.rows = B;
      step.gx = gx_.data();
      step.h_prev = h;
      step.c_prev = c;
      step.h = h_next_.data();
      step.c = c_next_.data();
      layer.w_hh.step(step, 0, layer.w_hh.blocks());
      std::memcpy(h, h_next_.data(), sizeof(Scalar) * B * H);
      if (cell_ == Cell::kLstm) std::memcpy(c, c_next_.data(), sizeof(Scalar) * B * H);
      input = h;  // the next layer's input is this layer's new state
    }
    std::memcpy(y + t * B * H, h_.data() + (num_layers() - 1) * B * H, sizeof(Scalar) * B * H);
  }
}

template class Stepper<float>;
template class Stepper<double>;

}  // namespace rnnfast
