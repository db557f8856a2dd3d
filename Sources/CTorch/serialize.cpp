// Reading torch.save files (zip format) into named tensors.
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>

#include "internal.h"

struct CTNamedTensorsImpl {
  std::vector<std::pair<std::string, at::Tensor>> items;
};

namespace {

void flatten(const c10::IValue &value, const std::string &prefix, CTNamedTensorsImpl &out) {
  auto join = [&](const std::string &key) { return prefix.empty() ? key : prefix + "." + key; };
  if (value.isTensor()) {
    out.items.emplace_back(prefix, value.toTensor());
  } else if (value.isGenericDict()) {
    for (const auto &entry : value.toGenericDict()) {
      const auto &key = entry.key();
      std::string name = key.isString() ? key.toStringRef() : key.isInt() ? std::to_string(key.toInt()) : "";
      if (!name.empty()) flatten(entry.value(), join(name), out);
    }
  } else if (value.isList()) {
    auto list = value.toListRef();
    for (size_t i = 0; i < list.size(); ++i) flatten(list[i], join(std::to_string(i)), out);
  } else if (value.isTuple()) {
    const auto &elements = value.toTupleRef().elements();
    for (size_t i = 0; i < elements.size(); ++i) flatten(elements[i], join(std::to_string(i)), out);
  }
}

}  // namespace

extern "C" {

CTNamedTensors ct_load_torch_file(const char *path) {
  CT_GUARD(nullptr, {
    std::ifstream file(path, std::ios::binary);
    TORCH_CHECK(file.good(), "cannot open ", path);
    std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    TORCH_CHECK(bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K', path,
                " is not a zip-format torch.save file (legacy pickle files are not supported)");
    auto list = std::make_unique<CTNamedTensorsImpl>();
    flatten(torch::jit::pickle_load(bytes), "", *list);
    return list.release();
  })
}
int64_t ct_named_count(CTNamedTensors list) { return static_cast<int64_t>(list->items.size()); }
const char *ct_named_key(CTNamedTensors list, int64_t i) { return list->items[i].first.c_str(); }
CTTensor ct_named_tensor(CTNamedTensors list, int64_t i) { return ct::wrap(list->items[i].second); }
void ct_named_free(CTNamedTensors list) { delete list; }

}  // extern "C"
