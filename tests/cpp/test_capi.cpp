// The C API (rnnfast/rnnfast.h), subject "capi": a model made from raw arrays runs the kernels' own
// forward; every kind of bad input (NULL pointers and handles, a forward or a step before a model is
// loaded, wrong array sizes, bad configurations and parameters) is an error code with a message, never a
// crash; the last error is per thread. Model files are tested in test_capi_files.cpp, steppers in
// test_capi_steps.cpp; the Python layer's bits in tests/system/test_capi.py.
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "capi_support.h"
#include "check.h"
#include "rnnfast/rnnfast.hpp"

namespace {

using capi_test::Array;

rnnfast_config config_of(int cell, std::int64_t I, std::int64_t H) {
  rnnfast_config c;
  rnnfast_config_init(&c, cell, I, H);
  return c;
}

// A model of `c` with random parameters (nullptr and a failed check when it cannot be made).
rnnfast_model* make(const rnnfast_config& c, const std::vector<Array>& arrays) {
  const std::vector<rnnfast_tensor> t = capi_test::tensors(arrays);
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), RNNFAST_OK);
  return m;
}

TEST(capi, a_model_from_arrays_runs_the_kernels_forward) {
  // One LSTM layer: rnnfast_forward gives layer_forward's bits on the same arrays.
  const rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 3, 5);
  const std::vector<Array> arrays = capi_test::random_parameters(c, 1);
  rnnfast_model* m = make(c, arrays);
  const std::int64_t T = 4, B = 3, H = 5;
  check::Rng rng(2);
  std::vector<float> x(T * B * 3), h0(B * H), c0(B * H);
  for (float& v : x) v = static_cast<float>(rng.uniform());
  for (float& v : h0) v = static_cast<float>(rng.uniform());
  for (float& v : c0) v = static_cast<float>(rng.uniform());
  std::vector<float> out(T * B * H), h_n(B * H), c_n(B * H);
  CHECK_STATUS(rnnfast_forward(m, T, B, x.data(), x.size(), h0.data(), h0.size(), c0.data(), c0.size(), nullptr, 0,
                               out.data(), out.size(), h_n.data(), h_n.size(), c_n.data(), c_n.size()),
               RNNFAST_OK);
  CHECK(rnnfast_last_error()[0] == '\0', "the last error after a success: ", rnnfast_last_error());
  auto floats = [&](const char* name) {
    for (const Array& a : arrays)
      if (a.name == name) return reinterpret_cast<const float*>(a.bytes.data());
    return static_cast<const float*>(nullptr);
  };
  rnnfast::LayerForward<float> a;
  std::vector<float> want_out(T * B * H), want_h(B * H), want_c(B * H);
  a.cell = rnnfast::Cell::kLstm, a.seq_len = T, a.batch = B, a.input_size = 3, a.hidden = H;
  a.x = x.data(), a.h0 = h0.data(), a.c0 = c0.data(), a.w_ih = floats("weight_ih_l0"), a.w_hh = floats("weight_hh_l0");
  a.b_ih = floats("bias_ih_l0"), a.b_hh = floats("bias_hh_l0");
  a.out = want_out.data(), a.h_n = want_h.data(), a.c_n = want_c.data();
  rnnfast::layer_forward(a);
  CHECK(check::bitwise_equal(out, want_out) && check::bitwise_equal(h_n, want_h) && check::bitwise_equal(c_n, want_c),
        "the C API's LSTM differs from layer_forward at ", check::first_difference(out, want_out));
  // Properties.
  std::int64_t v = -1;
  CHECK_STATUS(rnnfast_model_get(m, RNNFAST_PROP_OUTPUT_SIZE, &v), RNNFAST_OK);
  CHECK(v == 5, "output size ", v);
  CHECK_STATUS(rnnfast_model_get(m, RNNFAST_PROP_HAS_CELL_STATE, &v), RNNFAST_OK);
  CHECK(v == 1, "has_cell_state ", v);
  CHECK_STATUS(rnnfast_model_get(m, 999, &v), RNNFAST_ERR_INVALID_ARGUMENT);
  rnnfast_model_free(m);
}

