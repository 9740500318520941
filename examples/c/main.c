/* rnnfast from C: load a model saved by rnnfast.save (or make one from raw arrays), run it over a sequence,
 * then stream the same sequence through a stepper and check that it gives the same bits.
 *
 *   rnnfast_c_example [MODEL.npz]
 *
 * Without a file it makes a one-layer GRU (input 3, hidden 4) from arrays filled by a formula. The input
 * x is (T=5, B=2, I) time-major (or (B, T, I) for a batch_first model), x[t][b][i] = ((7t + 3b + 5i) mod 11
 * - 5) / 8, exact in float32, so that any program can make the same input. It prints the output, one
 * line per (t, b) (%.9g: float32 exactly), the final h, and whether the stepper agrees. Exit 0 on success,
 * 1 with rnnfast's message on an error.
 *
 * Build against an installed rnnfast: cmake -S examples/c -B build -DCMAKE_PREFIX_PATH=<prefix>.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rnnfast/rnnfast.h>

/* Reports a failed call with rnnfast's status name and message. */
static int failed(int status, const char* call) {
  fprintf(stderr, "%s failed: %s: %s\n", call, rnnfast_status_name(status), rnnfast_last_error());
  return 1;
}

/* A GRU made from raw arrays named as its state_dict: weight_ih_l0 (3H, I), weight_hh_l0 (3H, H), bias_ih_l0
 * and bias_hh_l0 (3H,). */
static int make_gru(rnnfast_model** model) {
  enum { I = 3, H = 4, G = 3 };
  static float w_ih[G * H * I], w_hh[G * H * H], b_ih[G * H], b_hh[G * H];
  rnnfast_config config;
  rnnfast_tensor tensors[4] = {
      {"weight_ih_l0", RNNFAST_DTYPE_FLOAT32, 2, {G * H, I}, w_ih},
      {"weight_hh_l0", RNNFAST_DTYPE_FLOAT32, 2, {G * H, H}, w_hh},
      {"bias_ih_l0", RNNFAST_DTYPE_FLOAT32, 1, {G * H, 0}, b_ih},
      {"bias_hh_l0", RNNFAST_DTYPE_FLOAT32, 1, {G * H, 0}, b_hh}};
  int i;
  for (i = 0; i < G * H * I; ++i) w_ih[i] = (float)((i * 5) % 9 - 4) / 16.0f;
  for (i = 0; i < G * H * H; ++i) w_hh[i] = (float)((i * 7) % 13 - 6) / 32.0f;
  for (i = 0; i < G * H; ++i) b_ih[i] = (float)(i % 5 - 2) / 8.0f, b_hh[i] = (float)(i % 3 - 1) / 8.0f;
  rnnfast_config_init(&config, RNNFAST_CELL_GRU, I, H);
  return rnnfast_model_create(&config, tensors, 4, model);
}

int main(int argc, char** argv) {
  enum { T = 5, B = 2 };
  rnnfast_model* model = NULL;
  rnnfast_stepper* stepper = NULL;
  int64_t I, W, R, LD, batch_first;
  float *x, *out, *h_n, *stream;
  int status, t, b, i, same = 1;

  status = argc > 1 ? rnnfast_model_load(argv[1], &model) : make_gru(&model);
  if (status != RNNFAST_OK) return failed(status, argc > 1 ? "rnnfast_model_load" : "rnnfast_model_create");
  rnnfast_model_get(model, RNNFAST_PROP_INPUT_SIZE, &I);
  rnnfast_model_get(model, RNNFAST_PROP_OUTPUT_SIZE, &W);
  rnnfast_model_get(model, RNNFAST_PROP_STATE_SIZE, &R);
  rnnfast_model_get(model, RNNFAST_PROP_NUM_STATES, &LD);
  rnnfast_model_get(model, RNNFAST_PROP_BATCH_FIRST, &batch_first);
  printf("rnnfast %s (%s, %d threads): input %lld, output %lld\n", rnnfast_version(), rnnfast_isa(),
         (int)rnnfast_get_num_threads(), (long long)I, (long long)W);

  x = malloc(sizeof(float) * T * B * I);
  out = malloc(sizeof(float) * T * B * W);
  h_n = malloc(sizeof(float) * LD * B * R);
  stream = malloc(sizeof(float) * T * B * R);
  if (x == NULL || out == NULL || h_n == NULL || stream == NULL) return 1;
  for (t = 0; t < T; ++t)
    for (b = 0; b < B; ++b)
      for (i = 0; i < I; ++i) {
        const int64_t at = batch_first ? (b * T + t) * I + i : (t * B + b) * I + i;
        x[at] = (float)((7 * t + 3 * b + 5 * i) % 11 - 5) / 8.0f;
      }

  /* The whole sequence; no initial state (zeros), no lengths; the final h wanted, the LSTM's c not. */
  status = rnnfast_forward(model, T, B, x, (size_t)(T * B * I), NULL, 0, NULL, 0, NULL, 0, out, (size_t)(T * B * W),
                           h_n, (size_t)(LD * B * R), NULL, 0);
  if (status != RNNFAST_OK) return failed(status, "rnnfast_forward");
  for (t = 0; t < T; ++t)
    for (b = 0; b < B; ++b) {
      const float* row = out + (batch_first ? (b * T + t) : (t * B + b)) * W;
      printf("out[t=%d, b=%d]:", t, b);
      for (i = 0; i < W; ++i) printf(" %.9g", row[i]);
      printf("\n");
    }
  for (i = 0; i < LD * B * R; ++i) printf("%s%.9g", i ? " " : "h_n: ", h_n[i]);
  printf("\n");

  /* The same sequence one step at a time (a unidirectional model only): the same bits. */
  status = rnnfast_stepper_create(model, B, &stepper);
  if (status == RNNFAST_ERR_UNSUPPORTED) {
    printf("stepper: %s\n", rnnfast_last_error());  /* bidirectional or reverse: it needs the whole sequence */
  } else if (status != RNNFAST_OK) {
    return failed(status, "rnnfast_stepper_create");
  } else {
    float* step_x = malloc(sizeof(float) * B * I);
    if (step_x == NULL) return 1;
    for (t = 0; t < T; ++t) {
      for (b = 0; b < B; ++b)
        memcpy(step_x + b * I, x + (batch_first ? (b * T + t) : (t * B + b)) * I, sizeof(float) * I);
      status = rnnfast_stepper_step(stepper, step_x, (size_t)(B * I), stream + t * B * R, (size_t)(B * R));
      if (status != RNNFAST_OK) return failed(status, "rnnfast_stepper_step");
      for (b = 0; b < B; ++b)
        same = same && memcmp(stream + (t * B + b) * R, out + (batch_first ? (b * T + t) : (t * B + b)) * W,
                              sizeof(float) * R) == 0;
    }
    printf("stepper equals forward: %s\n", same ? "yes" : "NO");
    free(step_x);
    rnnfast_stepper_free(stepper);
  }
  free(x), free(out), free(h_n), free(stream);
  rnnfast_model_free(model);
  return same ? 0 : 1;
}
