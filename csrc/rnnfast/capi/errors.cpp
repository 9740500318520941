// The C API's error handling (errors.h).
#include "rnnfast/capi/errors.h"

#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

#include "rnnfast/model/error.h"

namespace rnnfast::capi {
namespace {

// This thread's last message: a fixed buffer, so that recording it cannot fail.
thread_local char t_message[2048] = "";

int status_of(model::ErrorKind kind) {
  switch (kind) {
    case model::ErrorKind::kNullArgument: return RNNFAST_ERR_NULL_ARGUMENT;
    case model::ErrorKind::kInvalidArgument: return RNNFAST_ERR_INVALID_ARGUMENT;
    case model::ErrorKind::kSizeMismatch: return RNNFAST_ERR_SIZE_MISMATCH;
    case model::ErrorKind::kIo: return RNNFAST_ERR_IO;
    case model::ErrorKind::kInvalidModel: return RNNFAST_ERR_INVALID_MODEL;
    case model::ErrorKind::kUnsupported: return RNNFAST_ERR_UNSUPPORTED;
  }
  return RNNFAST_ERR_INTERNAL;
}

std::string count_text(std::size_t count) { return std::to_string(count); }

}  // namespace

int set_error(int status, const char* message) noexcept {
  std::snprintf(t_message, sizeof(t_message), "%s", message != nullptr ? message : "(no message)");
  return status;
}

void clear_error() noexcept { t_message[0] = '\0'; }

const char* last_error() noexcept { return t_message; }

int status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const model::ModelError& e) {
    return set_error(status_of(e.kind()), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(RNNFAST_ERR_OUT_OF_MEMORY, "rnnfast: out of memory");
  } catch (const std::length_error&) {
    return set_error(RNNFAST_ERR_OUT_OF_MEMORY, "rnnfast: a buffer larger than can be allocated was needed");
  } catch (const std::invalid_argument& e) {
    return set_error(RNNFAST_ERR_INVALID_ARGUMENT, e.what());
  } catch (const std::exception& e) {
    char message[2048];
    std::snprintf(message, sizeof(message), "rnnfast: internal error: %s", e.what());
    return set_error(RNNFAST_ERR_INTERNAL, message);
  } catch (...) {
    return set_error(RNNFAST_ERR_INTERNAL, "rnnfast: internal error: an unknown exception");
  }
}

void require(const void* p, const char* what) {
  if (p == nullptr) model::fail(model::ErrorKind::kNullArgument, std::string(what) + " is NULL");
}

void check_input(const char* name, const void* p, std::size_t count, std::int64_t need) {
  if (p == nullptr && need > 0) model::fail(model::ErrorKind::kNullArgument, std::string(name) + " is NULL");
  if (static_cast<std::uint64_t>(need) != count)
    model::fail(model::ErrorKind::kSizeMismatch, std::string(name) + " has " + count_text(count) +
                                                     " elements, the call needs " + std::to_string(need));
}

void check_output(const char* name, const void* p, std::size_t count, std::int64_t need) {
  if (p == nullptr && need > 0) model::fail(model::ErrorKind::kNullArgument, std::string(name) + " is NULL");
  if (count < static_cast<std::uint64_t>(need))
    model::fail(model::ErrorKind::kSizeMismatch, std::string(name) + " has room for " + count_text(count) +
                                                     " elements, the call writes " + std::to_string(need));
}

void check_optional_input(const char* name, const void* p, std::size_t count, std::int64_t need) {
  if (p != nullptr) check_input(name, p, count, need);
}

void check_optional_output(const char* name, const void* p, std::size_t count, std::int64_t need) {
  if (p != nullptr) check_output(name, p, count, need);
}

}  // namespace rnnfast::capi
