// reduce.cu: the CUDA twins of the deterministic sums (kernels/reduce.h): sum_all, sum_dim and
// broadcast_dim (the backward of sum_dim).
//
// Work per call:
//   sum_all (n)                     reads 4 n bytes, n adds (in float64)
//   sum_dim (outer, mid, inner)     reads 4 outer mid inner bytes, writes 4 outer inner bytes,
//                                   outer mid inner adds (in float64)
//   broadcast_dim                   reads 4 outer inner, writes 4 outer mid inner bytes, 0 flops
// Memory-bound: the limit is DRAM bandwidth (sum_all of 16M floats reads 64 MB: about 20 us on an
// H100 SXM at 3.35 TB/s). The float64 adds are free beside that (H100 FP64: 67 TFLOP/s).
//
// Determinism: every sum has a fixed shape that depends on the sizes only, never on the grid, the
// thread timing or the pointers' alignment, and no atomics are used:
// - Contiguous sums (sum_all, and sum_dim with inner == 1: one sum per row of `mid` floats) follow
//   the CPU's chunking (kernels/cpu/parallel.h): a row is cut into chunks of kSumChunk = 4096
//   floats. A block of 256 threads sums one chunk: thread t adds, in float64, the float4 groups
//   t, t + 256, ... of the chunk (lanes x, y, z, w in order; loaded as float4 when the row start is
//   16-byte aligned, as four floats otherwise: the same additions either way), then the chunk's
//   last len % 4 floats (threads t < len % 4); the 256 thread sums are added by a fixed tree (warp
//   shuffles, then the 8 warp sums in order by thread 0). Rows of one chunk are written directly;
//   longer rows write one float64 partial per chunk to scratch memory, and a second kernel adds
//   each row's partials with the same fixed block sum. Rows of at most kWarpRow = 1024 floats are
//   summed by one warp each (same per-thread pattern over 32 lanes, shuffle tree), 8 rows per block.
//   The CPU adds the same terms in float64 in index order, so the two differ only by float64
//   rounding (relative 1e-16): the float results agree to the last bit almost always, and within
//   1 ulp always. sum_dim(x, y, 1, n, 1) is sum_all(x, n) bit for bit, as on the CPU.
// - Strided sums (sum_dim with inner > 1): one thread per output (o, i) and chunk of kSumChunk
//   rows m walks its rows in index order in float64, reading x[o, m, i] coalesced across the
//   threads of consecutive i; the chunk partials are then added in chunk order. This is exactly
//   the CPU's order of operations, so the results are bit for bit the CPU's. (Parallelism is
//   outer * inner * ceil(mid / 4096) threads: enough for the model shapes; a tall thin sum such as
//   (1, 1M, 4) runs on few threads.)
// broadcast_dim: one thread per output element (per float4 when inner % 4 == 0 and both pointers
// are 16-byte aligned), the indices from 32-bit divisions where the sizes allow.
#include "kernels/reduce.h"

#include "kernels/cuda/block_sum.cuh"
#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda {

namespace {

constexpr int64_t kSumChunk = 4096;  // = kernels/cpu/parallel.h's kSumChunk
constexpr int64_t kWarpRow = 1024;   // rows up to this length: one warp each
constexpr int kWarps = kBlock / 32;

using detail::block_sum;  // kernels/cuda/block_sum.cuh

__device__ double warp_sum(double v) {  // valid in lane 0
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  return v;
}

// This thread's float64 sum of p[0, len) when `parts` threads share it (thread `me`): the float4
// groups me, me + parts, ... (each lane in order), then element 4 * (len / 4) + me if it exists.
// The additions are the same whether the groups are loaded as float4 (vec) or as four floats.
__device__ double strided_partial(const float* p, int64_t len, bool vec, int me, int parts) {
  double acc = 0.0;
  const int64_t len4 = len >> 2;
#pragma unroll 4  // several loads in flight per thread; the additions keep their order
  for (int64_t j = me; j < len4; j += parts) {
    float4 v;
    if (vec) {
      v = reinterpret_cast<const float4*>(p)[j];
    } else {
      v = make_float4(p[4 * j], p[4 * j + 1], p[4 * j + 2], p[4 * j + 3]);
    }
    acc += static_cast<double>(v.x);
    acc += static_cast<double>(v.y);
    acc += static_cast<double>(v.z);
    acc += static_cast<double>(v.w);
  }
  const int64_t t = 4 * len4 + me;
  if (t < len) acc += static_cast<double>(p[t]);
  return acc;
}

// Rows of at most kWarpRow floats: one warp per row, y[o] = sum of row o.
__global__ void __launch_bounds__(kBlock)
    row_sum_warp_kernel(const float* x, float* y, int64_t rows, int64_t len, bool vec) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t{gridDim.x} * kWarps;
  for (int64_t o = int64_t{blockIdx.x} * kWarps + (threadIdx.x >> 5); o < rows; o += warps) {
    const double s = warp_sum(strided_partial(x + o * len, len, vec, lane, 32));
    if (lane == 0) y[o] = static_cast<float>(s);
  }
}

