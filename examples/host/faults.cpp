// Variants that fail in every way a variant can, beside good ones. MODE:
// 0, 8  correct (8 a little slower)       1  crashes (SIGSEGV)
// 2     hangs                              3  wrong result
// 4     writes NaN                         5  does not compile
// 6     lacks the kernel function          7  asks for too many threads (rejected before compiling)
#include <csignal>
#include <cmath>

#ifndef MODE
#define MODE 0
#endif

#if MODE == 5
#error "this variant does not compile, on purpose"
#endif

extern "C" void faults_reference(void* const* args) {
  const auto* x = static_cast<const float*>(args[0]);
  auto* y = static_cast<float*>(args[1]);
  const int n = *static_cast<const int*>(args[2]);
  for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i] + 1.0f;
}

#if MODE != 6
extern "C" void faults(void* const* args) {
  const auto* x = static_cast<const float*>(args[0]);
  auto* y = static_cast<float*>(args[1]);
  const int n = *static_cast<const int*>(args[2]);
#if MODE == 1
  std::raise(SIGSEGV);
#elif MODE == 2
  for (volatile int spin = 0;; spin = spin + 1) {
  }
#endif
  for (int repeat = 0; repeat < (MODE == 8 ? 4 : 1); ++repeat)
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i] + 1.0f;
#if MODE == 3
  y[n / 2] += 1.0f;
#elif MODE == 4
  y[0] = std::nanf("");
#endif
}
#endif
