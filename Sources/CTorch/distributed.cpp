// Data-parallel training over torch.distributed (c10d): TCPStore rendezvous, Gloo process
// groups, a few collectives and DDP's own Reducer. libtorch_cpu was built with these two
// macros; the gloo headers come from Debian's libgloo-dev, and the shim only holds gloo
// objects that libtorch creates.
#define USE_DISTRIBUTED 1
#define USE_C10D_GLOO 1

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <limits>
#include <mutex>

#include "internal.h"

struct CTStoreImpl {
  c10::intrusive_ptr<c10d::Store> store;
  int port = 0;
};
struct CTProcessGroupImpl {
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  bool nccl = false;  // shut down on free, as torch.distributed's destroy_process_group
};
struct CTReducerImpl {
  std::shared_ptr<c10d::Reducer> reducer;
  // The Reducer reports through a Logger it only holds weakly (as DDP's Python side sets one):
  // without it, a change in the set of unused parameters or an error path dereferences null.
  std::shared_ptr<c10d::Logger> logger;
  bool find_unused = false;
};

namespace {

std::chrono::milliseconds millis(double seconds) {
  TORCH_CHECK(seconds > 0, "timeout must be positive, got ", seconds, " s");
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

c10d::Store &store_ref(CTStore s) {
  TORCH_CHECK(s != nullptr && s->store, "null store handle");
  return *s->store;
}

const c10::intrusive_ptr<c10d::ProcessGroup> &group_ref(CTProcessGroup g) {
  TORCH_CHECK(g != nullptr && g->group, "null process group handle");
  return g->group;
}

std::vector<at::Tensor> tensors(const CTTensor *handles, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(ct::ref(handles[i]));
  return out;
}

// torch's flight recorder (a trace of every collective, for debugging hangs) is on by default
// and records a traceback per collective; its first record of a group writes a shared map
// outside its lock, so two groups in one process (ranks as threads, as the tests run them)
// can corrupt it. Off unless TORCH_FR_BUFFER_SIZE asks for it; set when the first store is made
// (every group is made from one), before the recorder's first use.
void flight_recorder_off_unless_asked() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("TORCH_FR_BUFFER_SIZE") == nullptr && std::getenv("TORCH_NCCL_TRACE_BUFFER_SIZE") == nullptr) {
      setenv("TORCH_FR_BUFFER_SIZE", "0", 0);
    }
  });
}

}  // namespace

extern "C" {

// ---- store ----
CTStore ct_tcp_store(const char *host, int port, int is_server, double timeout_s) {
  CT_GUARD(nullptr, {
    flight_recorder_off_unless_asked();
    c10d::TCPStoreOptions options;
    TORCH_CHECK(port >= 0 && port <= 65535, "port must be in 0...65535, got ", port);
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = is_server != 0;
    options.waitWorkers = false;  // joining is checked by the caller, with its own message
    options.timeout = millis(timeout_s);
    auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
    const int bound = store->getPort();
    return new CTStoreImpl{store, bound};
  })
}

CTStore ct_prefix_store(const char *prefix, CTStore base) {
  CT_GUARD(nullptr, {
    auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, store_ref(base).clone());
    return new CTStoreImpl{store, base->port};
  })
}

void ct_store_free(CTStore s) { delete s; }
int ct_store_port(CTStore s) { return s == nullptr ? -1 : s->port; }

int ct_store_set(CTStore s, const char *key, const void *data, int64_t size) {
  CT_STATUS({
    auto bytes = static_cast<const uint8_t *>(data);
    store_ref(s).set(key, std::vector<uint8_t>(bytes, bytes + size));
  })
}

int ct_store_get(CTStore s, const char *key, void **data, int64_t *size) {
  CT_STATUS({
    auto value = store_ref(s).get(key);
    *size = static_cast<int64_t>(value.size());
    *data = std::malloc(std::max<size_t>(value.size(), 1));
    TORCH_CHECK(*data != nullptr, "out of memory reading store key ", key);
    if (!value.empty()) std::memcpy(*data, value.data(), value.size());
  })
}

