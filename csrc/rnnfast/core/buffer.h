// Scratch memory for the kernels: aligned, and recycled per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rnnfast {

// Owning, 64-byte-aligned scratch buffer of `count` elements, zero-initialised unless `zeroed` is
// false (for a buffer whose every element is written before it is read).
template <typename Scalar>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::int64_t count, bool zeroed = true) { resize(count, zeroed); }
  void resize(std::int64_t count, bool zeroed = true);
  Scalar* data() { return data_.get(); }
  const Scalar* data() const { return data_.get(); }
  std::int64_t size() const { return size_; }

 private:
  struct Free {
    std::size_t bytes = 0;
    void operator()(Scalar* p) const;  // into this thread's cache of scratch blocks, or freed
  };
  std::unique_ptr<Scalar, Free> data_;
  std::int64_t size_ = 0;
};

}  // namespace rnnfast
