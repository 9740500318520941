// Reading one array in NumPy's .npy format (numpy/lib/format.py documents it: the magic string
// "\x93NUMPY", a version, a header length, then a Python dict literal with 'descr', 'fortran_order' and
// 'shape', then the data). Only the element types a model file holds are read: float32 and float64,
// int8, uint16 (bfloat16 bits), little-endian, and the fixed-width unicode of its metadata entry
// ('<U<n>', UTF-32LE). Anything else, or a malformed header, or data shorter than the shape needs, is
// ErrorKind::kInvalidModel naming the entry; nothing is read outside the given bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rnnfast::model {

enum class NpyType { kFloat32, kFloat64, kInt8, kUint16, kUnicode };

// The element type's NumPy name ('float32', 'int8', ..., 'str' for the unicode type).
const char* npy_type_name(NpyType type);

struct NpyArray {
  NpyType type = NpyType::kFloat32;
  std::size_t item_size = 0;          // bytes per element (4 * characters for unicode)
  std::vector<std::int64_t> shape;    // () for a 0-d array
  const std::uint8_t* data = nullptr; // C order, count() * item_size bytes (inside the entry, or `reordered`)
  std::vector<std::uint8_t> reordered;  // a Fortran-ordered 2-D array's data in C order
  std::int64_t count() const;         // elements: the product of the shape
  std::size_t bytes() const { return static_cast<std::size_t>(count()) * item_size; }
};

// Parses the .npy bytes data[0, size) of the entry `name` (named in errors). The array's data stays in
// `data` (except a Fortran-ordered one, copied to C order), which must outlive the result. Bytes after
// the data are ignored, as NumPy ignores them.
NpyArray parse_npy(const std::string& name, const std::uint8_t* data, std::size_t size);

// The text of a 0-d unicode array (its UTF-32LE code points as UTF-8, without NumPy's trailing NUL
// padding); ErrorKind::kInvalidModel for a code point that is not a Unicode scalar value.
std::string npy_unicode_text(const std::string& name, const NpyArray& array);

}  // namespace rnnfast::model
