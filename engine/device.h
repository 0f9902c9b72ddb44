// device.h: where a tensor lives. `cpu` always; `cuda` when the build has the CUDA backend and a
// GPU is present.
#pragma once
#include <cstddef>
#include <string>

namespace ll {

enum class Device { CPU, CUDA };

const char* device_name(Device d);

// True when this binary was built with the CUDA backend.
bool cuda_built();
// True when CUDA is built and at least one GPU is usable. When false and `reason` is given, it says
// why ("built without CUDA", or the runtime's message, e.g. "CUDA driver version is insufficient
// for CUDA runtime version").
bool cuda_available(std::string* reason = nullptr);
// True when the ops have CUDA kernels in this build (not yet: the CUDA backend issue).
bool cuda_ops_built();
// A line describing the GPU, or the reason there is none.
std::string cuda_description();

// Parses a --device flag: "cpu", "cuda", or "auto" (CUDA when a GPU is usable and the ops have CUDA
// kernels, else CPU). Throws std::invalid_argument with the accepted values for anything else, and
// for "cuda" where it cannot run.
Device parse_device(const std::string& flag);

// GPU memory for tensors. Without the CUDA backend in the build these throw std::runtime_error.
void* cuda_malloc(size_t bytes);
void cuda_free(void* p) noexcept;
void cuda_copy_host_to_device(void* dst, const void* src, size_t bytes);
void cuda_copy_device_to_host(void* dst, const void* src, size_t bytes);
void cuda_copy_device_to_device(void* dst, const void* src, size_t bytes);
void cuda_memset_zero(void* dst, size_t bytes);

}  // namespace ll
