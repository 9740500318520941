// rnnfast from C++ through its C API (the stable interface), with the handles owned by std::unique_ptr and
// errors turned into exceptions: the same program as examples/c/main.c (same input, same printed lines),
// written the way a C++ program would hold a model.
//
//   rnnfast_cpp_example [MODEL.npz]
//
// Without a file it makes a one-layer GRU (input 3, hidden 4) from arrays filled by a formula.
// Build against an installed rnnfast: cmake -S examples/cpp -B build -DCMAKE_PREFIX_PATH=<prefix>.
#include <rnnfast/rnnfast.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// A failed call as an exception carrying rnnfast's status and message.
struct Error : std::runtime_error {
  Error(int status, const char* call)
      : std::runtime_error(std::string(call) + " failed: " + rnnfast_status_name(status) + ": " + rnnfast_last_error()),
        status(status) {}
  int status;
};

void check(int status, const char* call) {
  if (status != RNNFAST_OK) throw Error(status, call);
}

struct ModelFree {
  void operator()(rnnfast_model* m) const { rnnfast_model_free(m); }
};
struct StepperFree {
  void operator()(rnnfast_stepper* s) const { rnnfast_stepper_free(s); }
};
using Model = std::unique_ptr<rnnfast_model, ModelFree>;
using Stepper = std::unique_ptr<rnnfast_stepper, StepperFree>;

Model load(const char* path) {
  rnnfast_model* m = nullptr;
  check(rnnfast_model_load(path, &m), "rnnfast_model_load");
  return Model(m);
}

// The GRU of examples/c/main.c, from arrays named as its state_dict.
Model make_gru() {
  const int I = 3, H = 4, G = 3;
  std::vector<float> w_ih(G * H * I), w_hh(G * H * H), b_ih(G * H), b_hh(G * H);
  for (int i = 0; i < G * H * I; ++i) w_ih[i] = static_cast<float>((i * 5) % 9 - 4) / 16.0f;
  for (int i = 0; i < G * H * H; ++i) w_hh[i] = static_cast<float>((i * 7) % 13 - 6) / 32.0f;
  for (int i = 0; i < G * H; ++i) b_ih[i] = static_cast<float>(i % 5 - 2) / 8.0f, b_hh[i] = static_cast<float>(i % 3 - 1) / 8.0f;
  rnnfast_config config;
  rnnfast_config_init(&config, RNNFAST_CELL_GRU, I, H);
  const rnnfast_tensor tensors[] = {{"weight_ih_l0", RNNFAST_DTYPE_FLOAT32, 2, {G * H, I}, w_ih.data()},
                                    {"weight_hh_l0", RNNFAST_DTYPE_FLOAT32, 2, {G * H, H}, w_hh.data()},
                                    {"bias_ih_l0", RNNFAST_DTYPE_FLOAT32, 1, {G * H, 0}, b_ih.data()},
                                    {"bias_hh_l0", RNNFAST_DTYPE_FLOAT32, 1, {G * H, 0}, b_hh.data()}};
  rnnfast_model* m = nullptr;
  check(rnnfast_model_create(&config, tensors, 4, &m), "rnnfast_model_create");
  return Model(m);  // the arrays were copied: they may go
}

std::int64_t get(const Model& m, std::int32_t property) {
  std::int64_t value = 0;
  check(rnnfast_model_get(m.get(), property, &value), "rnnfast_model_get");
  return value;
}

int run(int argc, char** argv) {
  const std::int64_t T = 5, B = 2;
  const Model model = argc > 1 ? load(argv[1]) : make_gru();
  const std::int64_t I = get(model, RNNFAST_PROP_INPUT_SIZE), W = get(model, RNNFAST_PROP_OUTPUT_SIZE);
  const std::int64_t R = get(model, RNNFAST_PROP_STATE_SIZE), LD = get(model, RNNFAST_PROP_NUM_STATES);
  const bool batch_first = get(model, RNNFAST_PROP_BATCH_FIRST) != 0;
  std::printf("rnnfast %s (%s, %d threads): input %lld, output %lld\n", rnnfast_version(), rnnfast_isa(),
              static_cast<int>(rnnfast_get_num_threads()), static_cast<long long>(I), static_cast<long long>(W));
  auto row = [&](std::int64_t t, std::int64_t b) { return batch_first ? b * T + t : t * B + b; };  // (t, b) in memory
  std::vector<float> x(T * B * I), out(T * B * W), h_n(LD * B * R);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < I; ++i) x[row(t, b) * I + i] = static_cast<float>((7 * t + 3 * b + 5 * i) % 11 - 5) / 8.0f;

  check(rnnfast_forward(model.get(), T, B, x.data(), x.size(), nullptr, 0, nullptr, 0, nullptr, 0, out.data(), out.size(),
                        h_n.data(), h_n.size(), nullptr, 0),
        "rnnfast_forward");
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t b = 0; b < B; ++b) {
      std::printf("out[t=%d, b=%d]:", static_cast<int>(t), static_cast<int>(b));
      for (std::int64_t i = 0; i < W; ++i) std::printf(" %.9g", out[row(t, b) * W + i]);
      std::printf("\n");
    }
  for (std::size_t i = 0; i < h_n.size(); ++i) std::printf("%s%.9g", i ? " " : "h_n: ", h_n[i]);
  std::printf("\n");

  rnnfast_stepper* raw = nullptr;
  const int status = rnnfast_stepper_create(model.get(), B, &raw);
  if (status == RNNFAST_ERR_UNSUPPORTED) {  // bidirectional or reverse: it needs the whole sequence
    std::printf("stepper: %s\n", rnnfast_last_error());
    return 0;
  }
  check(status, "rnnfast_stepper_create");
  const Stepper stepper(raw);
  bool same = true;
  std::vector<float> step_x(B * I), y(B * R);
  for (std::int64_t t = 0; t < T; ++t) {
    for (std::int64_t b = 0; b < B; ++b) std::memcpy(&step_x[b * I], &x[row(t, b) * I], sizeof(float) * I);
    check(rnnfast_stepper_step(stepper.get(), step_x.data(), step_x.size(), y.data(), y.size()), "rnnfast_stepper_step");
    for (std::int64_t b = 0; b < B; ++b) same = same && std::memcmp(&y[b * R], &out[row(t, b) * W], sizeof(float) * R) == 0;
  }
  std::printf("stepper equals forward: %s\n", same ? "yes" : "NO");
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
