#include "engine/device.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/allocator.h"
#include "engine/device_scalars.h"
#include "engine/ops/dispatch.h"
#include "kernels/conv2d.h"
#include "kernels/cuda_runtime.h"

namespace ll {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

bool cuda_built() {
#ifdef LATENTLAB_HAS_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available(std::string* reason) {
#ifdef LATENTLAB_HAS_CUDA
  std::string why;
  const int n = kernels::cuda::device_count(&why);
  if (n == 0 && reason) *reason = why;
  return n > 0;
#else
  if (reason) *reason = "latentlab was built without CUDA (configure with -DLATENTLAB_CUDA=ON on a machine with nvcc)";
  return false;
#endif
}

std::string cuda_description() {
  std::string why;
  if (!cuda_available(&why)) return "no GPU: " + why;
#ifdef LATENTLAB_HAS_CUDA
  return kernels::cuda::device_description(0);
#else
  return "no GPU";
#endif
}

// Every engine op dispatches to its kernels::cuda twin (engine/ops/dispatch.h) in a CUDA build, so
// "auto" picks the GPU wherever one is usable.
constexpr bool kCudaOpsBuilt = true;

bool cuda_ops_built() { return cuda_built() && kCudaOpsBuilt; }

Device parse_device(const std::string& flag) {
  if (flag == "cpu") return Device::CPU;
  if (flag == "auto") return cuda_ops_built() && cuda_available() ? Device::CUDA : Device::CPU;
  if (flag == "cuda") {
    std::string why;
    if (!cuda_available(&why)) throw std::invalid_argument("--device cuda: no usable GPU (" + why + "); use --device cpu or auto");
    if (!cuda_ops_built()) {
      throw std::invalid_argument("--device cuda: this build has no CUDA kernels for the ops yet; use --device cpu or auto");
    }
    return Device::CUDA;
  }
  throw std::invalid_argument("--device '" + flag + "' is not one of auto, cpu, cuda");
}

}  // namespace ll

namespace ll {

#ifdef LATENTLAB_HAS_CUDA
void* cuda_malloc(size_t bytes) { return kernels::cuda::malloc_device(bytes); }
void cuda_free(void* p) noexcept {
  if (p == nullptr) return;
  // A pointer the allocator does not hold is a double free or a stray pointer: memory is already
  // corrupt, so stop here, saying so, rather than swallow it in a destructor.
  if (!kernels::cuda::is_device_block(p)) {
    std::fprintf(stderr, "latentlab: cuda_free(%p): not a live device block (freed twice, or never allocated)\n", p);
    std::abort();
  }
  try {
    kernels::cuda::free_device(p);
  } catch (...) {
    // Called from destructors: a failing CUDA call (the event of the free) means the context is
    // already broken, and the next checked CUDA call reports it.
  }
}
void cuda_copy_host_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (kernels::cuda::capturing()) {
    // A graph would read the staging block again at every launch, long after it was reused.
    throw std::logic_error("a host-to-device copy inside a step captured as a CUDA graph (make the values "
                           "before the capture, or pass them through graph::per_launch)");
  }
  if (bytes <= kMaxStagedCopyBytes) {
    void* staging = nullptr;
    try {
      staging = pinned_alloc(bytes);
    } catch (const std::exception&) {
      staging = nullptr;  // no pinned memory left: the waiting copy below still works
    }
    if (staging) {
      std::memcpy(staging, src, bytes);
      kernels::cuda::memcpy_host_to_device_async(dst, staging, bytes);
      pinned_free(staging, bytes);  // reused only after the stream has passed this copy
      return;
    }
  }
  detail::note_host_wait();
  const uint64_t ticket = device_wait_begin();
  kernels::cuda::memcpy_host_to_device(dst, src, bytes);  // waits for the stream
  device_wait_end(ticket);
}
void cuda_copy_device_to_host(void* dst, const void* src, size_t bytes) {
  detail::note_host_wait();  // counted for the sync-free step checks (engine/device_scalars.h)
  const uint64_t ticket = device_wait_begin();
  kernels::cuda::memcpy_device_to_host(dst, src, bytes);  // waits for the stream
  device_wait_end(ticket);
}
void cuda_copy_device_to_device(void* dst, const void* src, size_t bytes) { kernels::cuda::memcpy_device_to_device(dst, src, bytes); }
void cuda_memset_zero(void* dst, size_t bytes) { kernels::cuda::memset_device(dst, 0, bytes); }
void cuda_synchronize() {
  detail::note_host_wait();
  const uint64_t ticket = device_wait_begin();
  kernels::cuda::synchronize();
  device_wait_end(ticket);
}
#else
namespace {
[[noreturn]] void no_cuda() { throw std::runtime_error("a CUDA tensor was requested but latentlab was built without CUDA"); }
}  // namespace
void* cuda_malloc(size_t) { no_cuda(); }
void cuda_free(void*) noexcept {}
void cuda_copy_host_to_device(void*, const void*, size_t) { no_cuda(); }
void cuda_copy_device_to_host(void*, const void*, size_t) { no_cuda(); }
void cuda_copy_device_to_device(void*, const void*, size_t) { no_cuda(); }
void cuda_memset_zero(void*, size_t) { no_cuda(); }
void cuda_synchronize() { no_cuda(); }
#endif

void set_cuda_options(const std::string& conv_backend, bool allow_tf32) {
  if (conv_backend != "native" && conv_backend != "cudnn") {
    throw std::invalid_argument("--conv-backend '" + conv_backend + "' is not one of native, cudnn");
  }
#ifdef LATENTLAB_HAS_CUDA
#ifndef LATENTLAB_HAS_CUDNN
  if (conv_backend == "cudnn") {
    throw std::invalid_argument("--conv-backend cudnn: this build has no cuDNN (install cuDNN 9 and reconfigure); use native");
  }
#endif
  kernels::cuda::set_conv_backend(kernels::cuda::parse_conv_backend(conv_backend));
  kernels::cuda::set_allow_tf32(allow_tf32);
#else
  (void)allow_tf32;  // a CPU-only build: nothing to configure
#endif
}

namespace detail {
void no_cuda_kernels(const char* kernel) {
  throw std::runtime_error(std::string("kernel '") + kernel +
                           "' was called on a CUDA tensor but latentlab was built without CUDA");
}
}  // namespace detail

}  // namespace ll
