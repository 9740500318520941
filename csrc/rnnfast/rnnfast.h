/* rnnfast's C API: recurrent layers (RNN, LSTM, GRU, their cell variants, and int8 or bf16 quantized
 * ones) loaded from the files rnnfast.save writes, or made from raw arrays, run over whole sequences or
 * one step at a time, from C or from any language that calls C.
 *
 * The numbers are those of the Python layer, bit for bit: a call runs the same kernels on the same data
 * in the same order as rnnfast's Python layers do (same instruction set: both honour RNNFAST_ISA, and
 * RNNFAST_REDUCED_EXTENSIONS for the quantized kernels).
 *
 * Conventions
 *   - Every function that can fail returns an int status: RNNFAST_OK (0) or an RNNFAST_ERR_* code. It
 *     never aborts, never throws (no C++ exception crosses this boundary) and never exits; on failure
 *     its outputs are left unspecified (a handle output is set to NULL) and rnnfast_last_error() says
 *     what went wrong.
 *   - Handles are opaque (rnnfast_model, rnnfast_stepper). A model is immutable once made: any number
 *     of threads may run rnnfast_forward on one model at once. A stepper holds a state: one thread at
 *     a time per stepper (distinct steppers are independent). The *_free functions accept NULL.
 *   - Arrays are dense, C order (row-major), float32 unless said otherwise, passed as a pointer and its
 *     element count (not bytes). An input's count must equal the size the call needs exactly; an
 *     output's count must be at least that size (only that many elements are written). A NULL pointer
 *     is allowed only where documented (an optional input or output), or with a count of 0.
 *   - Shapes name T the sequence length, B the batch, I the input size, H the hidden size, L the number
 *     of layers, D the number of directions (2 bidirectional, else 1), R = proj_size or H the width of h
 *     (H but for an LSTM with a projection), G the gates (1 RNN, 4 LSTM in order i, f, g, o, 3 GRU in
 *     order r, z, n), as in PyTorch's torch.nn.RNN/LSTM/GRU.
 *
 * This header is C99 (and valid C++); it includes only standard headers. Link with the library
 * rnnfast (CMake: find_package(rnnfast CONFIG) then target_link_libraries(... rnnfast::rnnfast);
 * pkg-config: `pkg-config --cflags --libs rnnfast`).
 */
#ifndef RNNFAST_RNNFAST_H
#define RNNFAST_RNNFAST_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The version of rnnfast this header belongs to (the Python package's __version__). rnnfast_version()
 * gives the library's own, which a program can compare with these at run time. */
#define RNNFAST_VERSION_MAJOR 0
#define RNNFAST_VERSION_MINOR 1
#define RNNFAST_VERSION_PATCH 0
#define RNNFAST_VERSION_STRING "0.1.0"
#define RNNFAST_VERSION_NUMBER (RNNFAST_VERSION_MAJOR * 10000 + RNNFAST_VERSION_MINOR * 100 + RNNFAST_VERSION_PATCH)

#if defined(_WIN32)
#define RNNFAST_API
#elif defined(__GNUC__)
#define RNNFAST_API __attribute__((visibility("default")))
#else
#define RNNFAST_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Status codes                                                                                       */
/* ------------------------------------------------------------------------------------------------ */

enum {
  RNNFAST_OK = 0,
  RNNFAST_ERR_NULL_ARGUMENT = 1,    /* a required pointer or handle is NULL (e.g. a model that was never
                                       loaded because rnnfast_model_load failed) */
  RNNFAST_ERR_INVALID_ARGUMENT = 2, /* a value out of range: a negative size, a length outside [0, T], an
                                       unknown enumeration value, an inconsistent configuration */
  RNNFAST_ERR_SIZE_MISMATCH = 3,    /* an array's element count is not what the call needs */
  RNNFAST_ERR_IO = 4,               /* the file cannot be opened or read */
  RNNFAST_ERR_INVALID_MODEL = 5,    /* not an rnnfast model file, or a truncated, damaged or edited one (bad
                                       zip or .npy structure, CRC or SHA-256 mismatch, invalid metadata,
                                       parameters that do not match the configuration) */
  RNNFAST_ERR_UNSUPPORTED = 6,      /* a valid model or request this library does not run: a float64 model,
                                       compressed or encrypted zip entries, a newer format version, a
                                       stepper over a bidirectional or reverse model */
  RNNFAST_ERR_OUT_OF_MEMORY = 7,    /* memory for the model, its packs or a call's scratch cannot be had */
  RNNFAST_ERR_INTERNAL = 8          /* anything else (a bug: please report it with the message) */
};

