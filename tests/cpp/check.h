// A minimal test harness for the kernel tests: CHECK counts and reports, a context stack that names
// the instruction set, element type and shape in every failure, a deterministic random generator,
// array comparisons that report their worst element, and TEST(subject, name), which registers a test
// under a subject so that main.cpp can run all subjects or only those named on its command line.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace check {

struct Tally {
  long passed = 0, failed = 0;
  std::vector<std::string> context;  // e.g. {"avx2 float", "lstm S=3 B=2 I=3 H=2"}
};

inline Tally& tally() {
  static Tally t;
  return t;
}

template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream s;
  s.precision(9);
  (s << ... << parts);
  return s.str();
}

// Pushes a description for the checks made while it lives.
class Context {
 public:
  template <typename... Parts>
  explicit Context(const Parts&... parts) {
    tally().context.push_back(str(parts...));
  }
  ~Context() { tally().context.pop_back(); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
};

template <typename Message>
bool record(bool ok, const char* file, int line, const Message& message) {
  Tally& t = tally();
  if (ok) {
    ++t.passed;
    return true;
  }
  ++t.failed;
  if (t.failed <= 100) {  // enough to diagnose; the count says the rest
    std::string where;
    for (const std::string& c : t.context) where += c + ": ";
    std::fprintf(stderr, "FAIL %s:%d: %s%s\n", file, line, where.c_str(), message().c_str());
  }
  return false;
}

// The registered tests, in registration order (within a file, the order of definition; main sorts
// the subjects by name, as the order of files at static initialisation is the linker's).
struct Test {
  const char* subject;
  const char* name;
  void (*run)();
};

inline std::vector<Test>& registry() {
  static std::vector<Test> tests;
  return tests;
}

inline bool register_test(const char* subject, const char* name, void (*run)()) {
  registry().push_back({subject, name, run});
  return true;
}

// Prints the closing line and returns the exit code.
inline int finish() {
  std::printf("%ld passed, %ld failed\n", tally().passed, tally().failed);
  return tally().failed == 0 ? 0 : 1;
}

// splitmix64: the same numbers on every platform and standard library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi).
  double uniform(double lo = -1.0, double hi = 1.0) { return lo + (hi - lo) * double(next() >> 11) * 0x1.0p-53; }
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n)); }

 private:
  std::uint64_t state_;
};

// Largest of |got - want| / max(|want|, floor) over the arrays; names the worst index. NaN anywhere
// (when `want` has none there) counts as an infinite error, so unwritten NaN-filled outputs are caught.
struct Worst {
  double error = 0.0;
  std::size_t index = 0;
  double got = 0.0, want = 0.0;
};

template <typename A, typename B>
Worst worst_relative(const std::vector<A>& got, const std::vector<B>& want, double floor) {
  Worst w;
  if (got.size() != want.size()) {
    w.error = INFINITY;
    return w;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), e = double(want[i]);
    double err = std::fabs(g - e) / std::max(std::fabs(e), floor);
    if (std::isnan(g) != std::isnan(e) || (std::isnan(err) && !std::isnan(e))) err = INFINITY;
    if (std::isnan(e) && std::isnan(g)) err = 0.0;
    if (err > w.error || i == 0) w = Worst{err, i, g, e};
  }
  return w;
}

inline std::string describe(const Worst& w) {
  return str("worst at [", w.index, "]: got ", w.got, ", want ", w.want, " (error ", w.error, ")");
}

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <typename T>
std::size_t first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return i;
  return n;
}

}  // namespace check

// CHECK(condition, message parts...): records a pass or a failure; the message (streamed parts) and
// the context stack are printed on failure (the message is built only then). Evaluates to the condition.
#define CHECK(cond, ...) \
  ::check::record(static_cast<bool>(cond), __FILE__, __LINE__, [&] { return ::check::str(__VA_ARGS__); })

// TEST(subject, name) { body }: defines a test and registers it under `subject` (a plain identifier:
// what `rnnfast_kernel_tests SUBJECT` selects). Tests of one subject may live in several files.
#define TEST(subject, name)                                                                          \
  static void test_##subject##_##name();                                                            \
  [[maybe_unused]] static const bool registered_##subject##_##name =                                \
      ::check::register_test(#subject, #name, &test_##subject##_##name);                            \
  static void test_##subject##_##name()
