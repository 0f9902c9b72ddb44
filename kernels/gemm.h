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
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C, Stream stream);
}  // namespace ll::kernels::cuda
