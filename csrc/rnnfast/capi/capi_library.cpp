// The C API's library-wide functions (rnnfast.h): errors and status names, the version, the kernels'
// thread count and instruction set.
#include <string>

#include "rnnfast/capi/errors.h"
#include "rnnfast/core/isa.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/model/error.h"

extern "C" {

const char* rnnfast_last_error(void) { return rnnfast::capi::last_error(); }

const char* rnnfast_status_name(int status) {
  switch (status) {
    case RNNFAST_OK: return "RNNFAST_OK";
    case RNNFAST_ERR_NULL_ARGUMENT: return "RNNFAST_ERR_NULL_ARGUMENT";
    case RNNFAST_ERR_INVALID_ARGUMENT: return "RNNFAST_ERR_INVALID_ARGUMENT";
    case RNNFAST_ERR_SIZE_MISMATCH: return "RNNFAST_ERR_SIZE_MISMATCH";
    case RNNFAST_ERR_IO: return "RNNFAST_ERR_IO";
    case RNNFAST_ERR_INVALID_MODEL: return "RNNFAST_ERR_INVALID_MODEL";
    case RNNFAST_ERR_UNSUPPORTED: return "RNNFAST_ERR_UNSUPPORTED";
    case RNNFAST_ERR_OUT_OF_MEMORY: return "RNNFAST_ERR_OUT_OF_MEMORY";
    case RNNFAST_ERR_INTERNAL: return "RNNFAST_ERR_INTERNAL";
  }
  return "unknown status";
}

const char* rnnfast_version(void) { return RNNFAST_VERSION_STRING; }

int rnnfast_set_num_threads(int32_t threads) {
  return rnnfast::capi::guard([&] {
    if (threads < 1 || threads > rnnfast::kMaxThreads)
      rnnfast::model::fail(rnnfast::model::ErrorKind::kInvalidArgument,
                           "threads must be in [1, " + std::to_string(rnnfast::kMaxThreads) + "], got " +
                               std::to_string(threads));
    rnnfast::set_num_threads(threads);
  });
}

int32_t rnnfast_get_num_threads(void) {
  rnnfast::capi::clear_error();
  return rnnfast::num_threads();
}

const char* rnnfast_isa(void) {
  try {
    rnnfast::capi::clear_error();
    return rnnfast::isa_name(rnnfast::active_isa());
  } catch (...) {  // an RNNFAST_ISA naming an unavailable instruction set: reported, and the name of the widest
    rnnfast::capi::status_of_current_exception();
    return "unknown";
  }
}

}  // extern "C"
