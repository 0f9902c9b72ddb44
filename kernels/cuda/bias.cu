// bias.cu: per-channel bias over a tensor viewed as (N, C, inner) and its gradient (see
// kernels/bias.h): Linear is (batch, features, 1), Conv2d (N, C, H*W).
//
// bias_add       y[n, c, i] += b[c]           0 FLOPs of note; bytes 8 N C inner (read + write y)
// bias_backward  gb[c] = sum_{n,i} gy[n,c,i]  N C inner adds; bytes 4 N C inner (+ partials)
//
// bias_add: one thread per element in a grid-stride loop; float4 loads and stores when inner is a
// multiple of 4 and y is 16-byte aligned (then the 4 values of a float4 share one channel).
// Memory-bound: the goal is the DRAM bandwidth.
//
// bias_backward: deterministic, no atomics, accumulated in double; two layouts, both memory-bound.
// - inner == 1 (Linear: gy is an (N, C) row-major matrix, the gradient its column sums): the
//   "columns" layout, as batchnorm.cu's. A block is bx x by threads, bx = min(32, C rounded up to a
//   power of 2) consecutive channels times by = kBlock / bx row lanes; the rows are cut into K
//   chunks of `rows` rows (by * kRowsPerThread, more when K would pass kMaxRowChunks), and block
//   (g, k) of the grid (ceil(C / bx), K) sums channels g bx .. g bx + bx - 1 over chunk k: thread
//   (tx, ty) adds rows n0 + ty, n0 + ty + by, ... of its channel in row order, so a warp reads
//   consecutive floats of a row (coalesced; with C < 32, 32 / bx neighbouring rows at once), then
//   the by lanes of a channel are added by a fixed halving tree in shared memory. With K == 1 the
//   block writes gb; otherwise the chunk sums go to a (K, C) matrix of doubles (8 K C bytes, at
//   most 2 / rows of gy's 4 N C: 1/64 or less), which the same kernel reduces once more (one chunk
//   of K rows, the same tree) into gb. Partial sums stay double until gb is written.
// - inner > 1 (convolutions): each channel's N*inner values are cut into `splits` ranges of whole
//   rows (n); one block of kBlock threads sums one (channel, range) pair: every thread adds its
//   fixed subset of the range in a fixed order in double, then the block adds the kBlock partial
//   sums in a fixed shared-memory tree. With one range the block writes gb[c]; with several, the
//   ranges' sums go to a scratch array and a second kernel adds them per channel in range order.
//   Thread mapping inside a range: if inner >= kBlock, the block walks the rows one after another,
//   thread t adding elements t, t + kBlock, ... of each row (coalesced); otherwise kBlock / inner
//   rows are walked at once, thread t taking element t % inner of row offset t / inner (runs of
//   inner consecutive floats: whole 32-byte sectors once inner >= 8, e.g. 4x4 feature maps).
// Every split depends only on the shape, so the result is bit-reproducible. Accumulating in
// double, it matches the CPU reference (also float64 sums, another order) to the float rounding of
// the result in practice.
#include <algorithm>

#include "kernels/bias.h"
#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda {

namespace {

__global__ void bias_add_kernel(float* __restrict__ y, const float* __restrict__ b, int64_t total,
                                int64_t C, int64_t inner) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{blockDim.x} * gridDim.x) {
    y[i] += b[(i / inner) % C];
  }
}

// total4 = N C inner / 4 float4s; inner % 4 == 0, so element 4 j .. 4 j + 3 share one channel.
__global__ void bias_add_vec4_kernel(float4* __restrict__ y, const float* __restrict__ b,
                                     int64_t total4, int64_t C, int64_t inner) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < total4;
       j += int64_t{blockDim.x} * gridDim.x) {
    const float bc = b[(4 * j / inner) % C];
    float4 v = y[j];
    v.x += bc;
    v.y += bc;
    v.z += bc;
    v.w += bc;
    y[j] = v;
  }
}

