// Reading a .npy array (npy.h). The header is a Python dict literal; this reads the subset NumPy writes
// and its reader accepts for these arrays: {'descr': <str>, 'fortran_order': <bool>, 'shape': <tuple of
// ints>} in any order, with single- or double-quoted strings, any whitespace and trailing commas.
#include "rnnfast/model/npy.h"

#include <cstring>

#include "rnnfast/model/error.h"

namespace rnnfast::model {
namespace {

[[noreturn]] void bad(const std::string& name, const std::string& why) {
  invalid_model("entry '" + name + "' is not a valid .npy array: " + why);
}

// The dict literal's values: a string, a bool, or a tuple of non-negative ints.
struct HeaderValue {
  enum Kind { kString, kBool, kTuple } kind = kString;
  std::string text;
  bool flag = false;
  std::vector<std::int64_t> items;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& name, const std::string& text) : name_(name), s_(text) {}

  // The dict's entries, each key once.
  std::vector<std::pair<std::string, HeaderValue>> dict() {
    std::vector<std::pair<std::string, HeaderValue>> entries;
    expect('{');
    while (peek() != '}') {
      HeaderValue key = value();
      if (key.kind != HeaderValue::kString) bad(name_, "a header key is not a string");
      expect(':');
      for (const auto& e : entries)
        if (e.first == key.text) bad(name_, "header key '" + key.text + "' appears twice");
      entries.emplace_back(key.text, value());
      if (peek() == ',') ++i_;
      else if (peek() != '}') bad(name_, "expected ',' or '}' in the header");
    }
    ++i_;
    if (peek() != '\0') bad(name_, "text after the header's dict");
    return entries;
  }

 private:
  char peek() {  // the next character that is not white space ('\0' at the end)
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) bad(name_, std::string("expected '") + c + "' in the header");
    ++i_;
  }
  HeaderValue value() {
    HeaderValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      const std::size_t end = s_.find(c, i_ + 1);
      if (end == std::string::npos) bad(name_, "an unterminated string in the header");
      v.text = s_.substr(i_ + 1, end - i_ - 1);
      if (v.text.find('\\') != std::string::npos) bad(name_, "an escape in a header string");
      i_ = end + 1;
    } else if (s_.compare(i_, 4, "True") == 0 || s_.compare(i_, 5, "False") == 0) {
      v.kind = HeaderValue::kBool;
      v.flag = s_[i_] == 'T';
      i_ += v.flag ? 4 : 5;
    } else if (c == '(') {
      // A tuple: () or (n,) or (n, m, ...) with an optional trailing comma; (n) is an int, not a tuple.
      v.kind = HeaderValue::kTuple;
      ++i_;
      bool comma = false;
      while (peek() != ')') {
        v.items.push_back(integer());
        comma = peek() == ',';
        if (comma) ++i_;
        else if (peek() != ')') bad(name_, "expected ',' or ')' in the shape");
      }
      ++i_;
      if (v.items.size() == 1 && !comma) bad(name_, "the shape is not a tuple");
    } else {
      bad(name_, "an unexpected value in the header");
    }
    return v;
  }
  std::int64_t integer() {
    peek();
    std::int64_t n = 0;
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (n > (INT64_MAX - 9) / 10) bad(name_, "a dimension too large");
      n = n * 10 + (s_[i_++] - '0');
    }
    if (i_ == start) bad(name_, "the shape must hold non-negative integers");
    return n;
  }

  const std::string& name_;
  const std::string& s_;
  std::size_t i_ = 0;
};

// The element type of a descr string NumPy writes (dtype.str); false for any other.
bool parse_descr(const std::string& d, NpyType* type, std::size_t* item_size) {
  if (d == "<f4") *type = NpyType::kFloat32, *item_size = 4;
  else if (d == "<f8") *type = NpyType::kFloat64, *item_size = 8;
  else if (d == "|i1" || d == "<i1") *type = NpyType::kInt8, *item_size = 1;
  else if (d == "<u2") *type = NpyType::kUint16, *item_size = 2;
  else if (d.size() > 2 && d.compare(0, 2, "<U") == 0 && d.size() <= 12 &&
           d.find_first_not_of("0123456789", 2) == std::string::npos && d[2] != '0') {
    *type = NpyType::kUnicode;
    *item_size = 4 * static_cast<std::size_t>(std::stoull(d.substr(2)));
  } else {
    return false;
  }
  return true;
}

}  // namespace

