// Run-time choice between two builds of one loop (CKernels' sources only).
#ifndef CKERNELS_DISPATCH_H
#define CKERNELS_DISPATCH_H

#include "CKernels.h"

// DISPATCHED_RANGE_KERNEL(name, Args, body) defines
//   static void name(const Args *args, int64_t begin, int64_t end)
// which runs the always-inline `body(args, begin, end)`. On x86-64, body is compiled twice,
// for AVX2+FMA and for the baseline, and `name` runs the build sck_avx2_enabled() picks.
#if defined(__x86_64__)
#define DISPATCHED_RANGE_KERNEL(name, Args, body)                                                        \
  static void name##_baseline(const Args *args, int64_t begin, int64_t end) { body(args, begin, end); } \
  __attribute__((target("avx2,fma"))) static void name##_avx2(const Args *args, int64_t begin,          \
                                                              int64_t end) {                            \
    body(args, begin, end);                                                                              \
  }                                                                                                      \
  static void name(const Args *args, int64_t begin, int64_t end) {                                      \
    if (sck_avx2_enabled())                                                                              \
      name##_avx2(args, begin, end);                                                                     \
    else                                                                                                 \
      name##_baseline(args, begin, end);                                                                 \
  }
#else
#define DISPATCHED_RANGE_KERNEL(name, Args, body) \
  static void name(const Args *args, int64_t begin, int64_t end) { body(args, begin, end); }
#endif

#endif
