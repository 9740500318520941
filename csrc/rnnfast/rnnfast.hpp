// The kernel library's public C++ interface, in one include: a layer's forward and backward
// (layer/layer.h) and its reduced-precision inference (layer/reduced_layer.h), streaming inference (stepper/stepper.h), the thread count (core/threadpool.h), the
// instruction set (core/isa.h), and the tuning switches for tests and benchmarks (layer/tuning.h).
#pragma once

#include "rnnfast/core/cell.h"
#include "rnnfast/core/isa.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/layer/layer.h"
#include "rnnfast/layer/reduced_layer.h"
#include "rnnfast/layer/tuning.h"
#include "rnnfast/layer/variant_layer.h"
#include "rnnfast/stepper/reduced_stepper.h"
#include "rnnfast/stepper/stepper.h"
#include "rnnfast/stepper/variant_stepper.h"
