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
    dst.w_hh_t.pack(true, H, GH, src.w_hh, H);
    // As in layer_forward: both biases fold into the input projection, except the GRU's b_hh.
    dst.gx_bias.resize(B * GH);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t j = 0; j < GH; ++j)
        dst.gx_bias.data()[b * GH + j] = (src.b_ih != nullptr ? src.b_ih[j] : Scalar(0)) +
                                         (!gru && src.b_hh != nullptr ? src.b_hh[j] : Scalar(0));
    dst.has_b_hh = gru && src.b_hh != nullptr;
    if (dst.has_b_hh) {
      dst.b_hh.resize(GH);
      std::memcpy(dst.b_hh.data(), src.b_hh, sizeof(Scalar) * GH);
    }
  }
  cells_ = &cell_kernels<Scalar>(layers_.front().w_hh_t.kernel().isa);  // the ISA the weights were packed for
  h_.resize(L * B * H);
  c_.resize(L * B * H);
  h_next_.resize(B * H);
  c_next_.resize(B * H);
  gx_.resize(B * GH);
  gh_.resize(B * GH);
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
      if (layer.has_b_hh)
        for (std::int64_t b = 0; b < B; ++b) std::memcpy(gh_.data() + b * GH, layer.b_hh.data(), sizeof(Scalar) * GH);
      gemm(B, false, h, H, layer.w_hh_t, /*accumulate=*/layer.has_b_hh, gh_.data(), GH);
      if (cell_ == Cell::kLstm) {
        cells_->lstm_rows(B, H, gx_.data(), gh_.data(), c, h_next_.data(), c_next_.data(), (Scalar*)nullptr);
        std::memcpy(c, c_next_.data(), sizeof(Scalar) * B * H);
      } else if (cell_ == Cell::kGru) {
        cells_->gru_rows(B, H, gx_.data(), gh_.data(), h, h_next_.data(), (Scalar*)nullptr);
      } else {
        cells_->rnn_rows(cell_, B, H, gx_.data(), gh_.data(), h_next_.data());
      }
      std::memcpy(h, h_next_.data(), sizeof(Scalar) * B * H);
      input = h;  // the next layer's input is this layer's new state
    }
    std::memcpy(y + t * B * H, h_.data() + (num_layers() - 1) * B * H, sizeof(Scalar) * B * H);
  }
}

template class Stepper<float>;
template class Stepper<double>;

}  // namespace rnnfast
