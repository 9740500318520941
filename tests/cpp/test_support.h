// What the kernel tests share beyond the harness (check.h): names of cells and element types for
// failure messages, the instruction sets to test and a loop over them, and small array helpers.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/rnnfast.hpp"

namespace support {

template <typename T>
const char* type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

inline const char* cell_name(rnnfast::Cell cell) {
  switch (cell) {
    case rnnfast::Cell::kRnnTanh:
      return "rnn_tanh";
    case rnnfast::Cell::kRnnRelu:
      return "rnn_relu";
    case rnnfast::Cell::kLstm:
      return "lstm";
    case rnnfast::Cell::kGru:
      return "gru";
  }
  return "?";
}

inline constexpr rnnfast::Cell kCells[] = {rnnfast::Cell::kRnnTanh, rnnfast::Cell::kRnnRelu, rnnfast::Cell::kLstm,
                                           rnnfast::Cell::kGru};

// Every instruction set this build knows (isa_name is not "unknown") and this CPU runs; written
// without naming the enumerators, so that a new one (NEON) is tested without a change here.
inline std::vector<rnnfast::Isa> available_isas() {
  std::vector<rnnfast::Isa> isas;
  for (int i = 0; i < 16; ++i) {
    const rnnfast::Isa isa = static_cast<rnnfast::Isa>(i);
    if (std::string(rnnfast::isa_name(isa)) != "unknown" && rnnfast::isa_available(isa)) isas.push_back(isa);
  }
  return isas;
}

// Runs fn(isa) with each available instruction set active and named in the failure context; then
// restores the one that was active, so that no test depends on which ran before it.
template <typename Fn>
void for_each_isa(Fn&& fn) {
  const rnnfast::Isa before = rnnfast::active_isa();
  for (rnnfast::Isa isa : available_isas()) {
    rnnfast::set_active_isa(isa);
    check::Context ctx(rnnfast::isa_name(isa));
    fn(isa);
  }
  rnnfast::set_active_isa(before);
}

// Pointer to a vector's data that is never nullptr (the kernels take nullptr to mean "absent").
template <typename T>
T* ptr(std::vector<T>& v) {
  static T dummy[1];
  return v.empty() ? dummy : v.data();
}
template <typename T>
const T* ptr(const std::vector<T>& v) {
  static const T dummy[1] = {};
  return v.empty() ? dummy : v.data();
}

template <typename T>
std::vector<T> convert(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// NaN-filled outputs: anything a kernel leaves unwritten shows in a comparison.
template <typename T>
std::vector<T> nans(std::int64_t n) {
  return std::vector<T>(static_cast<std::size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// Appends v's bytes to blob (results compared bit for bit).
template <typename T>
void append_bytes(std::vector<unsigned char>& blob, const std::vector<T>& v) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  blob.insert(blob.end(), p, p + v.size() * sizeof(T));
}

}  // namespace support