TEST(capi, null_pointers_are_errors) {
  const rnnfast_config c = config_of(RNNFAST_CELL_GRU, 2, 3);
  const std::vector<Array> arrays = capi_test::random_parameters(c, 3);
  const std::vector<rnnfast_tensor> t = capi_test::tensors(arrays);
  rnnfast_model* m = reinterpret_cast<rnnfast_model*>(&m);  // must be set to NULL on failure
  CHECK_STATUS(rnnfast_model_load(nullptr, &m), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK(m == nullptr, "a failed load leaves the handle NULL");
  CHECK(std::strlen(rnnfast_last_error()) > 0, "a failure has a message");
  CHECK_STATUS(rnnfast_model_load("x.npz", nullptr), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_model_load_buffer(nullptr, 10, &m), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_model_create(nullptr, t.data(), t.size(), &m), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_model_create(&c, nullptr, t.size(), &m), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), nullptr), RNNFAST_ERR_NULL_ARGUMENT);
  std::vector<rnnfast_tensor> unnamed = t;
  unnamed[1].name = nullptr;
  CHECK_STATUS(rnnfast_model_create(&c, unnamed.data(), unnamed.size(), &m), RNNFAST_ERR_NULL_ARGUMENT);
  std::vector<rnnfast_tensor> no_data = t;
  no_data[0].data = nullptr;
  CHECK_STATUS(rnnfast_model_create(&c, no_data.data(), no_data.size(), &m), RNNFAST_ERR_NULL_ARGUMENT);
  std::int64_t v;
  CHECK_STATUS(rnnfast_model_get(nullptr, RNNFAST_PROP_CELL, &v), RNNFAST_ERR_NULL_ARGUMENT);
  m = make(c, arrays);
  CHECK_STATUS(rnnfast_model_get(m, RNNFAST_PROP_CELL, nullptr), RNNFAST_ERR_NULL_ARGUMENT);
  std::vector<float> x(2 * 2), out(2 * 3), h(2 * 3);
  CHECK_STATUS(rnnfast_forward(m, 1, 2, nullptr, x.size(), nullptr, 0, nullptr, 0, nullptr, 0, out.data(), out.size(),
                               nullptr, 0, nullptr, 0),
               RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_forward(m, 1, 2, x.data(), x.size(), nullptr, 0, nullptr, 0, nullptr, 0, nullptr, out.size(),
                               nullptr, 0, nullptr, 0),
               RNNFAST_ERR_NULL_ARGUMENT);
  // Optional arrays may be NULL; an empty sequence may have NULL arrays.
  CHECK_STATUS(rnnfast_forward(m, 1, 2, x.data(), x.size(), nullptr, 0, nullptr, 0, nullptr, 0, out.data(), out.size(),
                               nullptr, 0, nullptr, 0),
               RNNFAST_OK);
  CHECK_STATUS(rnnfast_forward(m, 0, 2, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, h.data(), h.size(),
                               nullptr, 0),
               RNNFAST_OK);
  CHECK_STATUS(rnnfast_forward(m, 3, 0, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0),
               RNNFAST_OK);  // an empty batch
  rnnfast_model_free(m);
  rnnfast_model_free(nullptr);
  rnnfast_stepper_free(nullptr);
}

TEST(capi, a_forward_or_a_step_before_a_model_is_loaded_is_an_error) {
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_load("/nonexistent/rnnfast-model.npz", &m), RNNFAST_ERR_IO);
  CHECK(m == nullptr, "no model after a failed load");
  std::vector<float> x(8), out(8);
  CHECK_STATUS(rnnfast_forward(m, 1, 1, x.data(), x.size(), nullptr, 0, nullptr, 0, nullptr, 0, out.data(), out.size(),
                               nullptr, 0, nullptr, 0),
               RNNFAST_ERR_NULL_ARGUMENT);
  CHECK(std::strstr(rnnfast_last_error(), "no model loaded") != nullptr, "the message: ", rnnfast_last_error());
  rnnfast_stepper* s = reinterpret_cast<rnnfast_stepper*>(&s);
  CHECK_STATUS(rnnfast_stepper_create(m, 1, &s), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK(s == nullptr, "no stepper after a failed create");
  CHECK_STATUS(rnnfast_stepper_step(s, x.data(), x.size(), out.data(), out.size()), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_run(s, 1, x.data(), x.size(), out.data(), out.size()), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_reset(s), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_set_state(s, nullptr, 0, nullptr, 0), RNNFAST_ERR_NULL_ARGUMENT);
  CHECK_STATUS(rnnfast_stepper_get_state(s, out.data(), out.size(), nullptr, 0), RNNFAST_ERR_NULL_ARGUMENT);
}

