// What the C API's tests (test_capi*.cpp) share: random parameters for a configuration as the C API
// takes them (rnnfast_tensor), and a writer of model files in rnnfast.save's format (an uncompressed zip
// of .npy arrays with the JSON metadata record), written from the format's specifications (PKWARE's
// APPNOTE, NumPy's .npy format, python/rnnfast/io.py), so that the tests can make files, good and bad,
// without Python. The Python layer's own files are tested against it in tests/system/test_capi.py.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "rnnfast/model/config.h"
#include "rnnfast/model/sha256.h"
#include "rnnfast/model/zip_reader.h"
#include "rnnfast/rnnfast.h"

namespace capi_test {

// One parameter array (owning its bytes) and its C API view.
struct Array {
  std::string name;
  std::int32_t dtype = RNNFAST_DTYPE_FLOAT32;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;
};

inline const char* npy_descr(std::int32_t dtype) {
  return dtype == RNNFAST_DTYPE_INT8 ? "|i1" : dtype == RNNFAST_DTYPE_BF16 ? "<u2" : dtype == RNNFAST_DTYPE_FLOAT64 ? "<f8" : "<f4";
}
inline const char* numpy_name(std::int32_t dtype) {
  return dtype == RNNFAST_DTYPE_INT8 ? "int8" : dtype == RNNFAST_DTYPE_BF16 ? "uint16" : dtype == RNNFAST_DTYPE_FLOAT64 ? "float64" : "float32";
}

// The model layer's configuration of a C configuration (the sizes, direction, weight type and options that
// decide the parameters' names and shapes).
inline rnnfast::model::LayerConfig layer_config(const rnnfast_config& c) {
  rnnfast::model::LayerConfig l;
  l.family = static_cast<rnnfast::model::Family>(c.cell);
  l.input_size = c.input_size, l.hidden_size = c.hidden_size, l.num_layers = c.num_layers;
  l.bias = c.bias != 0, l.direction = static_cast<rnnfast::model::Direction>(c.direction);
  l.weight_dtype = static_cast<rnnfast::model::WeightDtype>(c.weight_dtype);
  l.peepholes = c.peepholes != 0, l.proj_size = c.proj_size;
  return l;
}

// Random parameters for `c`: floats uniform in [-0.5, 0.5); int8 weights in [-127, 127] with scales in
// [0, 0.01); bf16 weights the bits of small values.
inline std::vector<Array> random_parameters(const rnnfast_config& c, std::uint64_t seed) {
  check::Rng rng(seed);
  std::vector<Array> arrays;
  for (const rnnfast::model::ParameterSpec& s : rnnfast::model::parameter_spec(layer_config(c))) {
    Array a;
    a.name = s.name;
    a.shape = s.shape;
    std::int64_t n = 1;
    for (std::int64_t d : s.shape) n *= d;
    if (s.dtype == rnnfast::model::DType::kInt8) {
      a.dtype = RNNFAST_DTYPE_INT8;
      for (std::int64_t i = 0; i < n; ++i) a.bytes.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(rng.below(255) - 127)));
    } else if (s.dtype == rnnfast::model::DType::kUint16) {
      a.dtype = RNNFAST_DTYPE_BF16;
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(rng.uniform(-0.5, 0.5));
        std::uint32_t bits;
        std::memcpy(&bits, &v, 4);
        a.bytes.push_back(static_cast<std::uint8_t>(bits >> 16));
        a.bytes.push_back(static_cast<std::uint8_t>(bits >> 24));
      }
    } else {
      const bool scale = s.role == rnnfast::model::ParameterRole::kScaleIh || s.role == rnnfast::model::ParameterRole::kScaleHh;
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(scale ? rng.uniform(0.0, 0.01) : rng.uniform(-0.5, 0.5));
        const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
        a.bytes.insert(a.bytes.end(), p, p + 4);
      }
    }
    arrays.push_back(std::move(a));
  }
  return arrays;
}

inline std::vector<rnnfast_tensor> tensors(const std::vector<Array>& arrays) {
  std::vector<rnnfast_tensor> t;
  for (const Array& a : arrays)
    t.push_back(rnnfast_tensor{a.name.c_str(), a.dtype, static_cast<std::int32_t>(a.shape.size()),
                               {a.shape[0], a.shape.size() > 1 ? a.shape[1] : 0}, a.bytes.data()});
  return t;
}

