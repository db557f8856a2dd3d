// Which build of the kernels runs: each x86-64 kernel is compiled for AVX2+FMA and for the
// baseline, and this picks one at run time.

#include "CKernels.h"

static int avx2_allowed = 1;

void sck_set_avx2_enabled(int enabled) { avx2_allowed = enabled; }

int sck_avx2_enabled(void) {
#if defined(__x86_64__)
  return avx2_allowed && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}
