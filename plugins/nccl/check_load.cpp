// Loads libtorch_cuda and the NCCL plugin as the shim does and asks the plugin for a one-rank
// ProcessGroupNCCL over an in-memory store. Without a GPU the right answer is torch's "no GPUs
// found" error: the plugin's symbols resolved and its call reached ProcessGroupNCCL. With one,
// the group is made. Built and run by plugins/nccl/check.
#define USE_DISTRIBUTED 1
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <dlfcn.h>

#include <cstdio>
#include <string>

using BackendFn = int (*)(void *, int, int, double, int, void **, char *, size_t);

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: check_load LIBTORCH_CUDA PLUGIN\n");
    return 2;
  }
  if (dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::printf("cannot load %s: %s\n", argv[1], dlerror());
    return 1;
  }
  void *plugin = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (plugin == nullptr) {
    std::printf("cannot load %s: %s\n", argv[2], dlerror());
    return 1;
  }
  auto backend = reinterpret_cast<BackendFn>(dlsym(plugin, "ctnccl_backend"));
  if (backend == nullptr) {
    std::printf("%s has no ctnccl_backend\n", argv[2]);
    return 1;
  }
  auto store = c10::make_intrusive<c10d::HashStore>();
  void *group = nullptr;
  char error[1024] = {0};
  const int status = backend(store.get(), 0, 1, 30.0, 0, &group, error, sizeof(error));
  std::printf(status == 0 ? "made a one-rank ProcessGroupNCCL\n" : "plugin answered: %s\n", error);
  return status == 0 || std::string(error).find("no GPUs found") != std::string::npos ? 0 : 1;
}
