// The C API's model files (subject "capi"): the readers' known answers (SHA-256, CRC-32, JSON, .npy), a
// written file loads as the model made from the same arrays (the same bits), the older format versions
// load, and damaged, edited, truncated or unsupported files are error codes, never crashes: every
// truncation of a file and a flipped byte at every position of it (a flip that loads must give the
// original's results).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "capi_support.h"
#include "check.h"
#include "rnnfast/model/error.h"
#include "rnnfast/model/json.h"
#include "rnnfast/model/npy.h"

namespace {

using capi_test::Array;
namespace model = rnnfast::model;

rnnfast_config config_of(int cell, std::int64_t I, std::int64_t H) {
  rnnfast_config c;
  rnnfast_config_init(&c, cell, I, H);
  return c;
}

int load(const std::vector<std::uint8_t>& file, rnnfast_model** m) {
  return rnnfast_model_load_buffer(file.data(), file.size(), m);
}

// The outputs of a forward over fixed inputs (out, then h_n, then c_n), or empty when it fails.
std::vector<float> results(const rnnfast_model* m, std::int64_t T = 3, std::int64_t B = 2) {
  std::int64_t I, W, LD, R, H, lstm;
  rnnfast_model_get(m, RNNFAST_PROP_INPUT_SIZE, &I);
  rnnfast_model_get(m, RNNFAST_PROP_OUTPUT_SIZE, &W);
  rnnfast_model_get(m, RNNFAST_PROP_NUM_STATES, &LD);
  rnnfast_model_get(m, RNNFAST_PROP_STATE_SIZE, &R);
  rnnfast_model_get(m, RNNFAST_PROP_HIDDEN_SIZE, &H);
  rnnfast_model_get(m, RNNFAST_PROP_HAS_CELL_STATE, &lstm);
  std::vector<float> x(T * B * I);
  check::Rng rng(99);
  for (float& v : x) v = static_cast<float>(rng.uniform());
  const std::vector<std::int64_t> lengths = {2, 3};
  std::vector<float> out(T * B * W), h(LD * B * R), c(lstm ? LD * B * H : 0);
  if (rnnfast_forward(m, T, B, x.data(), x.size(), nullptr, 0, nullptr, 0, lengths.data(), 2, out.data(), out.size(), h.data(),
                      h.size(), lstm ? c.data() : nullptr, c.size()) != RNNFAST_OK)
    return {};
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

TEST(capi, readers_known_answers) {
  // FIPS 180-4's examples (NIST's "SHA256.pdf"), and the CRC-32 check value of "123456789".
  CHECK(model::sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(abc)");
  CHECK(model::sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256()");
  const char* two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(model::sha256_hex(two_blocks, std::strlen(two_blocks)) ==
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        "sha256 of 448 bits");
  model::Sha256 many;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) many.update(a.data(), a.size());
  CHECK(many.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "sha256 of a million a");
  CHECK(model::crc32(reinterpret_cast<const std::uint8_t*>("123456789"), 9) == 0xcbf43926u, "crc32 check value");
  // JSON: types, numbers (integers kept apart), escapes and surrogate pairs, duplicate keys (the last wins).
  const model::Json j = model::parse_json(
      R"( {"a": [1, -0, 2.5, 1e2, 1E-2, 123456789012], "s": "\u00e9\ud83d\ude00\n\"", "t": true, "n": null, "a": 7} )");
  CHECK(j.find("a")->is_integer() && j.find("a")->as_int() == 7, "the last duplicate key wins");
  CHECK(j.find("s")->as_string() == "\xc3\xa9\xf0\x9f\x98\x80\n\"", "escapes");
  CHECK(j.find("t")->as_bool() && j.find("n")->is(model::Json::Type::kNull), "literals");
  const model::Json numbers = model::parse_json("[1, -0, 2.5, 1e2, 1e999, 12345678901234567890]");
  CHECK(numbers.items()[0].is_integer() && !numbers.items()[2].is_integer() && !numbers.items()[3].is_integer(), "kinds");
  CHECK(numbers.items()[3].as_double() == 100.0 && std::isinf(numbers.items()[4].as_double()), "values");
  CHECK(!numbers.items()[5].is_integer() && numbers.items()[5].as_double() == 12345678901234567890.0, "a big integer");
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "\"a\x01\"", "NaN",
                          "[1] 2", "tru", "{\"a\": Infinity}"}) {
    bool refused = false;
    try {
      model::parse_json(bad);
    } catch (const model::ModelError& e) {
      refused = e.kind() == model::ErrorKind::kInvalidModel;
    }
    CHECK(refused, "JSON accepted: ", bad);
  }
  std::string deep(100, '[');
  bool refused = false;
  try {
    model::parse_json(deep + std::string(100, ']'));
  } catch (const model::ModelError&) {
    refused = true;
  }
  CHECK(refused, "JSON nested 100 deep");
  // .npy: a Fortran-ordered array comes back in C order; malformed headers are refused.
  const std::vector<std::uint8_t> f_order = {1, 4, 2, 5, 3, 6};  // [[1, 2, 3], [4, 5, 6]] column by column
  std::vector<std::uint8_t> file = capi_test::npy("|i1", {2, 3}, f_order);
  const std::string c_header = "'fortran_order': False", f_header = "'fortran_order': True ";
  const auto at = std::search(file.begin(), file.end(), c_header.begin(), c_header.end());
  std::copy(f_header.begin(), f_header.end(), at);
  const model::NpyArray arr = model::parse_npy("a", file.data(), file.size());
  CHECK(std::vector<std::uint8_t>(arr.data, arr.data + 6) == std::vector<std::uint8_t>({1, 2, 3, 4, 5, 6}), "Fortran order");
  for (const char* header : {"{'descr': '<f4', 'shape': (2,), }", "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }",
                             "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }"}) {
    std::vector<std::uint8_t> bad = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<std::uint8_t>(std::strlen(header)), 0};
    bad.insert(bad.end(), header, header + std::strlen(header));
    bad.resize(bad.size() + 8);
    bool refused_npy = false;
    try {
      model::parse_npy("a", bad.data(), bad.size());
    } catch (const model::ModelError&) {
      refused_npy = true;
    }
    CHECK(refused_npy, ".npy header accepted: ", header);
  }
}

