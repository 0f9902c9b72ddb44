#include "engine/cuda_graph.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/device.h"

#ifdef LATENTLAB_HAS_CUDA
#include "kernels/cuda_runtime.h"
#endif

namespace ll {

namespace {
thread_local CudaGraph* t_capturing = nullptr;
}  // namespace

const void* graph_per_launch(const void* value, size_t bytes, std::function<void(void*)> update) {
  CudaGraph* g = t_capturing;
  if (!g) throw std::logic_error("graph::per_launch outside a CUDA graph capture");
  const size_t offset = (g->used_ + 15) / 16 * 16;
  if (offset + bytes > CudaGraph::kValueBytes) {
    throw std::runtime_error("CUDA graph capture: more than " + std::to_string(CudaGraph::kValueBytes) +
                             " bytes of per-step values (random ops, optimizers) in one step");
  }
  std::memcpy(g->host_values_.data() + offset, value, bytes);
  g->used_ = offset + bytes;
  g->values_.push_back({offset, bytes, std::move(update)});
  return reinterpret_cast<const unsigned char*>(g->device_values_.data()) + offset;
}

namespace graph {
bool capturing() { return t_capturing != nullptr; }
const void* per_launch(const void* value, size_t bytes, std::function<void(void*)> update) {
  return graph_per_launch(value, bytes, std::move(update));
}
}  // namespace graph

#ifdef LATENTLAB_HAS_CUDA

CudaGraph::~CudaGraph() { kernels::cuda::destroy_graph(exec_); }

void CudaGraph::capture(const std::function<void()>& step) {
  if (exec_) throw std::logic_error("CudaGraph::capture: already captured");
  if (t_capturing) throw std::logic_error("CudaGraph::capture: another capture is in progress");
  std::string why;
  if (!cuda_available(&why)) throw std::runtime_error("CUDA graphs need a GPU: " + why);
  device_values_ = Tensor::empty({static_cast<int64_t>(kValueBytes / sizeof(float))}, Device::CUDA);
  host_values_.assign(kValueBytes, 0);
  used_ = 0;
  values_.clear();
  t_capturing = this;
  kernels::cuda::begin_capture();
  try {
    step();
  } catch (const std::exception& e) {
    t_capturing = nullptr;
    kernels::cuda::abort_capture();
    values_.clear();
    throw std::runtime_error(std::string("the training step could not be captured as a CUDA graph: ") + e.what());
  }
  t_capturing = nullptr;
  try {
    exec_ = kernels::cuda::end_capture();
  } catch (const std::exception& e) {
    values_.clear();
    throw std::runtime_error(std::string("the training step could not be captured as a CUDA graph: ") + e.what());
  }
  fresh_ = true;
}

void CudaGraph::launch() {
  if (!exec_) throw std::logic_error("CudaGraph::launch before capture");
  if (!fresh_) {
    for (const Value& v : values_) v.update(host_values_.data() + v.offset);
  }
  fresh_ = false;
  if (used_) cuda_copy_host_to_device(device_values_.data(), host_values_.data(), used_);
  kernels::cuda::launch_graph(exec_);
  ++launches_;
}

#else

CudaGraph::~CudaGraph() = default;
void CudaGraph::capture(const std::function<void()>&) {
  throw std::runtime_error("CUDA graphs need a GPU: latentlab was built without CUDA");
}
void CudaGraph::launch() { throw std::logic_error("CudaGraph::launch before capture"); }

#endif

}  // namespace ll
