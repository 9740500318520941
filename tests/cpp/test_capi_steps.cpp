// The C API's steppers (subject "capi"): a sequence fed step by step (or in chunks) gives the bits of one
// rnnfast_forward over it, for PyTorch's cells, a cell variant and a quantized layer; the state can be
// set and read; bad input (a NULL stepper, a bidirectional or reverse model, wrong sizes, a c for a cell
// without one) is an error code. And one model serves several threads at once.
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "capi_support.h"
#include "check.h"

namespace {

using capi_test::Array;

rnnfast_config config_of(int cell, std::int64_t I, std::int64_t H) {
  rnnfast_config c;
  rnnfast_config_init(&c, cell, I, H);
  return c;
}

rnnfast_model* make(const rnnfast_config& c, std::uint64_t seed) {
  const std::vector<Array> arrays = capi_test::random_parameters(c, seed);
  const std::vector<rnnfast_tensor> t = capi_test::tensors(arrays);
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), RNNFAST_OK);
  return m;
}

std::vector<float> random(std::size_t n, std::uint64_t seed) {
  check::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform());
  return v;
}

// The configurations streamed: PyTorch's LSTM (2 layers), a GRU variant, an int8 RNN, a bf16 LSTM, an LSTM
// with a projection and peepholes, an RNN with a parameterised activation.
std::vector<rnnfast_config> streamed() {
  std::vector<rnnfast_config> configs;
  rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 3, 5);
  c.num_layers = 2;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_GRU, 3, 5);
  c.reset_after = 0, c.clip = 0.8;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_RNN, 3, 5);
  c.weight_dtype = RNNFAST_DTYPE_INT8, c.activations[0][0].kind = RNNFAST_ACTIVATION_RELU;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_LSTM, 3, 5);
  c.weight_dtype = RNNFAST_DTYPE_BF16, c.num_layers = 2;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_LSTM, 3, 5);
  c.proj_size = 2, c.peepholes = 1, c.num_layers = 2;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_RNN, 3, 5);
  c.activations[0][0] = {RNNFAST_ACTIVATION_LEAKY_RELU, 0.3, NAN};
  configs.push_back(c);
  return configs;
}

TEST(capi, a_stepper_gives_the_forward_bits) {
  const std::int64_t T = 6, B = 2, I = 3;
  for (const rnnfast_config& c : streamed()) {
    check::Context ctx("cell ", c.cell, " weight dtype ", c.weight_dtype, " proj ", c.proj_size);
    rnnfast_model* m = make(c, 21);
    std::int64_t R = 0, L = 0, H = 0, lstm = 0, variant = 0;
    rnnfast_model_get(m, RNNFAST_PROP_STATE_SIZE, &R);
    rnnfast_model_get(m, RNNFAST_PROP_NUM_LAYERS, &L);
    rnnfast_model_get(m, RNNFAST_PROP_HIDDEN_SIZE, &H);
    rnnfast_model_get(m, RNNFAST_PROP_HAS_CELL_STATE, &lstm);
    rnnfast_model_get(m, RNNFAST_PROP_IS_VARIANT, &variant);
    CHECK(variant == (c.reset_after == 0 || c.proj_size > 0 || c.activations[0][0].kind == RNNFAST_ACTIVATION_LEAKY_RELU),
          "is_variant ", variant);
    const std::vector<float> x = random(T * B * I, 22), h0 = random(L * B * R, 23), c0 = random(L * B * H, 24);
    std::vector<float> want(T * B * R), h_n(L * B * R), c_n(lstm ? L * B * H : 0);
    CHECK_STATUS(rnnfast_forward(m, T, B, x.data(), x.size(), h0.data(), h0.size(), lstm ? c0.data() : nullptr,
                                 lstm ? c0.size() : 0, nullptr, 0, want.data(), want.size(), h_n.data(), h_n.size(),
                                 lstm ? c_n.data() : nullptr, c_n.size()),
                 RNNFAST_OK);
    rnnfast_stepper* s = nullptr;
    CHECK_STATUS(rnnfast_stepper_create(m, B, &s), RNNFAST_OK);
    rnnfast_model_free(m);  // the stepper holds its own weights
    if (s == nullptr) continue;
    CHECK_STATUS(rnnfast_stepper_set_state(s, h0.data(), h0.size(), lstm ? c0.data() : nullptr, lstm ? c0.size() : 0),
                 RNNFAST_OK);
    std::vector<float> got(T * B * R);
    for (std::int64_t t = 0; t < T; ++t)
      CHECK_STATUS(rnnfast_stepper_step(s, x.data() + t * B * I, B * I, got.data() + t * B * R, B * R), RNNFAST_OK);
    CHECK(check::bitwise_equal(got, want), "step by step differs from the forward at ", check::first_difference(got, want));
    std::vector<float> h(L * B * R), cs(lstm ? L * B * H : 0);
    CHECK_STATUS(rnnfast_stepper_get_state(s, h.data(), h.size(), lstm ? cs.data() : nullptr, cs.size()), RNNFAST_OK);
    CHECK(check::bitwise_equal(h, h_n) && check::bitwise_equal(cs, c_n), "the final state differs");
    // Again from the same state, in chunks of 4 and 2 steps.
    CHECK_STATUS(rnnfast_stepper_set_state(s, h0.data(), h0.size(), lstm ? c0.data() : nullptr, lstm ? c0.size() : 0),
                 RNNFAST_OK);
    std::vector<float> chunks(T * B * R, NAN);
    CHECK_STATUS(rnnfast_stepper_run(s, 4, x.data(), 4 * B * I, chunks.data(), 4 * B * R), RNNFAST_OK);
    CHECK_STATUS(rnnfast_stepper_run(s, 2, x.data() + 4 * B * I, 2 * B * I, chunks.data() + 4 * B * R, 2 * B * R), RNNFAST_OK);
    CHECK_STATUS(rnnfast_stepper_run(s, 0, nullptr, 0, nullptr, 0), RNNFAST_OK);
    CHECK(check::bitwise_equal(chunks, want), "chunks differ from the forward at ", check::first_difference(chunks, want));
    // reset: the zero state.
    CHECK_STATUS(rnnfast_stepper_reset(s), RNNFAST_OK);
    CHECK_STATUS(rnnfast_stepper_get_state(s, h.data(), h.size(), nullptr, 0), RNNFAST_OK);
    bool zero = true;
    for (float v : h) zero = zero && v == 0.0f;
    CHECK(zero, "reset leaves a zero state");
    rnnfast_stepper_free(s);
  }
}