TEST(capi, wrong_array_sizes_are_errors) {
  rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 3, 4);
  c.num_layers = 2;
  c.direction = RNNFAST_DIRECTION_BIDIRECTIONAL;
  rnnfast_model* m = make(c, capi_test::random_parameters(c, 4));
  const std::int64_t T = 3, B = 2, LD = 4, W = 8, H = 4;
  std::vector<float> x(T * B * 3), h0(LD * B * H), c0(LD * B * H), out(T * B * W), h(LD * B * H), cs(LD * B * H);
  std::vector<std::int64_t> lengths = {2, 3};
  auto forward = [&](std::int64_t t, std::int64_t b, std::size_t nx, std::size_t nh0, std::size_t nc0, const std::int64_t* len,
                     std::size_t nlen, std::size_t nout, std::size_t nh, std::size_t nc) {
    return rnnfast_forward(m, t, b, x.data(), nx, h0.data(), nh0, c0.data(), nc0, len, nlen, out.data(), nout, h.data(), nh,
                           cs.data(), nc);
  };
  CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size(), lengths.data(), 2, out.size(), h.size(), cs.size()), RNNFAST_OK);
  CHECK_STATUS(forward(T, B, x.size() - 1, h0.size(), c0.size(), nullptr, 0, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK(std::strstr(rnnfast_last_error(), "x has 17 elements") != nullptr, "the message: ", rnnfast_last_error());
  CHECK_STATUS(forward(T, B, x.size() + 1, h0.size(), c0.size(), nullptr, 0, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(T, B, x.size(), h0.size() - 4, c0.size(), nullptr, 0, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size() + 4, nullptr, 0, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size(), lengths.data(), 1, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size(), nullptr, 0, out.size() - 1, h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size(), nullptr, 0, out.size(), h.size() - 1, cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size(), nullptr, 0, out.size(), h.size(), 3), RNNFAST_ERR_SIZE_MISMATCH);
  // The sizes must agree with T and B; negative or overflowing sizes are invalid.
  CHECK_STATUS(forward(T + 1, B, x.size(), h0.size(), c0.size(), nullptr, 0, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_SIZE_MISMATCH);
  CHECK_STATUS(forward(-1, B, x.size(), h0.size(), c0.size(), nullptr, 0, out.size(), h.size(), cs.size()),
               RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(forward(std::int64_t(1) << 40, std::int64_t(1) << 40, x.size(), h0.size(), c0.size(), nullptr, 0, out.size(),
                       h.size(), cs.size()),
               RNNFAST_ERR_INVALID_ARGUMENT);
  for (std::vector<std::int64_t> bad : {std::vector<std::int64_t>{4, 1}, {-1, 2}}) {
    CHECK_STATUS(forward(T, B, x.size(), h0.size(), c0.size(), bad.data(), 2, out.size(), h.size(), cs.size()),
                 RNNFAST_ERR_INVALID_ARGUMENT);
  }
  rnnfast_model_free(m);
  // c0 and c_n belong to the LSTM.
  const rnnfast_config g = config_of(RNNFAST_CELL_GRU, 3, 4);
  m = make(g, capi_test::random_parameters(g, 5));
  CHECK_STATUS(rnnfast_forward(m, 1, 1, x.data(), 3, nullptr, 0, c0.data(), 4, nullptr, 0, out.data(), 4, nullptr, 0, nullptr, 0),
               RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_forward(m, 1, 1, x.data(), 3, nullptr, 0, nullptr, 0, nullptr, 0, out.data(), 4, nullptr, 0, cs.data(), 4),
               RNNFAST_ERR_INVALID_ARGUMENT);
  rnnfast_model_free(m);
}

TEST(capi, bad_configurations_are_errors) {
  struct Case {
    const char* what;
    std::function<void(rnnfast_config&)> edit;
    int want;
  };
  const std::vector<Case> cases = {
      {"uninitialised struct_size", [](rnnfast_config& c) { c.struct_size = 0; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"a newer struct", [](rnnfast_config& c) { c.struct_size += 8; }, RNNFAST_ERR_UNSUPPORTED},
      {"unknown cell", [](rnnfast_config& c) { c.cell = 7; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"hidden size 0", [](rnnfast_config& c) { c.hidden_size = 0; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"negative input size", [](rnnfast_config& c) { c.input_size = -3; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"no layers", [](rnnfast_config& c) { c.num_layers = 0; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"an enormous layer", [](rnnfast_config& c) { c.hidden_size = std::int64_t(1) << 50; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"unknown direction", [](rnnfast_config& c) { c.direction = 3; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"unknown weight dtype", [](rnnfast_config& c) { c.weight_dtype = 9; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"float64", [](rnnfast_config& c) { c.weight_dtype = RNNFAST_DTYPE_FLOAT64; }, RNNFAST_ERR_UNSUPPORTED},
      {"proj_size of a GRU", [](rnnfast_config& c) { c.proj_size = 1; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"peepholes of a GRU", [](rnnfast_config& c) { c.peepholes = 1; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"negative clip", [](rnnfast_config& c) { c.clip = -1.0; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"NaN clip", [](rnnfast_config& c) { c.clip = NAN; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"unknown activation", [](rnnfast_config& c) { c.activations[0][1].kind = 15; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"alpha for tanh", [](rnnfast_config& c) { c.activations[0][1] = {RNNFAST_ACTIVATION_TANH, 0.5, NAN}; },
       RNNFAST_ERR_INVALID_ARGUMENT},
      {"infinite alpha", [](rnnfast_config& c) { c.activations[0][0] = {RNNFAST_ACTIVATION_LEAKY_RELU, INFINITY, NAN}; },
       RNNFAST_ERR_INVALID_ARGUMENT},
      {"a quantized variant",
       [](rnnfast_config& c) {
         c.weight_dtype = RNNFAST_DTYPE_INT8;
         c.reset_after = 0;
       },
       RNNFAST_ERR_INVALID_ARGUMENT},
  };
  for (const Case& k : cases) {
    check::Context ctx(k.what);
    rnnfast_config c = config_of(RNNFAST_CELL_GRU, 3, 4);
    const std::vector<Array> arrays = capi_test::random_parameters(c, 6);  // the valid layer's
    k.edit(c);
    const std::vector<rnnfast_tensor> t = capi_test::tensors(arrays);
    rnnfast_model* m = nullptr;
    CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), k.want);
    CHECK(m == nullptr && std::strlen(rnnfast_last_error()) > 0, "no model, and a message");
  }
  // The LSTM's options.
  rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 3, 4);
  c.proj_size = 4;  // must be < hidden_size
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_create(&c, nullptr, 0, &m), RNNFAST_ERR_INVALID_ARGUMENT);
  c = config_of(RNNFAST_CELL_RNN, 3, 4);
  c.reset_after = 0;  // the GRU's option
  CHECK_STATUS(rnnfast_model_create(&c, nullptr, 0, &m), RNNFAST_ERR_INVALID_ARGUMENT);
}

TEST(capi, bad_parameters_are_errors) {
  rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 3, 4);
  c.weight_dtype = RNNFAST_DTYPE_INT8;
  const std::vector<Array> good = capi_test::random_parameters(c, 7);
  struct Case {
    const char* what;
    std::function<void(std::vector<Array>&)> edit;
    int want;
  };
  const std::vector<Case> cases = {
      {"missing", [](std::vector<Array>& a) { a.erase(a.begin() + 2); }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"unexpected", [](std::vector<Array>& a) { a.push_back(a[0]), a.back().name = "weight_ih_l1"; },
       RNNFAST_ERR_INVALID_ARGUMENT},
      {"twice", [](std::vector<Array>& a) { a.push_back(a[0]); }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"wrong shape", [](std::vector<Array>& a) { a[0].shape = {3, 16}; }, RNNFAST_ERR_SIZE_MISMATCH},
      {"wrong rank", [](std::vector<Array>& a) { a[0].shape = {48}; }, RNNFAST_ERR_SIZE_MISMATCH},
      {"wrong dtype", [](std::vector<Array>& a) { a[0].dtype = RNNFAST_DTYPE_BF16; }, RNNFAST_ERR_SIZE_MISMATCH},
      {"unknown dtype", [](std::vector<Array>& a) { a[0].dtype = 42; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"int8 -128", [](std::vector<Array>& a) { a[0].bytes[5] = 0x80; }, RNNFAST_ERR_INVALID_ARGUMENT},
      {"negative scale", [](std::vector<Array>& a) { std::memcpy(&a[1].bytes[4], "\x00\x00\x80\xbf", 4); },
       RNNFAST_ERR_INVALID_ARGUMENT},
      {"NaN scale", [](std::vector<Array>& a) { std::memcpy(&a[1].bytes[0], "\x00\x00\xc0\x7f", 4); },
       RNNFAST_ERR_INVALID_ARGUMENT},
  };
  for (const Case& k : cases) {
    check::Context ctx(k.what);
    std::vector<Array> arrays = good;
    k.edit(arrays);
    const std::vector<rnnfast_tensor> t = capi_test::tensors(arrays);
    rnnfast_model* m = nullptr;
    CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), k.want);
    CHECK(m == nullptr, "no model");
  }
  // bfloat16 weights must be finite; a tensor's ndim is 1 or 2.
  c.weight_dtype = RNNFAST_DTYPE_BF16;
  std::vector<Array> bf16 = capi_test::random_parameters(c, 8);
  std::vector<rnnfast_tensor> t = capi_test::tensors(bf16);
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), RNNFAST_OK);
  rnnfast_model_free(m);
  bf16[0].bytes[1] = 0x7f, bf16[0].bytes[0] = 0x80;  // +infinity
  t = capi_test::tensors(bf16);
  CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), RNNFAST_ERR_INVALID_ARGUMENT);
  t[0].ndim = 3;
  CHECK_STATUS(rnnfast_model_create(&c, t.data(), t.size(), &m), RNNFAST_ERR_INVALID_ARGUMENT);
}

TEST(capi, the_last_error_is_per_thread) {
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_load(nullptr, &m), RNNFAST_ERR_NULL_ARGUMENT);
  std::string other = "unset";
  std::thread([&] { other = rnnfast_last_error(); }).join();
  CHECK(other.empty(), "another thread sees its own (empty) last error, got: ", other);
  CHECK(std::strlen(rnnfast_last_error()) > 0, "this thread's message stays");
  CHECK(std::strcmp(rnnfast_status_name(RNNFAST_ERR_SIZE_MISMATCH), "RNNFAST_ERR_SIZE_MISMATCH") == 0, "status names");
  CHECK(std::strcmp(rnnfast_status_name(-5), "unknown status") == 0, "unknown status");
  CHECK(std::strcmp(rnnfast_version(), RNNFAST_VERSION_STRING) == 0, "version ", rnnfast_version());
}

TEST(capi, threads_and_instruction_set) {
  const std::int32_t before = rnnfast_get_num_threads();
  CHECK_STATUS(rnnfast_set_num_threads(0), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_set_num_threads(5000), RNNFAST_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rnnfast_set_num_threads(2), RNNFAST_OK);
  CHECK(rnnfast_get_num_threads() == 2, "threads ", rnnfast_get_num_threads());
  CHECK_STATUS(rnnfast_set_num_threads(before), RNNFAST_OK);
  CHECK(std::strcmp(rnnfast_isa(), rnnfast::isa_name(rnnfast::active_isa())) == 0, "isa ", rnnfast_isa());
}

}  // namespace