// Longer rows: block `item` = (row o, chunk c) sums its chunk. With one chunk per row the row's sum
// goes to y[o] directly; otherwise to partial[o * chunks + c].
__global__ void __launch_bounds__(kBlock)
    row_chunk_kernel(const float* x, int64_t rows, int64_t len, int64_t chunks, bool vec, float* y,
                     double* partial) {
  for (int64_t item = blockIdx.x; item < rows * chunks; item += gridDim.x) {
    const int64_t o = item / chunks, c = item % chunks;
    const int64_t begin = c * kSumChunk;
    const int64_t n = begin + kSumChunk < len ? kSumChunk : len - begin;
    // The chunk start o * len + c * 4096 is 16-byte aligned when the row start is (vec).
    const double s = block_sum(strided_partial(x + o * len + begin, n, vec, threadIdx.x, kBlock));
    if (threadIdx.x == 0) {
      if (chunks == 1) {
        y[o] = static_cast<float>(s);
      } else {
        partial[item] = s;
      }
    }
  }
}

// y[o] = the fixed block sum of partial[o * chunks, (o + 1) * chunks).
__global__ void __launch_bounds__(kBlock)
    row_partials_kernel(const double* partial, int64_t rows, int64_t chunks, float* y) {
  for (int64_t o = blockIdx.x; o < rows; o += gridDim.x) {
    const double* p = partial + o * chunks;
    double acc = 0.0;
    for (int64_t c = threadIdx.x; c < chunks; c += kBlock) acc += p[c];
    const double s = block_sum(acc);
    if (threadIdx.x == 0) y[o] = static_cast<float>(s);
  }
}

// Sums of `rows` contiguous rows of `len` floats: y[o] = sum_m x[o * len + m].
void row_sums(const float* x, float* y, int64_t rows, int64_t len, Stream stream) {
  if (rows <= 0) return;
  if (len <= 0) {  // empty sums are 0, as on the CPU
    LL_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(rows) * sizeof(float), stream));
    return;
  }
  // Every row start o * len is 16-byte aligned when x is and len % 4 == 0.
  const bool vec = aligned16(x) && len % 4 == 0;
  if (len <= kWarpRow) {
    row_sum_warp_kernel<<<grid_for(rows, kWarps), kBlock, 0, stream>>>(x, y, rows, len, vec);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t chunks = (len + kSumChunk - 1) / kSumChunk;
  if (chunks == 1) {
    row_chunk_kernel<<<grid_for(rows, 1), kBlock, 0, stream>>>(x, rows, len, 1, vec, y, nullptr);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  // Scratch for the partials; freeing right after enqueuing is safe (allocated for `stream`: stream-ordered reuse).
  double* partial = static_cast<double*>(malloc_device(static_cast<size_t>(rows * chunks) * sizeof(double), stream));
  row_chunk_kernel<<<grid_for(rows * chunks, 1), kBlock, 0, stream>>>(x, rows, len, chunks, vec, y, partial);
  LL_CUDA_CHECK_LAUNCH();
  row_partials_kernel<<<grid_for(rows, 1), kBlock, 0, stream>>>(partial, rows, chunks, y);
  LL_CUDA_CHECK_LAUNCH();
  free_device(partial);
}

// ---- strided sums: x (outer, mid, inner), inner > 1 -------------------------------------------------
// Thread per (o, c, i): the float64 sum over rows m of chunk c, in index order. With one chunk the
// CPU's total = 0.0 + part is stored at once; otherwise part goes to partial[(o * chunks + c) * inner + i].
__global__ void __launch_bounds__(kBlock)
    col_chunk_kernel(const float* x, int64_t outer, int64_t mid, int64_t inner, int64_t chunks,
                     float* y, double* partial) {
  const int64_t total = outer * chunks * inner;
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const int64_t i = e % inner, oc = e / inner;
    const int64_t c = oc % chunks, o = oc / chunks;
    const int64_t m0 = c * kSumChunk, m1 = m0 + kSumChunk < mid ? m0 + kSumChunk : mid;
    const float* p = x + (o * mid + m0) * inner + i;
    double part = 0.0;
    // Unrolled so that 8 loads are in flight before the (ordered) additions need them: with few
    // threads (a bias gradient has outer * inner of a few hundred) latency, not bandwidth, limits.
#pragma unroll 8
    for (int64_t m = m0; m < m1; ++m) part += static_cast<double>(p[(m - m0) * inner]);
    if (chunks == 1) {
      double t = 0.0;
      t += part;
      y[o * inner + i] = static_cast<float>(t);
    } else {
      partial[e] = part;
    }
  }
}

