// Reading a model file written by rnnfast.save (python/rnnfast/io.py documents the format: an
// uncompressed .npz, i.e. a zip of .npy arrays, one per parameter under its state_dict name, and the
// JSON metadata record "__rnnfast__"). Everything is checked before use, as rnnfast.load checks it: the
// zip structure and each entry's CRC-32, the .npy headers, the metadata (meta.h), the entries against
// the configuration's parameters, each parameter's shape and dtype against the configuration and the
// record, and its SHA-256 against the record; then the Model's own checks (quantized values).
//
// Errors: ModelError kIo (the file cannot be read), kInvalidModel (saying what is wrong), kUnsupported
// (compressed or encrypted entries, a newer format, float64); std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "rnnfast/model/model.h"

namespace rnnfast::model {

// The model in the file at `path`.
std::unique_ptr<Model> load_model_file(const std::string& path);

// The model in the file's bytes data[0, size) (not kept).
std::unique_ptr<Model> load_model_bytes(const std::uint8_t* data, std::size_t size);

}  // namespace rnnfast::model
