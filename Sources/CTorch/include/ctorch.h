// ctorch.h — a thin C interface over libtorch (ATen + autograd).
//
// Every tensor is an opaque handle owning one at::Tensor; free it with ct_free.
// Functions that return a handle return NULL on failure, functions that return
// int return 0 on success and -1 on failure; in both cases ct_last_error()
// gives libtorch's message (thread-local). A NULL tensor argument where an
// optional tensor is allowed means "none".
#ifndef CTORCH_H
#define CTORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CTTensorImpl *CTTensor;

// Data types (stable codes; mapped to at::ScalarType in the shim).
enum {
  CT_FLOAT32 = 0,
  CT_FLOAT64 = 1,
  CT_BFLOAT16 = 2,
  CT_FLOAT16 = 3,
  CT_INT64 = 4,
  CT_INT32 = 5,
  CT_BOOL = 6,
  CT_UINT8 = 7,
};

enum { CT_CPU = 0, CT_CUDA = 1 };

// ---- errors and lifetime ----------------------------------------------------
const char *ct_last_error(void);
void ct_free(CTTensor t);
CTTensor ct_undefined(void);
int ct_is_defined(CTTensor t);
CTTensor ct_alias(CTTensor t);  // a second handle to the same tensor

// ---- creation ---------------------------------------------------------------
CTTensor ct_from_data(const void *data, const int64_t *shape, int ndim, int dtype);
CTTensor ct_empty(const int64_t *shape, int ndim, int dtype, int device_type, int device_index);
CTTensor ct_zeros(const int64_t *shape, int ndim, int dtype, int device_type, int device_index);
CTTensor ct_ones(const int64_t *shape, int ndim, int dtype, int device_type, int device_index);
CTTensor ct_full(const int64_t *shape, int ndim, double value, int dtype, int device_type,
                 int device_index);
CTTensor ct_arange(double start, double end, double step, int dtype, int device_type,
                   int device_index);
CTTensor ct_randn(const int64_t *shape, int ndim, int dtype, int device_type, int device_index);
CTTensor ct_rand(const int64_t *shape, int ndim, int dtype, int device_type, int device_index);
CTTensor ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int device_type,
                    int device_index);
CTTensor ct_randperm(int64_t n, int device_type, int device_index);
CTTensor ct_bernoulli(CTTensor probs);
CTTensor ct_multinomial(CTTensor probs, int64_t num_samples, int replacement);
CTTensor ct_poisson(CTTensor rates);
CTTensor ct_standard_gamma(CTTensor concentration);

// ---- metadata and data access ----------------------------------------------
int ct_ndim(CTTensor t);
int ct_shape(CTTensor t, int64_t *out);  // out has ct_ndim entries
int64_t ct_numel(CTTensor t);
int ct_dtype(CTTensor t);
int ct_device_type(CTTensor t);
int ct_device_index(CTTensor t);
int ct_is_contiguous(CTTensor t);
// Copies the elements (row-major, dtype unchanged) into `out` of `nbytes` bytes.
int ct_copy_to_buffer(CTTensor t, void *out, int64_t nbytes);
// Pointer to the first element of a contiguous CPU tensor (NULL otherwise).
void *ct_data_ptr(CTTensor t);
int ct_item(CTTensor t, double *out);
CTTensor ct_to_dtype(CTTensor t, int dtype);
CTTensor ct_to_device(CTTensor t, int device_type, int device_index);
CTTensor ct_contiguous(CTTensor t);
CTTensor ct_clone(CTTensor t);
// Human-readable rendering; free with ct_string_free.
char *ct_to_string(CTTensor t);
void ct_string_free(char *s);

// ---- elementwise ------------------------------------------------------------
enum {
  CT_NEG = 0, CT_ABS, CT_EXP, CT_LOG, CT_LOG1P, CT_EXPM1, CT_SQRT, CT_RSQRT, CT_SQUARE,
  CT_RECIPROCAL, CT_SIN, CT_COS, CT_TANH, CT_SIGMOID, CT_LOG_SIGMOID, CT_SOFTPLUS, CT_RELU,
  CT_LGAMMA, CT_DIGAMMA, CT_ERF, CT_FLOOR, CT_CEIL, CT_ROUND, CT_SIGN, CT_ISNAN, CT_ISINF,
  CT_ISFINITE, CT_LOGICAL_NOT, CT_EXP2, CT_LOG2, CT_TRUNC,
};
CTTensor ct_unary(int op, CTTensor a);

