// check.cuh: every CUDA, cuBLAS and cuRAND call goes through one of these macros, so a failure
// reports the call, the library's own message, and the file and line where it happened.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace ll::kernels::cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const char* what, const std::string& message, const char* file, int line) {
  std::ostringstream s;
  s << what << " failed: " << message << " (" << file << ":" << line << ")";
  throw CudaError(s.str());
}

const char* cublas_status_string(cublasStatus_t status);
const char* curand_status_string(curandStatus_t status);

}  // namespace ll::kernels::cuda

#define LL_CUDA_CHECK(call)                                                                 \
  do {                                                                                      \
    const cudaError_t ll_err_ = (call);                                                     \
    if (ll_err_ != cudaSuccess)                                                             \
      ::ll::kernels::cuda::fail(#call, cudaGetErrorString(ll_err_), __FILE__, __LINE__);    \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (asynchronous faults surface at
// the next synchronizing call, which is checked too).
#define LL_CUDA_CHECK_LAUNCH() LL_CUDA_CHECK(cudaGetLastError())

#define LL_CUBLAS_CHECK(call)                                                               \
  do {                                                                                      \
    const cublasStatus_t ll_st_ = (call);                                                   \
    if (ll_st_ != CUBLAS_STATUS_SUCCESS)                                                    \
      ::ll::kernels::cuda::fail(#call, ::ll::kernels::cuda::cublas_status_string(ll_st_),   \
                                __FILE__, __LINE__);                                        \
  } while (0)

#define LL_CURAND_CHECK(call)                                                               \
  do {                                                                                      \
    const curandStatus_t ll_st_ = (call);                                                   \
    if (ll_st_ != CURAND_STATUS_SUCCESS)                                                    \
      ::ll::kernels::cuda::fail(#call, ::ll::kernels::cuda::curand_status_string(ll_st_),   \
                                __FILE__, __LINE__);                                        \
  } while (0)
