// Errors, handle lifetime, creation, data access and runtime settings.
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/headeronly/version.h>

#include "internal.h"

namespace ct {

static thread_local std::string last_error;

void set_error(const std::string &message) { last_error = message; }

at::ScalarType scalar_type(int dtype) {
  switch (dtype) {
    case CT_FLOAT32: return at::kFloat;
    case CT_FLOAT64: return at::kDouble;
    case CT_BFLOAT16: return at::kBFloat16;
    case CT_FLOAT16: return at::kHalf;
    case CT_INT64: return at::kLong;
    case CT_INT32: return at::kInt;
    case CT_BOOL: return at::kBool;
    case CT_UINT8: return at::kByte;
  }
  TORCH_CHECK(false, "unknown dtype code ", dtype);
}

int dtype_code(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return CT_FLOAT32;
    case at::kDouble: return CT_FLOAT64;
    case at::kBFloat16: return CT_BFLOAT16;
    case at::kHalf: return CT_FLOAT16;
    case at::kLong: return CT_INT64;
    case at::kInt: return CT_INT32;
    case at::kBool: return CT_BOOL;
    case at::kByte: return CT_UINT8;
    default: return -1;
  }
}

at::Device device(int device_type, int device_index) {
  if (device_type == CT_CPU) return at::Device(at::kCPU);
  TORCH_CHECK(device_type == CT_CUDA, "unknown device type ", device_type);
  TORCH_CHECK(ct_cuda_available(), "CUDA was requested but is not available: ",
              last_error.empty() ? "no CUDA device" : last_error);
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index));
}

}  // namespace ct

extern "C" {

const char *ct_last_error(void) { return ct::last_error.c_str(); }
void ct_free(CTTensor t) { delete t; }
CTTensor ct_undefined(void) { return ct::wrap(at::Tensor()); }
int ct_is_defined(CTTensor t) { return t != nullptr && t->tensor.defined(); }
CTTensor ct_alias(CTTensor t) { CT_TENSOR(ct::ref(t)) }

// ---- creation ----
CTTensor ct_from_data(const void *data, const int64_t *shape, int ndim, int dtype) {
  CT_GUARD(nullptr, {
    auto out = at::empty(ct::ints(shape, ndim), at::TensorOptions().dtype(ct::scalar_type(dtype)));
    if (out.numel() > 0) std::memcpy(out.data_ptr(), data, out.nbytes());
    return ct::wrap(out);
  })
}

CTTensor ct_empty(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  CT_TENSOR(at::empty(ct::ints(shape, ndim), ct::options(dtype, dt, di)))
}
CTTensor ct_zeros(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  CT_TENSOR(at::zeros(ct::ints(shape, ndim), ct::options(dtype, dt, di)))
}
CTTensor ct_ones(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  CT_TENSOR(at::ones(ct::ints(shape, ndim), ct::options(dtype, dt, di)))
}
CTTensor ct_full(const int64_t *shape, int ndim, double value, int dtype, int dt, int di) {
  CT_TENSOR(at::full(ct::ints(shape, ndim), value, ct::options(dtype, dt, di)))
}
CTTensor ct_arange(double start, double end, double step, int dtype, int dt, int di) {
  CT_TENSOR(at::arange(start, end, step, ct::options(dtype, dt, di)))
}
CTTensor ct_randn(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  CT_TENSOR(at::randn(ct::ints(shape, ndim), ct::options(dtype, dt, di)))
}
CTTensor ct_rand(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  CT_TENSOR(at::rand(ct::ints(shape, ndim), ct::options(dtype, dt, di)))
}
CTTensor ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dt, int di) {
  CT_TENSOR(at::randint(low, high, ct::ints(shape, ndim), ct::options(CT_INT64, dt, di)))
}
CTTensor ct_randperm(int64_t n, int dt, int di) {
  CT_TENSOR(at::randperm(n, ct::options(CT_INT64, dt, di)))
}
CTTensor ct_bernoulli(CTTensor probs) { CT_TENSOR(at::bernoulli(ct::ref(probs))) }
CTTensor ct_multinomial(CTTensor probs, int64_t n, int replacement) {
  CT_TENSOR(at::multinomial(ct::ref(probs), n, replacement != 0))
}
CTTensor ct_poisson(CTTensor rates) { CT_TENSOR(at::poisson(ct::ref(rates))) }
CTTensor ct_standard_gamma(CTTensor c) { CT_TENSOR(at::_standard_gamma(ct::ref(c))) }