// Sums of channel c over rows [n0, n1) for work items w = c * splits + k (range k of channel c).
// With splits == 1 it writes gb[c] directly, else partial[w]. Requires blockDim.x == kBlock.
__global__ void bias_backward_kernel(const float* __restrict__ gy, int64_t N, int64_t C,
                                     int64_t inner, int64_t splits, int64_t rows_per_split,
                                     double* __restrict__ partial, float* __restrict__ gb) {
  __shared__ double sum[kBlock];
  const int t = threadIdx.x;
  for (int64_t w = blockIdx.x; w < C * splits; w += gridDim.x) {
    const int64_t c = w / splits, k = w - c * splits;
    const int64_t n0 = k * rows_per_split;
    const int64_t n1 = n0 + rows_per_split < N ? n0 + rows_per_split : N;
    double acc = 0.0;
    if (inner >= kBlock) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* row = gy + (n * C + c) * inner;
        for (int64_t i = t; i < inner; i += kBlock) acc += static_cast<double>(row[i]);
      }
    } else {
      const int64_t rows_at_once = kBlock / inner;  // >= 1
      if (t < rows_at_once * inner) {
        const int64_t r = t / inner, i = t - r * inner;
        for (int64_t n = n0 + r; n < n1; n += rows_at_once) {
          acc += static_cast<double>(gy[(n * C + c) * inner + i]);
        }
      }
    }
    sum[t] = acc;
    __syncthreads();
    for (int half = kBlock / 2; half > 0; half /= 2) {
      if (t < half) sum[t] += sum[t + half];
      __syncthreads();
    }
    if (t == 0) {
      if (splits == 1) {
        gb[c] = static_cast<float>(sum[0]);
      } else {
        partial[w] = sum[0];
      }
    }
    __syncthreads();  // sum[] is reused by the next work item
  }
}

// gb[c] = sum over k in order of partial[c * splits + k].
__global__ void bias_backward_finish_kernel(const double* __restrict__ partial, int64_t C,
                                            int64_t splits, float* __restrict__ gb) {
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < C;
       c += int64_t{blockDim.x} * gridDim.x) {
    double s = 0.0;
    for (int64_t k = 0; k < splits; ++k) s += partial[c * splits + k];
    gb[c] = static_cast<float>(s);
  }
}

// Column sums of the row-major (rows, cols) matrix m over row chunks of `rows_per_chunk` rows:
// block (g, k) of a grid (ceil(cols / bx), K) with bx x by threads (both powers of 2, bx by ==
// kBlock) sums columns g bx + tx over rows [k rows_per_chunk, (k + 1) rows_per_chunk), thread
// (tx, ty) taking rows n0 + ty, n0 + ty + by, ... in order, then a fixed halving tree over ty.
// Writes partial[k * cols + q] (a (K, cols) matrix) when partial != nullptr, else out[q] (K == 1).
template <typename T>
__global__ void column_sums_kernel(const T* __restrict__ m, int64_t rows, int64_t cols,
                                   int64_t rows_per_chunk, double* __restrict__ partial,
                                   float* __restrict__ out) {
  __shared__ double sum[kBlock];
  const int bx = blockDim.x, by = blockDim.y;
  const int tx = threadIdx.x, ty = threadIdx.y, t = ty * bx + tx;
  const int64_t k = blockIdx.y;
  const int64_t n0 = k * rows_per_chunk;
  const int64_t n1 = n0 + rows_per_chunk < rows ? n0 + rows_per_chunk : rows;
  const int64_t groups = (cols + bx - 1) / bx;
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {  // uniform over the block
    const int64_t q = g * bx + tx;
    double acc = 0.0;
    if (q < cols) {
      for (int64_t n = n0 + ty; n < n1; n += by) acc += static_cast<double>(m[n * cols + q]);
    }
    sum[t] = acc;
    __syncthreads();
    for (int half = by / 2; half > 0; half /= 2) {
      if (ty < half) sum[t] += sum[t + half * bx];
      __syncthreads();
    }
    if (ty == 0 && q < cols) {
      if (partial != nullptr) {
        partial[k * cols + q] = sum[t];
      } else {
        out[q] = static_cast<float>(sum[t]);
      }
    }
    __syncthreads();  // sum[] is reused by the next column group
  }
}

// Values per block (one channel's range) above which a channel is split over several blocks.
constexpr int64_t kValuesPerBlock = 16384;
// At most this many ranges per channel.
constexpr int64_t kMaxSplits = 64;
// inner == 1: rows per thread of a chunk (a chunk is by * kRowsPerThread rows), and at most this
// many chunks (then longer ones); blocks of the column grid, at most (grid-stride beyond).
constexpr int64_t kRowsPerThread = 16;
constexpr int64_t kMaxRowChunks = 1024;
constexpr int64_t kMaxColumnBlocks = int64_t{1} << 16;

