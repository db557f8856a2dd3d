// Plain C numeric kernels for the Torch layer: loops that libtorch's composite operations run
// slowly and Swift's SIMD types do not vectorize reliably. No libtorch here; the Torch target
// owns the tensors, autograd and threading (it calls these on libtorch's intra-op threads).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Whether the AVX2+FMA builds of the kernels run (where the CPU has them; the default) or the
// baseline x86-64 builds. For tests, which check that both agree.
void sck_set_avx2_enabled(int enabled);
int sck_avx2_enabled(void);

// scvi-tools' log_nb_positive / log_zinb_positive (eps 1e-8) over a row-major [rows, genes]
// block: the log-likelihood and, when d_mu is set, its partial derivatives.
typedef struct {
  const float *x, *mu;
  const float *theta;      // [rows, genes], or [genes] when theta_per_gene
  const float *zi_logits;  // NULL: negative binomial; else zero-inflated, [rows, genes]
  float *value;
  float *d_mu, *d_theta, *d_zi_logits;  // NULL when no gradient is needed (d_zi_logits: and for NB)
  int64_t genes;
  int theta_per_gene;
  // log Γ(theta) and ψ(theta) per gene (sck_count_likelihood_gene_terms), when theta_per_gene.
  const double *theta_log_gamma, *theta_digamma;
} SCKCountLikelihood;

// Fills log_gamma[g] = log Γ(theta[g]) and, when digamma is not NULL, digamma[g] = ψ(theta[g]).
void sck_count_likelihood_gene_terms(const float *theta, int64_t genes, double *log_gamma, double *digamma);

// Value (and partials) for rows [row_begin, row_end).
void sck_count_likelihood_rows(const SCKCountLikelihood *k, int64_t row_begin, int64_t row_end);

// Backward: scales the partials by the output's gradient `grad_output` ([rows, genes],
// contiguous) for genes [gene_begin, gene_end) of all rows. grad_theta is [rows, genes], or
// [genes] (summed over rows) when theta_per_gene; grad_zi_logits may be NULL (NB).
typedef struct {
  const float *grad_output;
  const float *d_mu, *d_theta, *d_zi_logits;
  float *grad_mu, *grad_theta, *grad_zi_logits;
  int64_t rows, genes;
  int theta_per_gene;
} SCKCountLikelihoodBackward;

void sck_count_likelihood_backward_genes(const SCKCountLikelihoodBackward *k, int64_t gene_begin,
                                         int64_t gene_end);

// One step of torch.optim.Adam's single-tensor update (AdamW with decoupled_weight_decay) on
// elements [begin, end) of one float32 parameter, in torch's order of operations. The scalars
// are computed in double and rounded once, as torch does with its Python floats.
typedef struct {
  float *param;
  const float *grad;
  float *exp_avg, *exp_avg_sq;
  float *max_exp_avg_sq;       // NULL unless amsgrad
  float param_scale;           // 1 − lr·weight_decay for AdamW, else 1
  float weight_decay;          // added to the gradient (0 for AdamW)
  float one_minus_beta1, beta2, one_minus_beta2, eps;
  float step_size;             // lr / (1 − β1^t)
  float bias_correction2_sqrt; // √(1 − β2^t)
} SCKAdamStep;

void sck_adam_step(const SCKAdamStep *s, int64_t begin, int64_t end);

// Dropout masks: a xoshiro256** state seeded by splitmix64 of `seed`, and a mask of n floats,
// each `scale` when a 16-bit draw is below `keep_below` (keep probability keep_below / 2^16, ≤ 2^16), else 0.
void sck_random_seed(uint64_t state[4], uint64_t seed);
void sck_dropout_mask(uint64_t state[4], float *out, int64_t n, uint32_t keep_below, float scale);

#ifdef __cplusplus
}
#endif

#endif
