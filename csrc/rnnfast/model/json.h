// A small JSON reader (RFC 8259) for a model file's metadata record: values, with numbers kept both as
// a double and, when written as an integer that fits, as an int64 (the metadata tells integers from
// other numbers, as Python's json module does). Strict: no comments, no trailing commas, no NaN or
// Infinity literals, strings of Unicode scalar values; nesting at most 64 deep. Errors are
// ErrorKind::kInvalidModel with the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rnnfast::model {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is(Type t) const { return type_ == t; }
  // A number written without a fraction or exponent that fits in int64 (JSON 32, not 32.0 or 3.2e1).
  bool is_integer() const { return type_ == Type::kNumber && integer_; }
  bool as_bool() const { return boolean_; }
  double as_double() const { return number_; }
  std::int64_t as_int() const { return int_; }
  const std::string& as_string() const { return string_; }
  const std::vector<Json>& items() const { return items_; }  // an array's values
  // An object's members, in the order written, each key once (a later duplicate replaces the earlier
  // value, as Python's json module keeps the last).
  const std::vector<std::string>& keys() const { return keys_; }
  const std::vector<Json>& values() const { return items_; }
  const Json* find(const std::string& key) const;  // nullptr when absent
  // The type's name for messages ("null", "a bool", "a number", "a string", "a list", "an object").
  std::string describe() const;

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool boolean_ = false, integer_ = false;
  double number_ = 0.0;
  std::int64_t int_ = 0;
  std::string string_;
  std::vector<std::string> keys_;
  std::vector<Json> items_;
};

// The value the whole of `text` (UTF-8) holds.
Json parse_json(const std::string& text);

}  // namespace rnnfast::model