const char* npy_type_name(NpyType type) {
  switch (type) {
    case NpyType::kFloat32: return "float32";
    case NpyType::kFloat64: return "float64";
    case NpyType::kInt8: return "int8";
    case NpyType::kUint16: return "uint16";
    case NpyType::kUnicode: return "str";
  }
  return "unknown";
}

std::int64_t NpyArray::count() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;  // parse_npy has checked that the product fits
  return n;
}

NpyArray parse_npy(const std::string& name, const std::uint8_t* data, std::size_t size) {
  static const char kMagic[] = "\x93NUMPY";
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) bad(name, "no .npy magic string");
  const int major = data[6];
  std::size_t header_len, start;
  if (major == 1) {
    header_len = data[8] | std::size_t(data[9]) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) bad(name, "truncated header");
    header_len = data[8] | std::size_t(data[9]) << 8 | std::size_t(data[10]) << 16 | std::size_t(data[11]) << 24;
    start = 12;
  } else {
    bad(name, "unknown format version " + std::to_string(major));
  }
  if (header_len > size - start) bad(name, "truncated header");
  const std::string header(reinterpret_cast<const char*>(data + start), header_len);
  for (unsigned char c : header)
    if (c >= 0x80) bad(name, "a non-ASCII header");  // the keys and values read here are all ASCII

  NpyArray a;
  bool have[3] = {false, false, false};
  bool fortran = false;
  for (auto& [key, v] : HeaderParser(name, header).dict()) {
    if (key == "descr" && v.kind == HeaderValue::kString) {
      if (!parse_descr(v.text, &a.type, &a.item_size)) bad(name, "unsupported dtype '" + v.text + "'");
      have[0] = true;
    } else if (key == "fortran_order" && v.kind == HeaderValue::kBool) {
      fortran = v.flag;
      have[1] = true;
    } else if (key == "shape" && v.kind == HeaderValue::kTuple) {
      a.shape = v.items;
      have[2] = true;
    } else {
      bad(name, "unexpected header key '" + key + "' (or a value of the wrong kind)");
    }
  }
  if (!have[0] || !have[1] || !have[2]) bad(name, "the header lacks descr, fortran_order or shape");
  // The data's size, computed without overflow.
  std::size_t bytes = a.item_size;
  for (std::int64_t d : a.shape) {
    if (d != 0 && bytes > (SIZE_MAX / 2) / static_cast<std::size_t>(d)) bad(name, "a shape too large");
    bytes *= static_cast<std::size_t>(d);
  }
  const std::size_t offset = start + header_len;
  if (bytes > size - offset) bad(name, "truncated data (the shape needs more bytes than the entry has)");
  a.data = data + offset;
  if (fortran && a.shape.size() > 2) bad(name, "Fortran order with more than 2 dimensions is not supported");
  if (fortran && a.shape.size() == 2) {  // column-major [cols][rows] to C order [rows][cols]
    const std::size_t rows = static_cast<std::size_t>(a.shape[0]), cols = static_cast<std::size_t>(a.shape[1]);
    a.reordered.resize(bytes);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c)
        std::memcpy(&a.reordered[(r * cols + c) * a.item_size], a.data + (c * rows + r) * a.item_size, a.item_size);
    a.data = a.reordered.data();
  }
  return a;
}

std::string npy_unicode_text(const std::string& name, const NpyArray& array) {
  if (array.type != NpyType::kUnicode) bad(name, "not a unicode array");
  std::size_t chars = array.item_size / 4;
  auto code_point = [&](std::size_t i) {
    const std::uint8_t* p = array.data + 4 * i;
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
  };
  while (chars > 0 && code_point(chars - 1) == 0) --chars;  // NumPy's padding
  std::string text;
  text.reserve(chars);
  for (std::size_t i = 0; i < chars; ++i) {
    const std::uint32_t c = code_point(i);
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) bad(name, "text that is not valid Unicode");
    if (c < 0x80) {
      text += static_cast<char>(c);
    } else if (c < 0x800) {
      text += static_cast<char>(0xc0 | c >> 6);
      text += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      text += static_cast<char>(0xe0 | c >> 12);
      text += static_cast<char>(0x80 | (c >> 6 & 0x3f));
      text += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      text += static_cast<char>(0xf0 | c >> 18);
      text += static_cast<char>(0x80 | (c >> 12 & 0x3f));
      text += static_cast<char>(0x80 | (c >> 6 & 0x3f));
      text += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return text;
}

}  // namespace rnnfast::model
