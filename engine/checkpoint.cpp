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
