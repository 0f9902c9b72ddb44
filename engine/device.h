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
// True when the ops have CUDA kernels in this build (every engine op dispatches to kernels::cuda
// when the build has the CUDA backend).
bool cuda_ops_built();
// A line describing the GPU, or the reason there is none.
std::string cuda_description();

// Parses a --device flag: "cpu", "cuda", or "auto" (CUDA when a GPU is usable and the ops have CUDA
// kernels, else CPU). Throws std::invalid_argument with the accepted values for anything else, and
// for "cuda" where it cannot run.
Device parse_device(const std::string& flag);

// GPU memory for tensors. Without the CUDA backend in the build these throw std::runtime_error.
// All copies run on the compute stream (kernels/cuda_runtime.h), in order with the kernels.
void* cuda_malloc(size_t bytes);
void cuda_free(void* p) noexcept;
// Host to device. Up to kMaxStagedCopyBytes the values are first copied into a pinned staging
// block (engine/allocator.h) and the transfer is queued: the call returns without waiting for the
// GPU, and `src` may be reused at once. Larger copies wait for the stream.
void cuda_copy_host_to_device(void* dst, const void* src, size_t bytes);
constexpr size_t kMaxStagedCopyBytes = size_t{64} << 20;
// Device to host: waits for the compute stream (every value queued before is then final).
void cuda_copy_device_to_host(void* dst, const void* src, size_t bytes);
void cuda_copy_device_to_device(void* dst, const void* src, size_t bytes);
void cuda_memset_zero(void* dst, size_t bytes);
// Waits for the compute stream.
void cuda_synchronize();

// Run-time choices of the CUDA backend, process-wide; they change nothing on the CPU.
//   conv_backend: "native" (latentlab's convolution kernels) or "cudnn" (cuDNN, the baseline).
//   allow_tf32: cuBLAS GEMMs (and cuDNN convolutions) may use TF32 tensor cores: faster, about
//   1e-3 relative error; off by default (full FP32).
// Throws std::invalid_argument for an unknown backend, or "cudnn" in a build without cuDNN.
void set_cuda_options(const std::string& conv_backend, bool allow_tf32);

}  // namespace ll
