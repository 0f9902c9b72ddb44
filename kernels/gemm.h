// gemm.h: dense matrix multiply, the workhorse of Linear and of im2col convolutions.
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
// All matrices row-major and contiguous. op(A) = A (M x K) or A^T with A stored K x M; same for B.
// CPU: cblas_sgemm (OpenBLAS). CUDA: cuBLAS (CUDA backend issue).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels::cpu {
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/gemm.cu): the arguments of cpu::, device pointers, on `stream`.
// cuBLAS in full FP32 unless allow_tf32() (kernels/cuda_runtime.h). Sizes must fit cuBLAS's 32-bit
// int (std::invalid_argument otherwise). K = 0 gives C = beta C (C = 0 when beta = 0).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C, Stream stream);

// `batch` independent GEMMs of the shape above, matrix i at A + i stride_a, B + i stride_b and
// C + i stride_c (strides in floats; 0 reuses one operand for every product, e.g. a conv's weight):
//   C_i = alpha op(A_i) op(B_i) + beta C_i,  all row-major and contiguous as in gemm().
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t stride_a, const float* B, int64_t stride_b,
                          float beta, float* C, int64_t stride_c, int64_t batch, Stream stream);
}  // namespace ll::kernels::cuda