void ct_bytes_free(void *data) { std::free(data); }

int ct_store_add(CTStore s, const char *key, int64_t delta, int64_t *result) {
  CT_STATUS(*result = store_ref(s).add(key, delta);)
}

int ct_store_check(CTStore s, const char *const *keys, int n, int *present) {
  CT_STATUS({
    std::vector<std::string> names(keys, keys + n);
    *present = store_ref(s).check(names) ? 1 : 0;
  })
}

// ---- process groups ----
CTProcessGroup ct_process_group_gloo(CTStore s, int rank, int size, double timeout_s,
                                     const char *hostname, const char *interface_name) {
  CT_GUARD(nullptr, {
    auto store = store_ref(s).clone();  // TCPStore clones share the server, own a socket
    auto options = c10d::ProcessGroupGloo::Options::create(millis(timeout_s));
    if (hostname != nullptr && hostname[0] != '\0') {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    } else if (interface_name != nullptr && interface_name[0] != '\0') {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface_name));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    // As torch.distributed's _new_process_group_helper: a ProcessGroup with one Gloo backend for CPU.
    auto backend_store = c10::make_intrusive<c10d::PrefixStore>("gloo/", store);
    auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(backend_store, rank, size, options);
    backend->setSequenceNumberForGroup();
    auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
    group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    group->setBackend(at::kCPU, c10d::ProcessGroup::BackendType::GLOO, backend);
    return new CTProcessGroupImpl{group};
  })
}

// The NCCL plugin's entry point (plugins/nccl/ctorch_nccl.cpp).
using NCCLBackendFn = int (*)(void *, int, int, double, int, void **, char *, size_t);

static NCCLBackendFn nccl_plugin(const char *path) {
  static std::mutex mutex;
  static NCCLBackendFn function = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (function != nullptr) return function;
  TORCH_CHECK(ct_cuda_available(), "NCCL needs CUDA, which is not available: ", ct_last_error());
  void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char *e = dlerror();
    TORCH_CHECK(false, "cannot load the NCCL plugin ", path, ": ", e ? e : "unknown error",
                " (build it with `make nccl-plugin`, see docs/distributed.md)");
  }
  function = reinterpret_cast<NCCLBackendFn>(dlsym(library, "ctnccl_backend"));
  TORCH_CHECK(function != nullptr, path, " has no ctnccl_backend: not swift-singlecell's NCCL plugin");
  return function;
}

int ct_process_group_add_nccl(CTProcessGroup g, const char *plugin_path, int device, double timeout_s) {
  CT_STATUS({
    const auto &group = group_ref(g);
    auto store = c10::make_intrusive<c10d::PrefixStore>("nccl/", group->getStore());
    void *raw = nullptr;
    char error[2048] = {0};
    TORCH_CHECK(timeout_s > 0, "timeout must be positive, got ", timeout_s, " s");
    const int status = nccl_plugin(plugin_path)(store.get(), group->getRank(), group->getSize(), timeout_s, device, &raw,
                                                error, sizeof(error));
    TORCH_CHECK(status == 0 && raw != nullptr, "the NCCL process group could not start: ", error);
    auto backend = c10::intrusive_ptr<c10d::Backend>::reclaim(static_cast<c10d::Backend *>(raw));
    backend->setSequenceNumberForGroup();
    // As torch.distributed's default on GPUs ("cpu:gloo,cuda:nccl"): CUDA tensors go to NCCL.
    group->setBoundDeviceId(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)));
    group->setBackend(at::kCUDA, c10d::ProcessGroup::BackendType::NCCL, backend);
    g->nccl = true;
  })
}

void ct_process_group_free(CTProcessGroup g) {
  if (g != nullptr && g->nccl) {
    try {
      g->group->shutdown();  // NCCL communicators are destroyed, not left to the destructor
    } catch (...) {
    }
  }
  delete g;
}
int ct_process_group_rank(CTProcessGroup g) { CT_GUARD(-1, return group_ref(g)->getRank();) }
int ct_process_group_size(CTProcessGroup g) { CT_GUARD(-1, return group_ref(g)->getSize();) }

