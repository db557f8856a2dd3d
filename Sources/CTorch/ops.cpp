// Elementwise math, reductions, linear algebra, shape ops and in-place updates.
#include "internal.h"

namespace {

at::Tensor unary(int op, const at::Tensor &a) {
  switch (op) {
    case CT_NEG: return at::neg(a);
    case CT_ABS: return at::abs(a);
    case CT_EXP: return at::exp(a);
    case CT_LOG: return at::log(a);
    case CT_LOG1P: return at::log1p(a);
    case CT_EXPM1: return at::expm1(a);
    case CT_SQRT: return at::sqrt(a);
    case CT_RSQRT: return at::rsqrt(a);
    case CT_SQUARE: return at::square(a);
    case CT_RECIPROCAL: return at::reciprocal(a);
    case CT_SIN: return at::sin(a);
    case CT_COS: return at::cos(a);
    case CT_TANH: return at::tanh(a);
    case CT_SIGMOID: return at::sigmoid(a);
    case CT_LOG_SIGMOID: return at::log_sigmoid(a);
    case CT_SOFTPLUS: return at::softplus(a);
    case CT_RELU: return at::relu(a);
    case CT_LGAMMA: return at::lgamma(a);
    case CT_DIGAMMA: return at::digamma(a);
    case CT_ERF: return at::erf(a);
    case CT_FLOOR: return at::floor(a);
    case CT_CEIL: return at::ceil(a);
    case CT_ROUND: return at::round(a);
    case CT_SIGN: return at::sign(a);
    case CT_ISNAN: return at::isnan(a);
    case CT_ISINF: return at::isinf(a);
    case CT_ISFINITE: return at::isfinite(a);
    case CT_LOGICAL_NOT: return at::logical_not(a);
    case CT_EXP2: return at::exp2(a);
    case CT_LOG2: return at::log2(a);
    case CT_TRUNC: return at::trunc(a);
  }
  TORCH_CHECK(false, "unknown unary op ", op);
}

at::Tensor binary(int op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case CT_ADD: return at::add(a, b);
    case CT_SUB: return at::sub(a, b);
    case CT_MUL: return at::mul(a, b);
    case CT_DIV: return at::div(a, b);
    case CT_POW: return at::pow(a, b);
    case CT_MAXIMUM: return at::maximum(a, b);
    case CT_MINIMUM: return at::minimum(a, b);
    case CT_EQ: return at::eq(a, b);
    case CT_NE: return at::ne(a, b);
    case CT_LT: return at::lt(a, b);
    case CT_LE: return at::le(a, b);
    case CT_GT: return at::gt(a, b);
    case CT_GE: return at::ge(a, b);
    case CT_LOGICAL_AND: return at::logical_and(a, b);
    case CT_LOGICAL_OR: return at::logical_or(a, b);
    case CT_REMAINDER: return at::remainder(a, b);
    case CT_FLOOR_DIVIDE: return at::floor_divide(a, b);
    case CT_XLOGY: return at::xlogy(a, b);
    case CT_ATAN2: return at::atan2(a, b);
  }
  TORCH_CHECK(false, "unknown binary op ", op);
}

// A scalar operand as a 0-dim tensor keeps the tensor's dtype (type promotion
// treats wrapped numbers as weak), like Python's `t * 2.0`.
at::Tensor scalar_like(double value, const at::Tensor &like) {
  auto s = at::scalar_tensor(value, at::TensorOptions().dtype(at::kDouble).device(like.device()));
  s.unsafeGetTensorImpl()->set_wrapped_number(true);
  return s;
}

// A Python-like scalar for an in-place op: integral tensors get an integer scalar.
at::Scalar scalar_for(const at::Tensor &t, double value) {
  if (at::isIntegralType(t.scalar_type(), /*includeBool=*/true) && value == std::floor(value)) {
    return at::Scalar(static_cast<int64_t>(value));
  }
  return at::Scalar(value);
}

}  // namespace

