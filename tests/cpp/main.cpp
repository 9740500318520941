// The C++ kernel tests' runner: `rnnfast_kernel_tests [SUBJECT ...]` runs the tests registered (TEST in
// check.h) under the named subjects, or all of them; `--list` prints the subjects and their tests.
// Each subject's tests are in test_<subject>.cpp (the thread tests in test_threads.cpp and test_pool.cpp).
// Prints failures to stderr, a line per subject, and closes with "N passed, M failed" alone on the last
// line (CI reads it); exits 0 when every check passed, 1 on a failure, 2 on a bad argument.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "check.h"
#include "rnnfast/gemm/micro_kernel.h"
#include "rnnfast/core/threadpool.h"
#include "test_support.h"

namespace {

// The subjects, by name (the registry holds them in the linker's order of files).
std::vector<std::string> subjects() {
  std::vector<std::string> names;
  for (const check::Test& t : check::registry())
    if (std::find(names.begin(), names.end(), t.subject) == names.end()) names.push_back(t.subject);
  std::sort(names.begin(), names.end());
  return names;
}

void list(std::FILE* out) {
  for (const std::string& subject : subjects()) {
    std::fprintf(out, "%s:", subject.c_str());
    for (const check::Test& t : check::registry())
      if (subject == t.subject) std::fprintf(out, " %s", t.name);
    std::fprintf(out, "\n");
  }
}

void run_subject(const std::string& subject) {
  const auto start = std::chrono::steady_clock::now();
  const check::Tally before = check::tally();
  for (const check::Test& t : check::registry()) {
    if (subject != t.subject) continue;
    check::Context ctx(t.subject, ".", t.name);
    try {
      t.run();
    } catch (const std::exception& e) {
      CHECK(false, "unexpected exception: ", e.what());
    }
  }
  const check::Tally& after = check::tally();
  std::printf("%s: %s, %ld checks (%.1f s)\n", subject.c_str(), after.failed == before.failed ? "ok" : "FAILED",
              after.passed + after.failed - before.passed - before.failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> known = subjects();
  std::vector<std::string> selected;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--list") {
      list(stdout);
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: %s [--list] [SUBJECT ...]   (no subject: all)\nsubjects and their tests:\n", argv[0]);
      list(stdout);
      return 0;
    }
    if (std::find(known.begin(), known.end(), arg) == known.end()) {
      std::fprintf(stderr, "%s: unknown subject '%s'; the subjects and their tests:\n", argv[0], arg.c_str());
      list(stderr);
      return 2;
    }
    if (std::find(selected.begin(), selected.end(), arg) == selected.end()) selected.push_back(arg);
  }
  if (selected.empty()) selected = known;

  const std::vector<rnnfast::Isa> isas = support::available_isas();
  std::printf("instruction sets:");
  for (rnnfast::Isa isa : isas) std::printf(" %s", rnnfast::isa_name(isa));
  std::printf(" (threads: %d)\n", rnnfast::num_threads());
  // Every per-instruction-set test relies on this; checked whatever subjects run.
  CHECK(!isas.empty() && isas.front() == rnnfast::Isa::kGeneric, "the generic instruction set must always be available");

  // In the order named (all: alphabetical).
  for (const std::string& subject : selected) run_subject(subject);
  return check::finish();
}