// ---- metadata and data access ----
int ct_ndim(CTTensor t) { CT_GUARD(-1, return static_cast<int>(ct::ref(t).dim());) }
int ct_shape(CTTensor t, int64_t *out) {
  CT_STATUS({
    auto sizes = ct::ref(t).sizes();
    std::copy(sizes.begin(), sizes.end(), out);
  })
}
int64_t ct_numel(CTTensor t) { CT_GUARD(-1, return ct::ref(t).numel();) }
int ct_dtype(CTTensor t) { CT_GUARD(-1, return ct::dtype_code(ct::ref(t).scalar_type());) }
int ct_device_type(CTTensor t) {
  CT_GUARD(-1, return ct::ref(t).device().is_cuda() ? CT_CUDA : CT_CPU;)
}
int ct_device_index(CTTensor t) { CT_GUARD(-1, return ct::ref(t).device().index();) }
int ct_is_contiguous(CTTensor t) { CT_GUARD(-1, return ct::ref(t).is_contiguous() ? 1 : 0;) }

int ct_copy_to_buffer(CTTensor t, void *out, int64_t nbytes) {
  CT_STATUS({
    auto src = ct::ref(t).detach().to(at::kCPU).contiguous();
    TORCH_CHECK(static_cast<int64_t>(src.nbytes()) == nbytes, "buffer holds ", nbytes,
                " bytes but the tensor needs ", src.nbytes());
    if (nbytes > 0) std::memcpy(out, src.data_ptr(), nbytes);
  })
}

void *ct_data_ptr(CTTensor t) {
  CT_GUARD(nullptr, {
    const auto &x = ct::ref(t);
    if (!x.is_cpu() || !x.is_contiguous()) return nullptr;
    return x.data_ptr();
  })
}

int ct_item(CTTensor t, double *out) { CT_STATUS(*out = ct::ref(t).item<double>();) }
CTTensor ct_to_dtype(CTTensor t, int dtype) { CT_TENSOR(ct::ref(t).to(ct::scalar_type(dtype))) }
CTTensor ct_to_device(CTTensor t, int dt, int di) { CT_TENSOR(ct::ref(t).to(ct::device(dt, di))) }
CTTensor ct_contiguous(CTTensor t) { CT_TENSOR(ct::ref(t).contiguous()) }
CTTensor ct_clone(CTTensor t) { CT_TENSOR(ct::ref(t).clone()) }

char *ct_to_string(CTTensor t) {
  CT_GUARD(nullptr, {
    std::ostringstream s;
    s << ct::ref(t);
    return strdup(s.str().c_str());
  })
}
void ct_string_free(char *s) { free(s); }

// ---- runtime ----
static void load_cuda_library();

// at::manual_seed also seeds the CUDA generators, and its first look at CUDA fixes libtorch's
// answer for the process: libtorch_cuda.so is loaded first, so seeding early keeps CUDA usable.
void ct_manual_seed(uint64_t seed) {
  load_cuda_library();
  at::manual_seed(seed);
}
CTTensor ct_cpu_generator_state(void) {
  CT_TENSOR([] {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    return generator.get_state();
  }())
}
int ct_set_cpu_generator_state(CTTensor state) {
  CT_STATUS({
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(ct::ref(state));
  })
}
void ct_set_num_threads(int n) {
  try {
    at::set_num_threads(n);
  } catch (...) {
  }
}
int ct_get_num_threads(void) { return at::get_num_threads(); }
// at::parallel_for is header code whose `#pragma omp parallel` only works when the caller is
// compiled with OpenMP; the shim is not (that would bring in a second OpenMP runtime). So it
// runs the range through libgomp's entry point, the runtime libtorch_cpu itself uses, looked up
// at run time (serial when absent). Threads take chunks from a shared counter, so a thread that
// wakes late or gets costlier rows does not hold the others up.
namespace {
struct ParallelRange {
  int64_t end, chunk;
  std::atomic<int64_t> next;
  CTRangeCallback body;
  void *context;
};
using GompParallel = void (*)(void (*)(void *), void *, unsigned, unsigned);
GompParallel gomp_parallel = nullptr;
std::once_flag gomp_once;

void run_chunks(void *data) {
  auto *range = static_cast<ParallelRange *>(data);
  c10::ParallelGuard guard(true);  // libtorch calls in the body stay on this thread
  for (int64_t first; (first = range->next.fetch_add(range->chunk)) < range->end;) {
    range->body(first, std::min(range->end, first + range->chunk), range->context);
  }
}
}  // namespace

