// Fused negative-binomial / zero-inflated NB log-likelihood (scvi-tools' log_nb_positive and
// log_zinb_positive, eps 1e-8) with its partial derivatives, computed together.
//
// Per row, a branch-free 8-lane float pass with Cephes-style exp and log gives the zero counts
// (most of a scRNA-seq matrix) their whole result, in stable form (log(theta) − log(theta + mu)
// becomes −log1p(mu / theta)); a scalar double pass then adds the NB part at the non-zero
// counts. On x86-64 the row loop is compiled twice, for AVX2+FMA and for the baseline, and
// picked at run time.

#include "CKernels.h"
#include "dispatch.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

// The 8-lane helpers are always inlined, so the AVX argument-passing ABI never applies.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

#define INLINE static inline __attribute__((always_inline))

static const float kEps = 1e-8f;

INLINE f32x8 splat(float v) { return (f32x8){v, v, v, v, v, v, v, v}; }
INLINE f32x8 load8(const float *p) {
  f32x8 v;
  memcpy(&v, p, sizeof v);
  return v;
}
INLINE void store8(float *p, f32x8 v) { memcpy(p, &v, sizeof v); }
INLINE f32x8 select8(i32x8 mask, f32x8 a, f32x8 b) {  // mask ? a : b, lane by lane
  return (f32x8)((mask & (i32x8)a) | (~mask & (i32x8)b));
}

// 1.5·2^23: adding it rounds a float to an integer held in the low mantissa bits.
static const float kRoundingShift = 12582912.0f;
static const int32_t kRoundingShiftBits = 0x4B400000;

// exp for finite inputs (Cephes' expf: range reduction by ln 2, degree-5 polynomial).
INLINE f32x8 exp8(f32x8 v) {
  f32x8 x = select8(v < splat(-87.3f), splat(-87.3f), v);
  x = select8(x > splat(88.3f), splat(88.3f), x);
  f32x8 shifted = x * 1.44269504088896341f + kRoundingShift;
  f32x8 n = shifted - kRoundingShift;
  f32x8 r = x - n * 0.693359375f + n * 2.12194440e-4f;
  f32x8 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  f32x8 y = p * (r * r) + r + 1.0f;
  i32x8 scale = (((i32x8)shifted - kRoundingShiftBits) + 127) << 23;
  return y * (f32x8)scale;
}

// Natural log for positive normal inputs (Cephes' logf: mantissa in [√½, √2), degree-8
// polynomial).
INLINE f32x8 log8(f32x8 v) {
  i32x8 bits = (i32x8)v;
  f32x8 exponent = (f32x8)(((bits >> 23) - 126) + kRoundingShiftBits) - kRoundingShift;
  f32x8 m = (f32x8)((bits & 0x007FFFFF) | 0x3F000000);  // in [0.5, 1)
  i32x8 small = m < splat(0.707106781186547524f);
  exponent = select8(small, exponent - 1.0f, exponent);
  m = select8(small, m + m, m) - 1.0f;
  f32x8 z = m * m;
  f32x8 p = splat(7.0376836292e-2f);
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  f32x8 y = p * m * z;
  y = y - exponent * 2.12194440e-4f - 0.5f * z;
  return m + y + exponent * 0.693359375f;
}

// log1p(y) for y ≥ 0, a few ulp accurate: log(1 + y) with Goldberg's correction for the
// rounding of 1 + y.
INLINE f32x8 log1p8(f32x8 y) {
  f32x8 u = y + 1.0f;
  return select8(u == splat(1.0f), y, log8(u) * (y / (u - 1.0f)));
}

// softplus(v) (torch's, threshold 20) and sigmoid(v), sharing one exponential.
INLINE void softplus_sigmoid8(f32x8 v, f32x8 *softplus, f32x8 *sigmoid) {
  i32x8 negative = v < splat(0.0f);
  f32x8 e = exp8(select8(negative, v, -v));  // exp(−|v|)
  f32x8 sp = select8(negative, splat(0.0f), v) + log1p8(e);
  *softplus = select8(v > splat(20.0f), v, sp);
  f32x8 r = 1.0f / (e + 1.0f);
  *sigmoid = select8(negative, e * r, r);
}

// Value and partials d/dmu, d/dtheta, d/dpi at x = 0. NB gives theta·log(theta/(theta+mu)),
// written as −theta·log1p(mu/theta) to avoid the cancellation of two logs. With zero
// inflation it also returns softplus(−pi) and sigmoid(−pi), which the other counts reuse.
typedef struct {
  f32x8 value, d_mu, d_theta, d_pi, softplus_minus_pi, sigmoid_minus_pi;
} ZeroCount8;