TEST(capi, a_written_file_loads_as_the_model_of_its_arrays) {
  std::vector<rnnfast_config> configs;
  rnnfast_config c = config_of(RNNFAST_CELL_LSTM, 3, 4);
  c.num_layers = 2, c.direction = RNNFAST_DIRECTION_BIDIRECTIONAL, c.proj_size = 2, c.peepholes = 1;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_GRU, 3, 4);
  c.weight_dtype = RNNFAST_DTYPE_INT8, c.direction = RNNFAST_DIRECTION_REVERSE;
  configs.push_back(c);
  c = config_of(RNNFAST_CELL_RNN, 3, 4);
  c.weight_dtype = RNNFAST_DTYPE_BF16, c.bias = 0, c.num_layers = 3;
  configs.push_back(c);
  for (const rnnfast_config& k : configs) {
    check::Context ctx("cell ", k.cell, " weight dtype ", k.weight_dtype);
    const std::vector<Array> arrays = capi_test::random_parameters(k, 11);
    const std::vector<rnnfast_tensor> t = capi_test::tensors(arrays);
    rnnfast_model *made = nullptr, *loaded = nullptr;
    CHECK_STATUS(rnnfast_model_create(&k, t.data(), t.size(), &made), RNNFAST_OK);
    for (bool zip64 : {false, true}) {
      CHECK_STATUS(load(capi_test::model_file(arrays, capi_test::meta_json(k, arrays), zip64), &loaded), RNNFAST_OK);
      const std::vector<float> want = results(made), got = results(loaded);
      CHECK(!want.empty() && check::bitwise_equal(got, want), "the loaded model's results differ, zip64 ", zip64);
      rnnfast_model_free(loaded);
    }
    rnnfast_model_free(made);
  }
  // Format versions 1 and 2 (no cell options; version 1 without weight_dtype): float layers of PyTorch's cells.
  c = config_of(RNNFAST_CELL_LSTM, 3, 4);
  const std::vector<Array> arrays = capi_test::random_parameters(c, 12);
  for (std::int64_t version : {1, 2}) {
    rnnfast_model* m = nullptr;
    CHECK_STATUS(load(capi_test::model_file(arrays, capi_test::meta_json(c, arrays, version)), &m), RNNFAST_OK);
    rnnfast_model_free(m);
  }
}

// A small model file, its results, and the status of loading a changed copy.
struct SmallFile {
  explicit SmallFile(bool zip64 = false) : bytes(capi_test::model_file(arrays, meta, zip64)) {}
  rnnfast_config config = config_of(RNNFAST_CELL_GRU, 2, 3);
  std::vector<Array> arrays = capi_test::random_parameters(config, 13);
  std::string meta = capi_test::meta_json(config, arrays);
  std::vector<std::uint8_t> bytes;
};

