/* A small C program over rnnfast's C API, for tests/system/test_capi.py: it runs a model file on raw
 * float32 inputs and writes the raw results, which the test compares with the Python layer's bit for bit.
 * Built by CMake as rnnfast_capi_driver (with RNNFAST_BUILD_TESTS=ON), linked with the library as any
 * user's program is.
 *
 *   rnnfast_capi_driver info MODEL
 *       prints the model's properties, one "name value" per line.
 *   rnnfast_capi_driver forward MODEL T B X OUTDIR [--h0 F] [--c0 F] [--lengths F] [--threads N]
 *       x (T, B, I), or (B, T, I) for a batch_first model, from the file X (raw float32); h0 (L*D, B, R),
 *       c0 (L*D, B, H) raw float32; lengths (B,) raw int64. Writes OUTDIR/out.bin, h_n.bin and, for the
 *       LSTM, c_n.bin (raw float32, the shapes of rnnfast_forward).
 *   rnnfast_capi_driver stepper MODEL T B X OUTDIR [--chunk N] [--threads N]
 *       x (T, B, I) time-major whatever the layout; steps through it one step at a time (or N steps per
 *       rnnfast_stepper_run call, time-major chunks of a time-major model); writes OUTDIR/out.bin (T, B, R)
 *       and the final state h.bin (L, B, R) and, for the LSTM, c.bin (L, B, H).
 * Exit status: 0 on success; 1 with "rnnfast_capi_driver: STATUS_NAME: message" on stderr when a call
 * fails; 2 for bad arguments or files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnnfast/rnnfast.h"

static void usage(void) {
  fprintf(stderr, "usage: rnnfast_capi_driver info MODEL | forward MODEL T B X OUTDIR [--h0 F] [--c0 F] "
                  "[--lengths F] [--threads N] | stepper MODEL T B X OUTDIR [--chunk N] [--threads N]\n");
  exit(2);
}

/* Exits with the call's status and message when it failed. */
static void check(int status, const char* call) {
  if (status == RNNFAST_OK) return;
  fprintf(stderr, "rnnfast_capi_driver: %s: %s: %s\n", rnnfast_status_name(status), call, rnnfast_last_error());
  exit(1);
}

/* The file's bytes as `count` elements of `size` bytes (exactly that many), or exits. */
static void* read_file(const char* path, size_t size, size_t count) {
  FILE* f = fopen(path, "rb");
  void* data = malloc(size * count + 1);
  size_t got;
  if (f == NULL || data == NULL) {
    fprintf(stderr, "rnnfast_capi_driver: cannot read %s\n", path);
    exit(2);
  }
  got = fread(data, size, count + 1, f);  /* one more than wanted, to catch a file too long */
  fclose(f);
  if (got != count) {
    fprintf(stderr, "rnnfast_capi_driver: %s holds %zu elements of %zu bytes, expected %zu\n", path, got, size, count);
    exit(2);
  }
  return data;
}

static void write_file(const char* dir, const char* name, const float* data, size_t count) {
  char path[4096];
  FILE* f;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(data, sizeof(float), count, f) != count || fclose(f) != 0) {
    fprintf(stderr, "rnnfast_capi_driver: cannot write %s\n", path);
    exit(2);
  }
}

static int64_t get(const rnnfast_model* model, int32_t property) {
  int64_t value = 0;
  check(rnnfast_model_get(model, property, &value), "rnnfast_model_get");
  return value;
}

static float* allocate(size_t count) {
  float* p = (float*)malloc(count * sizeof(float) + 1);
  if (p == NULL) {
    fprintf(stderr, "rnnfast_capi_driver: out of memory\n");
    exit(2);
  }
  return p;
}

/* The value of option `name` among argv[first, argc), or NULL. */
static const char* option(int argc, char** argv, int first, const char* name) {
  int i;
  for (i = first; i + 1 < argc; i += 2)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return NULL;
}

static void info(const rnnfast_model* model) {
  static const struct { const char* name; int32_t property; } props[] = {
      {"cell", RNNFAST_PROP_CELL}, {"input_size", RNNFAST_PROP_INPUT_SIZE}, {"hidden_size", RNNFAST_PROP_HIDDEN_SIZE},
      {"proj_size", RNNFAST_PROP_PROJ_SIZE}, {"state_size", RNNFAST_PROP_STATE_SIZE},
      {"output_size", RNNFAST_PROP_OUTPUT_SIZE}, {"num_layers", RNNFAST_PROP_NUM_LAYERS},
      {"num_directions", RNNFAST_PROP_NUM_DIRECTIONS}, {"num_states", RNNFAST_PROP_NUM_STATES},
      {"direction", RNNFAST_PROP_DIRECTION}, {"weight_dtype", RNNFAST_PROP_WEIGHT_DTYPE},
      {"batch_first", RNNFAST_PROP_BATCH_FIRST}, {"bias", RNNFAST_PROP_BIAS},
      {"has_cell_state", RNNFAST_PROP_HAS_CELL_STATE}, {"is_variant", RNNFAST_PROP_IS_VARIANT}};
  size_t i;
  for (i = 0; i < sizeof(props) / sizeof(props[0]); ++i)
    printf("%s %lld\n", props[i].name, (long long)get(model, props[i].property));
}