/* The message of the most recent call on this thread: empty after a call that succeeded, else what
 * failed and why. Valid until this thread's next call into the library; never NULL. */
RNNFAST_API const char* rnnfast_last_error(void);

/* The name of a status code ("RNNFAST_OK", "RNNFAST_ERR_SIZE_MISMATCH", ...; "unknown status" for
 * another value). Static storage, never NULL. */
RNNFAST_API const char* rnnfast_status_name(int status);

/* The library's version, "MAJOR.MINOR.PATCH" (RNNFAST_VERSION_STRING of the build). Static storage. */
RNNFAST_API const char* rnnfast_version(void);

/* ------------------------------------------------------------------------------------------------ */
/* Enumerations                                                                                       */
/* ------------------------------------------------------------------------------------------------ */

/* The cell family (the Python class). The RNN's activation (tanh, relu, ...) is its activation. */
enum { RNNFAST_CELL_RNN = 0, RNNFAST_CELL_LSTM = 1, RNNFAST_CELL_GRU = 2 };

/* ONNX's direction: reverse is one direction over the time-reversed sequences (each within its own
 * length); its parameters carry the suffix "_reverse". */
enum { RNNFAST_DIRECTION_FORWARD = 0, RNNFAST_DIRECTION_REVERSE = 1, RNNFAST_DIRECTION_BIDIRECTIONAL = 2 };

/* Element types: of a model's weights (float32, or the quantized int8 and bf16) and of raw arrays. */
enum {
  RNNFAST_DTYPE_FLOAT32 = 0, /* float */
  RNNFAST_DTYPE_INT8 = 1,    /* int8_t: int8 weights, in [-127, 127], each with float32 row scales */
  RNNFAST_DTYPE_BF16 = 2,    /* uint16_t: the bits of bfloat16 weights */
  RNNFAST_DTYPE_FLOAT64 = 3  /* double: float64 models exist in Python; this library refuses them */
};

/* Activations, in the kernels' order (rnnfast.Activation's names); alpha and beta as ONNX defines them. */
enum {
  RNNFAST_ACTIVATION_DEFAULT = -1, /* the role's default: PyTorch's cell (see rnnfast_config) */
  RNNFAST_ACTIVATION_SIGMOID = 0,
  RNNFAST_ACTIVATION_TANH,
  RNNFAST_ACTIVATION_RELU,
  RNNFAST_ACTIVATION_AFFINE,           /* alpha * a + beta (defaults 1, 0) */
  RNNFAST_ACTIVATION_LEAKY_RELU,       /* alpha 0.01 */
  RNNFAST_ACTIVATION_THRESHOLDED_RELU, /* alpha 1 */
  RNNFAST_ACTIVATION_SCALED_TANH,      /* alpha * tanh(beta * a) (1, 1) */
  RNNFAST_ACTIVATION_HARD_SIGMOID,     /* max(0, min(1, alpha * a + beta)) (0.2, 0.5) */
  RNNFAST_ACTIVATION_ELU,              /* alpha 1 */
  RNNFAST_ACTIVATION_SOFTSIGN,
  RNNFAST_ACTIVATION_SOFTPLUS,
  RNNFAST_ACTIVATION_SELU,
  RNNFAST_ACTIVATION_EXPONENTIAL,
  RNNFAST_ACTIVATION_SILU,
  RNNFAST_ACTIVATION_RELU6
};

/* ------------------------------------------------------------------------------------------------ */
/* Making a model                                                                                     */
/* ------------------------------------------------------------------------------------------------ */

typedef struct rnnfast_model rnnfast_model;

/* Reads a model file written by rnnfast.save (any format version up to 3): float32 layers of every cell
 * and cell variant, and layers quantized to int8 or bf16. Everything in the file is checked before use
 * (zip structure and CRC-32, .npy headers, the JSON metadata, every parameter's shape, dtype and SHA-256,
 * the quantized values), as rnnfast.load checks it. On success *model is a new model (free it with
 * rnnfast_model_free); on failure it is NULL.
 * Errors: RNNFAST_ERR_NULL_ARGUMENT, RNNFAST_ERR_IO (cannot open or read path), RNNFAST_ERR_INVALID_MODEL,
 * RNNFAST_ERR_UNSUPPORTED (float64; compressed or encrypted entries, as np.savez_compressed writes; a
 * format version newer than 3), RNNFAST_ERR_OUT_OF_MEMORY. */
RNNFAST_API int rnnfast_model_load(const char* path, rnnfast_model** model);