// Loads every truncation of the small file and the file with a byte flipped at every position (three ways).
void truncate_and_flip_everywhere(bool zip64) {
  check::Context ctx("zip64 ", zip64);
  const SmallFile f(zip64);
  rnnfast_model* m = nullptr;
  CHECK_STATUS(load(f.bytes, &m), RNNFAST_OK);
  const std::vector<float> want = results(m);
  rnnfast_model_free(m);
  long refused = 0, loaded = 0;
  for (std::size_t n = 0; n < f.bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(f.bytes.begin(), f.bytes.begin() + n);
    const int status = load(cut, &m);
    CHECK(status == RNNFAST_ERR_INVALID_MODEL && m == nullptr, "truncated to ", n, " bytes: ", rnnfast_status_name(status));
  }
  for (std::size_t i = 0; i < f.bytes.size(); ++i)
    for (std::uint8_t flip : {0x01, 0x80, 0xff}) {
      std::vector<std::uint8_t> bad = f.bytes;
      bad[i] ^= flip;
      const int status = load(bad, &m);
      if (status == RNNFAST_OK) {  // a byte nothing reads (a timestamp, an attribute): the same model
        ++loaded;
        CHECK(check::bitwise_equal(results(m), want), "byte ", i, " ^ ", int(flip), " loads a different model");
        rnnfast_model_free(m);
      } else {
        ++refused;
        CHECK((status == RNNFAST_ERR_INVALID_MODEL || status == RNNFAST_ERR_UNSUPPORTED) && m == nullptr,
              "byte ", i, " ^ ", int(flip), ": ", rnnfast_status_name(status), " ", rnnfast_last_error());
      }
    }
  CHECK(refused > 10 * loaded, "most flips are refused: ", refused, " refused, ", loaded, " loaded");
}

TEST(capi, every_truncation_and_every_flipped_byte_is_refused_or_harmless) {
  truncate_and_flip_everywhere(false);
  truncate_and_flip_everywhere(true);
}

