// elementwise.cu: the CUDA twins of the small arithmetic between ops (kernels/elementwise.h):
// fill, copy, add, sub, mul, scale, add_scalar, axpy, exp, log, copy_rows and transpose2d.
//
// Work per call (n elements, 4-byte floats):
//   fill                          writes y:               4 n bytes,  0 flops
//   copy, scale, add_scalar,      reads x, writes y:      8 n bytes,  0-1 flop per element
//   exp, log                                              (expf/logf: ~10-20 flops per element)
//   add, sub, mul                 reads a, b, writes y:  12 n bytes,  1 flop per element
//   axpy                          reads x, y, writes y:  12 n bytes,  2 flops per element
//   copy_rows                     8 * outer * len bytes
//   transpose2d                   8 * rows * cols bytes
// All are memory-bound (at most ~2 flops per byte), so the limit is DRAM bandwidth (H100 SXM:
// 3.35 TB/s, e.g. 1M-element add = 12 MB, about 3.8 us).
//
// Design:
// - The simple maps share one generic kernel (a functor per op): one thread per 4 elements, float4
//   loads and stores when every pointer is 16-byte aligned, the n % 4 tail elements taken one by
//   one; a scalar path (one element per thread) when any pointer is not aligned. Grid-stride loops
//   with int64 indices.
// - copy is cudaMemcpyAsync on the stream (the runtime's device-to-device copy already runs at the
//   bandwidth limit), nothing when x == y, like the CPU.
// - copy_rows: one thread per element (or per float4 when the row length, both strides, both
//   offsets and both base pointers allow it), the (row, column) from one 32-bit division where the
//   total fits, 64-bit otherwise.
// - transpose2d: 32 x 32 tiles through shared memory with one padding column (tile[32][33]), so
//   that the column reads of the store phase hit 32 different banks; blocks of 32 x 8 threads, each
//   moving 4 rows of its tile; reads of x and writes of y are both coalesced along a tile row.
//   Tile loops stride over the grid, so any (rows, cols) is covered by a capped grid.
// - Each output element is written by one thread: deterministic. No __restrict__: the engine
//   accumulates in place (add(g, dg, g), axpy into y), each element is read before the same thread
//   writes it.
// Parity with the CPU: fill, copy, add, sub, mul, scale, add_scalar, copy_rows and transpose2d are
// the same IEEE operations (bit for bit). axpy is written with __fmul_rn / __fadd_rn, which nvcc
// never contracts into a fused multiply-add, so it rounds twice like the CPU (built with
// -ffp-contract=off): bit for bit too. exp and log call expf / logf as the CPU does; CUDA's are
// within 2 ulp (expf) and 1 ulp (logf) of the exact value (CUDA C++ Programming Guide, "Mathematical
// Functions", standard functions), so they agree with the CPU's libm to a few ulps.
#include "kernels/elementwise.h"

#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"

namespace ll::kernels::cuda {

namespace {

// ---- fill (the maps y = op(x), y = op(a, b) are in map.cuh) ---------------------------------
template <bool kVec>
__global__ void __launch_bounds__(kBlock) fill_kernel(float* y, float value, int64_t n) {
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if constexpr (kVec) {
    const int64_t n4 = n >> 2;
    float4* y4 = reinterpret_cast<float4*>(y);
    const float4 v = make_float4(value, value, value, value);
    for (int64_t j = i; j < n4; j += stride) y4[j] = v;
    i += 4 * n4;
  }
  for (; i < n; i += stride) y[i] = value;
}

using detail::map1;
using detail::map2;

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct SubOp {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct ScaleOp {
  float alpha;
  __device__ float operator()(float x) const { return alpha * x; }
};
struct AddScalarOp {
  float c;
  __device__ float operator()(float x) const { return x + c; }
};
// (x, y) -> y + alpha * x with two roundings, never fused (the CPU's y[i] += alpha * x[i]).
struct AxpyOp {
  float alpha;
  __device__ float operator()(float x, float y) const { return __fadd_rn(y, __fmul_rn(alpha, x)); }
};
struct ExpOp {
  __device__ float operator()(float x) const { return expf(x); }
};
struct LogOp {
  __device__ float operator()(float x) const { return logf(x); }
};

// ---- copy_rows ---------------------------------------------------------------------------------
// Element e of the (outer, len) copy: row o = e / len, column j = e % len. In the float4 path every
// quantity is in units of 4 floats (len, strides and offsets all divisible by 4). Idx: uint32_t
// where outer * len < 2^32 (a 32-bit division is several times cheaper than a 64-bit one).
template <typename Idx, typename T>
__global__ void __launch_bounds__(kBlock)
    copy_rows_kernel(const T* src, int64_t src_stride, int64_t src_offset, T* dst,
                     int64_t dst_stride, int64_t dst_offset, int64_t outer, int64_t len) {
  const int64_t total = outer * len;
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const Idx ee = static_cast<Idx>(e), l = static_cast<Idx>(len);
    const int64_t o = static_cast<int64_t>(ee / l), j = static_cast<int64_t>(ee % l);
    dst[o * dst_stride + dst_offset + j] = src[o * src_stride + src_offset + j];
  }
}

template <typename T>
void launch_copy_rows(const T* src, int64_t src_stride, int64_t src_offset, T* dst,
                      int64_t dst_stride, int64_t dst_offset, int64_t outer, int64_t len,
                      Stream stream) {
  const int64_t total = outer * len;
  if (total < (int64_t{1} << 32)) {
    copy_rows_kernel<uint32_t><<<grid_for(total), kBlock, 0, stream>>>(
        src, src_stride, src_offset, dst, dst_stride, dst_offset, outer, len);
  } else {
    copy_rows_kernel<uint64_t><<<grid_for(total), kBlock, 0, stream>>>(
        src, src_stride, src_offset, dst, dst_stride, dst_offset, outer, len);
  }
  LL_CUDA_CHECK_LAUNCH();
}

// ---- transpose2d -------------------------------------------------------------------------------
constexpr int kTile = 32;
constexpr int kTileRows = 8;  // threads per block: kTile x kTileRows; each moves kTile / kTileRows rows

__global__ void __launch_bounds__(kTile * kTileRows)
    transpose_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t cols) {
  __shared__ float tile[kTile][kTile + 1];  // +1: the column reads below hit distinct banks
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t tr = blockIdx.y; tr < row_tiles; tr += gridDim.y) {
    for (int64_t tc = blockIdx.x; tc < col_tiles; tc += gridDim.x) {
      const int64_t r0 = tr * kTile, c0 = tc * kTile;
      // x[r0 + ty + k, c0 + tx] -> tile[ty + k][tx]: consecutive tx read consecutive columns.
      for (int k = 0; k < kTile; k += kTileRows) {
        const int64_t r = r0 + ty + k, c = c0 + tx;
        if (r < rows && c < cols) tile[ty + k][tx] = x[r * cols + c];
      }
      __syncthreads();
      // y[c0 + ty + k, r0 + tx] = x[r0 + tx, c0 + ty + k]: consecutive tx write consecutive columns of y.
      for (int k = 0; k < kTile; k += kTileRows) {
        const int64_t c = c0 + ty + k, r = r0 + tx;
        if (c < cols && r < rows) y[c * rows + r] = tile[tx][ty + k];
      }
      __syncthreads();  // the tile is rewritten by the next iteration
    }
  }
}

}  // namespace

