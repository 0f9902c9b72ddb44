#include "engine/device.h"

#include <stdexcept>


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

// The ops' CUDA kernels are not in this build yet (the CUDA backend issue): until they are, "auto"
// stays on the CPU even where a GPU is present, and "cuda" says why it cannot be used.
constexpr bool kCudaOpsBuilt = false;

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
  try {
    kernels::cuda::free_device(p);
  } catch (...) {
    // Called from destructors: a failing cudaFree means the context is already broken, and the
    // next checked CUDA call reports it.
  }
}
void cuda_copy_host_to_device(void* dst, const void* src, size_t bytes) { kernels::cuda::memcpy_host_to_device(dst, src, bytes); }
void cuda_copy_device_to_host(void* dst, const void* src, size_t bytes) { kernels::cuda::memcpy_device_to_host(dst, src, bytes); }
void cuda_copy_device_to_device(void* dst, const void* src, size_t bytes) { kernels::cuda::memcpy_device_to_device(dst, src, bytes); }
void cuda_memset_zero(void* dst, size_t bytes) { kernels::cuda::memset_device(dst, 0, bytes); }
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
#endif

}  // namespace ll
