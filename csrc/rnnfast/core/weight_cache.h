// Packed weights kept between calls.
//
// A layer called again with the same weights (every inference call; training repacks after each
// update) reuses their pack instead of packing again, which for a small layer costs as much as
// several of its time steps. An entry is found by the weights' address and a key (what they are
// packed for: cell, sizes, instruction set), then compared element for element with a copy kept of
// the weights it was packed from, so an edit of the weights in place is never missed: a stale pack
// cannot be returned. The cache keeps at most kMaxEntries packs (enough for every direction and layer
// of a deep model) and kMaxTotalBytes of kept copies, dropping the least recently used first, and
// skips weights over kMaxBytes; packs are about the size of their copies.
#pragma once

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "rnnfast/core/threadpool.h"

namespace rnnfast {

// Whether a[0, n) and b[0, n) hold the same bytes. Large comparisons are cut into chunks that the
// pool's threads share: a layer's every call compares its weights with the kept copy, two streams
// from L2 or L3 that one core reads at a fraction of what two read (an edge LSTM's 384 KiB of weights
// took 4% of its call on one thread while the other waited).
inline bool same_bytes(const void* a, const void* b, std::size_t n) {
  constexpr std::size_t kChunk = std::size_t(64) << 10;
  if (n < 2 * kChunk || !pool_can_help()) return n == 0 || std::memcmp(a, b, n) == 0;
  const auto* pa = static_cast<const unsigned char*>(a);
  const auto* pb = static_cast<const unsigned char*>(b);
  std::atomic<bool> same{true};
  parallel_for(static_cast<std::int64_t>((n + kChunk - 1) / kChunk), [&](std::int64_t i) {
    const std::size_t begin = static_cast<std::size_t>(i) * kChunk, count = std::min(kChunk, n - begin);
    if (same.load(std::memory_order_relaxed) && std::memcmp(pa + begin, pb + begin, count) != 0)
      same.store(false, std::memory_order_relaxed);
  });
  return same.load(std::memory_order_relaxed);
}

// What a pack is for: a tag of the packing, the sizes, the instruction set, the element size.
using PackKey = std::array<std::int64_t, 5>;

// Returns the pack of weights w[0, w_count) and extra[0, extra_count) (extra may be nullptr) for `key`:
// a cached one if these exact values were packed for `key` at these addresses before, else a new one
// made by pack(Packed&) (which must read only w and extra) and cached.
template <typename Packed, typename Scalar, typename PackFn>
std::shared_ptr<const Packed> cached_pack(const PackKey& key, const Scalar* w, std::int64_t w_count,
                                          const Scalar* extra, std::int64_t extra_count, PackFn&& pack) {
  constexpr std::size_t kMaxEntries = 32;
  constexpr std::int64_t kMaxBytes = std::int64_t(16) << 20;
  constexpr std::int64_t kMaxTotalBytes = std::int64_t(64) << 20;
  struct Entry {
    PackKey key;
    const Scalar *w, *extra;
    std::int64_t w_count, extra_count;
    std::vector<Scalar> copy;  // w then extra, as packed
    std::shared_ptr<const Packed> packed;
  };
  struct Cache {
    std::mutex mutex;
    std::vector<std::shared_ptr<const Entry>> entries;  // most recently used last
    Cache() {
      // In a forked child the mutex may be held by a thread that does not exist there: start empty.
      pthread_atfork(nullptr, nullptr, [] {
        new (&instance().mutex) std::mutex();
        new (&instance().entries) std::vector<std::shared_ptr<const Entry>>();  // leaks the parent's
      });
    }
    static Cache& instance() {
      static Cache* cache = new Cache();  // never destroyed: no order-of-destruction issue at exit
      return *cache;
    }
  };
  auto make = [&] {
    auto packed = std::make_shared<Packed>();
    pack(*packed);
    return std::shared_ptr<const Packed>(std::move(packed));
  };
  if (w_count < 0 || extra_count < 0 || (w_count + extra_count) * std::int64_t(sizeof(Scalar)) > kMaxBytes)
    return make();
  Cache& cache = Cache::instance();
  std::shared_ptr<const Entry> found;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    for (auto it = cache.entries.begin(); it != cache.entries.end(); ++it) {
      const Entry& e = **it;
      if (e.key == key && e.w == w && e.extra == extra && e.w_count == w_count && e.extra_count == extra_count) {
        found = *it;
        break;
      }
    }
  }
  const std::size_t w_bytes = sizeof(Scalar) * static_cast<std::size_t>(w_count);
  const std::size_t extra_bytes = sizeof(Scalar) * static_cast<std::size_t>(extra_count);
  if (found && same_bytes(found->copy.data(), w, w_bytes) &&
      same_bytes(found->copy.data() + w_count, extra, extra_bytes)) {
    std::lock_guard<std::mutex> lock(cache.mutex);  // mark it the most recently used
    auto it = std::find(cache.entries.begin(), cache.entries.end(), found);
    if (it != cache.entries.end()) std::rotate(it, it + 1, cache.entries.end());
    return found->packed;
  }
  auto entry = std::make_shared<Entry>();
  entry->key = key;
  entry->w = w;
  entry->extra = extra;
  entry->w_count = w_count;
  entry->extra_count = extra_count;
  entry->copy.resize(static_cast<std::size_t>(w_count + extra_count));
  if (w_bytes > 0) std::memcpy(entry->copy.data(), w, w_bytes);
  if (extra_bytes > 0) std::memcpy(entry->copy.data() + w_count, extra, extra_bytes);
  entry->packed = make();
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto& entries = cache.entries;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](const std::shared_ptr<const Entry>& e) {
                                 return e->key == key && e->w == w && e->extra == extra;
                               }),
                entries.end());
  entries.push_back(entry);
  std::int64_t total = 0;
  for (const auto& e : entries) total += (e->w_count + e->extra_count) * std::int64_t(sizeof(Scalar));
  while (entries.size() > 1 && (entries.size() > kMaxEntries || total > kMaxTotalBytes)) {
    total -= (entries.front()->w_count + entries.front()->extra_count) * std::int64_t(sizeof(Scalar));
    entries.erase(entries.begin());  // the least recently used
  }
  return entry->packed;
}

}  // namespace rnnfast
