// weight_cache: cached_pack (weight_cache.h) returns the pack made before for the same weights at the
// same address and key, and a new one when a weight was edited in place, the key or the extra array
// differs, or the weights are too large to keep; same_bytes, which the pool's threads share for large
// arrays, finds a difference in any chunk; and callers on several threads get a pack of the values
// they gave. Each test's pack function is its own lambda type, hence its own cache (a static of the
// template instance), so the tests do not see each other's entries, nor the kernels'.
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "check.h"
#include "rnnfast/core/threadpool.h"
#include "rnnfast/core/weight_cache.h"

using check::Context;
using check::Rng;
using rnnfast::PackKey;
using std::int64_t;
using std::vector;

namespace {

// A "pack" that is a copy of w then extra, so that a returned pack shows which values it was made from.
using Copy = vector<float>;

vector<float> random_floats(int64_t n, Rng& rng) {
  vector<float> v(static_cast<std::size_t>(n));
  for (float& e : v) e = float(rng.uniform());
  return v;
}

Copy concatenated(const vector<float>& w, const vector<float>& extra) {
  Copy c(w);
  c.insert(c.end(), extra.begin(), extra.end());
  return c;
}

}  // namespace

TEST(weight_cache, reuses_a_pack_until_the_weights_change) {
  Rng rng(41);
  vector<float> w = random_floats(300, rng), extra = random_floats(20, rng);
  // A call of cached_pack on w (and extra_data) for key: the pack returned, and whether it was made
  // by this call (else it came from the cache).
  struct Call {
    std::shared_ptr<const Copy> pack;
    bool made;
  };
  auto call = [&](const float* extra_data, int64_t extra_count, const PackKey& key) {
    bool made = false;
    auto pack = rnnfast::cached_pack<Copy>(key, w.data(), static_cast<int64_t>(w.size()), extra_data, extra_count,
                                           [&](Copy& out) {
                                             made = true;
                                             out = w;
                                             if (extra_data != nullptr)
                                               out.insert(out.end(), extra_data, extra_data + extra_count);
                                           });
    return Call{pack, made};
  };
  const PackKey key{1, 300, 20, 0, 4}, other_key{2, 300, 20, 0, 4};
  const Call first = call(extra.data(), 20, key);
  CHECK(first.made && *first.pack == concatenated(w, extra), "the first call's pack is not of the weights given");
  const Call again = call(extra.data(), 20, key);
  CHECK(!again.made && again.pack == first.pack, "same weights, address and key: packed again");

  w[299] += 1.0f;  // an edit in place, in the last element
  const Call edited = call(extra.data(), 20, key);
  CHECK(edited.made && *edited.pack == concatenated(w, extra), "weights edited in place: a stale pack returned");
  extra[0] += 1.0f;
  const Call extra_edited = call(extra.data(), 20, key);
  CHECK(extra_edited.made && *extra_edited.pack == concatenated(w, extra),
        "extra edited in place: a stale pack returned");

  const Call keyed = call(extra.data(), 20, other_key);
  CHECK(keyed.made, "another key: the pack made for the first key returned");
  const Call no_extra = call(nullptr, 0, key);
  CHECK(no_extra.made && *no_extra.pack == w, "no extra array: the pack made with one returned");
  const Call back = call(extra.data(), 20, key);
  CHECK(!back.made && back.pack == extra_edited.pack, "the entry for the first key was lost when others were added");
}

// Weights over the cache's size limit (16 MiB) are packed at every call, never kept.
TEST(weight_cache, never_keeps_weights_over_the_limit) {
  const vector<float> w(std::size_t(5) << 20, 0.5f);  // 20 MiB
  int packs = 0;
  for (int call = 0; call < 2; ++call)
    rnnfast::cached_pack<Copy>(PackKey{3, 0, 0, 0, 4}, w.data(), static_cast<int64_t>(w.size()),
                               static_cast<const float*>(nullptr), 0, [&](Copy& out) {
                                 ++packs;
                                 out.assign(1, w[0]);  // the content does not matter here
                               });
  CHECK(packs == 2, "20 MiB of weights: packed ", packs, " times in 2 calls (want 2: not cached)");
}

// same_bytes cuts arrays of 128 KiB or more into 64 KiB chunks the pool's threads share.
TEST(weight_cache, same_bytes_finds_a_difference_in_any_chunk) {
  const int before = rnnfast::num_threads();
  const std::size_t n = (std::size_t(64) << 10) * 5 + 123;
  const vector<unsigned char> a(n, 0x5a);
  for (int threads : {1, 2, 3}) {
    rnnfast::set_num_threads(threads);
    for (std::size_t at : {std::size_t(0), n / 2, n - 1, std::size_t(64) << 10}) {
      Context ctx("same_bytes n=", n, " threads=", threads, " difference at ", at);
      vector<unsigned char> b = a;
      CHECK(rnnfast::same_bytes(a.data(), b.data(), n), "equal arrays reported different");
      b[at] ^= 1;
      CHECK(!rnnfast::same_bytes(a.data(), b.data(), n), "a differing byte not found");
    }
  }
  rnnfast::set_num_threads(before);
}

// Callers on several threads with the same weights, of which one thread edits its own copy: every pack
// returned holds the values its caller passed at that call. Large weights, so that same_bytes runs on
// the pool while the callers race for the cache's lock.
TEST(weight_cache, concurrent_callers_get_their_own_values) {
  const int before = rnnfast::num_threads();
  rnnfast::set_num_threads(2);
  Rng rng(43);
  const vector<float> shared = random_floats(int64_t(1) << 16, rng);  // 256 KiB
  const int kCallers = 3, kCalls = 40;
  vector<int> wrong(kCallers, -1);  // each written by its own caller thread
  vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      vector<float> mine = shared;  // caller 0 uses `shared` itself, the others their own copies
      const float* w = c == 0 ? shared.data() : mine.data();
      for (int call = 0; call < kCalls && wrong[static_cast<std::size_t>(c)] < 0; ++call) {
        if (c == 2) mine[static_cast<std::size_t>(call * 997) % mine.size()] += 1.0f;  // edits between calls
        const auto packed = rnnfast::cached_pack<Copy>(PackKey{4, 0, 0, 0, 4}, w, static_cast<int64_t>(mine.size()),
                                                       static_cast<const float*>(nullptr), 0,
                                                       [&](Copy& out) { out.assign(w, w + mine.size()); });
        if (*packed != (c == 0 ? shared : mine)) wrong[static_cast<std::size_t>(c)] = call;
      }
    });
  for (std::thread& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c)
    CHECK(wrong[static_cast<std::size_t>(c)] < 0, "caller ", c, " of ", kCallers, ": call ",
          wrong[static_cast<std::size_t>(c)], " got a pack of other values");
  rnnfast::set_num_threads(before);
}