/* As rnnfast_model_load, from the file's bytes data[0, size) (not kept after the call). */
RNNFAST_API int rnnfast_model_load_buffer(const void* data, size_t size, rnnfast_model** model);

/* One gate role's activation. alpha, beta: NAN for the activation's default (and for those that take
 * none, where a number is an error). */
typedef struct rnnfast_activation {
  int32_t kind; /* RNNFAST_ACTIVATION_* */
  double alpha;
  double beta;
} rnnfast_activation;

/* A layer's configuration, as the Python constructors take it. Always start from rnnfast_config_init,
 * which sets struct_size (so that later versions of the library, whose struct may grow at its end, read
 * only what the caller has) and PyTorch's defaults. */
typedef struct rnnfast_config {
  uint32_t struct_size; /* sizeof(rnnfast_config) as the caller was compiled: set by rnnfast_config_init */
  int32_t cell;         /* RNNFAST_CELL_* */
  int64_t input_size;   /* I >= 1 */
  int64_t hidden_size;  /* H >= 1 */
  int64_t num_layers;   /* L >= 1; layer k > 0 takes the D*R outputs of layer k-1 */
  int32_t bias;         /* nonzero: the layers have bias_ih_l* and bias_hh_l* (default 1) */
  int32_t batch_first;  /* nonzero: x and out are (B, T, .) rather than (T, B, .) (default 0) */
  int32_t direction;    /* RNNFAST_DIRECTION_* (default forward) */
  int32_t weight_dtype; /* RNNFAST_DTYPE_FLOAT32 (default), _INT8 or _BF16 (PyTorch's cells only) */
  /* The activation of each gate role, per direction slot (slot 0: the forward direction, or the only one
   * of a reverse layer; slot 1: the reverse half of a bidirectional layer). Roles in ONNX's order: the
   * RNN has one (its activation: tanh by default, relu for PyTorch's RNN_RELU), the LSTM three (f: the
   * gates i, f, o, default sigmoid; g: the candidate, tanh; h: the cell output, tanh), the GRU two (f: r
   * and z, sigmoid; g: n, tanh). Roles beyond the cell's are ignored. A slot-1 role left
   * RNNFAST_ACTIVATION_DEFAULT takes slot 0's activation of that role. */
  rnnfast_activation activations[2][3];
  double clip;          /* ONNX's clip: 0 (or INFINITY) for none, else > 0 */
  int32_t input_forget; /* LSTM: the forget gate is 1 - i (ONNX) */
  int32_t reset_after;  /* GRU: nonzero (default) is PyTorch's; 0 applies the reset gate before the product */
  int32_t peepholes;    /* LSTM: weight_ch_l* (3H,) in the order i, f, o */
  int64_t proj_size;    /* LSTM: 0, or P < H with weight_hr_l* (P, H) (PyTorch's) */
} rnnfast_config;

/* PyTorch's layer of `cell` with the given sizes: one layer, bias, time-major, forward, float32,
 * default activations, no clip, reset_after on, no projection or peepholes. */
static inline void rnnfast_config_init(rnnfast_config* config, int32_t cell, int64_t input_size,
                                       int64_t hidden_size) {
  int d, r;
  if (config == NULL) return;
  config->struct_size = (uint32_t)sizeof(rnnfast_config);
  config->cell = cell;
  config->input_size = input_size;
  config->hidden_size = hidden_size;
  config->num_layers = 1;
  config->bias = 1;
  config->batch_first = 0;
  config->direction = RNNFAST_DIRECTION_FORWARD;
  config->weight_dtype = RNNFAST_DTYPE_FLOAT32;
  for (d = 0; d < 2; ++d)
    for (r = 0; r < 3; ++r) {
      config->activations[d][r].kind = RNNFAST_ACTIVATION_DEFAULT;
      config->activations[d][r].alpha = NAN;
      config->activations[d][r].beta = NAN;
    }
  config->clip = 0.0;
  config->input_forget = 0;
  config->reset_after = 1;
  config->peepholes = 0;
  config->proj_size = 0;
}

/* One named parameter array for rnnfast_model_create. */
typedef struct rnnfast_tensor {
  const char* name;   /* its state_dict name: "weight_ih_l0", "bias_hh_l1_reverse", "weight_ih_l0_scale" */
  int32_t dtype;      /* RNNFAST_DTYPE_FLOAT32, _INT8 (int8_t) or _BF16 (uint16_t bits) */
  int32_t ndim;       /* 1 or 2 */
  int64_t shape[2];   /* shape[0] (and shape[1] when ndim is 2) */
  const void* data;   /* C order, shape[0] (* shape[1]) elements; copied by the call */
} rnnfast_tensor;

