// common.cuh: what every kernels/cuda/*.cu file shares: the error-checking macros (check.cuh), the
// stream and library handles, and the launch-shape helpers.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda_runtime.h"

namespace ll::kernels::cuda {

// The cuBLAS handle of this process, bound to compute_stream(), with the math mode that
// allow_tf32() selects (CUBLAS_DEFAULT_MATH, i.e. full FP32, unless TF32 is allowed).
cublasHandle_t cublas_handle();

// Threads per block for one-element-per-thread (or grid-stride) kernels.
constexpr int kBlock = 256;

// Blocks for `n` work items at `per_block` items per block, capped so that grid-stride loops cover
// the rest (the cap keeps every multiprocessor busy without launching millions of tiny blocks).
inline unsigned grid_for(int64_t n, int per_block = kBlock) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 16));
}

// Grid-stride loop over [0, n): `for (int64_t i : grid_stride(n))` is not expressible in CUDA C++
// without ranges, so kernels write it out:
//   for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
//        i += int64_t{blockDim.x} * gridDim.x)

// Scratch device memory for the kernels an entry point enqueues on `stream`, freed when the entry
// point returns (after those kernels are enqueued: the stream-ordered caching allocator reuses it
// behind them). 0 bytes: no allocation, p == nullptr.
struct DeviceScratch {
  void* p = nullptr;
  DeviceScratch(size_t bytes, Stream stream) : p(bytes > 0 ? malloc_device(bytes, stream) : nullptr) {}
  ~DeviceScratch() {
    if (p != nullptr) free_device(p);
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
};

// True when `p` is aligned for 16-byte (float4) loads.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace ll::kernels::cuda
