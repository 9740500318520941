// The C API's steppers (rnnfast.h): streaming inference, one step (or a chunk of steps) per call.
#include <string>

#include "rnnfast/capi/errors.h"
#include "rnnfast/capi/handles.h"
#include "rnnfast/model/error.h"

namespace model = rnnfast::model;
using rnnfast::capi::guard;
using rnnfast::capi::require;

namespace {

// The element counts of a stepper's arrays: a step's x and y per step, the state's h and c.
struct StepperSizes {
  std::int64_t x, y, h, c;
};

StepperSizes sizes(const model::ModelStepper& s) {
  const std::int64_t B = s.batch(), L = s.num_layers();
  return {B * s.input_size(), B * s.state_size(), L * B * s.state_size(), s.cell_state() ? L * B * s.hidden_size() : 0};
}

// steps * per_step, refusing what cannot be counted.
std::int64_t chunk(std::int64_t steps, std::int64_t per_step) {
  if (steps < 0) model::fail(model::ErrorKind::kInvalidArgument, "steps must be >= 0, got " + std::to_string(steps));
  if (per_step > 0 && steps > (std::int64_t(1) << 60) / per_step)
    model::fail(model::ErrorKind::kInvalidArgument, "steps " + std::to_string(steps) + " is too large for any buffer");
  return steps * per_step;
}

}  // namespace

extern "C" {

int rnnfast_stepper_create(const rnnfast_model* m, int64_t batch, rnnfast_stepper** out) {
  if (out != nullptr) *out = nullptr;
  return guard([&] {
    require(out, "stepper (the output handle)");
    require(m, "model (no model loaded?)");
    auto handle = std::make_unique<rnnfast_stepper>();
    handle->stepper = std::make_unique<model::ModelStepper>(*m->model, batch);
    *out = handle.release();
  });
}

void rnnfast_stepper_free(rnnfast_stepper* s) { delete s; }

int rnnfast_stepper_step(rnnfast_stepper* s, const float* x, size_t x_count, float* y, size_t y_count) {
  return guard([&] {
    require(s, "stepper (no stepper made?)");
    const StepperSizes n = sizes(*s->stepper);
    rnnfast::capi::check_input("x", x, x_count, n.x);
    rnnfast::capi::check_output("y", y, y_count, n.y);
    s->stepper->run(1, x, y);
  });
}

int rnnfast_stepper_run(rnnfast_stepper* s, int64_t steps, const float* x, size_t x_count, float* y, size_t y_count) {
  return guard([&] {
    require(s, "stepper (no stepper made?)");
    const StepperSizes n = sizes(*s->stepper);
    rnnfast::capi::check_input("x", x, x_count, chunk(steps, n.x));
    rnnfast::capi::check_output("y", y, y_count, chunk(steps, n.y));
    s->stepper->run(steps, x, y);
  });
}

int rnnfast_stepper_reset(rnnfast_stepper* s) {
  return guard([&] {
    require(s, "stepper (no stepper made?)");
    s->stepper->set_state(nullptr, nullptr);
  });
}

int rnnfast_stepper_set_state(rnnfast_stepper* s, const float* h, size_t h_count, const float* c, size_t c_count) {
  return guard([&] {
    require(s, "stepper (no stepper made?)");
    const StepperSizes n = sizes(*s->stepper);
    if (!s->stepper->cell_state() && c != nullptr)
      model::fail(model::ErrorKind::kInvalidArgument, "c is only used by the LSTM: pass NULL");
    rnnfast::capi::check_optional_input("h", h, h_count, n.h);
    rnnfast::capi::check_optional_input("c", c, c_count, n.c);
    s->stepper->set_state(h, c);
  });
}

int rnnfast_stepper_get_state(const rnnfast_stepper* s, float* h, size_t h_count, float* c, size_t c_count) {
  return guard([&] {
    require(s, "stepper (no stepper made?)");
    const StepperSizes n = sizes(*s->stepper);
    if (!s->stepper->cell_state() && c != nullptr)
      model::fail(model::ErrorKind::kInvalidArgument, "c is only used by the LSTM: pass NULL");
    rnnfast::capi::check_optional_output("h", h, h_count, n.h);
    rnnfast::capi::check_optional_output("c", c, c_count, n.c);
    s->stepper->get_state(h, c);
  });
}

}  // extern "C"
