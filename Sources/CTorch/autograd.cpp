// Autograd: gradient flags, backward, grad mode and the gradient-reversal function.
#include <torch/csrc/autograd/custom_function.h>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Identity forward; backward multiplies the incoming gradient by -lambda (DANN-style).
struct GradientReversal : public torch::autograd::Function<GradientReversal> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, double lambda) {
    ctx->saved_data["lambda"] = lambda;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const double lambda = ctx->saved_data["lambda"].toDouble();
    return {grads[0] * -lambda, at::Tensor()};
  }
};

}  // namespace

extern "C" {

int ct_set_requires_grad(CTTensor t, int flag) { CT_STATUS(ct::ref(t).requires_grad_(flag != 0);) }
int ct_requires_grad(CTTensor t) { CT_GUARD(-1, return ct::ref(t).requires_grad() ? 1 : 0;) }
int ct_backward(CTTensor t, CTTensor gradient, int retain_graph) {
  CT_STATUS(ct::ref(t).backward(ct::opt_or_undefined(gradient), retain_graph != 0);)
}
CTTensor ct_grad(CTTensor t) { CT_TENSOR(ct::ref(t).grad()) }
int ct_set_grad(CTTensor t, CTTensor grad) {
  CT_STATUS(ct::ref(t).mutable_grad() = ct::opt_or_undefined(grad);)
}
CTTensor ct_detach(CTTensor t) { CT_TENSOR(ct::ref(t).detach()) }
int ct_set_grad_enabled(int enabled) {
  const bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return previous ? 1 : 0;
}
int ct_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }
CTTensor ct_gradient_reversal(CTTensor x, double lambda) { CT_TENSOR(GradientReversal::apply(ct::ref(x), lambda)) }

}  // extern "C"
