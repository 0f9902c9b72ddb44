// gemm.h: dense matrix multiply, the workhorse of Linear and of im2col convolutions.
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
// All matrices row-major and contiguous. op(A) = A (M x K) or A^T with A stored K x M; same for B.
// CPU: cblas_sgemm (OpenBLAS). CUDA: cuBLAS (kernels/cuda/gemm.cu).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>
#include <string>

namespace ll::kernels::cpu {
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C);

// ---- OpenBLAS's kernel set ---------------------------------------------------------------------
// OpenBLAS picks its kernels for the processor once, when the library loads (before main), from
// the CPU model number. A processor newer than the library (Debian 12's OpenBLAS 0.3.21 on Intel
// Sapphire / Emerald Rapids, model 143 / 207) falls back to "Prescott", SSE3 kernels at about half
// the speed: a DCGAN-28 training step ran at 155 img/s there, 330 with OPENBLAS_CORETYPE=SkylakeX
// (2 threads). Nothing can change the choice once loaded; the environment variable
// OPENBLAS_CORETYPE, read at load, can.
//
// The kernel set in use ("SkylakeX", "Haswell", "Prescott", ...: openblas_get_corename()).
std::string blas_core_name();
// The OPENBLAS_CORETYPE that gives this processor the kernels it supports, when OpenBLAS fell back
// to a set without AVX2 on a processor that has AVX2 and FMA ("Haswell") or AVX-512 F/BW/DQ/VL/CD
// ("SkylakeX"); "" when the choice is right already or OPENBLAS_CORETYPE is set.
std::string better_blas_core();
// For a program's main: where better_blas_core() names a set, sets OPENBLAS_CORETYPE to it and
// restarts the program (execv of /proc/self/exe with the same arguments), so that OpenBLAS loads
// with the right kernels; returns when there is nothing to do or the restart failed (the program
// then runs on as it is). Results stay deterministic for a given kernel set; they differ between
// kernel sets by rounding, as between machines.
void restart_with_better_blas_core(char** argv);
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
