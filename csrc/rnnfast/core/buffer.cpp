#include "rnnfast/core/buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

namespace rnnfast {

namespace {

// Each thread keeps a few large scratch blocks it has released, to hand back when the same size is
// asked for again: a layer called repeatedly with the same shapes (every training step, every
// inference call) then neither calls the allocator for its scratch nor page-faults it in again
// (glibc serves such sizes with fresh mmap'ed pages or trims them back to the system on free, which
// cost more than packing the weights in the benchmarks' shapes).
class ScratchCache {
 public:
  ~ScratchCache() {
    for (const Block& b : blocks_) std::free(b.p);
  }
  void* take(std::size_t bytes) {
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].bytes == bytes) {
        void* p = blocks_[i].p;
        total_ -= bytes;
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
        return p;
      }
    }
    return nullptr;
  }
  // Keeps p, or frees it (or older blocks) to stay within the limits.
  void give(void* p, std::size_t bytes) {
    if (bytes < kMinBytes || bytes > kMaxBytes) {
      std::free(p);
      return;
    }
    while (!blocks_.empty() && (blocks_.size() >= kMaxBlocks || total_ + bytes > kMaxBytes)) {
      std::free(blocks_.front().p);  // the oldest
      total_ -= blocks_.front().bytes;
      blocks_.erase(blocks_.begin());
    }
    blocks_.push_back({p, bytes});
    total_ += bytes;
  }

 private:
  static constexpr std::size_t kMinBytes = std::size_t(64) << 10;  // smaller ones: malloc is cheap
  static constexpr std::size_t kMaxBytes = std::size_t(64) << 20;
  static constexpr std::size_t kMaxBlocks = 16;
  struct Block {
    void* p;
    std::size_t bytes;
  };
  std::vector<Block> blocks_;
  std::size_t total_ = 0;
};

thread_local ScratchCache t_scratch_cache;

}  // namespace

template <typename Scalar>
void Buffer<Scalar>::Free::operator()(Scalar* p) const {
  t_scratch_cache.give(p, bytes);
}

template <typename Scalar>
void Buffer<Scalar>::resize(std::int64_t count, bool zeroed) {
  // A negative count, or one whose byte size overflows, can never be allocated.
  if (count < 0 || static_cast<std::uint64_t>(count) > (std::numeric_limits<std::size_t>::max() - 64) / sizeof(Scalar))
    throw std::bad_alloc();
  // Round the byte count up to the alignment, as aligned_alloc requires; allocate at least one line.
  std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(count, 1)) * sizeof(Scalar);
  bytes = (bytes + 63) / 64 * 64;
  data_.reset();  // the old block first, so that a same-size resize can reuse it
  void* p = t_scratch_cache.take(bytes);
  if (p == nullptr) p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  if (zeroed) std::memset(p, 0, bytes);
  data_ = std::unique_ptr<Scalar, Free>(static_cast<Scalar*>(p), Free{bytes});
  size_ = count;
}

template class Buffer<float>;
template class Buffer<double>;
template class Buffer<std::int8_t>;
template class Buffer<std::uint8_t>;
template class Buffer<std::int16_t>;
template class Buffer<std::uint16_t>;
template class Buffer<std::int32_t>;

}  // namespace rnnfast