int main(int argc, char** argv) {
  rnnfast_model* model = NULL;
  int64_t T, B, I, R, H, LD, L, lstm;
  const char *mode, *threads;
  float *x, *out, *h, *c = NULL;
  if (argc < 3) usage();
  mode = argv[1];
  check(rnnfast_model_load(argv[2], &model), "rnnfast_model_load");
  if (strcmp(mode, "info") == 0) {
    info(model);
    rnnfast_model_free(model);
    return 0;
  }
  if (argc < 7 || (argc - 7) % 2 != 0) usage();
  T = atoll(argv[3]);
  B = atoll(argv[4]);
  threads = option(argc, argv, 7, "--threads");
  if (threads != NULL) check(rnnfast_set_num_threads(atoi(threads)), "rnnfast_set_num_threads");
  I = get(model, RNNFAST_PROP_INPUT_SIZE);
  R = get(model, RNNFAST_PROP_STATE_SIZE);
  H = get(model, RNNFAST_PROP_HIDDEN_SIZE);
  LD = get(model, RNNFAST_PROP_NUM_STATES);
  L = get(model, RNNFAST_PROP_NUM_LAYERS);
  lstm = get(model, RNNFAST_PROP_HAS_CELL_STATE);
  x = (float*)read_file(argv[5], sizeof(float), (size_t)(T * B * I));
  if (strcmp(mode, "forward") == 0) {
    const int64_t W = get(model, RNNFAST_PROP_OUTPUT_SIZE);
    const char *h0_path = option(argc, argv, 7, "--h0"), *c0_path = option(argc, argv, 7, "--c0");
    const char* lengths_path = option(argc, argv, 7, "--lengths");
    float* h0 = h0_path ? (float*)read_file(h0_path, sizeof(float), (size_t)(LD * B * R)) : NULL;
    float* c0 = c0_path ? (float*)read_file(c0_path, sizeof(float), (size_t)(LD * B * H)) : NULL;
    int64_t* lengths = lengths_path ? (int64_t*)read_file(lengths_path, sizeof(int64_t), (size_t)B) : NULL;
    out = allocate((size_t)(T * B * W));
    h = allocate((size_t)(LD * B * R));
    if (lstm) c = allocate((size_t)(LD * B * H));
    check(rnnfast_forward(model, T, B, x, (size_t)(T * B * I), h0, h0 ? (size_t)(LD * B * R) : 0, c0,
                          c0 ? (size_t)(LD * B * H) : 0, lengths, lengths ? (size_t)B : 0, out, (size_t)(T * B * W),
                          h, (size_t)(LD * B * R), c, lstm ? (size_t)(LD * B * H) : 0),
          "rnnfast_forward");
    write_file(argv[6], "out.bin", out, (size_t)(T * B * W));
    write_file(argv[6], "h_n.bin", h, (size_t)(LD * B * R));
    if (lstm) write_file(argv[6], "c_n.bin", c, (size_t)(LD * B * H));
    free(h0), free(c0), free(lengths);
  } else if (strcmp(mode, "stepper") == 0) {
    rnnfast_stepper* stepper = NULL;
    const char* chunk_text = option(argc, argv, 7, "--chunk");
    const int64_t chunk = chunk_text ? atoll(chunk_text) : 1;
    int64_t t;
    check(rnnfast_stepper_create(model, B, &stepper), "rnnfast_stepper_create");
    rnnfast_model_free(model);  /* the stepper holds its own weights */
    model = NULL;
    out = allocate((size_t)(T * B * R));
    h = allocate((size_t)(L * B * R));
    if (lstm) c = allocate((size_t)(L * B * H));
    for (t = 0; t < T; t += chunk) {
      const int64_t n = T - t < chunk ? T - t : chunk;
      if (chunk == 1)
        check(rnnfast_stepper_step(stepper, x + t * B * I, (size_t)(B * I), out + t * B * R, (size_t)(B * R)),
              "rnnfast_stepper_step");
      else
        check(rnnfast_stepper_run(stepper, n, x + t * B * I, (size_t)(n * B * I), out + t * B * R,
                                  (size_t)(n * B * R)),
              "rnnfast_stepper_run");
    }
    check(rnnfast_stepper_get_state(stepper, h, (size_t)(L * B * R), c, lstm ? (size_t)(L * B * H) : 0),
          "rnnfast_stepper_get_state");
    write_file(argv[6], "out.bin", out, (size_t)(T * B * R));
    write_file(argv[6], "h.bin", h, (size_t)(L * B * R));
    if (lstm) write_file(argv[6], "c.bin", c, (size_t)(L * B * H));
    rnnfast_stepper_free(stepper);
  } else {
    usage();
  }
  free(x), free(out), free(h), free(c);
  rnnfast_model_free(model);
  return 0;
}