int ct_parallel_for(int64_t begin, int64_t end, int64_t grain_size, CTRangeCallback body, void *context) {
  CT_STATUS({
    std::call_once(gomp_once, [] {
      gomp_parallel = reinterpret_cast<GompParallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    });
    const int64_t n = end - begin, grain = std::max<int64_t>(grain_size, 1);
    const int64_t threads = std::min<int64_t>(at::in_parallel_region() ? 1 : at::get_num_threads(), (n + grain - 1) / grain);
    if (n <= 0) {
    } else if (threads <= 1 || gomp_parallel == nullptr) {
      body(begin, end, context);
    } else {
      // About four chunks per thread, each at least grain_size long.
      ParallelRange range{end, std::max(grain, (n + 4 * threads - 1) / (4 * threads)), {begin}, body, context};
      gomp_parallel(run_chunks, &range, static_cast<unsigned>(threads), 0);
    }
  })
}
const char *ct_version(void) { return TORCH_VERSION; }
int ct_set_log_level(int level) {
  const int previous = FLAGS_caffe2_log_level;
  FLAGS_caffe2_log_level = level;
  return previous;
}

static std::once_flag cuda_once;
static bool cuda_loaded = false;
static std::string cuda_error;

// Loads libtorch_cuda.so (beside libtorch_cpu.so) once, if it is there. It must come before
// anything asks libtorch about CUDA: libtorch keeps its first answer (getCUDAHooks).
// It also turns cuDNN's attention off (SINGLECELL_CUDNN_ATTENTION=1 keeps it): on sm90+ libtorch
// 2.11 ranks it first for bf16/fp16, and it builds an execution plan (hundreds of ms) for every
// new batch and sequence length, which our minibatches (each padded to its own longest cell)
// nearly always are. Flash and memory-efficient attention need no plan.
static void load_cuda_library() {
  std::call_once(cuda_once, [] {
    const char *cudnn_attention = std::getenv("SINGLECELL_CUDNN_ATTENTION");
    at::globalContext().setSDPUseCuDNN(cudnn_attention != nullptr && std::string(cudnn_attention) == "1");
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&at::_ops::empty_memory_format::call), &info) == 0 ||
        info.dli_fname == nullptr) {
      cuda_error = "cannot locate libtorch_cpu.so";
      return;
    }
    std::string dir(info.dli_fname);
    dir = dir.substr(0, dir.find_last_of('/'));
    if (dlopen((dir + "/libtorch_cuda.so").c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char *e = dlerror();
      cuda_error = std::string("cannot load libtorch_cuda.so: ") + (e ? e : "unknown error");
      return;
    }
    cuda_loaded = true;
  });
}

int ct_cuda_available(void) {
  load_cuda_library();
  if (!cuda_loaded) {
    ct::set_error(cuda_error);
    return 0;
  }
  try {
    if (at::globalContext().hasCUDA() && at::detail::getCUDAHooks().deviceCount() > 0) return 1;
    ct::set_error("libtorch_cuda.so is loaded but no CUDA device is visible");
    return 0;
  } catch (const std::exception &e) {
    ct::set_error(e.what());
    return 0;
  }
}

void ct_set_cudnn_attention(int enabled) {
  load_cuda_library();  // so that loading later does not reset it
  at::globalContext().setSDPUseCuDNN(enabled != 0);
}

int ct_cudnn_attention(void) {
  load_cuda_library();
  return at::globalContext().userEnabledCuDNNSDP() ? 1 : 0;
}

int ct_cuda_device_count(void) {
  if (!ct_cuda_available()) return 0;
  return at::detail::getCUDAHooks().deviceCount();
}

// Autocast is per thread, as torch.autocast: enter sets it on and returns the prior state in
// *previous (enabled, dtype code) for exit to restore; the cast cache is cleared when the
// outermost region ends.
int ct_autocast_enter(int device_type, int dtype, int *previous_enabled, int *previous_dtype) {
  CT_STATUS({
    const auto type = device_type == CT_CUDA ? at::kCUDA : at::kCPU;
    *previous_enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    *previous_dtype = ct::dtype_code(at::autocast::get_autocast_dtype(type));
    at::autocast::set_autocast_dtype(type, ct::scalar_type(dtype));
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::increment_nesting();
  })
}

int ct_autocast_exit(int device_type, int previous_enabled, int previous_dtype) {
  CT_STATUS({
    const auto type = device_type == CT_CUDA ? at::kCUDA : at::kCPU;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type, previous_enabled != 0);
    at::autocast::set_autocast_dtype(type, ct::scalar_type(previous_dtype));
  })
}

// libtorch's profiler (torch.profiler's engine, Kineto) on this thread's operators, and on CUDA
// kernels when `cuda`; stop writes a Chrome trace (chrome://tracing, Perfetto) to `path`.
int ct_profiler_start(int cuda) {
  CT_STATUS({
    using namespace torch::profiler::impl;
    const ProfilerConfig config(ProfilerState::KINETO, /*report_input_shapes=*/true);
    std::set<ActivityType> activities{ActivityType::CPU};
    if (cuda) activities.insert(ActivityType::CUDA);
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
  })
}

int ct_profiler_stop(const char *path) {
  CT_STATUS({ torch::autograd::profiler::disableProfiler()->save(path); })
}

}  // extern "C"
