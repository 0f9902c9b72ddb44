#include "engine/device_scalars.h"

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/allocator.h"

#ifdef LATENTLAB_HAS_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_runtime.h"
#endif

namespace ll {

namespace {
std::atomic<int64_t> g_host_waits{0};
std::atomic<int64_t> g_readback_waits{0};

#ifdef LATENTLAB_HAS_CUDA
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("Readback: ") + what + ": " + cudaGetErrorString(e));
}
#endif
}  // namespace

int64_t host_waits() { return g_host_waits.load(); }
int64_t readback_waits() { return g_readback_waits.load(); }
namespace detail {
void note_host_wait() { g_host_waits.fetch_add(1); }
}  // namespace detail

Readback::~Readback() { release(); }

Readback::Readback(Readback&& o) noexcept { *this = std::move(o); }

Readback& Readback::operator=(Readback&& o) noexcept {
  if (this == &o) return *this;
  release();
  host_ = std::move(o.host_);
  pending_ = std::exchange(o.pending_, false);
  started_ = std::exchange(o.started_, false);
  on_gpu_ = std::exchange(o.on_gpu_, false);
  pinned_ = std::exchange(o.pinned_, nullptr);
  pinned_floats_ = std::exchange(o.pinned_floats_, 0);
  count_ = std::exchange(o.count_, 0);
  event_ = std::exchange(o.event_, nullptr);
  ticket_ = std::exchange(o.ticket_, 0);
  return *this;
}

void Readback::release() noexcept {
#ifdef LATENTLAB_HAS_CUDA
  if (pending_ && on_gpu_ && event_) {
    // Copies may still be in flight into pinned_: let them land before the memory goes.
    cudaEventSynchronize(static_cast<cudaEvent_t>(event_));
    device_wait_end(ticket_);
  }
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
  if (pinned_) cudaFreeHost(pinned_);
#endif
  event_ = nullptr;
  pinned_ = nullptr;
  pinned_floats_ = 0;
  pending_ = false;
}

void Readback::start(const std::vector<Tensor>& tensors) {
  if (pending_) values();  // the earlier copies land before their buffer is reused
  size_t total = 0;
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    check_arg(t.defined(), "Readback::start", "an undefined tensor");
    if (!first) first = &t;
    check_arg(t.device() == first->device(), "Readback::start",
              "tensors on different devices (" + first->str() + " and " + t.str() + ")");
    total += static_cast<size_t>(t.numel());
  }
  started_ = true;
  count_ = total;
  on_gpu_ = first && first->device() == Device::CUDA;
  if (!on_gpu_) {
    host_.clear();
    host_.reserve(total);
    for (const Tensor& t : tensors) {
      const float* p = t.data();
      host_.insert(host_.end(), p, p + t.numel());
    }
    pending_ = false;
    return;
  }
#ifdef LATENTLAB_HAS_CUDA
  if (pinned_floats_ < total) {
    if (pinned_) check(cudaFreeHost(pinned_), "cudaFreeHost");
    pinned_ = nullptr;
    pinned_floats_ = 0;
    void* p = nullptr;
    check(cudaMallocHost(&p, total * sizeof(float)), "cudaMallocHost");
    pinned_ = static_cast<float*>(p);
    pinned_floats_ = total;
  }
  if (!event_) {
    cudaEvent_t e = nullptr;
    check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    event_ = e;
  }
  const cudaStream_t stream = kernels::cuda::compute_stream();
  size_t offset = 0;
  for (const Tensor& t : tensors) {
    const size_t bytes = static_cast<size_t>(t.numel()) * sizeof(float);
    if (bytes) check(cudaMemcpyAsync(pinned_ + offset, t.data(), bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
    offset += static_cast<size_t>(t.numel());
  }
  // The ticket before the event: what was queued before it is done once the event is (allocator.h).
  ticket_ = device_wait_begin();
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_), stream), "cudaEventRecord");
  pending_ = true;
#else
  throw std::runtime_error("Readback: a CUDA tensor but latentlab was built without CUDA");
#endif
}

const std::vector<float>& Readback::values() {
  if (!started_) throw std::logic_error("Readback::values before start");
  if (!pending_) return host_;
#ifdef LATENTLAB_HAS_CUDA
  g_readback_waits.fetch_add(1);
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "cudaEventSynchronize");
  device_wait_end(ticket_);
  host_.assign(pinned_, pinned_ + count_);
#endif
  pending_ = false;
  return host_;
}

}  // namespace ll