INLINE ZeroCount8 zero_count8(f32x8 mu, f32x8 theta, int zero_inflated, f32x8 pi) {
  ZeroCount8 r;
  f32x8 ratio = mu / (theta + kEps), inverse_theta_mu = 1.0f / (theta + mu + kEps);
  f32x8 log_ratio = -log1p8(ratio);
  f32x8 theta_term = theta * log_ratio;
  f32x8 dt = log_ratio + theta * ratio * inverse_theta_mu, dm = -theta * inverse_theta_mu;
  if (!zero_inflated) {
    r.value = theta_term, r.d_mu = dm, r.d_theta = dt;
    r.d_pi = r.softplus_minus_pi = r.sigmoid_minus_pi = splat(0.0f);
    return r;
  }
  f32x8 softplus_t, sigmoid_t;
  softplus_sigmoid8(-pi, &r.softplus_minus_pi, &r.sigmoid_minus_pi);
  softplus_sigmoid8(theta_term - pi, &softplus_t, &sigmoid_t);
  r.value = softplus_t - r.softplus_minus_pi;
  r.d_mu = sigmoid_t * dm;
  r.d_theta = sigmoid_t * dt;
  r.d_pi = r.sigmoid_minus_pi - sigmoid_t;
  return r;
}

static double log_gamma(double v) {
  int sign;
  return lgamma_r(v, &sign);
}

// log x! for the small integer counts of scRNA-seq from a table, else log Γ(x + 1).
enum { kLogFactorials = 4096 };
static double log_factorials[kLogFactorials];
static pthread_once_t log_factorials_once = PTHREAD_ONCE_INIT;
static void fill_log_factorials(void) {
  for (int i = 0; i < kLogFactorials; i++) log_factorials[i] = log_gamma((double)i + 1);
}
static double log_factorial(double x) {
  if (x < kLogFactorials && floor(x) == x) return log_factorials[(int)x];
  return log_gamma(x + 1);
}

// ψ(v) for v > 0: recurrence up to 6, then the asymptotic series.
static double digamma(double v) {
  if (!(v > 0)) return v == 0 ? -INFINITY : NAN;
  double shift = 0;
  while (v < 6) {
    shift -= 1 / v;
    v += 1;
  }
  double f = 1 / (v * v);
  double series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
  return shift + log(v) - 0.5 / v - series;
}

// The NB part at x > 0, in double (the gamma terms are large and nearly cancel): value,
// d/dmu, d/dtheta. The zero inflation adds −pi − softplus(−pi), which does not depend on x.
static void positive_count(const SCKCountLikelihood *k, double x, double mu, double theta, int64_t gene,
                           double out[3]) {
  const double eps = 1e-8;
  double theta_eps = theta + eps, theta_mu_eps = theta + mu + eps, mu_eps = mu + eps;
  double log_ratio = log(theta_eps / theta_mu_eps), mu_ratio = mu_eps / theta_mu_eps;
  // x·log(mu/(theta+mu)) + log Γ(x + theta) − log Γ(theta), and ψ(x + theta) − ψ(theta). For
  // the small integer counts of scRNA-seq the gamma terms are log Π(theta + j) and
  // Σ 1/(theta + j) over j < x (exact identities, without the cancellation of two large lgamma
  // values), so one log of Π (theta + j)·mu/(theta+mu) covers both logs (with theta ≤ 1e16
  // the product of at most 16 such factors stays within double range).
  double count_terms, digamma_difference = 0;
  if (x <= 16 && theta <= 1e16 && floor(x) == x) {
    double product = 1;
    for (int j = 0; j < (int)x; j++) {
      product *= (theta + j) * mu_ratio;
      if (k->d_mu) digamma_difference += 1 / (theta + j);
    }
    count_terms = log(product);
  } else {
    double log_gamma_theta = k->theta_per_gene ? k->theta_log_gamma[gene] : log_gamma(theta);
    count_terms = x * log(mu_ratio) + log_gamma(x + theta) - log_gamma_theta;
    if (k->d_mu)
      digamma_difference = digamma(x + theta) - (k->theta_per_gene ? k->theta_digamma[gene] : digamma(theta));
  }
  out[0] = theta * log_ratio + count_terms - log_factorial(x);
  out[1] = out[2] = 0;
  if (k->d_mu) {
    out[1] = theta * (x - mu_eps) / (mu_eps * theta_mu_eps);
    out[2] = log_ratio + theta * mu / (theta_eps * theta_mu_eps) - x / theta_mu_eps + digamma_difference;
  }
}

