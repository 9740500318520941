// A model file's metadata record (the JSON document of its "__rnnfast__" entry, python/rnnfast/io.py
// documents it): the format and its version, the layer's class and configuration, and the parameters'
// recorded shapes, dtypes and SHA-256 digests. Read and checked as rnnfast.load checks it (io.py
// _check_meta, _activations, and the layer constructors' checks), so that a file Python refuses is
// refused here too. Errors: ModelError kInvalidModel saying what is wrong; kUnsupported for a newer
// format version or a float64 layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rnnfast/model/config.h"
#include "rnnfast/model/json.h"

namespace rnnfast::model {

// The newest format version read (rnnfast.io.FORMAT_VERSION).
constexpr std::int64_t kFormatVersion = 3;

// What the metadata records of one parameter.
struct RecordedParameter {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string dtype;   // NumPy's name: "float32", "int8", ...
  std::string sha256;  // 64 lowercase hexadecimal digits
};

struct ModelMeta {
  std::int64_t format_version = 0;
  LayerConfig config;                       // validated (validate() in config.h)
  std::vector<RecordedParameter> recorded;  // the "parameters" object, in its order
};

// The metadata `meta` (the parsed JSON document) checked and read.
ModelMeta read_meta(const Json& meta);

}  // namespace rnnfast::model