/* Makes a model from a configuration and its parameters, named and shaped as the Python layer's
 * state_dict() (PyTorch's names): per layer k and direction (suffix "" or "_reverse"; a reverse layer
 * has only the latter), weight_ih_l{k} (G*H, I_k) with I_0 = I and I_k = D*R above, weight_hh_l{k}
 * (G*H, R), with bias bias_ih_l{k} and bias_hh_l{k} (G*H,), with peepholes weight_ch_l{k} (3H,), with a
 * projection weight_hr_l{k} (P, H); all float32. Quantized (weight_dtype int8 or bf16): the weights are
 * int8 each with weight_..._scale float32 (G*H,) (int8), or bf16 bits (bf16); the biases float32. The
 * names must be exactly these, each once, in any order; shapes and dtypes exactly these; int8 values in
 * [-127, 127], scales finite and >= 0, bf16 values finite. The arrays are copied (weights are packed).
 * Errors: RNNFAST_ERR_NULL_ARGUMENT, RNNFAST_ERR_INVALID_ARGUMENT (configuration, names, values),
 * RNNFAST_ERR_SIZE_MISMATCH (shape or dtype), RNNFAST_ERR_UNSUPPORTED (weight_dtype float64; a struct_size
 * larger than this library's: a caller built against a newer header), RNNFAST_ERR_OUT_OF_MEMORY. */
RNNFAST_API int rnnfast_model_create(const rnnfast_config* config, const rnnfast_tensor* tensors, size_t count,
                                     rnnfast_model** model);

/* Frees a model (NULL: nothing). Steppers made from it stay valid (they hold their own packed weights). */
RNNFAST_API void rnnfast_model_free(rnnfast_model* model);

/* ------------------------------------------------------------------------------------------------ */
/* Asking a model                                                                                     */
/* ------------------------------------------------------------------------------------------------ */

enum {
  RNNFAST_PROP_CELL = 0,           /* RNNFAST_CELL_* */
  RNNFAST_PROP_INPUT_SIZE,         /* I */
  RNNFAST_PROP_HIDDEN_SIZE,        /* H */
  RNNFAST_PROP_PROJ_SIZE,          /* P (0: none) */
  RNNFAST_PROP_STATE_SIZE,         /* R = P or H: the width of h and of each direction's output */
  RNNFAST_PROP_OUTPUT_SIZE,        /* D*R: the width of out */
  RNNFAST_PROP_NUM_LAYERS,         /* L */
  RNNFAST_PROP_NUM_DIRECTIONS,     /* D */
  RNNFAST_PROP_NUM_STATES,         /* L*D: the first axis of h0, c0, h_n, c_n */
  RNNFAST_PROP_DIRECTION,          /* RNNFAST_DIRECTION_* */
  RNNFAST_PROP_WEIGHT_DTYPE,       /* RNNFAST_DTYPE_FLOAT32, _INT8 or _BF16 */
  RNNFAST_PROP_BATCH_FIRST,        /* 0 or 1 */
  RNNFAST_PROP_BIAS,               /* 0 or 1 */
  RNNFAST_PROP_HAS_CELL_STATE,     /* 1 for the LSTM (c0, c_n), else 0 */
  RNNFAST_PROP_IS_VARIANT          /* 1 when some direction's cell differs from PyTorch's */
};

/* *value = the model's property `property` (RNNFAST_PROP_*).
 * Errors: RNNFAST_ERR_NULL_ARGUMENT, RNNFAST_ERR_INVALID_ARGUMENT (unknown property). */
RNNFAST_API int rnnfast_model_get(const rnnfast_model* model, int32_t property, int64_t* value);

/* ------------------------------------------------------------------------------------------------ */
/* Running a sequence                                                                                 */
/* ------------------------------------------------------------------------------------------------ */

