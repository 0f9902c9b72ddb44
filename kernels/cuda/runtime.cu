// runtime.cu: device discovery, memory and copies for the engine (declared in kernels/cuda_runtime.h).
// Plain cudaMalloc/cudaFree for now; the caching allocator of the CUDA backend replaces the
// per-tensor cudaMalloc (CUDA backend issue).
#include <cstdio>
#include <sstream>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda_runtime.h"

namespace ll::kernels::cuda {

const char* cublas_status_string(cublasStatus_t status) { return cublasGetStatusString(status); }

const char* curand_status_string(curandStatus_t status) {
  switch (status) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR";
    case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE";
    case CURAND_STATUS_PREEXISTING_FAILURE: return "CURAND_STATUS_PREEXISTING_FAILURE";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "CURAND_STATUS_INITIALIZATION_FAILED";
    case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR";
  }
  return "unknown cuRAND status";
}

int device_count(std::string* reason) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    // On machines with the toolkit but no driver this is "CUDA driver version is insufficient for
    // CUDA runtime version": treat any error as "no GPU". Clear the sticky error state.
    if (reason) *reason = cudaGetErrorString(err);
    (void)cudaGetLastError();
    return 0;
  }
  if (n == 0 && reason) *reason = "the CUDA runtime reports no devices";
  return n;
}

std::string device_description(int index) {
  cudaDeviceProp prop{};
  LL_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  int driver = 0;
  LL_CUDA_CHECK(cudaDriverGetVersion(&driver));
  std::ostringstream s;
  s << prop.name << " (sm_" << prop.major << prop.minor << ", "
    << static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0) << " GiB, driver "
    << driver / 1000 << "." << (driver % 1000) / 10 << ")";
  return s.str();
}

void* malloc_device(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  LL_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void free_device(void* p) {
  if (p) LL_CUDA_CHECK(cudaFree(p));
}

void memcpy_host_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void memcpy_device_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void memcpy_device_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
void memset_device(void* dst, int value, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemset(dst, value, bytes));
}
void synchronize() { LL_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace ll::kernels::cuda