enum {
  CT_ADD = 0, CT_SUB, CT_MUL, CT_DIV, CT_POW, CT_MAXIMUM, CT_MINIMUM, CT_EQ, CT_NE, CT_LT, CT_LE,
  CT_GT, CT_GE, CT_LOGICAL_AND, CT_LOGICAL_OR, CT_REMAINDER, CT_FLOOR_DIVIDE, CT_XLOGY, CT_ATAN2,
};
CTTensor ct_binary(int op, CTTensor a, CTTensor b);
CTTensor ct_binary_scalar(int op, CTTensor a, double b);  // a op b
CTTensor ct_scalar_binary(int op, double a, CTTensor b);  // a op b
CTTensor ct_clamp(CTTensor a, double min, double max, int has_min, int has_max);
CTTensor ct_where(CTTensor condition, CTTensor a, CTTensor b);
CTTensor ct_softplus(CTTensor a, double beta, double threshold);
CTTensor ct_gelu(CTTensor a, int tanh_approximation);
CTTensor ct_leaky_relu(CTTensor a, double negative_slope);
CTTensor ct_nan_to_num(CTTensor a, double nan, double posinf, double neginf);

// ---- reductions -------------------------------------------------------------
enum {
  CT_SUM = 0, CT_MEAN, CT_PROD, CT_AMAX, CT_AMIN, CT_LOGSUMEXP, CT_ARGMAX, CT_ARGMIN,
  CT_ANY, CT_ALL, CT_NORM2, CT_COUNT_NONZERO,
};
// ndims == 0 reduces over every dimension (argmax/argmin flatten).
CTTensor ct_reduce(int op, CTTensor a, const int64_t *dims, int ndims, int keepdim);
CTTensor ct_var(CTTensor a, const int64_t *dims, int ndims, double correction, int keepdim);
CTTensor ct_cumsum(CTTensor a, int64_t dim);
int ct_topk(CTTensor a, int64_t k, int64_t dim, int largest, CTTensor *values, CTTensor *indices);
int ct_sort(CTTensor a, int64_t dim, int descending, CTTensor *values, CTTensor *indices);

// ---- linear algebra ---------------------------------------------------------
CTTensor ct_matmul(CTTensor a, CTTensor b);
CTTensor ct_bmm(CTTensor a, CTTensor b);
int ct_svd(CTTensor a, int full_matrices, CTTensor *u, CTTensor *s, CTTensor *vh);
int ct_eigh(CTTensor a, CTTensor *eigenvalues, CTTensor *eigenvectors);
int ct_qr(CTTensor a, CTTensor *q, CTTensor *r);

// ---- shape and indexing -----------------------------------------------------
CTTensor ct_reshape(CTTensor a, const int64_t *shape, int ndim);
CTTensor ct_permute(CTTensor a, const int64_t *dims, int ndim);
CTTensor ct_transpose(CTTensor a, int64_t dim0, int64_t dim1);
CTTensor ct_expand(CTTensor a, const int64_t *shape, int ndim);
CTTensor ct_squeeze(CTTensor a, int64_t dim);
CTTensor ct_unsqueeze(CTTensor a, int64_t dim);
CTTensor ct_cat(const CTTensor *tensors, int count, int64_t dim);
CTTensor ct_stack(const CTTensor *tensors, int count, int64_t dim);
CTTensor ct_narrow(CTTensor a, int64_t dim, int64_t start, int64_t length);
CTTensor ct_slice(CTTensor a, int64_t dim, int64_t start, int64_t end, int64_t step);
CTTensor ct_select(CTTensor a, int64_t dim, int64_t index);
CTTensor ct_index_select(CTTensor a, int64_t dim, CTTensor index);
CTTensor ct_gather(CTTensor a, int64_t dim, CTTensor index);
CTTensor ct_scatter_add(CTTensor a, int64_t dim, CTTensor index, CTTensor src);
CTTensor ct_index_add(CTTensor a, int64_t dim, CTTensor index, CTTensor src);
CTTensor ct_masked_fill(CTTensor a, CTTensor mask, double value);
CTTensor ct_masked_select(CTTensor a, CTTensor mask);
CTTensor ct_nonzero(CTTensor a);
CTTensor ct_roll(CTTensor a, const int64_t *shifts, const int64_t *dims, int n);
CTTensor ct_flip(CTTensor a, const int64_t *dims, int n);
CTTensor ct_repeat(CTTensor a, const int64_t *repeats, int n);
CTTensor ct_one_hot(CTTensor indices, int64_t num_classes);
CTTensor ct_triu(CTTensor a, int64_t diagonal);
CTTensor ct_tril(CTTensor a, int64_t diagonal);
CTTensor ct_as_strided(CTTensor a, const int64_t *size, const int64_t *stride, int n, int64_t offset);

