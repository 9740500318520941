// The one exception the model layer throws for a problem of its input (a file, a configuration, a call's
// arrays): its kind says whose problem it is, so that the C API (capi/) maps it to a status code without
// parsing messages. Everything else that escapes (std::bad_alloc, the kernels' std::invalid_argument) is
// mapped by the C API's own rules.
#pragma once

#include <stdexcept>
#include <string>

namespace rnnfast::model {

enum class ErrorKind {
  kNullArgument,     // a required pointer is missing
  kInvalidArgument,  // a value out of range, an inconsistent configuration
  kSizeMismatch,     // an array of the wrong size, shape or element type
  kIo,               // a file that cannot be opened or read
  kInvalidModel,     // a model file that is not one, or a damaged or edited one
  kUnsupported,      // something valid this library does not run
};

class ModelError : public std::runtime_error {
 public:
  ModelError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Shorthands: throw an error of one kind with a message.
[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw ModelError(kind, message); }
[[noreturn]] inline void invalid_model(const std::string& message) { fail(ErrorKind::kInvalidModel, message); }

}  // namespace rnnfast::model