// One .npy file: version 1.0 header padded to a multiple of 64 bytes, then the data.
inline std::vector<std::uint8_t> npy(const std::string& descr, const std::vector<std::int64_t>& shape,
                                     const std::vector<std::uint8_t>& data) {
  std::string dims;
  for (std::int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  const std::string head = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 0xff) +
                           static_cast<char>(header.size() >> 8) + header;
  std::vector<std::uint8_t> out(head.size() + data.size());
  std::memcpy(out.data(), head.data(), head.size());
  if (!data.empty()) std::memcpy(out.data() + head.size(), data.data(), data.size());
  return out;
}

// The metadata text as a 0-d '<U<n>' array (UTF-32LE; the text is ASCII, as json.dumps writes it).
inline std::vector<std::uint8_t> npy_text(const std::string& text) {
  std::vector<std::uint8_t> data;
  for (char ch : text) data.insert(data.end(), {static_cast<std::uint8_t>(ch), 0, 0, 0});
  return npy("<U" + std::to_string(text.size()), {}, data);
}

inline void put(std::vector<std::uint8_t>& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// A stored zip archive of the entries (name, bytes), as Python's zipfile writes one; with `zip64`, every
// size and offset in the ZIP64 extra fields and the ZIP64 end record (as a writer must past 4 GiB).
inline std::vector<std::uint8_t> zip(const std::vector<std::pair<std::string, std::vector<std::uint8_t>>>& entries,
                                     bool zip64 = false) {
  const std::uint64_t wide = 0xffffffffu;
  std::vector<std::uint8_t> out, directory;
  for (const auto& [name, data] : entries) {
    const std::uint32_t crc = rnnfast::model::crc32(data.data(), data.size());
    const std::size_t offset = out.size();
    put(out, 0x04034b50, 4), put(out, 45, 2), put(out, 0, 2), put(out, 0, 2), put(out, 0, 4), put(out, crc, 4);
    put(out, data.size(), 4), put(out, data.size(), 4), put(out, name.size(), 2), put(out, 0, 2);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), data.begin(), data.end());
    put(directory, 0x02014b50, 4), put(directory, 45, 2), put(directory, 45, 2), put(directory, 0, 2);
    put(directory, 0, 2), put(directory, 0, 4), put(directory, crc, 4), put(directory, zip64 ? wide : data.size(), 4);
    put(directory, zip64 ? wide : data.size(), 4), put(directory, name.size(), 2), put(directory, zip64 ? 28 : 0, 2);
    put(directory, 0, 2), put(directory, 0, 2), put(directory, 0, 2), put(directory, 0, 4);
    put(directory, zip64 ? wide : offset, 4);
    directory.insert(directory.end(), name.begin(), name.end());
    if (zip64)  // id 1: uncompressed size, compressed size, local header offset
      put(directory, 1, 2), put(directory, 24, 2), put(directory, data.size(), 8), put(directory, data.size(), 8),
          put(directory, offset, 8);
  }
  const std::size_t directory_offset = out.size();
  out.insert(out.end(), directory.begin(), directory.end());
  if (zip64) {
    const std::size_t record = out.size();
    put(out, 0x06064b50, 4), put(out, 44, 8), put(out, 45, 2), put(out, 45, 2), put(out, 0, 4), put(out, 0, 4);
    put(out, entries.size(), 8), put(out, entries.size(), 8), put(out, directory.size(), 8), put(out, directory_offset, 8);
    put(out, 0x07064b50, 4), put(out, 0, 4), put(out, record, 8), put(out, 1, 4);
  }
  put(out, 0x06054b50, 4), put(out, 0, 2), put(out, 0, 2), put(out, zip64 ? 0xffff : entries.size(), 2);
  put(out, zip64 ? 0xffff : entries.size(), 2), put(out, zip64 ? wide : directory.size(), 4);
  put(out, zip64 ? wide : directory_offset, 4), put(out, 0, 2);
  return out;
}

inline std::string json_activation(const char* name) {
  return std::string("{\"alpha\": null, \"beta\": null, \"name\": \"") + name + "\"}";
}

