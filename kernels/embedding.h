// embedding.h: table lookup (PyTorch's nn.Embedding). table (num, dim), idx (N) in [0, num).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels::cpu {
// y[n, :] = table[idx[n], :]
void embedding_forward(const float* table, const int32_t* idx, float* y, int64_t N, int64_t num,
                       int64_t dim);
// gtable = 0; gtable[idx[n], :] += gy[n, :] for n in order (deterministic).
// Both check idx first and throw std::out_of_range naming the position of a bad index.
void embedding_backward(const float* gy, const int32_t* idx, float* gtable, int64_t N, int64_t num,
                        int64_t dim);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/embedding.cu): the arguments of cpu::, device pointers, on `stream`.
void embedding_forward(const float* table, const int32_t* idx, float* y, int64_t N, int64_t num,
                       int64_t dim, Stream stream);
void embedding_backward(const float* gy, const int32_t* idx, float* gtable, int64_t N, int64_t num,
                        int64_t dim, Stream stream);
}  // namespace ll::kernels::cuda