TEST(capi, a_batch_first_stepper_takes_chunks_in_the_model_layout) {
  rnnfast_config c = config_of(RNNFAST_CELL_GRU, 3, 5);
  c.batch_first = 1;
  rnnfast_model* m = make(c, 51);
  const std::int64_t T = 4, B = 3;
  const std::vector<float> x = random(B * T * 3, 52);  // (B, T, I)
  std::vector<float> want(B * T * 5), got(B * T * 5);
  CHECK_STATUS(rnnfast_forward(m, T, B, x.data(), x.size(), nullptr, 0, nullptr, 0, nullptr, 0, want.data(), want.size(),
                               nullptr, 0, nullptr, 0),
               RNNFAST_OK);
  rnnfast_stepper* s = nullptr;
  CHECK_STATUS(rnnfast_stepper_create(m, B, &s), RNNFAST_OK);
  CHECK_STATUS(rnnfast_stepper_run(s, T, x.data(), x.size(), got.data(), got.size()), RNNFAST_OK);
  CHECK(check::bitwise_equal(got, want), "a (B, T, I) chunk differs from the forward at ", check::first_difference(got, want));
  rnnfast_stepper_free(s);
  rnnfast_model_free(m);
}

TEST(capi, bad_stepper_input_is_an_error) {
  rnnfast_config c = config_of(RNNFAST_CELL_GRU, 3, 4);
  c.direction = RNNFAST_DIRECTION_BIDIRECTIONAL;
  rnnfast_model* m = make(c, 31);
  rnnfast_stepper* s = nullptr;
  CHECK_STATUS(rnnfast_stepper_create(m, 1, &s), RNNFAST_ERR_UNSUPPORTED);
  rnnfast_model_free(m);
  c.direction = RNNFAST_DIRECTION_REVERSE;
  m = make(c, 31);
  CHECK_STATUS(rnnfast_stepper_create(m, 1, &s), RNNFAST_ERR_UNSUPPORTED);
  rnnfast_model_free(m);
  c.direction = RNNFAST_DIRECTION_FORWARD;
  m = make(c, 31);
  CHECK_STATUS(rnnfast_stepper_create(m, 0, &s), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_create(m, std::int64_t(1) << 60, &s), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_create(m, 2, nullptr), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_create(m, 2, &s), RNNFAST_OK);
  rnnfast_model_free(m);
  std::vector<float> x(2 * 3 * 4), y(2 * 4 * 4), h(2 * 4);
  CHECK_STATUS(rnnfast_stepper_step(s, x.data(), 5, y.data(), 8), RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(rnnfast_stepper_step(s, x.data(), 6, y.data(), 7), RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(rnnfast_stepper_step(s, nullptr, 6, y.data(), 8), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_step(s, x.data(), 6, nullptr, 8), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_run(s, -1, x.data(), 0, y.data(), 0), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_run(s, 3, x.data(), 12, y.data(), 24), RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(rnnfast_stepper_run(s, std::int64_t(1) << 62, x.data(), 12, y.data(), 24), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_set_state(s, h.data(), 7, nullptr, 0), RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(rnnfast_stepper_set_state(s, h.data(), 8, h.data(), 8), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(rnnfast_last_error(), "LSTM") != nullptr, "the message: ", rnnfast_last_error());
  CHECK_STATUS(rnnfast_stepper_get_state(s, h.data(), 7, nullptr, 0), RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(rnnfast_stepper_get_state(s, nullptr, 0, h.data(), 8), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_step(s, x.data(), 6, y.data(), 8), RNNFAST_OK);  // still usable after the errors
  rnnfast_stepper_free(s);
}

TEST(capi, one_model_serves_several_threads) {
  rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 4, 16);
  c.num_layers = 2, c.direction = RNNFAST_DIRECTION_BIDIRECTIONAL;
  rnnfast_model* m = make(c, 41);
  const std::int64_t T = 5, B = 3;
  const std::vector<float> x = random(T * B * 4, 42);
  std::vector<std::vector<float>> outs(4, std::vector<float>(T * B * 32));
  std::vector<int> status(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      for (int repeat = 0; repeat < 3 && status[i] == RNNFAST_OK; ++repeat)
        status[i] = rnnfast_forward(m, T, B, x.data(), x.size(), nullptr, 0, nullptr, 0, nullptr, 0, outs[i].data(),
                                    outs[i].size(), nullptr, 0, nullptr, 0);
    });
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    CHECK(status[i] == RNNFAST_OK, "thread ", i, ": ", rnnfast_status_name(status[i]));
    CHECK(check::bitwise_equal(outs[i], outs[0]), "thread ", i, " got other results");
  }
  rnnfast_model_free(m);
}

}  // namespace
