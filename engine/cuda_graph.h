// cuda_graph.h: a training step recorded once as a CUDA graph and launched for every later step.
//
// A step of the MLP VAE is some 40 small kernels; on a fast GPU the host's time to queue them (the
// engine's bookkeeping, autograd, one launch call each) exceeds the GPU's time to run them. A CUDA
// graph (CUDA C++ Programming Guide, "CUDA Graphs") records the step's work once, by stream capture,
// and then queues all of it with one call. What that needs from the engine:
//
// - The step must not wait for the GPU or copy from host memory while it is recorded: such a call
//   fails during the capture, and capture() throws, naming it. The sync-free steps
//   (models::train_step_async) qualify; their figures are read after the launch (engine/device_scalars.h).
// - The memory the step uses keeps its addresses from launch to launch: the device allocator gives
//   the capture a private pool (kernels/cuda_runtime.h), and tensors made inside the step (gradients,
//   the loss) stay where the capture put them. Inputs are copied into a tensor made before the
//   capture (the caller's job: see models::VaeGraphStep).
// - Values that change from step to step without being tensors are read from device memory by the
//   kernels, and refreshed on the host before each launch: the Philox offset of each random op
//   (PhiloxStream::offset_device) and Adam's per-step coefficients (its step count and learning rate).
//   The ops register them with per_launch() while a capture is in progress; launch() calls their
//   updates in the order of the capture, which is the order an uncaptured step would have advanced
//   the generators and step counts in, so a launch does bit for bit what the uncaptured step does
//   (tests/cuda/test_graph_cuda.cpp).
//
// The capture runs the step's host code once (advancing generators and counters as a step does), and
// the first launch after it runs that step; every later launch first advances them again.
// Everything a capture registered (a Generator, an optimizer) must outlive the CudaGraph.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/tensor.h"

namespace ll {

namespace kernels::cuda {
struct GraphExec;
}

class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records `step` (whose host code queues the step's work on the compute stream). Throws
  // std::runtime_error naming the reason when the step cannot be captured (it waited for the GPU, copied
  // host memory, or threw); nothing is captured then. Only once per CudaGraph.
  void capture(const std::function<void()>& step);
  // Queues one run of the captured step on the compute stream.
  void launch();
  bool captured() const { return exec_ != nullptr; }
  int64_t launches() const { return launches_; }

  // Capacity of the per-launch values (bytes): a few hundred ops' worth.
  static constexpr size_t kValueBytes = 4096;

 private:
  friend const void* graph_per_launch(const void*, size_t, std::function<void(void*)>);
  struct Value {
    size_t offset, bytes;
    std::function<void(void*)> update;
  };
  kernels::cuda::GraphExec* exec_ = nullptr;
  Tensor device_values_;             // kValueBytes on the GPU, read by the graph's kernels
  std::vector<unsigned char> host_values_;
  size_t used_ = 0;
  std::vector<Value> values_;
  bool fresh_ = false;               // the next launch is the captured step itself
  int64_t launches_ = 0;
};

namespace graph {
// True while a CudaGraph captures on this thread.
bool capturing();
// During a capture: device memory that holds `value` (`bytes` bytes) at the first launch and, at
// every later launch, what update(dst) writes into dst (called on the host, before the launch, in
// the order of registration). Returns its device address, 16-byte aligned.
const void* per_launch(const void* value, size_t bytes, std::function<void(void*)> update);
}  // namespace graph

}  // namespace ll
