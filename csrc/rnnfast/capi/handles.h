// What the C API's opaque handles hold (rnnfast.h declares them): a model, immutable once made and
// shared by any number of calls and threads; a stepper, with its state.
#pragma once

#include <memory>

#include "rnnfast/model/model.h"
#include "rnnfast/model/model_stepper.h"
#include "rnnfast/rnnfast.h"

struct rnnfast_model {
  std::unique_ptr<const rnnfast::model::Model> model;
};

struct rnnfast_stepper {
  std::unique_ptr<rnnfast::model::ModelStepper> stepper;
};
