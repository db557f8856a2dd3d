// Shared helpers of the shim: handle layout, error capture, dtype/device mapping.
#pragma once
#include <ATen/ATen.h>
#include <string>
#include <vector>

#include "ctorch.h"

struct CTTensorImpl {
  at::Tensor tensor;
};

namespace ct {

void set_error(const std::string &message);

inline CTTensor wrap(at::Tensor t) { return new CTTensorImpl{std::move(t)}; }

// The tensor behind a required handle.
inline const at::Tensor &ref(CTTensor t) {
  TORCH_CHECK(t != nullptr, "null tensor handle");
  return t->tensor;
}
// An optional tensor: NULL or an undefined tensor means none.
inline c10::optional<at::Tensor> opt(CTTensor t) {
  if (t == nullptr || !t->tensor.defined()) return c10::nullopt;
  return t->tensor;
}
inline at::Tensor opt_or_undefined(CTTensor t) { return t == nullptr ? at::Tensor() : t->tensor; }

at::ScalarType scalar_type(int dtype);
int dtype_code(at::ScalarType type);
at::Device device(int device_type, int device_index);
inline at::IntArrayRef ints(const int64_t *values, int n) { return at::IntArrayRef(values, n); }
inline at::TensorOptions options(int dtype, int device_type, int device_index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device(device_type, device_index));
}

}  // namespace ct

// Every exported body runs inside CT_GUARD: a C++ exception becomes a recorded
// error and the given failure value, never an unwinding across the C boundary.
#define CT_GUARD(failure, ...)                                    \
  try {                                                           \
    __VA_ARGS__                                                   \
  } catch (const c10::Error &e) {                                 \
    ct::set_error(e.what_without_backtrace());                    \
  } catch (const std::exception &e) {                             \
    ct::set_error(e.what());                                      \
  } catch (...) {                                                 \
    ct::set_error("unknown C++ exception in libtorch");           \
  }                                                               \
  return failure;

#define CT_TENSOR(...) CT_GUARD(nullptr, return ct::wrap(__VA_ARGS__);)
#define CT_STATUS(...) CT_GUARD(-1, __VA_ARGS__ return 0;)
