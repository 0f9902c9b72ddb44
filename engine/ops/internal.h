// internal.h: helpers shared by the engine's op files (not part of the public API).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace ll::detail {

// x * s, where s holds one value on x's device: a gradient arriving at a loss (dL/dloss), which
// scales the gradient the loss's forward already computed. Not recorded by autograd (it runs
// inside backward closures). On the CPU, s is read on the host and s == 1 returns x itself; on
// CUDA the value stays on the device (s is broadcast to x's size and multiplied in), so the host
// does not wait for the GPU in the middle of a backward pass. Both give scale(x, s) exactly.
Tensor scale_by(const Tensor& x, const Tensor& s);

// Integer indices (embedding rows, class labels) where a kernel on `device` reads them. The engine
// takes them as std::vector<int32_t> on the host; for CUDA a copy is queued to device memory
// (through pinned staging, so the host does not wait) when the Indices is made, and freed with it.
// An op's forward and backward share one Indices (hold it by shared_ptr).
class Indices {
 public:
  Indices(std::vector<int32_t> host, Device device);
  ~Indices();
  Indices(const Indices&) = delete;
  Indices& operator=(const Indices&) = delete;

  const int32_t* data() const { return device_ ? device_ : host_.data(); }  // on `device`
  const std::vector<int32_t>& host() const { return host_; }
  int64_t size() const { return static_cast<int64_t>(host_.size()); }

 private:
  std::vector<int32_t> host_;
  int32_t* device_ = nullptr;  // CUDA copy, or nullptr on the CPU
};

}  // namespace ll::detail
