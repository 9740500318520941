// The JSON reader (json.h), a recursive descent over RFC 8259's grammar (section 2 values, 4 objects,
// 5 arrays, 6 numbers, 7 strings). Numbers are converted with std::from_chars, correctly rounded and
// independent of the C locale (a program embedding the library may have set another), as Python's
// float() converts them.
#include "rnnfast/model/json.h"

#include <charconv>
#include <cmath>

#include "rnnfast/model/error.h"

namespace rnnfast::model {

const Json* Json::find(const std::string& key) const {
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == key) return &items_[i];
  return nullptr;
}

std::string Json::describe() const {
  switch (type_) {
    case Type::kNull: return "null";
    case Type::kBool: return boolean_ ? "true" : "false";
    case Type::kNumber: return "a number";
    case Type::kString: return "the string '" + string_ + "'";
    case Type::kArray: return "a list";
    case Type::kObject: return "an object";
  }
  return "a value";
}

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  Json document() {
    Json v = value(0);
    skip_space();
    if (i_ != s_.size()) error("extra data after the value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void error(const std::string& what) const {
    invalid_model("the metadata is not valid JSON: " + what + " at byte " + std::to_string(i_));
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(const char* word) {
    const std::size_t n = std::char_traits<char>::length(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than 64");
    skip_space();
    if (i_ >= s_.size()) error("a value is missing");
    Json v;
    const char c = s_[i_];
    if (c == '{') {
      object(v, depth);
    } else if (c == '[') {
      v.type_ = Json::Type::kArray;
      ++i_;
      skip_space();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.items_.push_back(value(depth + 1));
        skip_space();
        if (i_ < s_.size() && s_[i_] == ',') ++i_;
        else if (i_ < s_.size() && s_[i_] == ']') { ++i_; break; }
        else error("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.type_ = Json::Type::kString;
      v.string_ = string();
    } else if (literal("true")) {
      v.type_ = Json::Type::kBool;
      v.boolean_ = true;
    } else if (literal("false")) {
      v.type_ = Json::Type::kBool;
    } else if (literal("null")) {
      v.type_ = Json::Type::kNull;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number(v);
    } else {
      error("an unexpected character");
    }
    return v;
  }

  void object(Json& v, int depth) {
    v.type_ = Json::Type::kObject;
    ++i_;
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return;
    }
    for (;;) {
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '"') error("expected a string key");
      std::string key = string();
      skip_space();
      if (i_ >= s_.size() || s_[i_] != ':') error("expected ':'");
      ++i_;
      Json member = value(depth + 1);
      std::size_t k = 0;
      while (k < v.keys_.size() && v.keys_[k] != key) ++k;
      if (k < v.keys_.size()) {
        v.items_[k] = std::move(member);  // the last of duplicate keys wins, as in Python
      } else {
        v.keys_.push_back(std::move(key));
        v.items_.push_back(std::move(member));
      }
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') ++i_;
      else if (i_ < s_.size() && s_[i_] == '}') { ++i_; break; }
      else error("expected ',' or '}'");
    }
  }

  void number(Json& v) {
    const std::size_t start = i_;
    auto digits = [&] {
      const std::size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - from;
    };
    if (s_[i_] == '-') ++i_;
    const std::size_t int_start = i_;
    const std::size_t int_digits = digits();
    if (int_digits == 0) error("a number without digits");
    if (int_digits > 1 && s_[int_start] == '0') error("a number with a leading zero");
    bool integer = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (digits() == 0) error("a fraction without digits");
      integer = false;
    }
    long exponent = 0;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      const bool negative = i_ < s_.size() && s_[i_] == '-';
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      const std::size_t from = i_;
      if (digits() == 0) error("an exponent without digits");
      for (std::size_t k = from; k < i_ && exponent < 100000; ++k) exponent = exponent * 10 + (s_[k] - '0');
      if (negative) exponent = -exponent;
      integer = false;
    }
    v.type_ = Json::Type::kNumber;
    const char* first = s_.data() + start;
    const char* last = s_.data() + i_;
    const auto result = std::from_chars(first, last, v.number_);
    if (result.ec == std::errc::result_out_of_range) {
      // Beyond double's range: Python's float() gives an infinity (overflow) or zero (underflow). The
      // magnitude is about 10^(integer digits - 1 + exponent).
      const bool overflow = static_cast<long>(int_digits) - 1 + exponent > 0;
      const double magnitude = overflow ? HUGE_VAL : 0.0;
      v.number_ = s_[start] == '-' ? -magnitude : magnitude;
    } else if (result.ec != std::errc() || result.ptr != last) {
      error("a malformed number");
    }
    if (integer) {  // kept as an int64 when it fits
      std::int64_t n = 0;
      const auto r = std::from_chars(first, last, n);
      v.integer_ = r.ec == std::errc() && r.ptr == last;
      v.int_ = n;
    }
  }

  unsigned hex4() {
    if (s_.size() - i_ < 4) error("a short \\u escape");
    unsigned n = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      n <<= 4;
      if (c >= '0' && c <= '9') n |= c - '0';
      else if (c >= 'a' && c <= 'f') n |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') n |= c - 'A' + 10;
      else error("a bad \\u escape");
    }
    return n;
  }

  static void append_utf8(std::string& out, unsigned c) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | c >> 6);
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | c >> 12);
      out += static_cast<char>(0x80 | (c >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | c >> 18);
      out += static_cast<char>(0x80 | (c >> 12 & 0x3f));
      out += static_cast<char>(0x80 | (c >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) error("an unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) error("a control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);  // UTF-8 passes through (the text was made from code points)
        continue;
      }
      if (i_ >= s_.size()) error("an unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) error("a lone low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {  // a surrogate pair (RFC 8259 section 7)
            if (s_.compare(i_, 2, "\\u") != 0) error("a lone high surrogate");
            i_ += 2;
            const unsigned low = hex4();
            if (low < 0xdc00 || low > 0xdfff) error("a lone high surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, cp);
          break;
        }
        default: error("an unknown escape");
      }
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

Json parse_json(const std::string& text) { return JsonParser(text).document(); }

}  // namespace rnnfast::model