int ct_broadcast(CTProcessGroup g, const CTTensor *handles, int n, int root) {
  CT_STATUS({
    at::NoGradGuard no_grad;  // writes into parameters in place
    auto list = tensors(handles, n);
    if (!list.empty()) c10d::broadcast_coalesced(group_ref(g), list, 256 * 1024 * 1024, root);
  })
}

int ct_all_reduce(CTProcessGroup g, CTTensor t, int op) {
  CT_STATUS({
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> list{ct::ref(t)};
    c10d::AllreduceOptions options;
    switch (op) {
      case CT_REDUCE_SUM: case CT_REDUCE_AVG: options.reduceOp = c10d::ReduceOp::SUM; break;
      case CT_REDUCE_MAX: options.reduceOp = c10d::ReduceOp::MAX; break;
      case CT_REDUCE_MIN: options.reduceOp = c10d::ReduceOp::MIN; break;
      default: TORCH_CHECK(false, "unknown reduce op ", op);
    }
    group_ref(g)->allreduce(list, options)->wait();
    // Gloo has no AVG: sum, then divide (as DDP's own allreduce hook does).
    if (op == CT_REDUCE_AVG) list[0].div_(group_ref(g)->getSize());
  })
}

int ct_barrier(CTProcessGroup g) { CT_STATUS(group_ref(g)->barrier()->wait();) }

// ---- DDP reducer ----
CTReducer ct_reducer(CTProcessGroup g, const CTTensor *parameters, int n, int64_t bucket_cap_bytes,
                     int64_t first_bucket_cap_bytes, int find_unused_parameters) {
  CT_GUARD(nullptr, {
    const auto &group = group_ref(g);
    auto params = tensors(parameters, n);
    TORCH_CHECK(!params.empty(), "DDP needs at least one parameter");
    for (const auto &p : params) TORCH_CHECK(p.requires_grad(), "every DDP parameter must require grad");
    c10d::verify_params_across_processes(group, params, std::nullopt);
    // As DistributedDataParallel._ddp_init_helper: one bucket until the first backward shows the
    // gradient order (then the Reducer rebuilds), unless unused parameters are searched for.
    std::vector<size_t> limits;
    if (find_unused_parameters) {
      limits = {static_cast<size_t>(first_bucket_cap_bytes), static_cast<size_t>(bucket_cap_bytes)};
    } else {
      limits = {std::numeric_limits<size_t>::max()};
    }
    std::vector<bool> sparse(params.size(), false);
    auto [buckets, sizes] = c10d::compute_bucket_assignment_by_size(params, limits, sparse);
    std::reverse(buckets.begin(), buckets.end());
    std::vector<int64_t> caps(sizes.rbegin(), sizes.rend());
    auto reducer = std::make_shared<c10d::Reducer>(
        params, buckets, group, sparse, bucket_cap_bytes, find_unused_parameters != 0,
        /*gradient_as_bucket_view=*/false, std::unordered_map<size_t, std::string>{}, first_bucket_cap_bytes,
        /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false, caps);
    auto logger = std::make_shared<c10d::Logger>(reducer);
    reducer->set_logger(logger);
    return new CTReducerImpl{std::move(reducer), std::move(logger), find_unused_parameters != 0};
  })
}

void ct_reducer_free(CTReducer r) {
  try {
    delete r;
  } catch (...) {
  }
}

int ct_reducer_prepare_forward(CTReducer r) {
  CT_STATUS({
    TORCH_CHECK(r != nullptr, "null reducer handle");
    r->reducer->prepare_for_forward();
    r->reducer->rebuild_buckets();  // once, after the first backward (a collective)
  })
}

int ct_reducer_prepare_backward(CTReducer r, const CTTensor *outputs, int n) {
  CT_STATUS({
    TORCH_CHECK(r != nullptr, "null reducer handle");
    r->reducer->prepare_for_backward(r->find_unused ? tensors(outputs, n) : std::vector<at::Tensor>{});
  })
}

}  // extern "C"