// Thread per output (o, i): total = sum over chunks in order, as the CPU.
__global__ void __launch_bounds__(kBlock)
    col_partials_kernel(const double* partial, int64_t outer, int64_t inner, int64_t chunks, float* y) {
  const int64_t total = outer * inner;
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const int64_t i = e % inner, o = e / inner;
    const double* p = partial + o * chunks * inner + i;
    double t = 0.0;
    for (int64_t c = 0; c < chunks; ++c) t += p[c * inner];
    y[e] = static_cast<float>(t);
  }
}

// ---- broadcast_dim ---------------------------------------------------------------------------------
// gx[o, m, i] = gy[o, i] over (outer, mid, inner) in units of T (float, or float4 with inner / 4).
template <typename Idx, typename T>
__global__ void __launch_bounds__(kBlock)
    broadcast_kernel(const T* gy, T* gx, int64_t outer, int64_t mid, int64_t inner) {
  const int64_t total = outer * mid * inner;
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  const Idx in = static_cast<Idx>(inner), mi = static_cast<Idx>(mid * inner);
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const Idx ee = static_cast<Idx>(e);
    const Idx o = ee / mi, i = ee % in;
    gx[e] = gy[static_cast<int64_t>(o) * inner + static_cast<int64_t>(i)];
  }
}

template <typename T>
void launch_broadcast(const T* gy, T* gx, int64_t outer, int64_t mid, int64_t inner, Stream stream) {
  const int64_t total = outer * mid * inner;
  if (total < (int64_t{1} << 32)) {
    broadcast_kernel<uint32_t><<<grid_for(total), kBlock, 0, stream>>>(gy, gx, outer, mid, inner);
  } else {
    broadcast_kernel<uint64_t><<<grid_for(total), kBlock, 0, stream>>>(gy, gx, outer, mid, inner);
  }
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace

void sum_all(const float* x, int64_t n, float* out, Stream stream) {
  row_sums(x, out, 1, n, stream);
}

void sum_dim(const float* x, float* y, int64_t outer, int64_t mid, int64_t inner, Stream stream) {
  if (outer <= 0 || inner <= 0) return;
  if (inner == 1) {
    row_sums(x, y, outer, mid, stream);
    return;
  }
  if (mid <= 0) {
    LL_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(outer * inner) * sizeof(float), stream));
    return;
  }
  const int64_t chunks = (mid + kSumChunk - 1) / kSumChunk;
  if (chunks == 1) {
    col_chunk_kernel<<<grid_for(outer * inner), kBlock, 0, stream>>>(x, outer, mid, inner, 1, y, nullptr);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  double* partial =
      static_cast<double*>(malloc_device(static_cast<size_t>(outer * chunks * inner) * sizeof(double), stream));
  col_chunk_kernel<<<grid_for(outer * chunks * inner), kBlock, 0, stream>>>(x, outer, mid, inner, chunks,
                                                                          y, partial);
  LL_CUDA_CHECK_LAUNCH();
  col_partials_kernel<<<grid_for(outer * inner), kBlock, 0, stream>>>(partial, outer, inner, chunks, y);
  LL_CUDA_CHECK_LAUNCH();
  free_device(partial);
}

void broadcast_dim(const float* gy, float* gx, int64_t outer, int64_t mid, int64_t inner,
                   Stream stream) {
  if (outer <= 0 || mid <= 0 || inner <= 0) return;
  if (inner % 4 == 0 && aligned16(gy) && aligned16(gx)) {
    launch_broadcast(reinterpret_cast<const float4*>(gy), reinterpret_cast<float4*>(gx), outer, mid,
                     inner / 4, stream);
  } else {
    launch_broadcast(gy, gx, outer, mid, inner, stream);
  }
}

}  // namespace ll::kernels::cuda
