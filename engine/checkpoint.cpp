#include "engine/checkpoint.h"

#include <cstring>

#include "engine/io/safetensors.h"

namespace ll {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors, const Metadata& metadata) {
  io::Checkpoint ckpt;
  ckpt.metadata = metadata;
  for (const auto& [name, t] : tensors) {
    io::StoredTensor st;
    st.dtype = ends_with(name, "num_batches_tracked") ? io::DType::I64 : io::DType::F32;
    st.shape = t.shape();
    st.data = t.to_vector();
    ckpt.tensors.emplace(name, std::move(st));
  }
  io::save_safetensors(path, ckpt);
}

std::map<std::string, Tensor> load_tensors(const std::string& path, Metadata* metadata) {
  io::Checkpoint ckpt = io::load_safetensors(path);
  std::map<std::string, Tensor> out;
  for (auto& [name, st] : ckpt.tensors) out.emplace(name, Tensor::from_vector(st.data, st.shape));
  if (metadata) *metadata = std::move(ckpt.metadata);
  return out;
}

void check_holds_parameters(const std::string& path, const std::map<std::string, Tensor>& tensors, int64_t parameters) {
  int64_t values = 0;
  for (const auto& [name, t] : tensors) values += t.numel();  // each bounded by the file's size
  if (values < parameters) {
    throw io::FormatError(path + ": the configuration in its metadata describes a model of " + std::to_string(parameters) +
                          " parameters, but the file holds " + std::to_string(values) +
                          " values: the metadata does not belong to these tensors (a damaged or edited file)");
  }
}

uint64_t metadata_count(const Metadata& metadata, const std::string& key, const std::string& path, uint64_t max) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw io::FormatError(path + ": the metadata has no \"" + key + "\"");
  const std::string& text = it->second;
  uint64_t v = 0;
  bool ok = !text.empty() && text.size() <= 20;
  for (char ch : text) {
    if (!ok) break;
    ok = ch >= '0' && ch <= '9' && !__builtin_mul_overflow(v, uint64_t{10}, &v) &&
         !__builtin_add_overflow(v, static_cast<uint64_t>(ch - '0'), &v);
  }
  if (!ok || v > max) {
    throw io::FormatError(path + ": the metadata's \"" + key + "\" is \"" + text.substr(0, 40) +
                          "\", not a count in 0.." + std::to_string(max) + " (a damaged or edited file)");
  }
  return v;
}

void save_module(const std::string& path, const Module& module, const Metadata& metadata) {
  save_tensors(path, module.state_dict(), metadata);
}

Metadata load_module(const std::string& path, Module& module) {
  Metadata metadata;
  const auto tensors = load_tensors(path, &metadata);
  try {
    module.load_state_dict(tensors);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  return metadata;
}

}  // namespace ll
