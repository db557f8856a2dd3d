// 2-D convolution and pooling, max along a dimension, and memory formats (channels-last), as generic tensor ops.
#include "internal.h"

namespace {

c10::MemoryFormat memory_format(int format) {
  switch (format) {
    case CT_MEMORY_FORMAT_CONTIGUOUS: return c10::MemoryFormat::Contiguous;
    case CT_MEMORY_FORMAT_CHANNELS_LAST: return c10::MemoryFormat::ChannelsLast;
  }
  TORCH_CHECK(false, "unknown memory format ", format);
}

}  // namespace

extern "C" {

CTTensor ct_conv2d(CTTensor x, CTTensor w, CTTensor b, const int64_t *stride, const int64_t *padding,
                   const int64_t *dilation, int64_t groups) {
  CT_TENSOR(at::conv2d(ct::ref(x), ct::ref(w), ct::opt(b), ct::ints(stride, 2), ct::ints(padding, 2),
                       ct::ints(dilation, 2), groups))
}
CTTensor ct_max_pool2d(CTTensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                       int ceil_mode) {
  CT_TENSOR(at::max_pool2d(ct::ref(x), ct::ints(kernel, 2), ct::ints(stride, 2), ct::ints(padding, 2),
                           at::IntArrayRef({1, 1}), ceil_mode != 0))
}
CTTensor ct_contiguous_format(CTTensor t, int format) {
  CT_TENSOR(ct::ref(t).contiguous(memory_format(format)))
}
int ct_max_dim(CTTensor a, int64_t dim, int keepdim, CTTensor *values, CTTensor *indices) {
  CT_STATUS({
    auto result = at::max(ct::ref(a), dim, keepdim != 0);
    *values = ct::wrap(std::get<0>(result));
    *indices = ct::wrap(std::get<1>(result));
  })
}
int ct_is_contiguous_format(CTTensor t, int format) {
  CT_GUARD(-1, return ct::ref(t).is_contiguous(memory_format(format)) ? 1 : 0;)
}

}  // extern "C"
