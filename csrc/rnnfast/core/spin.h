// The spin-wait hint shared by the thread pool and the step scheduler.
#pragma once

namespace rnnfast {

// The CPU's spin-wait hint (lets the sibling hyperthread run, saves power).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace rnnfast