/* Runs the stacked layers over a sequence (inference; rnnfast's model(x, state, lengths=lengths)).
 *   seq_len T >= 0, batch B >= 0.
 *   x       (T, B, I), or (B, T, I) with batch_first.
 *   h0      (L*D, B, R) the initial h of each layer and direction (index layer*D + direction), or NULL
 *           for zeros.
 *   c0      (L*D, B, H) the LSTM's initial c, or NULL for zeros; must be NULL for the RNN and GRU.
 *   lengths (B,) each in [0, T], any order, or NULL for T each: PyTorch's packed sequences (outputs past
 *           a sequence's end are zero, its final state is the one after its last step, the reverse
 *           direction starts at its own end).
 *   out     (T, B, D*R), or (B, T, D*R) with batch_first: the last layer's h, directions concatenated
 *           (forward first). Required (but may be NULL when T*B*D*R is 0).
 *   h_n     (L*D, B, R) the final h, or NULL if not wanted.
 *   c_n     (L*D, B, H) the LSTM's final c, or NULL if not wanted; must be NULL for the RNN and GRU.
 * The inputs and outputs must not overlap. Errors: RNNFAST_ERR_NULL_ARGUMENT, RNNFAST_ERR_INVALID_ARGUMENT,
 * RNNFAST_ERR_SIZE_MISMATCH, RNNFAST_ERR_OUT_OF_MEMORY. */
RNNFAST_API int rnnfast_forward(const rnnfast_model* model, int64_t seq_len, int64_t batch, const float* x,
                                size_t x_count, const float* h0, size_t h0_count, const float* c0, size_t c0_count,
                                const int64_t* lengths, size_t lengths_count, float* out, size_t out_count,
                                float* h_n, size_t h_n_count, float* c_n, size_t c_n_count);

/* ------------------------------------------------------------------------------------------------ */
/* Streaming: one step at a time                                                                      */
/* ------------------------------------------------------------------------------------------------ */

typedef struct rnnfast_stepper rnnfast_stepper;

/* A stepper over `model` (unidirectional: forward) for `batch` >= 1 independent streams, its state at
 * zero. It packs its own copy of the weights: the model may be freed afterwards. Feeding a sequence
 * step by step gives the bits of one rnnfast_forward over it (and of rnnfast's Python Stepper).
 * Errors: RNNFAST_ERR_NULL_ARGUMENT (model or stepper NULL: e.g. no model was loaded),
 * RNNFAST_ERR_INVALID_ARGUMENT (batch < 1), RNNFAST_ERR_UNSUPPORTED (a bidirectional or reverse model:
 * its reverse direction needs the whole sequence), RNNFAST_ERR_OUT_OF_MEMORY. */
RNNFAST_API int rnnfast_stepper_create(const rnnfast_model* model, int64_t batch, rnnfast_stepper** stepper);

/* Frees a stepper (NULL: nothing). */
RNNFAST_API void rnnfast_stepper_free(rnnfast_stepper* stepper);

/* One step: x (B, I) -> y (B, R), the top layer's new h; the state advances. */
RNNFAST_API int rnnfast_stepper_step(rnnfast_stepper* stepper, const float* x, size_t x_count, float* y,
                                     size_t y_count);

/* `steps` >= 0 steps in one call: x (steps, B, I) -> y (steps, B, R), or (B, steps, .) both when the
 * model is batch_first (as Python's Stepper.step_many). */
RNNFAST_API int rnnfast_stepper_run(rnnfast_stepper* stepper, int64_t steps, const float* x, size_t x_count,
                                    float* y, size_t y_count);

/* Sets the state to zeros. */
RNNFAST_API int rnnfast_stepper_reset(rnnfast_stepper* stepper);

/* Sets the state: h (L, B, R) and, for the LSTM, c (L, B, H); NULL for zeros (c must be NULL for the RNN
 * and GRU). Index = layer. */
RNNFAST_API int rnnfast_stepper_set_state(rnnfast_stepper* stepper, const float* h, size_t h_count,
                                          const float* c, size_t c_count);

/* Copies the state out: h (L, B, R) and, for the LSTM, c (L, B, H); either NULL if not wanted (c must be
 * NULL for the RNN and GRU). */
RNNFAST_API int rnnfast_stepper_get_state(const rnnfast_stepper* stepper, float* h, size_t h_count, float* c,
                                          size_t c_count);

/* ------------------------------------------------------------------------------------------------ */
/* Threads and instruction sets (process-wide, shared with rnnfast's Python package in one process)   */
/* ------------------------------------------------------------------------------------------------ */

/* Sets the number of threads the kernels use (1 to 4096); results do not depend on it.
 * Errors: RNNFAST_ERR_INVALID_ARGUMENT. */
RNNFAST_API int rnnfast_set_num_threads(int32_t threads);

/* The number of threads the kernels use (by default, the CPUs this process may run on). */
RNNFAST_API int32_t rnnfast_get_num_threads(void);

/* The instruction set the float kernels run on: "avx512", "avx2" or "generic" (RNNFAST_ISA chooses
 * another at the first call). Static storage. */
RNNFAST_API const char* rnnfast_isa(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RNNFAST_RNNFAST_H */