// The metadata record of a layer of `c` (default activations) with these parameters, format version 3,
// as json.dumps(meta, sort_keys=True) writes it; `config_extra` is spliced into the config object.
inline std::string meta_json(const rnnfast_config& c, const std::vector<Array>& arrays, std::int64_t version = 3) {
  const char* cls = c.cell == RNNFAST_CELL_RNN ? "RNN" : c.cell == RNNFAST_CELL_LSTM ? "LSTM" : "GRU";
  const int D = c.direction == RNNFAST_DIRECTION_BIDIRECTIONAL ? 2 : 1;
  const char* wd = c.weight_dtype == RNNFAST_DTYPE_INT8 ? "int8" : c.weight_dtype == RNNFAST_DTYPE_BF16 ? "bf16" : "float32";
  std::string acts = "[";
  for (int d = 0; d < D; ++d) {
    acts += d ? ", [" : "[";
    if (c.cell == RNNFAST_CELL_RNN) acts += json_activation("tanh");
    if (c.cell == RNNFAST_CELL_LSTM) acts += json_activation("sigmoid") + ", " + json_activation("tanh") + ", " + json_activation("tanh");
    if (c.cell == RNNFAST_CELL_GRU) acts += json_activation("sigmoid") + ", " + json_activation("tanh");
    acts += "]";
  }
  acts += "]";
  std::string config = "\"batch_first\": " + std::string(c.batch_first ? "true" : "false") +
                       ", \"bias\": " + (c.bias ? "true" : "false") +
                       ", \"bidirectional\": " + (D == 2 ? "true" : "false") + ", \"dropout\": 0.0, \"dtype\": \"float32\"" +
                       ", \"hidden_size\": " + std::to_string(c.hidden_size) + ", \"input_size\": " + std::to_string(c.input_size) +
                       ", \"num_layers\": " + std::to_string(c.num_layers);
  if (version >= 2) config += std::string(", \"weight_dtype\": \"") + wd + "\"";
  if (version >= 3) {
    const char* dir = c.direction == RNNFAST_DIRECTION_FORWARD ? "forward" : c.direction == RNNFAST_DIRECTION_REVERSE ? "reverse" : "bidirectional";
    config += ", \"activations\": " + acts + ", \"clip\": null, \"direction\": \"" + dir + "\"";
    if (c.cell == RNNFAST_CELL_LSTM)
      config += ", \"input_forget\": false, \"peepholes\": " + std::string(c.peepholes ? "true" : "false") +
                ", \"proj_size\": " + std::to_string(c.proj_size);
    if (c.cell == RNNFAST_CELL_GRU) config += ", \"reset_after\": true";
  }
  if (c.cell == RNNFAST_CELL_RNN) config += ", \"nonlinearity\": \"tanh\"";
  std::string params;
  for (const Array& a : arrays) {
    std::string shape;
    for (std::int64_t d : a.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    params += (params.empty() ? "\"" : ", \"") + a.name + "\": {\"dtype\": \"" + numpy_name(a.dtype) + "\", \"sha256\": \"" +
              rnnfast::model::sha256_hex(a.bytes.data(), a.bytes.size()) + "\", \"shape\": [" + shape + "]}";
  }
  return std::string("{\"class\": \"") + cls + "\", \"config\": {" + config + "}, \"format\": \"rnnfast\", \"format_version\": " +
         std::to_string(version) + ", \"parameters\": {" + params + "}, \"rnnfast_version\": \"0.1.0\"}";
}

// A whole model file of `c` with `arrays` and the metadata text `meta`.
inline std::vector<std::uint8_t> model_file(const std::vector<Array>& arrays, const std::string& meta, bool zip64 = false) {
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> entries = {{"__rnnfast__.npy", npy_text(meta)}};
  for (const Array& a : arrays) entries.emplace_back(a.name + ".npy", npy(npy_descr(a.dtype), a.shape, a.bytes));
  return zip(entries, zip64);
}

// The status of a call, with the last error's text in a failure message.
#define CHECK_STATUS(call, want) \
  do { const int status_ = (call); CHECK(status_ == (want), #call, " returned ", rnnfast_status_name(status_), " (", rnnfast_last_error(), "), want ", rnnfast_status_name(want)); } while (0)

}  // namespace capi_test
