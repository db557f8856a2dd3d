// torch.optim.Adam's update in one pass over the parameter instead of eight tensor operations.

#include "CKernels.h"
#include "dispatch.h"

#include <math.h>

// `amsgrad` is a constant at each call, so the loop has no branch (a masked load and store there
// costs more than the rest of the update on some CPUs).
static inline __attribute__((always_inline)) void adam_loop(const SCKAdamStep *s, int64_t begin, int64_t end,
                                                            const int amsgrad) {
  float *restrict param = s->param, *restrict exp_avg = s->exp_avg, *restrict exp_avg_sq = s->exp_avg_sq;
  float *restrict max_exp_avg_sq = s->max_exp_avg_sq;
  const float *restrict grad = s->grad;
  const float param_scale = s->param_scale, weight_decay = s->weight_decay, eps = s->eps;
  const float one_minus_beta1 = s->one_minus_beta1, beta2 = s->beta2, one_minus_beta2 = s->one_minus_beta2;
  const float step_size = s->step_size, bias_correction2_sqrt = s->bias_correction2_sqrt;
  for (int64_t i = begin; i < end; i++) {
    float p = param[i] * param_scale;
    float g = grad[i] + weight_decay * p;
    float m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i]);  // lerp(m, g, 1 − β1), weight < 0.5
    float v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;
    exp_avg[i] = m, exp_avg_sq[i] = v;
    if (amsgrad) v = max_exp_avg_sq[i] = fmaxf(max_exp_avg_sq[i], v);
    param[i] = p - step_size * (m / (sqrtf(v) / bias_correction2_sqrt + eps));
  }
}

static inline __attribute__((always_inline)) void adam_body(const SCKAdamStep *s, int64_t begin, int64_t end) {
  if (s->max_exp_avg_sq)
    adam_loop(s, begin, end, 1);
  else
    adam_loop(s, begin, end, 0);
}

DISPATCHED_RANGE_KERNEL(adam, SCKAdamStep, adam_body)

void sck_adam_step(const SCKAdamStep *s, int64_t begin, int64_t end) { adam(s, begin, end); }