// `text` with its first occurrence of `from` replaced by `to` (which the test expects to be there).
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  CHECK(at != std::string::npos, "'", from, "' not in the metadata");
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(capi, edited_and_unsupported_files_are_refused) {
  const SmallFile f;
  struct Case {
    const char* what;
    std::string meta;
    int want;
  };
  const std::string digest = "\"sha256\": \"";
  const std::vector<Case> cases = {
      {"a newer format", replaced(f.meta, "\"format_version\": 3", "\"format_version\": 4"), RNNFAST_ERR_UNSUPPORTED},
      {"format_version true", replaced(f.meta, "\"format_version\": 3", "\"format_version\": true"), RNNFAST_ERR_INVALID_MODEL},
      {"not rnnfast's", replaced(f.meta, "\"format\": \"rnnfast\"", "\"format\": \"other\""), RNNFAST_ERR_INVALID_MODEL},
      {"an unknown class", replaced(f.meta, "\"GRU\"", "\"Transformer\""), RNNFAST_ERR_INVALID_MODEL},
      {"a float64 layer", replaced(replaced(f.meta, "\"dtype\": \"float32\"", "\"dtype\": \"float64\""),
                                   "\"weight_dtype\": \"float32\"", "\"weight_dtype\": \"float64\""), RNNFAST_ERR_UNSUPPORTED},
      {"a wrong checksum", replaced(f.meta, digest, digest + "0"), RNNFAST_ERR_INVALID_MODEL},
      {"a recorded shape", replaced(f.meta, "\"shape\": [9, 2]", "\"shape\": [9, 3]"), RNNFAST_ERR_INVALID_MODEL},
      {"a size of 0", replaced(f.meta, "\"hidden_size\": 3", "\"hidden_size\": 0"), RNNFAST_ERR_INVALID_MODEL},
      {"a float size", replaced(f.meta, "\"hidden_size\": 3", "\"hidden_size\": 3.0"), RNNFAST_ERR_INVALID_MODEL},
      {"a missing key", replaced(f.meta, ", \"reset_after\": true", ""), RNNFAST_ERR_INVALID_MODEL},
      {"an extra key", replaced(f.meta, "\"reset_after\": true", "\"reset_after\": true, \"x\": 1"), RNNFAST_ERR_INVALID_MODEL},
      {"direction and bidirectional disagree", replaced(f.meta, "\"bidirectional\": false", "\"bidirectional\": true"),
       RNNFAST_ERR_INVALID_MODEL},
      {"an unknown activation", replaced(f.meta, "\"name\": \"tanh\"", "\"name\": \"swish\""), RNNFAST_ERR_INVALID_MODEL},
      {"alpha for sigmoid", replaced(f.meta, "{\"alpha\": null", "{\"alpha\": 0.5"), RNNFAST_ERR_INVALID_MODEL},
      {"dropout 1", replaced(f.meta, "\"dropout\": 0.0", "\"dropout\": 1.0"), RNNFAST_ERR_INVALID_MODEL},
      {"clip 0", replaced(f.meta, "\"clip\": null", "\"clip\": 0"), RNNFAST_ERR_INVALID_MODEL},
      {"not JSON", "{\"format\": ", RNNFAST_ERR_INVALID_MODEL},
      {"a JSON list", "[1, 2]", RNNFAST_ERR_INVALID_MODEL},
  };
  for (const Case& k : cases) {
    check::Context ctx(k.what);
    rnnfast_model* m = nullptr;
    CHECK_STATUS(load(capi_test::model_file(f.arrays, k.meta), &m), k.want);
    CHECK(m == nullptr, "no model");
  }
  // Entries: one missing, one extra, none named __rnnfast__, an int8 parameter in a float layer.
  std::vector<Array> fewer = f.arrays, more = f.arrays, wrong_type = f.arrays;
  fewer.pop_back();
  more.push_back(f.arrays[0]), more.back().name = "extra";
  wrong_type[2].dtype = RNNFAST_DTYPE_INT8, wrong_type[2].bytes.resize(wrong_type[2].bytes.size() / 4);
  rnnfast_model* m = nullptr;
  CHECK_STATUS(load(capi_test::model_file(fewer, f.meta), &m), RNNFAST_ERR_INVALID_MODEL);
  CHECK_STATUS(load(capi_test::model_file(more, f.meta), &m), RNNFAST_ERR_INVALID_MODEL);
  CHECK_STATUS(load(capi_test::model_file(wrong_type, capi_test::meta_json(f.config, wrong_type)), &m), RNNFAST_ERR_INVALID_MODEL);
  CHECK_STATUS(load(capi_test::zip({{"weights.npy", capi_test::npy("<f4", {1}, {0, 0, 0, 0})}}), &m), RNNFAST_ERR_INVALID_MODEL);
  CHECK(std::strstr(rnnfast_last_error(), "__rnnfast__") != nullptr, "the message: ", rnnfast_last_error());
  // Compressed (method 8) and encrypted (flag bit 0) entries: refused as unsupported, naming the entry.
  std::vector<std::uint8_t> compressed = f.bytes, encrypted = f.bytes;
  compressed[8] = 8;  // the first local header's method; and the central directory's below
  encrypted[6] = 1;
  const std::size_t directory = f.bytes.size() - 22 - 0;  // the end record's directory offset field tells where
  const std::size_t cd = f.bytes[directory + 16] | f.bytes[directory + 17] << 8 | f.bytes[directory + 18] << 16;
  compressed[cd + 10] = 8;
  encrypted[cd + 8] = 1;
  CHECK_STATUS(load(compressed, &m), RNNFAST_ERR_UNSUPPORTED);
  CHECK(std::strstr(rnnfast_last_error(), "compressed") != nullptr, "the message: ", rnnfast_last_error());
  CHECK_STATUS(load(encrypted, &m), RNNFAST_ERR_UNSUPPORTED);
  // Not a zip at all; an empty buffer (NULL allowed with size 0).
  const std::vector<std::uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  CHECK_STATUS(load(text, &m), RNNFAST_ERR_INVALID_MODEL);
  CHECK_STATUS(rnnfast_model_load_buffer(nullptr, 0, &m), RNNFAST_ERR_INVALID_MODEL);
}

TEST(capi, files_that_cannot_be_read_are_io_errors) {
  rnnfast_model* m = nullptr;
  CHECK_STATUS(rnnfast_model_load("/nonexistent-dir/model.npz", &m), RNNFAST_ERR_IO);
  CHECK_STATUS(rnnfast_model_load("/", &m), RNNFAST_ERR_IO);
  // A real file: written, loaded by path, and its path in the message of a failure.
  const SmallFile f;
  char path[] = "/tmp/rnnfast-capi-test-XXXXXX";
  const int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  if (fd < 0) return;
  std::FILE* out = fdopen(fd, "wb");
  std::fwrite(f.bytes.data(), 1, f.bytes.size() - 1, out);  // truncated by one byte
  std::fclose(out);
  CHECK_STATUS(rnnfast_model_load(path, &m), RNNFAST_ERR_INVALID_MODEL);
  CHECK(std::strstr(rnnfast_last_error(), path) != nullptr, "the message names the file: ", rnnfast_last_error());
  out = std::fopen(path, "wb");
  std::fwrite(f.bytes.data(), 1, f.bytes.size(), out);
  std::fclose(out);
  CHECK_STATUS(rnnfast_model_load(path, &m), RNNFAST_OK);
  rnnfast_model_free(m);
  std::remove(path);
}

}  // namespace
