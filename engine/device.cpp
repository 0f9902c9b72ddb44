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

Device parse_device(const std::string& flag) {
  if (flag == "cpu") return Device::CPU;
  if (flag == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  if (flag == "cuda") {
    std::string why;
    if (!cuda_available(&why)) throw std::invalid_argument("--device cuda: no usable GPU (" + why + "); use --device cpu or auto");
    return Device::CUDA;
  }
  throw std::invalid_argument("--device '" + flag + "' is not one of auto, cpu, cuda");
}

}  // namespace ll
