// cuda_runtime.h: the CUDA device layer that the engine sees, with no CUDA header in sight, so
// that CPU-only translation units can include it. Implemented in kernels/cuda/runtime.cu; only
// linked when the build has CUDA (LATENTLAB_HAS_CUDA).
#pragma once
#include <cstddef>
#include <string>

namespace ll::kernels::cuda {

// Number of usable GPUs. Any error from the driver or runtime (no driver, driver too old, no
// device) counts as "no GPU": returns 0 and, when `reason` is given, the runtime's own words.
int device_count(std::string* reason);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, driver 13.0)" for device `index`.
std::string device_description(int index);

void* malloc_device(size_t bytes);
void free_device(void* p);
void memcpy_host_to_device(void* dst, const void* src, size_t bytes);
void memcpy_device_to_host(void* dst, const void* src, size_t bytes);
void memcpy_device_to_device(void* dst, const void* src, size_t bytes);
void memset_device(void* dst, int value, size_t bytes);
void synchronize();

}  // namespace ll::kernels::cuda