// gb[c] = sum over n of gy[n, c] for the row-major (N, C) gy: column_sums_kernel, then (with
// several row chunks) the same kernel over the (K, C) partial sums.
void column_bias_backward(const float* gy, float* gb, int64_t N, int64_t C, Stream stream) {
  int bx = 1;
  while (bx < 32 && bx < C) bx *= 2;
  const int by = kBlock / bx;
  int64_t rows = by * kRowsPerThread;
  int64_t chunks = (N + rows - 1) / rows;
  if (chunks > kMaxRowChunks) {
    rows = (N + kMaxRowChunks - 1) / kMaxRowChunks;
    chunks = (N + rows - 1) / rows;  // <= kMaxRowChunks, no empty chunk
  }
  const dim3 block(static_cast<unsigned>(bx), static_cast<unsigned>(by));
  const unsigned gx = static_cast<unsigned>(std::min((C + bx - 1) / bx, kMaxColumnBlocks));
  if (chunks == 1) {
    column_sums_kernel<float><<<dim3(gx, 1), block, 0, stream>>>(gy, N, C, N, nullptr, gb);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  double* partial =
      static_cast<double*>(malloc_device(static_cast<size_t>(chunks * C) * sizeof(double), stream));
  column_sums_kernel<float><<<dim3(gx, static_cast<unsigned>(chunks)), block, 0, stream>>>(
      gy, N, C, rows, partial, nullptr);
  LL_CUDA_CHECK_LAUNCH();
  column_sums_kernel<double><<<dim3(gx, 1), block, 0, stream>>>(partial, chunks, C, chunks,
                                                                 nullptr, gb);
  LL_CUDA_CHECK_LAUNCH();
  free_device(partial);  // safe: allocated for `stream`, reused only behind these kernels
}

}  // namespace

void bias_add(float* y, const float* b, int64_t N, int64_t C, int64_t inner, Stream stream) {
  const int64_t total = N * C * inner;
  if (total == 0) return;
  if (inner % 4 == 0 && aligned16(y)) {
    const int64_t total4 = total / 4;
    bias_add_vec4_kernel<<<grid_for(total4), kBlock, 0, stream>>>(reinterpret_cast<float4*>(y), b,
                                                                  total4, C, inner);
  } else {
    bias_add_kernel<<<grid_for(total), kBlock, 0, stream>>>(y, b, total, C, inner);
  }
  LL_CUDA_CHECK_LAUNCH();
}

void bias_backward(const float* gy, float* gb, int64_t N, int64_t C, int64_t inner, Stream stream) {
  if (C == 0) return;
  if (N == 0 || inner == 0) {
    LL_CUDA_CHECK(cudaMemsetAsync(gb, 0, static_cast<size_t>(C) * sizeof(float), stream));
    return;
  }
  if (inner == 1) {  // Linear: coalesced column sums
    column_bias_backward(gy, gb, N, C, stream);
    return;
  }
  // Ranges of whole rows, chosen from the shape alone.
  const int64_t per_channel = N * inner;
  int64_t splits = std::clamp<int64_t>((per_channel + kValuesPerBlock - 1) / kValuesPerBlock, 1,
                                       std::min(N, kMaxSplits));
  const int64_t rows_per_split = (N + splits - 1) / splits;
  splits = (N + rows_per_split - 1) / rows_per_split;  // no empty range
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(C * splits, int64_t{1} << 16));
  if (splits == 1) {
    bias_backward_kernel<<<blocks, kBlock, 0, stream>>>(gy, N, C, inner, 1, rows_per_split,
                                                        nullptr, gb);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  double* partial =
      static_cast<double*>(malloc_device(static_cast<size_t>(C * splits) * sizeof(double), stream));
  bias_backward_kernel<<<blocks, kBlock, 0, stream>>>(gy, N, C, inner, splits, rows_per_split,
                                                      partial, gb);
  LL_CUDA_CHECK_LAUNCH();
  bias_backward_finish_kernel<<<grid_for(C), kBlock, 0, stream>>>(partial, C, splits, gb);
  LL_CUDA_CHECK_LAUNCH();
  free_device(partial);  // safe: allocated for `stream`, reused only behind these kernels
}

}  // namespace ll::kernels::cuda
