// The C API's boundary (capi/): every extern "C" function runs its body through guard(), which catches
// every exception, maps it to a status code and keeps its message for rnnfast_last_error() (per
// thread, in a fixed buffer, so that reporting an error never allocates or fails). Also the shared
// checks of a call's pointer-and-count arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "rnnfast/rnnfast.h"

namespace rnnfast::capi {

// Records `message` as this thread's last error (truncated to the buffer) and returns `status`.
int set_error(int status, const char* message) noexcept;
// Clears this thread's last error (a call that succeeded).
void clear_error() noexcept;
const char* last_error() noexcept;

// Runs body(); RNNFAST_OK if it returns, else the status of what it threw (ModelError by its kind,
// std::bad_alloc and std::length_error as out of memory, std::invalid_argument from the kernels as an
// invalid argument, anything else internal), its message recorded. Never throws.
template <typename Body>
int guard(Body&& body) noexcept;

// ModelError(kNullArgument) naming `what` when `p` is NULL.
void require(const void* p, const char* what);
// An input array: `count` must be `need` exactly; NULL only when `need` is 0.
void check_input(const char* name, const void* p, std::size_t count, std::int64_t need);
// An output array: `count` at least `need`; NULL only when `need` is 0.
void check_output(const char* name, const void* p, std::size_t count, std::int64_t need);
// An optional array (NULL: not given, the count ignored): as check_input or check_output when given.
void check_optional_input(const char* name, const void* p, std::size_t count, std::int64_t need);
void check_optional_output(const char* name, const void* p, std::size_t count, std::int64_t need);

// The status of an exception in flight (called from guard's catch-all).
int status_of_current_exception() noexcept;

template <typename Body>
int guard(Body&& body) noexcept {
  try {
    body();
    clear_error();
    return RNNFAST_OK;
  } catch (...) {
    return status_of_current_exception();
  }
}

}  // namespace rnnfast::capi