void fill(float* y, float value, int64_t n, Stream stream) {
  if (n <= 0) return;
  if (aligned16(y)) {
    fill_kernel<true><<<grid_for((n + 3) / 4), kBlock, 0, stream>>>(y, value, n);
  } else {
    fill_kernel<false><<<grid_for(n), kBlock, 0, stream>>>(y, value, n);
  }
  LL_CUDA_CHECK_LAUNCH();
}

void copy(const float* x, float* y, int64_t n, Stream stream) {
  if (n <= 0 || x == y) return;
  LL_CUDA_CHECK(cudaMemcpyAsync(y, x, static_cast<size_t>(n) * sizeof(float),
                                cudaMemcpyDeviceToDevice, stream));
}

void add(const float* a, const float* b, float* y, int64_t n, Stream stream) {
  map2(a, b, y, n, AddOp{}, stream);
}
void sub(const float* a, const float* b, float* y, int64_t n, Stream stream) {
  map2(a, b, y, n, SubOp{}, stream);
}
void mul(const float* a, const float* b, float* y, int64_t n, Stream stream) {
  map2(a, b, y, n, MulOp{}, stream);
}
void scale(const float* x, float alpha, float* y, int64_t n, Stream stream) {
  map1(x, y, n, ScaleOp{alpha}, stream);
}
void add_scalar(const float* x, float c, float* y, int64_t n, Stream stream) {
  map1(x, y, n, AddScalarOp{c}, stream);
}
void axpy(float alpha, const float* x, float* y, int64_t n, Stream stream) {
  map2(x, y, y, n, AxpyOp{alpha}, stream);
}
void exp(const float* x, float* y, int64_t n, Stream stream) { map1(x, y, n, ExpOp{}, stream); }
void log(const float* x, float* y, int64_t n, Stream stream) { map1(x, y, n, LogOp{}, stream); }

void copy_rows(const float* src, int64_t src_stride, int64_t src_offset, float* dst,
               int64_t dst_stride, int64_t dst_offset, int64_t outer, int64_t len, Stream stream) {
  if (len <= 0 || outer <= 0) return;
  const bool vec = len % 4 == 0 && src_stride % 4 == 0 && dst_stride % 4 == 0 &&
                   src_offset % 4 == 0 && dst_offset % 4 == 0 && aligned16(src) && aligned16(dst);
  if (vec) {
    launch_copy_rows(reinterpret_cast<const float4*>(src), src_stride / 4, src_offset / 4,
                     reinterpret_cast<float4*>(dst), dst_stride / 4, dst_offset / 4, outer, len / 4,
                     stream);
  } else {
    launch_copy_rows(src, src_stride, src_offset, dst, dst_stride, dst_offset, outer, len, stream);
  }
}

void transpose2d(const float* x, float* y, int64_t rows, int64_t cols, Stream stream) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(col_tiles, int64_t{1} << 16)),
                  static_cast<unsigned>(std::min<int64_t>(row_tiles, 65535)));
  transpose_kernel<<<grid, dim3(kTile, kTileRows), 0, stream>>>(x, y, rows, cols);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
