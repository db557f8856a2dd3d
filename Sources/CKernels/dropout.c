// Dropout masks on CPU: libtorch's CPU bernoulli_ draws one 64-bit number per element in a serial
// loop except on Intel CPUs (where it calls MKL), which made it a sixth of a small transformer's
// training step. This fills the mask from a xoshiro256** stream in 16-bit draws (the keep
// probability is rounded to a multiple of 2^-16).
#include "CKernels.h"
#include <string.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t next(uint64_t s[4]) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void sck_random_seed(uint64_t state[4], uint64_t seed) {
  // splitmix64, as xoshiro's authors recommend for seeding.
  for (int i = 0; i < 4; i++) {
    uint64_t z = (seed += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    state[i] = z ^ (z >> 31);
  }
}

void sck_dropout_mask(uint64_t state[4], float *out, int64_t n, uint32_t keep_below, float scale) {
  // Each 64-bit number gives four 16-bit draws; the mask is written without branches (a kept
  // element's bits are the scale's), which the compiler vectorises.
  uint32_t bits;
  memcpy(&bits, &scale, sizeof bits);
  uint32_t *mask = (uint32_t *)out;
  int64_t i = 0;
  for (; i + 3 < n; i += 4) {
    uint64_t r = next(state);
    for (int k = 0; k < 4; k++) mask[i + k] = (0u - (uint32_t)(((r >> (16 * k)) & 0xFFFF) < keep_below)) & bits;
  }
  for (; i < n; i++) mask[i] = (0u - (uint32_t)((next(state) & 0xFFFF) < keep_below)) & bits;
}