// ---- in-place updates (optimizers, buffers) ---------------------------------
int ct_copy_(CTTensor dst, CTTensor src);
int ct_fill_(CTTensor a, double value);
int ct_add_(CTTensor a, CTTensor b, double alpha);  // a += alpha * b
int ct_mul_(CTTensor a, CTTensor b);
int ct_mul_scalar_(CTTensor a, double s);
int ct_add_scalar_(CTTensor a, double s);
int ct_lerp_(CTTensor a, CTTensor end, double weight);
int ct_addcmul_(CTTensor a, CTTensor t1, CTTensor t2, double value);
int ct_addcdiv_(CTTensor a, CTTensor t1, CTTensor t2, double value);
int ct_maximum_(CTTensor a, CTTensor b);  // a = max(a, b)
int ct_index_put_(CTTensor a, CTTensor index, CTTensor values);  // a[index] = values along dim 0

// ---- functional nn ----------------------------------------------------------
CTTensor ct_linear(CTTensor x, CTTensor weight, CTTensor bias);
CTTensor ct_conv1d(CTTensor x, CTTensor weight, CTTensor bias, int64_t stride, int64_t padding,
                   int64_t dilation, int64_t groups);
CTTensor ct_max_pool1d(CTTensor x, int64_t kernel, int64_t stride, int64_t padding, int ceil_mode);
CTTensor ct_avg_pool1d(CTTensor x, int64_t kernel, int64_t stride, int64_t padding);
CTTensor ct_pad(CTTensor x, const int64_t *pad, int n, double value);  // constant padding
// Updates running_mean/var in place when training.
CTTensor ct_batch_norm(CTTensor x, CTTensor weight, CTTensor bias, CTTensor running_mean,
                       CTTensor running_var, int training, double momentum, double eps);
CTTensor ct_layer_norm(CTTensor x, const int64_t *normalized_shape, int n, CTTensor weight,
                       CTTensor bias, double eps);
CTTensor ct_embedding(CTTensor weight, CTTensor indices, int64_t padding_idx);
CTTensor ct_dropout(CTTensor x, double p, int training);
CTTensor ct_softmax(CTTensor x, int64_t dim);
CTTensor ct_log_softmax(CTTensor x, int64_t dim);
// attn_mask: NULL, bool (true = attend) or float (added); scale <= 0 means 1/sqrt(E).
CTTensor ct_scaled_dot_product_attention(CTTensor q, CTTensor k, CTTensor v, CTTensor attn_mask,
                                         double dropout_p, int is_causal, double scale);
enum { CT_REDUCTION_NONE = 0, CT_REDUCTION_MEAN = 1, CT_REDUCTION_SUM = 2 };
CTTensor ct_cross_entropy(CTTensor logits, CTTensor target, CTTensor weight, int reduction,
                          int64_t ignore_index, double label_smoothing);
CTTensor ct_bce_with_logits(CTTensor logits, CTTensor target, CTTensor weight,
                            CTTensor pos_weight, int reduction);
CTTensor ct_mse_loss(CTTensor input, CTTensor target, int reduction);