extern "C" {

CTTensor ct_unary(int op, CTTensor a) { CT_TENSOR(unary(op, ct::ref(a))) }
CTTensor ct_binary(int op, CTTensor a, CTTensor b) { CT_TENSOR(binary(op, ct::ref(a), ct::ref(b))) }
CTTensor ct_binary_scalar(int op, CTTensor a, double b) {
  CT_TENSOR(binary(op, ct::ref(a), scalar_like(b, ct::ref(a))))
}
CTTensor ct_scalar_binary(int op, double a, CTTensor b) {
  CT_TENSOR(binary(op, scalar_like(a, ct::ref(b)), ct::ref(b)))
}
CTTensor ct_clamp(CTTensor a, double min, double max, int has_min, int has_max) {
  CT_TENSOR(at::clamp(ct::ref(a), has_min ? c10::optional<at::Scalar>(min) : c10::nullopt,
                      has_max ? c10::optional<at::Scalar>(max) : c10::nullopt))
}
CTTensor ct_where(CTTensor c, CTTensor a, CTTensor b) {
  CT_TENSOR(at::where(ct::ref(c), ct::ref(a), ct::ref(b)))
}
CTTensor ct_softplus(CTTensor a, double beta, double threshold) {
  CT_TENSOR(at::softplus(ct::ref(a), beta, threshold))
}
CTTensor ct_gelu(CTTensor a, int tanh_approximation) {
  CT_TENSOR(at::gelu(ct::ref(a), tanh_approximation ? "tanh" : "none"))
}
CTTensor ct_leaky_relu(CTTensor a, double slope) { CT_TENSOR(at::leaky_relu(ct::ref(a), slope)) }
CTTensor ct_nan_to_num(CTTensor a, double nan, double posinf, double neginf) {
  CT_TENSOR(at::nan_to_num(ct::ref(a), nan, posinf, neginf))
}

// ---- reductions ----
CTTensor ct_reduce(int op, CTTensor a, const int64_t *dims, int ndims, int keepdim) {
  CT_GUARD(nullptr, {
    const auto &x = ct::ref(a);
    const bool all = ndims == 0;
    const bool keep = keepdim != 0;
    at::IntArrayRef d = ct::ints(dims, ndims);
    auto single = [&]() -> c10::optional<int64_t> {
      if (all) return c10::nullopt;
      TORCH_CHECK(ndims == 1, "this reduction takes one dimension");
      return dims[0];
    };
    switch (op) {
      case CT_SUM: return ct::wrap(all ? (keep ? x.sum(at::IntArrayRef{}, true) : x.sum()) : x.sum(d, keep));
      case CT_MEAN: return ct::wrap(all ? x.mean() : x.mean(d, keep));
      case CT_PROD: return ct::wrap(all ? x.prod() : x.prod(single().value(), keep));
      case CT_AMAX: return ct::wrap(x.amax(d, keep));
      case CT_AMIN: return ct::wrap(x.amin(d, keep));
      case CT_LOGSUMEXP: {
        std::vector<int64_t> every(x.dim());
        for (int64_t i = 0; i < x.dim(); ++i) every[i] = i;
        return ct::wrap(at::logsumexp(x, all ? at::IntArrayRef(every) : d, keep));
      }
      case CT_ARGMAX: return ct::wrap(at::argmax(x, single(), keep));
      case CT_ARGMIN: return ct::wrap(at::argmin(x, single(), keep));
      case CT_ANY: return ct::wrap(all ? x.any() : x.any(single().value(), keep));
      case CT_ALL: return ct::wrap(all ? x.all() : x.all(single().value(), keep));
      case CT_NORM2: return ct::wrap(all ? at::norm(x) : at::norm(x, 2, d, keep));
      case CT_COUNT_NONZERO: return ct::wrap(at::count_nonzero(x, d));
    }
    TORCH_CHECK(false, "unknown reduction ", op);
  })
}

CTTensor ct_var(CTTensor a, const int64_t *dims, int ndims, double correction, int keepdim) {
  CT_TENSOR(at::var(ct::ref(a), ndims == 0 ? at::OptionalIntArrayRef() : ct::ints(dims, ndims),
                    at::Scalar(correction), keepdim != 0))
}
CTTensor ct_cumsum(CTTensor a, int64_t dim) { CT_TENSOR(at::cumsum(ct::ref(a), dim)) }

int ct_topk(CTTensor a, int64_t k, int64_t dim, int largest, CTTensor *values, CTTensor *indices) {
  CT_STATUS({
    auto [v, i] = at::topk(ct::ref(a), k, dim, largest != 0, true);
    *values = ct::wrap(v);
    *indices = ct::wrap(i);
  })
}
int ct_sort(CTTensor a, int64_t dim, int descending, CTTensor *values, CTTensor *indices) {
  CT_STATUS({
    auto [v, i] = at::sort(ct::ref(a), /*stable=*/true, dim, descending != 0);
    *values = ct::wrap(v);
    *indices = ct::wrap(i);
  })
}

// ---- linear algebra ----
CTTensor ct_matmul(CTTensor a, CTTensor b) { CT_TENSOR(at::matmul(ct::ref(a), ct::ref(b))) }
CTTensor ct_bmm(CTTensor a, CTTensor b) { CT_TENSOR(at::bmm(ct::ref(a), ct::ref(b))) }
int ct_svd(CTTensor a, int full, CTTensor *u, CTTensor *s, CTTensor *vh) {
  CT_STATUS({
    auto [uu, ss, vv] = at::linalg_svd(ct::ref(a), full != 0);
    *u = ct::wrap(uu);
    *s = ct::wrap(ss);
    *vh = ct::wrap(vv);
  })
}
int ct_eigh(CTTensor a, CTTensor *values, CTTensor *vectors) {
  CT_STATUS({
    auto [w, v] = at::linalg_eigh(ct::ref(a));
    *values = ct::wrap(w);
    *vectors = ct::wrap(v);
  })
}
int ct_qr(CTTensor a, CTTensor *q, CTTensor *r) {
  CT_STATUS({
    auto [qq, rr] = at::linalg_qr(ct::ref(a));
    *q = ct::wrap(qq);
    *r = ct::wrap(rr);
  })
}

// ---- shape and indexing ----
CTTensor ct_reshape(CTTensor a, const int64_t *s, int n) { CT_TENSOR(ct::ref(a).reshape(ct::ints(s, n))) }
CTTensor ct_permute(CTTensor a, const int64_t *d, int n) { CT_TENSOR(ct::ref(a).permute(ct::ints(d, n))) }
CTTensor ct_transpose(CTTensor a, int64_t d0, int64_t d1) { CT_TENSOR(ct::ref(a).transpose(d0, d1)) }
CTTensor ct_expand(CTTensor a, const int64_t *s, int n) { CT_TENSOR(ct::ref(a).expand(ct::ints(s, n))) }
CTTensor ct_squeeze(CTTensor a, int64_t dim) { CT_TENSOR(ct::ref(a).squeeze(dim)) }
CTTensor ct_unsqueeze(CTTensor a, int64_t dim) { CT_TENSOR(ct::ref(a).unsqueeze(dim)) }

static std::vector<at::Tensor> tensor_list(const CTTensor *ts, int count) {
  std::vector<at::Tensor> list;
  list.reserve(count);
  for (int i = 0; i < count; ++i) list.push_back(ct::ref(ts[i]));
  return list;
}
CTTensor ct_cat(const CTTensor *ts, int count, int64_t dim) { CT_TENSOR(at::cat(tensor_list(ts, count), dim)) }
CTTensor ct_stack(const CTTensor *ts, int count, int64_t dim) { CT_TENSOR(at::stack(tensor_list(ts, count), dim)) }
CTTensor ct_narrow(CTTensor a, int64_t dim, int64_t start, int64_t length) {
  CT_TENSOR(ct::ref(a).narrow(dim, start, length))
}
CTTensor ct_slice(CTTensor a, int64_t dim, int64_t start, int64_t end, int64_t step) {
  CT_TENSOR(ct::ref(a).slice(dim, start, end, step))
}
CTTensor ct_select(CTTensor a, int64_t dim, int64_t index) { CT_TENSOR(ct::ref(a).select(dim, index)) }
CTTensor ct_index_select(CTTensor a, int64_t dim, CTTensor index) {
  CT_TENSOR(at::index_select(ct::ref(a), dim, ct::ref(index)))
}
CTTensor ct_gather(CTTensor a, int64_t dim, CTTensor index) {
  CT_TENSOR(at::gather(ct::ref(a), dim, ct::ref(index)))
}
CTTensor ct_scatter_add(CTTensor a, int64_t dim, CTTensor index, CTTensor src) {
  CT_TENSOR(at::scatter_add(ct::ref(a), dim, ct::ref(index), ct::ref(src)))
}
CTTensor ct_index_add(CTTensor a, int64_t dim, CTTensor index, CTTensor src) {
  CT_TENSOR(at::index_add(ct::ref(a), dim, ct::ref(index), ct::ref(src)))
}
CTTensor ct_masked_fill(CTTensor a, CTTensor mask, double value) {
  CT_TENSOR(at::masked_fill(ct::ref(a), ct::ref(mask), value))
}
CTTensor ct_masked_select(CTTensor a, CTTensor mask) { CT_TENSOR(at::masked_select(ct::ref(a), ct::ref(mask))) }
CTTensor ct_nonzero(CTTensor a) { CT_TENSOR(at::nonzero(ct::ref(a))) }
CTTensor ct_roll(CTTensor a, const int64_t *shifts, const int64_t *dims, int n) {
  CT_TENSOR(at::roll(ct::ref(a), ct::ints(shifts, n), ct::ints(dims, n)))
}
CTTensor ct_flip(CTTensor a, const int64_t *dims, int n) { CT_TENSOR(at::flip(ct::ref(a), ct::ints(dims, n))) }
CTTensor ct_repeat(CTTensor a, const int64_t *r, int n) { CT_TENSOR(ct::ref(a).repeat(ct::ints(r, n))) }
CTTensor ct_one_hot(CTTensor indices, int64_t n) { CT_TENSOR(at::one_hot(ct::ref(indices), n)) }
CTTensor ct_triu(CTTensor a, int64_t diagonal) { CT_TENSOR(at::triu(ct::ref(a), diagonal)) }
CTTensor ct_tril(CTTensor a, int64_t diagonal) { CT_TENSOR(at::tril(ct::ref(a), diagonal)) }
CTTensor ct_as_strided(CTTensor a, const int64_t *size, const int64_t *stride, int n, int64_t offset) {
  CT_TENSOR(ct::ref(a).as_strided(ct::ints(size, n), ct::ints(stride, n), offset))
}

// ---- in-place updates ----
int ct_copy_(CTTensor dst, CTTensor src) { CT_STATUS(ct::ref(dst).copy_(ct::ref(src));) }
int ct_fill_(CTTensor a, double v) { CT_STATUS(ct::ref(a).fill_(scalar_for(ct::ref(a), v));) }
int ct_add_(CTTensor a, CTTensor b, double alpha) { CT_STATUS(ct::ref(a).add_(ct::ref(b), alpha);) }
int ct_mul_(CTTensor a, CTTensor b) { CT_STATUS(ct::ref(a).mul_(ct::ref(b));) }
int ct_mul_scalar_(CTTensor a, double s) { CT_STATUS(ct::ref(a).mul_(scalar_for(ct::ref(a), s));) }
int ct_add_scalar_(CTTensor a, double s) { CT_STATUS(ct::ref(a).add_(scalar_for(ct::ref(a), s));) }
int ct_lerp_(CTTensor a, CTTensor end, double w) { CT_STATUS(ct::ref(a).lerp_(ct::ref(end), w);) }
int ct_addcmul_(CTTensor a, CTTensor t1, CTTensor t2, double v) {
  CT_STATUS(ct::ref(a).addcmul_(ct::ref(t1), ct::ref(t2), v);)
}
int ct_addcdiv_(CTTensor a, CTTensor t1, CTTensor t2, double v) {
  CT_STATUS(ct::ref(a).addcdiv_(ct::ref(t1), ct::ref(t2), v);)
}
int ct_maximum_(CTTensor a, CTTensor b) {
  CT_STATUS({
    at::Tensor out = ct::ref(a);
    at::maximum_out(out, out, ct::ref(b));
  })
}
int ct_index_put_(CTTensor a, CTTensor index, CTTensor values) {
  CT_STATUS(ct::ref(a).index_put_({ct::ref(index)}, ct::ref(values));)
}

}  // extern "C"
