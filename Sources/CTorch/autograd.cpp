// Autograd: gradient flags, backward, grad mode, the gradient-reversal function and
// functions whose forward and backward are caller-supplied callbacks.
#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>

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

// Handles for a callback: fresh ones it owns; on return, tensors taken from the handles it made.
std::vector<CTTensor> handles_for(at::TensorList tensors) {
  std::vector<CTTensor> handles;
  for (const auto &t : tensors) handles.push_back(ct::wrap(t));
  return handles;
}
variable_list take_tensors(std::vector<CTTensor> &handles) {
  variable_list tensors;
  for (auto &h : handles) {
    tensors.push_back(h == nullptr ? at::Tensor() : h->tensor);
    ct_free(h);
    h = nullptr;
  }
  return tensors;
}

struct CallbackFunction : public torch::autograd::Function<CallbackFunction> {
  static variable_list forward(AutogradContext *ctx, at::TensorList inputs, CTForwardCallback forward,
                               CTBackwardCallback backward, int64_t n_outputs, int64_t max_saved,
                               bool needs_grad) {
    auto input_handles = handles_for(inputs);
    std::vector<CTTensor> outputs(n_outputs, nullptr), saved(max_saved, nullptr);
    int n_saved = 0;
    const int status = forward(input_handles.data(), static_cast<int>(inputs.size()), outputs.data(),
                               static_cast<int>(n_outputs), saved.data(), static_cast<int>(max_saved),
                               &n_saved, needs_grad ? 1 : 0);
    auto saved_tensors = take_tensors(saved);
    auto output_tensors = take_tensors(outputs);
    if (status != 0) throw std::runtime_error("custom function: forward callback failed");
    saved_tensors.resize(n_saved);
    ctx->save_for_backward(saved_tensors);
    ctx->saved_data["backward"] = reinterpret_cast<int64_t>(backward);
    ctx->saved_data["n_inputs"] = static_cast<int64_t>(inputs.size());
    return output_tensors;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto backward = reinterpret_cast<CTBackwardCallback>(ctx->saved_data["backward"].toInt());
    const auto n_inputs = ctx->saved_data["n_inputs"].toInt();
    auto saved = ctx->get_saved_variables();
    auto saved_handles = handles_for(saved), grad_handles = handles_for(grads);
    std::vector<CTTensor> input_grads(n_inputs, nullptr);
    const int status = backward(saved_handles.data(), static_cast<int>(saved.size()), grad_handles.data(),
                                static_cast<int>(grads.size()), input_grads.data(), static_cast<int>(n_inputs));
    auto result = take_tensors(input_grads);
    if (status != 0) throw std::runtime_error("custom function: backward callback failed");
    result.resize(n_inputs + 5);  // the non-tensor arguments get no gradient
    return result;
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

int ct_custom_function(const CTTensor *inputs, int n_inputs, CTForwardCallback forward,
                       CTBackwardCallback backward, CTTensor *outputs, int n_outputs, int max_saved) {
  CT_STATUS(
    std::vector<at::Tensor> tensors;
    bool needs_grad = false;
    for (int i = 0; i < n_inputs; ++i) {
      tensors.push_back(ct::ref(inputs[i]));
      needs_grad = needs_grad || tensors.back().requires_grad();
    }
    needs_grad = needs_grad && c10::GradMode::is_enabled();
    auto results = CallbackFunction::apply(at::TensorList(tensors), forward, backward,
                                           static_cast<int64_t>(n_outputs), static_cast<int64_t>(max_saved),
                                           needs_grad);
    for (int i = 0; i < n_outputs; ++i) outputs[i] = ct::wrap(results[i]);
  )
}

}  // extern "C"
