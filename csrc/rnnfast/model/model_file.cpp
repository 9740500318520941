// Reading a model file (model_file.h), in the order python/rnnfast/io.py's _read checks one.
#include "rnnfast/model/model_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "rnnfast/model/error.h"
#include "rnnfast/model/meta.h"
#include "rnnfast/model/npy.h"
#include "rnnfast/model/sha256.h"
#include "rnnfast/model/zip_reader.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file reader takes .npy data as little-endian, the byte order of the hosts rnnfast builds for"
#endif

namespace rnnfast::model {
namespace {

const char kMetaKey[] = "__rnnfast__";

// The checks of io.py _check_names: the names given against the configuration's, missing first.
void check_names(const char* what, const std::set<std::string>& names, const std::vector<ParameterSpec>& spec) {
  std::string missing, extra;
  std::set<std::string> expected;
  for (const ParameterSpec& s : spec) {
    expected.insert(s.name);
    if (!names.count(s.name)) missing += (missing.empty() ? "'" : ", '") + s.name + "'";
  }
  for (const std::string& n : names)
    if (!expected.count(n)) extra += (extra.empty() ? "'" : ", '") + n + "'";
  if (!missing.empty() || !extra.empty())
    invalid_model(std::string(what) + " do not match the configuration: " + (missing.empty() ? "" : "missing " + missing) +
                  (!missing.empty() && !extra.empty() ? "; " : "") + (extra.empty() ? "" : "unexpected " + extra));
}

DType dtype_of(NpyType t) {
  switch (t) {
    case NpyType::kFloat32: return DType::kFloat32;
    case NpyType::kFloat64: return DType::kFloat64;
    case NpyType::kInt8: return DType::kInt8;
    default: return DType::kUint16;
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::unique_ptr<Model> load_model_bytes(const std::uint8_t* data, std::size_t size) {
  if (size < 4 || std::memcmp(data, "PK\x03\x04", 4) != 0)
    invalid_model("not an rnnfast model file (it is not a .npz archive)");
  // The archive's arrays by name (NumPy's NpzFile drops the ".npy" suffix).
  std::map<std::string, const ZipEntry*> entries;
  const std::vector<ZipEntry> zip = read_stored_zip(data, size);
  for (const ZipEntry& e : zip) {
    const std::string name = e.name.size() >= 4 && e.name.compare(e.name.size() - 4, 4, ".npy") == 0
                                 ? e.name.substr(0, e.name.size() - 4)
                                 : e.name;
    if (!entries.emplace(name, &e).second) invalid_model("the archive holds '" + name + "' twice");
  }
  const auto meta_entry = entries.find(kMetaKey);
  if (meta_entry == entries.end()) invalid_model("not an rnnfast model file (no '__rnnfast__' entry)");
  const NpyArray meta_array = parse_npy(kMetaKey, meta_entry->second->data, meta_entry->second->size);
  if (meta_array.type != NpyType::kUnicode || !meta_array.shape.empty())
    invalid_model("entry '__rnnfast__' must be a 0-d str array, got dtype " + std::string(npy_type_name(meta_array.type)) +
                  " shape " + shape_text(meta_array.shape));
  const ModelMeta meta = read_meta(parse_json(npy_unicode_text(kMetaKey, meta_array)));
  const LayerConfig& config = meta.config;

  // The entries and the recorded table against the configuration's parameters. Their count first: a
  // configuration of absurd size is refused before its parameters are listed.
  std::set<std::string> names, recorded_names;
  for (const auto& kv : entries)
    if (kv.first != kMetaKey) names.insert(kv.first);
  const std::int64_t expected_count = parameter_array_count(config);
  if (expected_count < 0 || expected_count > static_cast<std::int64_t>(names.size()) + 4096)
    invalid_model("the configuration has " + std::to_string(expected_count) + " parameter arrays, the file " +
                  std::to_string(names.size()));
  const std::vector<ParameterSpec> spec = parameter_spec(config);
  check_names("entries", names, spec);
  std::map<std::string, const RecordedParameter*> recorded;
  for (const RecordedParameter& r : meta.recorded) {
    recorded_names.insert(r.name);
    recorded[r.name] = &r;
  }
  check_names("parameters recorded in the metadata", recorded_names, spec);

  // Each parameter: its .npy, shape, dtype and digest against the configuration and the record.
  std::vector<NpyArray> arrays;  // kept alive: the NamedArrays point into them (or into `data`)
  arrays.reserve(spec.size());
  std::vector<NamedArray> named;
  for (const ParameterSpec& s : spec) {
    const ZipEntry& entry = *entries.at(s.name);
    arrays.push_back(parse_npy(s.name, entry.data, entry.size));
    const NpyArray& a = arrays.back();
    const RecordedParameter& r = *recorded.at(s.name);
    if (a.shape != s.shape || a.shape != r.shape)
      invalid_model("parameter '" + s.name + "' has shape " + shape_text(a.shape) + ", expected " + shape_text(s.shape) +
                    " for the configuration (recorded: " + shape_text(r.shape) + ")");
    const char* type = npy_type_name(a.type);
    if (a.type == NpyType::kUnicode || dtype_of(a.type) != s.dtype || r.dtype != type)
      invalid_model("parameter '" + s.name + "' has dtype " + type + ", expected " + dtype_name(s.dtype) +
                    " (recorded: " + r.dtype + ")");
    if (sha256_hex(a.data, a.bytes()) != r.sha256)
      invalid_model("parameter '" + s.name + "' does not match its recorded checksum: the file was modified or damaged");
    named.push_back(NamedArray{s.name, s.dtype, a.shape, a.data});
  }
  try {
    return std::make_unique<Model>(config, named);
  } catch (const ModelError& e) {
    if (e.kind() == ErrorKind::kUnsupported) throw;
    invalid_model(std::string("invalid parameters: ") + e.what());
  }
}

std::unique_ptr<Model> load_model_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail(ErrorKind::kIo, "cannot open '" + path + "': " + std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  std::size_t n;
  try {
    while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  } catch (...) {
    std::fclose(f);
    throw;
  }
  const bool failed = std::ferror(f) != 0;
  const int error = errno;
  std::fclose(f);
  if (failed) fail(ErrorKind::kIo, "cannot read '" + path + "': " + std::strerror(error));
  try {
    return load_model_bytes(bytes.data(), bytes.size());
  } catch (const ModelError& e) {
    throw ModelError(e.kind(), path + ": " + e.what());  // as rnnfast.load, the message starts with the file
  }
}

}  // namespace rnnfast::model
