// Functional neural-network ops.
#include "internal.h"

extern "C" {

CTTensor ct_linear(CTTensor x, CTTensor w, CTTensor b) { CT_TENSOR(at::linear(ct::ref(x), ct::ref(w), ct::opt(b))) }

CTTensor ct_conv1d(CTTensor x, CTTensor w, CTTensor b, int64_t stride, int64_t padding,
                   int64_t dilation, int64_t groups) {
  CT_TENSOR(at::conv1d(ct::ref(x), ct::ref(w), ct::opt(b), stride, padding, dilation, groups))
}
CTTensor ct_max_pool1d(CTTensor x, int64_t kernel, int64_t stride, int64_t padding, int ceil_mode) {
  CT_TENSOR(at::max_pool1d(ct::ref(x), kernel, stride, padding, 1, ceil_mode != 0))
}
CTTensor ct_avg_pool1d(CTTensor x, int64_t kernel, int64_t stride, int64_t padding) {
  CT_TENSOR(at::avg_pool1d(ct::ref(x), kernel, stride, padding))
}
CTTensor ct_pad(CTTensor x, const int64_t *pad, int n, double value) {
  CT_TENSOR(at::constant_pad_nd(ct::ref(x), ct::ints(pad, n), value))
}
CTTensor ct_batch_norm(CTTensor x, CTTensor w, CTTensor b, CTTensor mean, CTTensor var, int training,
                       double momentum, double eps) {
  CT_TENSOR(at::batch_norm(ct::ref(x), ct::opt(w), ct::opt(b), ct::opt(mean), ct::opt(var),
                           training != 0, momentum, eps, /*cudnn_enabled=*/true))
}
CTTensor ct_layer_norm(CTTensor x, const int64_t *shape, int n, CTTensor w, CTTensor b, double eps) {
  CT_TENSOR(at::layer_norm(ct::ref(x), ct::ints(shape, n), ct::opt(w), ct::opt(b), eps))
}
CTTensor ct_embedding(CTTensor weight, CTTensor indices, int64_t padding_idx) {
  CT_TENSOR(at::embedding(ct::ref(weight), ct::ref(indices), padding_idx))
}
CTTensor ct_dropout(CTTensor x, double p, int training) { CT_TENSOR(at::dropout(ct::ref(x), p, training != 0)) }
CTTensor ct_softmax(CTTensor x, int64_t dim) { CT_TENSOR(at::softmax(ct::ref(x), dim)) }
CTTensor ct_log_softmax(CTTensor x, int64_t dim) { CT_TENSOR(at::log_softmax(ct::ref(x), dim)) }

CTTensor ct_scaled_dot_product_attention(CTTensor q, CTTensor k, CTTensor v, CTTensor mask,
                                         double dropout_p, int is_causal, double scale) {
  CT_TENSOR(at::scaled_dot_product_attention(ct::ref(q), ct::ref(k), ct::ref(v), ct::opt(mask), dropout_p,
                                             is_causal != 0,
                                             scale > 0 ? c10::optional<double>(scale) : c10::nullopt))
}
CTTensor ct_cross_entropy(CTTensor logits, CTTensor target, CTTensor weight, int reduction,
                          int64_t ignore_index, double label_smoothing) {
  CT_TENSOR(at::cross_entropy_loss(ct::ref(logits), ct::ref(target), ct::opt(weight), reduction, ignore_index,
                                   label_smoothing))
}
CTTensor ct_bce_with_logits(CTTensor logits, CTTensor target, CTTensor weight, CTTensor pos_weight,
                            int reduction) {
  CT_TENSOR(at::binary_cross_entropy_with_logits(ct::ref(logits), ct::ref(target), ct::opt(weight),
                                                 ct::opt(pos_weight), reduction))
}
CTTensor ct_mse_loss(CTTensor input, CTTensor target, int reduction) {
  CT_TENSOR(at::mse_loss(ct::ref(input), ct::ref(target), reduction))
}

}  // extern "C"
