// embedding.cu: the CUDA twins of the table lookup (kernels/embedding.h), torch.nn.Embedding
// without padding_idx / max_norm. table (num, dim), idx (N) int32, y and gy (N, dim).
//   forward   y[n, :] = table[idx[n], :]
//   backward  gtable = 0; gtable[idx[n], :] += gy[n, :] for n = 0, 1, ..., N - 1 (in this order)
//
// Work per call: forward reads 4 N bytes of indices and 4 N dim of table rows, writes 4 N dim
// bytes; backward reads the indices ceil(dim / 128) * num times (from cache: they are N ints),
// gy once (4 N dim bytes), writes 4 num dim bytes, N dim adds. Memory-bound.
//
// Design:
// - forward: one thread per output element (per float4 when dim % 4 == 0 and table and y are
//   16-byte aligned), (n, column) from a 32-bit division where the sizes allow, coalesced reads of
//   the table row and writes of y.
// - backward, deterministic without atomics: one warp per (table row r, 128-column slice). The warp
//   reads the indices 32 at a time (one per lane, coalesced) and finds those equal to r with
//   __ballot_sync; it then takes the matching n in increasing order (lowest set bit first) and each
//   lane adds gy[n, j] to its 4 columns j = slice + lane + 32 q in a register, starting from 0.0f.
//   Every gtable element therefore receives exactly the CPU's float additions in the CPU's order
//   (gtable zeroed, then += gy[n, j] for increasing n): bit for bit the CPU's result. Every
//   gtable element is written once, with its final value: no memset needed.
// - Indices outside [0, num): the CPU throws std::out_of_range before touching memory; a kernel
//   cannot throw, and checking on the host would need the indices there (a synchronizing copy).
//   So the kernels never read or write out of bounds instead: the forward writes NaN into the rows
//   of bad indices (visible at once in any loss), the backward ignores them. Callers validate the
//   indices on the host where they come from (labels), as the engine's Embedding does.
#include "kernels/embedding.h"

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda {

namespace {

// Element e of y (in units of T: float, or float4 with dim / 4): row n = e / dim, column j = e % dim.
template <typename Idx, typename T>
__global__ void __launch_bounds__(kBlock)
    embedding_forward_kernel(const T* table, const int32_t* idx, T* y, int64_t N, int64_t num,
                             int64_t dim) {
  const int64_t total = N * dim;
  const Idx d = static_cast<Idx>(dim);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const Idx ee = static_cast<Idx>(e);
    const Idx n = ee / d;
    const int64_t j = static_cast<int64_t>(ee - n * d);
    const int32_t r = idx[n];
    if (r >= 0 && r < num) {
      y[e] = table[static_cast<int64_t>(r) * dim + j];
    } else {
      const float nan = __int_as_float(0x7fc00000);  // a quiet NaN: the index was out of range
      if constexpr (sizeof(T) == sizeof(float4)) {
        y[e] = make_float4(nan, nan, nan, nan);
      } else {
        y[e] = nan;
      }
    }
  }
}

template <typename T>
void launch_forward(const T* table, const int32_t* idx, T* y, int64_t N, int64_t num, int64_t dim,
                    Stream stream) {
  const int64_t total = N * dim;
  if (total < (int64_t{1} << 32)) {
    embedding_forward_kernel<uint32_t><<<grid_for(total), kBlock, 0, stream>>>(table, idx, y, N, num, dim);
  } else {
    embedding_forward_kernel<uint64_t><<<grid_for(total), kBlock, 0, stream>>>(table, idx, y, N, num, dim);
  }
  LL_CUDA_CHECK_LAUNCH();
}

constexpr int kWarps = kBlock / 32;
constexpr int kColsPerLane = 4;
constexpr int64_t kSlice = 32 * kColsPerLane;  // columns per warp

// Warp item = (row r, slice s). All loops are uniform across the warp (they depend on the item and
// on ballot masks only), so the full-mask warp intrinsics are safe.
__global__ void __launch_bounds__(kBlock)
    embedding_backward_kernel(const float* gy, const int32_t* idx, float* gtable, int64_t N,
                              int64_t num, int64_t dim) {
  const int lane = threadIdx.x & 31;
  const int64_t slices = (dim + kSlice - 1) / kSlice;
  const int64_t items = num * slices;
  const int64_t warps = int64_t{gridDim.x} * kWarps;
  for (int64_t item = int64_t{blockIdx.x} * kWarps + (threadIdx.x >> 5); item < items; item += warps) {
    const int64_t r = item / slices;
    const int64_t j0 = (item % slices) * kSlice + lane;
    float acc[kColsPerLane];
    for (int q = 0; q < kColsPerLane; ++q) acc[q] = 0.0f;
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
      const int64_t n = n0 + lane;
      const bool match = n < N && static_cast<int64_t>(idx[n]) == r;
      unsigned mask = __ballot_sync(0xffffffffu, match);
      while (mask != 0u) {  // the matching n in increasing order
        const int b = __ffs(static_cast<int>(mask)) - 1;
        mask &= mask - 1u;
        const float* row = gy + (n0 + b) * dim;
        for (int q = 0; q < kColsPerLane; ++q) {
          const int64_t j = j0 + 32 * q;
          if (j < dim) acc[q] += row[j];
        }
      }
    }
    for (int q = 0; q < kColsPerLane; ++q) {
      const int64_t j = j0 + 32 * q;
      if (j < dim) gtable[r * dim + j] = acc[q];
    }
  }
}

}  // namespace

void embedding_forward(const float* table, const int32_t* idx, float* y, int64_t N, int64_t num,
                       int64_t dim, Stream stream) {
  if (N <= 0 || dim <= 0) return;
  if (dim % 4 == 0 && aligned16(table) && aligned16(y)) {
    launch_forward(reinterpret_cast<const float4*>(table), idx, reinterpret_cast<float4*>(y), N, num,
                   dim / 4, stream);
  } else {
    launch_forward(table, idx, y, N, num, dim, stream);
  }
}

void embedding_backward(const float* gy, const int32_t* idx, float* gtable, int64_t N, int64_t num,
                        int64_t dim, Stream stream) {
  if (num <= 0 || dim <= 0) return;
  const int64_t items = num * ((dim + kSlice - 1) / kSlice);
  embedding_backward_kernel<<<grid_for(items, kWarps), kBlock, 0, stream>>>(gy, idx, gtable, N, num, dim);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