// ---- autograd ---------------------------------------------------------------
int ct_set_requires_grad(CTTensor t, int requires_grad);
int ct_requires_grad(CTTensor t);
int ct_backward(CTTensor t, CTTensor gradient, int retain_graph);
CTTensor ct_grad(CTTensor t);  // undefined handle when there is no gradient
int ct_set_grad(CTTensor t, CTTensor grad);  // NULL clears it
CTTensor ct_detach(CTTensor t);
int ct_set_grad_enabled(int enabled);  // returns the previous state
int ct_is_grad_enabled(void);
// Identity forward; multiplies the gradient by -lambda backward.
CTTensor ct_gradient_reversal(CTTensor x, double lambda);

// A differentiable function computed by caller-supplied callbacks (CPU kernels written in Swift).
// forward gets the inputs, fills n_outputs handles and up to max_saved tensors for backward
// (their count in *n_saved); needs_grad says whether backward can be called. backward gets the
// saved tensors and one gradient per output, and fills one gradient per input (NULL: none).
// Handles passed to a callback belong to it; handles it fills belong to the shim. A callback
// returns 0 on success.
typedef int (*CTForwardCallback)(const CTTensor *inputs, int n_inputs, CTTensor *outputs, int n_outputs,
                                 CTTensor *saved, int max_saved, int *n_saved, int needs_grad);
typedef int (*CTBackwardCallback)(const CTTensor *saved, int n_saved, const CTTensor *grad_outputs,
                                  int n_outputs, CTTensor *grad_inputs, int n_inputs);
int ct_custom_function(const CTTensor *inputs, int n_inputs, CTForwardCallback forward,
                       CTBackwardCallback backward, CTTensor *outputs, int n_outputs, int max_saved);

// ---- runtime ----------------------------------------------------------------
void ct_manual_seed(uint64_t seed);
// libtorch's default CPU generator as a uint8 tensor (torch.get_rng_state), and back.
CTTensor ct_cpu_generator_state(void);
int ct_set_cpu_generator_state(CTTensor state);
void ct_set_num_threads(int n);
int ct_get_num_threads(void);
// Runs body over [begin, end) in chunks of at least grain_size on libtorch's intra-op threads
// (its OpenMP pool), so CPU kernels outside libtorch share its threads instead of competing
// with them. Chunks may be several per thread and run in any order.
typedef void (*CTRangeCallback)(int64_t begin, int64_t end, void *context);
int ct_parallel_for(int64_t begin, int64_t end, int64_t grain_size, CTRangeCallback body, void *context);
// Loads libtorch_cuda.so next to libtorch_cpu.so (once). Returns 1 when CUDA is usable.
int ct_cuda_available(void);
int ct_cuda_device_count(void);
// Whether scaled-dot-product attention may pick cuDNN's kernel on CUDA (libtorch's global flag,
// torch.backends.cuda.enable_cudnn_sdp). Off once CUDA is loaded unless SINGLECELL_CUDNN_ATTENTION=1.
void ct_set_cudnn_attention(int enabled);
int ct_cudnn_attention(void);
// Autocast on this thread for device_type (CT_CPU/CT_CUDA) to dtype; exit restores the state
// enter wrote to previous_*. Status 0 on success.
int ct_autocast_enter(int device_type, int dtype, int *previous_enabled, int *previous_dtype);
int ct_autocast_exit(int device_type, int previous_enabled, int previous_dtype);
// libtorch's profiler on this thread (and CUDA kernels when cuda != 0); stop saves a Chrome
// trace to path. Status 0 on success.
int ct_profiler_start(int cuda);
int ct_profiler_stop(const char *path);
const char *ct_version(void);
// libtorch's own log threshold (0 info, 1 warning, 2 error, 3 fatal; TORCH_CPP_LOG_LEVEL sets it
// at start). Returns the previous one.
int ct_set_log_level(int level);

#ifdef __cplusplus
}
#endif

