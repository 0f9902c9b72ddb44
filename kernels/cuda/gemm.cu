// gemm.cu: C = alpha op(A) op(B) + beta C on the GPU through cuBLAS (see kernels/gemm.h), single
// and strided-batched.
//
// FLOPs per call: 2 M N K (times batch); bytes: 4 (M K + K N + M N), plus 4 M N when beta != 0.
//
// Design. cuBLAS is column-major; our matrices are row-major. A row-major X (r x c) read
// column-major with leading dimension c is X^T, so instead of C = op(A) op(B) we ask cuBLAS for
//   C^T (N x M, ld N) = op(B)^T (N x K) op(A)^T (K x M)
// i.e. cublasSgemm(opB, opA, N, M, K, alpha, B, ldb, A, lda, beta, C, N) with the operands swapped
// and the same transpose flags; the leading dimensions are those of the stored row-major matrices:
// lda = trans_a ? M : K, ldb = trans_b ? K : N (as kernels/cpu/gemm.cpp gives OpenBLAS).
// (cuBLAS Library User Guide, "cublas<t>gemm()" and "cublas<t>gemmStridedBatched()".)
//
// Precision: the handle of cublas_handle() runs CUBLAS_DEFAULT_MATH (full FP32) unless
// allow_tf32(), then CUBLAS_TF32_TENSOR_OP_MATH.
// Determinism: cuBLAS routines give bit-identical results from run to run on GPUs of the same
// architecture and SM count when one stream is active (cuBLAS Library User Guide, "Results
// reproducibility"); all our work runs on the one compute stream.
// K = 0 (an empty sum) is done here: cuBLAS would reject the leading dimension 0. C = beta C, with
// beta = 0 writing zeros without reading C (BLAS semantics, as the CPU twin).
#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/gemm.h"

namespace ll::kernels::cuda {

namespace {

int blas_int(int64_t v, const char* fn, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw std::invalid_argument(std::string(fn) + ": " + what + " = " + std::to_string(v) +
                                " is negative or does not fit cuBLAS's 32-bit int");
  }
  return static_cast<int>(v);
}

// The shared cuBLAS handle, bound to `stream` for the duration of one call. The handle normally
// lives on compute_stream(); a call on another stream rebinds it and restores it afterwards.
class HandleOn {
 public:
  explicit HandleOn(Stream stream) : handle_(cublas_handle()) {
    LL_CUBLAS_CHECK(cublasGetStream(handle_, &previous_));
    if (previous_ != stream) {
      LL_CUBLAS_CHECK(cublasSetStream(handle_, stream));
      restore_ = true;
    }
  }
  ~HandleOn() {
    if (restore_) (void)cublasSetStream(handle_, previous_);  // a destructor must not throw
  }
  HandleOn(const HandleOn&) = delete;
  HandleOn& operator=(const HandleOn&) = delete;
  operator cublasHandle_t() const { return handle_; }

 private:
  cublasHandle_t handle_;
  cudaStream_t previous_ = nullptr;
  bool restore_ = false;
};

// C_i *= beta for `batch` matrices of `mn` floats, stride_c apart (beta = 0 writes zeros).
__global__ void scale_kernel(float* __restrict__ c, int64_t mn, int64_t stride_c, int64_t batch,
                             float beta) {
  const int64_t total = mn * batch;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{blockDim.x} * gridDim.x) {
    const int64_t b = i / mn, j = i - b * mn;
    float* p = c + b * stride_c + j;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

// Products per cublasSgemmStridedBatched call.
constexpr int64_t kMaxBatch = 65535;

void scale(float* c, int64_t mn, int64_t stride_c, int64_t batch, float beta, Stream stream) {
  if (beta == 1.0f || mn == 0 || batch == 0) return;
  scale_kernel<<<grid_for(mn * batch), kBlock, 0, stream>>>(c, mn, stride_c, batch, beta);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C, Stream stream) {
  const int m = blas_int(M, "gemm", "M"), n = blas_int(N, "gemm", "N"), k = blas_int(K, "gemm", "K");
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale(C, M * N, M * N, 1, beta, stream);
    return;
  }
  const int lda = trans_a ? m : k, ldb = trans_b ? k : n;
  HandleOn handle(stream);
  LL_CUBLAS_CHECK(cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                              trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, B, ldb, A, lda,
                              &beta, C, n));
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t stride_a, const float* B, int64_t stride_b,
                          float beta, float* C, int64_t stride_c, int64_t batch, Stream stream) {
  const char* fn = "gemm_strided_batched";
  const int m = blas_int(M, fn, "M"), n = blas_int(N, fn, "N"), k = blas_int(K, fn, "K");
  const int count = blas_int(batch, fn, "batch");
  if (stride_a < 0 || stride_b < 0 || stride_c < 0) {
    throw std::invalid_argument(std::string(fn) + ": negative stride");
  }
  if (m == 0 || n == 0 || count == 0) return;
  if (k == 0) {
    scale(C, M * N, stride_c, batch, beta, stream);
    return;
  }
  const int lda = trans_a ? m : k, ldb = trans_b ? k : n;
  HandleOn handle(stream);
  // At most kMaxBatch products per call: some cuBLAS kernels put the batch on gridDim.z (65535).
  for (int64_t b0 = 0; b0 < count; b0 += kMaxBatch) {
    const int part = static_cast<int>(std::min<int64_t>(kMaxBatch, count - b0));
    LL_CUBLAS_CHECK(cublasSgemmStridedBatched(
        handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
        &alpha, B + b0 * stride_b, ldb, static_cast<long long>(stride_b), A + b0 * stride_a, lda,
        static_cast<long long>(stride_a), &beta, C + b0 * stride_c, n,
        static_cast<long long>(stride_c), part));
  }
}

}  // namespace ll::kernels::cuda
