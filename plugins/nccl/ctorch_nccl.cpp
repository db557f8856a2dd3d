// The NCCL backend of swift-singlecell's c10d process groups, as a plugin the CTorch shim
// dlopen's when a CUDA group is asked for: ProcessGroupNCCL lives in libtorch_cuda.so and has
// no C entry point, and compiling against its header needs the CUDA and NCCL headers, which
// CPU machines (and CI) do not have. Built by plugins/nccl/build; see docs/distributed.md.
#define USE_DISTRIBUTED 1
#define USE_C10D_NCCL 1

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdio>

extern "C" {

// A ProcessGroupNCCL over `store` (a c10d::Store*, borrowed) for `rank` of `size`, bound to CUDA
// device `device` (communicators made now, as torch.distributed with device_id). On success
// *backend holds an owning c10d::Backend* (intrusive_ptr released) and 0 is returned; on
// failure the message goes to `error`.
int ctnccl_backend(void *store, int rank, int size, double timeout_s, int device, void **backend, char *error,
                   size_t error_size) {
  try {
    auto borrowed = c10::intrusive_ptr<c10d::Store>::unsafe_reclaim_from_nonowning(static_cast<c10d::Store *>(store));
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    const at::Device cuda(at::kCUDA, static_cast<c10::DeviceIndex>(device));
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(borrowed, rank, size, options);
    group->setBoundDeviceId(cuda);
    group->eagerConnectSingleDevice(cuda);
    *backend = static_cast<c10d::Backend *>(group.release());
    return 0;
  } catch (const c10::Error &e) {
    std::snprintf(error, error_size, "%s", e.what_without_backtrace());
    return 1;
  } catch (const std::exception &e) {
    std::snprintf(error, error_size, "%s", e.what());
    return 1;
  }
}

}  // extern "C"