// ---- 2-D convolution, pooling and memory formats (conv.cpp) -------------------
#ifdef __cplusplus
extern "C" {
#endif
enum { CT_MEMORY_FORMAT_CONTIGUOUS = 0, CT_MEMORY_FORMAT_CHANNELS_LAST = 1 };
// x: [N, C_in, H, W], weight: [C_out, C_in/groups, kH, kW]; stride, padding, dilation: (H, W).
CTTensor ct_conv2d(CTTensor x, CTTensor weight, CTTensor bias, const int64_t *stride,
                   const int64_t *padding, const int64_t *dilation, int64_t groups);
// kernel, stride, padding: (H, W); dilation 1.
CTTensor ct_max_pool2d(CTTensor x, const int64_t *kernel, const int64_t *stride,
                       const int64_t *padding, int ceil_mode);
// The tensor laid out in `format` (a no-op when it already is); channels-last needs 4 dims.
CTTensor ct_contiguous_format(CTTensor t, int format);
int ct_is_contiguous_format(CTTensor t, int format);
// Largest value along `dim` and its index (the first one on ties); the gradient goes to that index.
int ct_max_dim(CTTensor a, int64_t dim, int keepdim, CTTensor *values, CTTensor *indices);
#ifdef __cplusplus
}
#endif

// ---- data-parallel training: torch.distributed's c10d (distributed.cpp) -------
#ifdef __cplusplus
extern "C" {
#endif
typedef struct CTStoreImpl *CTStore;
typedef struct CTProcessGroupImpl *CTProcessGroup;
typedef struct CTReducerImpl *CTReducer;

// A TCPStore: the server (listening on `port`, 0 for a free one) or a client of host:port.
// A client keeps trying to connect for timeout_s; get/wait calls wait as long.
CTStore ct_tcp_store(const char *host, int port, int is_server, double timeout_s);
CTStore ct_prefix_store(const char *prefix, CTStore base);  // keys prefixed, same server
void ct_store_free(CTStore s);
int ct_store_port(CTStore s);  // the port the server listens on
int ct_store_set(CTStore s, const char *key, const void *data, int64_t size);
// Waits for the key (up to the store's timeout); *data is malloc'ed: free with ct_bytes_free.
int ct_store_get(CTStore s, const char *key, void **data, int64_t *size);
void ct_bytes_free(void *data);
int ct_store_add(CTStore s, const char *key, int64_t delta, int64_t *result);
int ct_store_check(CTStore s, const char *const *keys, int n, int *present);  // all present: 1

// A process group with a Gloo backend for CPU tensors, rendezvous through `s`. The Gloo device
// binds to `hostname` when given, else to the network interface `interface_name`, else to the
// address of this machine's hostname. Collectives fail after timeout_s.
CTProcessGroup ct_process_group_gloo(CTStore s, int rank, int size, double timeout_s,
                                     const char *hostname, const char *interface_name);
// Adds an NCCL backend for CUDA tensors on `device` to a (Gloo) group, from the plugin library
// at plugin_path (plugins/nccl), loaded with libtorch_cuda on first use.
int ct_process_group_add_nccl(CTProcessGroup g, const char *plugin_path, int device, double timeout_s);
void ct_process_group_free(CTProcessGroup g);
int ct_process_group_rank(CTProcessGroup g);
int ct_process_group_size(CTProcessGroup g);
enum { CT_REDUCE_SUM = 0, CT_REDUCE_AVG = 1, CT_REDUCE_MAX = 2, CT_REDUCE_MIN = 3 };
// Copies root's tensors into every rank's, in place (coalesced, any shapes and dtypes).
int ct_broadcast(CTProcessGroup g, const CTTensor *tensors, int n, int root);
int ct_all_reduce(CTProcessGroup g, CTTensor t, int op);  // in place
int ct_barrier(CTProcessGroup g);

// DDP's Reducer (torch.nn.parallel.DistributedDataParallel's engine) over `parameters`:
// autograd hooks all-reduce gradients in buckets while backward runs, leaving every rank
// the average gradient. Checks that every rank has the same parameter shapes.
CTReducer ct_reducer(CTProcessGroup g, const CTTensor *parameters, int n, int64_t bucket_cap_bytes,
                     int64_t first_bucket_cap_bytes, int find_unused_parameters);
void ct_reducer_free(CTReducer r);
int ct_reducer_prepare_forward(CTReducer r);  // before each training forward
// After the forward, before backward; `outputs` are searched for unused parameters when asked.
int ct_reducer_prepare_backward(CTReducer r, const CTTensor *outputs, int n);
#ifdef __cplusplus
}
#endif

#endif