// Pass 1 over `lanes` (≤ 8) elements from i, branch-free: zero counts get their whole result;
// positive counts get the zero-inflation part of the value and of d/dpi (pass 2 adds the NB
// part); x = eps or NaN, where both of the formula's cases are off, gets zeros.
INLINE void zero_pass(const SCKCountLikelihood *k, int64_t i, int64_t gene, int lanes) {
  float in[4][8] = {{0}, {1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1}, {0}};  // x, mu, theta, pi
  const float *theta_at = k->theta + (k->theta_per_gene ? gene : i);
  f32x8 x, mu, theta, pi = splat(0.0f);
  if (lanes == 8) {
    x = load8(k->x + i), mu = load8(k->mu + i), theta = load8(theta_at);
    if (k->zi_logits) pi = load8(k->zi_logits + i);
  } else {
    memcpy(in[0], k->x + i, lanes * sizeof(float)), memcpy(in[1], k->mu + i, lanes * sizeof(float));
    memcpy(in[2], theta_at, lanes * sizeof(float));
    if (k->zi_logits) memcpy(in[3], k->zi_logits + i, lanes * sizeof(float));
    x = load8(in[0]), mu = load8(in[1]), theta = load8(in[2]), pi = load8(in[3]);
  }
  ZeroCount8 z = zero_count8(mu, theta, k->zi_logits != NULL, pi);
  i32x8 zero = x < splat(kEps), positive = x > splat(kEps);
  f32x8 out[4] = {
      select8(zero, z.value, select8(positive, -pi - z.softplus_minus_pi, splat(0.0f))),
      select8(zero, z.d_mu, splat(0.0f)),
      select8(zero, z.d_theta, splat(0.0f)),
      select8(zero, z.d_pi, select8(positive, z.sigmoid_minus_pi - 1.0f, splat(0.0f))),
  };
  float *targets[4] = {k->value, k->d_mu, k->d_theta, k->d_zi_logits};
  for (int t = 0; t < 4; t++) {
    if (!targets[t]) continue;
    if (lanes == 8) {
      store8(targets[t] + i, out[t]);
    } else {
      float lane_values[8];
      store8(lane_values, out[t]);
      memcpy(targets[t] + i, lane_values, lanes * sizeof(float));
    }
  }
}

// Pass 2: the NB part at the positive counts of the row of `genes` elements from `base`.
static void positive_pass(const SCKCountLikelihood *k, int64_t base, int64_t genes) {
  for (int64_t gene = 0; gene < genes; gene++) {
    int64_t i = base + gene;
    float x = k->x[i];
    if (!(x > kEps)) continue;
    double r[3];
    positive_count(k, x, k->mu[i], k->theta[k->theta_per_gene ? gene : i], gene, r);
    k->value[i] = (float)(k->value[i] + r[0]);
    if (k->d_mu) k->d_mu[i] = (float)r[1], k->d_theta[i] = (float)r[2];
  }
}

INLINE void rows_body(const SCKCountLikelihood *k, int64_t row_begin, int64_t row_end) {
  for (int64_t row = row_begin; row < row_end; row++) {
    int64_t base = row * k->genes, gene = 0;
    for (; gene + 8 <= k->genes; gene += 8) zero_pass(k, base + gene, gene, 8);
    if (gene < k->genes) zero_pass(k, base + gene, gene, (int)(k->genes - gene));
    positive_pass(k, base, k->genes);
  }
}

DISPATCHED_RANGE_KERNEL(rows, SCKCountLikelihood, rows_body)

void sck_count_likelihood_rows(const SCKCountLikelihood *k, int64_t row_begin, int64_t row_end) {
  pthread_once(&log_factorials_once, fill_log_factorials);
  rows(k, row_begin, row_end);
}

void sck_count_likelihood_gene_terms(const float *theta, int64_t genes, double *log_gamma_out,
                                     double *digamma_out) {
  for (int64_t g = 0; g < genes; g++) {
    log_gamma_out[g] = log_gamma(theta[g]);
    if (digamma_out) digamma_out[g] = digamma(theta[g]);
  }
}

INLINE void backward_body(const SCKCountLikelihoodBackward *k, int64_t gene_begin, int64_t gene_end) {
  enum { kBlock = 256 };
  for (int64_t block = gene_begin; block < gene_end; block += kBlock) {
    const int64_t n = block + kBlock < gene_end ? kBlock : gene_end - block;
    double theta_sum[kBlock] = {0};
    for (int64_t row = 0; row < k->rows; row++) {
      const int64_t base = row * k->genes + block;
      const float *restrict grad = k->grad_output + base;
      const float *restrict d_mu = k->d_mu + base, *restrict d_theta = k->d_theta + base;
      float *restrict grad_mu = k->grad_mu + base;
      for (int64_t g = 0; g < n; g++) grad_mu[g] = grad[g] * d_mu[g];
      if (k->grad_zi_logits) {
        const float *restrict d_pi = k->d_zi_logits + base;
        float *restrict grad_pi = k->grad_zi_logits + base;
        for (int64_t g = 0; g < n; g++) grad_pi[g] = grad[g] * d_pi[g];
      }
      if (k->theta_per_gene) {
        for (int64_t g = 0; g < n; g++) theta_sum[g] += (double)(grad[g] * d_theta[g]);
      } else {
        float *restrict grad_theta = k->grad_theta + base;
        for (int64_t g = 0; g < n; g++) grad_theta[g] = grad[g] * d_theta[g];
      }
    }
    if (k->theta_per_gene)
      for (int64_t g = 0; g < n; g++) k->grad_theta[block + g] = (float)theta_sum[g];
  }
}

DISPATCHED_RANGE_KERNEL(backward, SCKCountLikelihoodBackward, backward_body)

void sck_count_likelihood_backward_genes(const SCKCountLikelihoodBackward *k, int64_t gene_begin,
                                         int64_t gene_end) {
  backward(k, gene_begin, gene_end);
}
