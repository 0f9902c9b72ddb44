// loss.cu: CUDA twins of the losses (kernels/loss.h): BCE with logits (forward, backward, fused),
// MSE (forward, backward) and softmax cross-entropy (forward, backward), with PyTorch's Sum / Mean
// reductions. The per-element terms are those of kernels/common/formulas.h and softmax_formulas.h;
// the loss is written to a DEVICE pointer to one float, so nothing here waits for the GPU.
//
// Cost per call (n elements; N rows of C logits):
// - bce forward: reads 8n bytes, ~30 FLOPs per element (the exp and log1p polynomials);
//   backward: reads 8n, writes 4n, one expf per element; fused: reads 8n, writes 4n.
// - mse forward: reads 8n, 3 FLOPs per element; backward: reads 8n, writes 4n.
// - softmax CE forward: reads 4NC (+4N labels), one expf per logit; backward: reads 4NC and writes
//   4NC (the row statistics are recomputed from the row, which stays in L1/L2).
// All are memory bound; at our sizes (128 x 784 = 100352 elements, 1.2 MB) the launch latency
// (a few us) dominates.
//
// Design and determinism. No atomics. A forward reduction is two fixed passes:
//   1. sum_terms: a grid of P blocks (P depends only on n: one block per kPerBlock elements, at
//      most kMaxPartials), 256 threads each, grid-stride over the elements; every thread sums its
//      terms in double in index order, the block adds its 256 sums by a fixed tree (warp shuffles,
//      then the 8 warp sums), and writes one partial per block;
//   2. sum_partials: one block adds the P partials in the same fixed way, scales by 1 (Sum) or
//      1/count (Mean) in double and rounds once to float, as the CPU does.
// When P == 1 the first pass writes the loss itself. The partials live in scratch memory from the
// caching allocator (P doubles), freed right after enqueueing. The result therefore depends only on
// the inputs and n, never on timing; it agrees with the CPU's float64 chunked sum to double
// rounding before the final rounding to float.
// Softmax cross-entropy walks one row per warp (8 rows per block): the lanes stride over the C
// logits (coalesced), the row max and the double sum of exp(l - max) by fixed warp trees; the row
// losses (double) go to scratch and sum_partials adds them in the same fixed tree.
// A label outside [0, C) cannot throw on the device: its row's loss, and every gradient of that
// row, is NaN (the engine checks the labels on the host before calling, as the CPU reference
// does).
// Backwards are element-wise (float4 when the pointers are 16-byte aligned), each output written
// by one thread; gout * (1 or 1/count) is rounded to float on the host, as on the CPU.
//
// Floating point: the device's expf (max 2 ulp, CUDA C Programming Guide, "Mathematical Functions")
// and nvcc's default FMA contraction make per-element terms differ from the CPU's by a few ulps;
// the tests document the tolerance (~1e-5 relative on losses, ~1e-6 on gradients).
#include <cmath>

#include "kernels/common/formulas.h"
#include "kernels/common/softmax_formulas.h"
#include "kernels/cuda/common.cuh"
#include "kernels/loss.h"

namespace ll::kernels::cuda {

namespace {

constexpr int kThreads = 256;  // every reduction kernel here assumes exactly this block size
constexpr int kWarps = kThreads / 32;
constexpr int64_t kPerBlock = 4096;
constexpr int kMaxPartials = 512;

// 1 for Sum, 1/count for Mean (NaN for an empty Mean, as the CPU and torch).
double reduction_scale(Reduction r, int64_t count) {
  return r == Reduction::Mean ? 1.0 / static_cast<double>(count) : 1.0;
}
float grad_scale(Reduction r, int64_t count, float gout) {
  return static_cast<float>(static_cast<double>(gout) * reduction_scale(r, count));
}

int partial_blocks(int64_t n) {
  const int64_t p = (n + kPerBlock - 1) / kPerBlock;
  return static_cast<int>(p < 1 ? 1 : (p > kMaxPartials ? kMaxPartials : p));
}

// Sum of one double per thread over the block, by a fixed tree: shuffles down within each warp
// (lane 0 ends with lanes 0..31 added pairwise in a fixed pattern), then warp 0 adds the 8 warp
// sums the same way. The result is valid in thread 0. Every thread of the block must call it.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kWarps];
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? warp_sums[lane] : 0.0;
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  }
  return v;
}

// Pass 1: each block's partial sum of term(i), or, when `partials` is null (one block), the loss.
template <typename Term>
__global__ void __launch_bounds__(kThreads)
    sum_terms(Term term, int64_t n, double* partials, float* loss, double scale) {
  double acc = 0.0;
  const int64_t stride = int64_t{kThreads} * gridDim.x;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += stride) {
    acc += term(i);
  }
  const double s = block_sum(acc);
  if (threadIdx.x == 0) {
    if (partials != nullptr) {
      partials[blockIdx.x] = s;
    } else {
      *loss = static_cast<float>(s * scale);
    }
  }
}

// Pass 2 (one block): loss = float(scale * sum of the `count` partials), in a fixed order.
__global__ void __launch_bounds__(kThreads)
    sum_partials(const double* partials, int64_t count, double scale, float* loss) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  const double s = block_sum(acc);
  if (threadIdx.x == 0) *loss = static_cast<float>(s * scale);
}

// The loss of n per-element terms, summed deterministically, onto the device float `loss`.
template <typename Term>
void reduce_to_loss(Term term, int64_t n, double scale, float* loss, Stream stream) {
  const int blocks = partial_blocks(n);
  if (blocks == 1) {
    sum_terms<<<1, kThreads, 0, stream>>>(term, n, nullptr, loss, scale);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  double* partials = static_cast<double*>(malloc_device(sizeof(double) * blocks, stream));
  sum_terms<<<blocks, kThreads, 0, stream>>>(term, n, partials, nullptr, scale);
  LL_CUDA_CHECK_LAUNCH();
  sum_partials<<<1, kThreads, 0, stream>>>(partials, blocks, scale, loss);
  LL_CUDA_CHECK_LAUNCH();
  free_device(partials);  // safe: allocated for `stream`, reused only behind these kernels
}

// ---- per-element terms ------------------------------------------------------------------------
struct BceTerm {
  const float* x;
  const float* t;
  __device__ double operator()(int64_t i) const {
    return static_cast<double>(f::bce_with_logits(x[i], t[i]));
  }
};

// The fused pass also writes dloss/dx (for gout = 1, scaled by k = 1 or 1/n) of element i.
struct BceFusedTerm {
  const float* x;
  const float* t;
  float* gx;
  float k;
  __device__ double operator()(int64_t i) const {
    float g;
    const float l = f::bce_with_logits_and_grad(x[i], t[i], g);
    gx[i] = g * k;
    return static_cast<double>(l);
  }
};

struct MseTerm {
  const float* x;
  const float* t;
  __device__ double operator()(int64_t i) const {
    return static_cast<double>(f::squared_error(x[i], t[i]));
  }
};

// ---- element-wise backwards: gx[i] = fn(x[i], t[i]), float4 when aligned ----------------------
struct BceGrad {
  float k;
  __device__ float operator()(float x, float t) const { return f::bce_with_logits_grad(x, t) * k; }
};
struct MseGrad {
  float k;
  __device__ float operator()(float x, float t) const { return f::squared_error_grad(x, t) * k; }
};
// Reduction::None's values: the same maps with the loss terms.
struct BceValue {
  __device__ float operator()(float x, float t) const { return f::bce_with_logits(x, t); }
};
struct MseValue {
  __device__ float operator()(float x, float t) const { return f::squared_error(x, t); }
};

template <typename Fn>
__global__ void __launch_bounds__(kThreads)
    binary_map(Fn fn, const float* __restrict__ x, const float* __restrict__ t,
               float* __restrict__ out, int64_t n, bool vec4) {
  const int64_t stride = int64_t{kThreads} * gridDim.x;
  const int64_t first = blockIdx.x * int64_t{kThreads} + threadIdx.x;
  int64_t tail = 0;
  if (vec4) {
    const int64_t n4 = n / 4;
    for (int64_t q = first; q < n4; q += stride) {
      const float4 a = reinterpret_cast<const float4*>(x)[q];
      const float4 b = reinterpret_cast<const float4*>(t)[q];
      reinterpret_cast<float4*>(out)[q] =
          make_float4(fn(a.x, b.x), fn(a.y, b.y), fn(a.z, b.z), fn(a.w, b.w));
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + first; i < n; i += stride) out[i] = fn(x[i], t[i]);
}

template <typename Fn>
void launch_binary_map(Fn fn, const float* x, const float* t, float* out, int64_t n,
                       Stream stream) {
  if (n <= 0) return;
  const bool vec4 = aligned16(x) && aligned16(t) && aligned16(out);
  binary_map<<<grid_for(vec4 ? (n + 3) / 4 : n, kThreads), kThreads, 0, stream>>>(fn, x, t, out, n,
                                                                                   vec4);
  LL_CUDA_CHECK_LAUNCH();
}

// ---- softmax cross-entropy: one warp per row --------------------------------------------------
struct RowStats {
  float max;
  double log_sum;  // log(sum_c exp(l_c - max))
};

// Called by all 32 lanes of a warp; every lane gets the row's statistics. The max is exact in any
// order; the sum of exp(l - max) is added per lane in index order, then by a fixed shuffle tree
// into lane 0 and broadcast.
__device__ RowStats warp_row_stats(const float* row, int64_t C, int lane) {
  float m = -INFINITY;
  for (int64_t c = lane; c < C; c += 32) m = row[c] > m ? row[c] : m;
  for (int off = 16; off > 0; off /= 2) {
    const float o = __shfl_xor_sync(0xffffffffu, m, off);
    m = o > m ? o : m;
  }
  double s = 0.0;
  for (int64_t c = lane; c < C; c += 32) s += static_cast<double>(f::softmax_shifted_exp(row[c], m));
  for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(0xffffffffu, s, off);
  s = __shfl_sync(0xffffffffu, s, 0);
  return {m, log(s)};
}

__global__ void __launch_bounds__(kThreads)
    softmax_ce_row_losses(const float* __restrict__ logits, const int32_t* __restrict__ labels,
                          int64_t N, int64_t C, double* __restrict__ row_loss) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t{kWarps} * gridDim.x;
  for (int64_t n = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32; n < N; n += warps) {
    const float* row = logits + n * C;
    const RowStats st = warp_row_stats(row, C, lane);
    if (lane == 0) {
      const int32_t y = labels[n];
      row_loss[n] = y >= 0 && y < C ? f::softmax_ce_row_loss(st.max, st.log_sum, row[y]) : NAN;
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    softmax_ce_grad(const float* __restrict__ logits, const int32_t* __restrict__ labels,
                    int64_t N, int64_t C, float k, float* __restrict__ gx) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t{kWarps} * gridDim.x;
  for (int64_t n = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32; n < N; n += warps) {
    const float* row = logits + n * C;
    float* grow = gx + n * C;
    const RowStats st = warp_row_stats(row, C, lane);
    const float log_sum = static_cast<float>(st.log_sum);
    const int32_t y = labels[n];
    const bool valid = y >= 0 && y < C;
    for (int64_t c = lane; c < C; c += 32) {
      grow[c] = valid ? f::softmax_ce_grad(row[c], st.max, log_sum, c == y) * k : NAN;
    }
  }
}

unsigned row_blocks(int64_t N) {
  const int64_t b = (N + kWarps - 1) / kWarps;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (int64_t{1} << 16) ? (int64_t{1} << 16) : b));
}

}  // namespace

void bce_with_logits_forward(const float* x, const float* target, int64_t n, Reduction r,
                             float* loss, Stream stream) {
  reduce_to_loss(BceTerm{x, target}, n, reduction_scale(r, n), loss, stream);
}

void bce_with_logits_backward(const float* x, const float* target, int64_t n, Reduction r,
                              float gout, float* gx, Stream stream) {
  launch_binary_map(BceGrad{grad_scale(r, n, gout)}, x, target, gx, n, stream);
}

void bce_with_logits_fused(const float* x, const float* target, int64_t n, Reduction r, float* loss,
                           float* gx, Stream stream) {
  if (gx == nullptr) {
    bce_with_logits_forward(x, target, n, r, loss, stream);
    return;
  }
  reduce_to_loss(BceFusedTerm{x, target, gx, grad_scale(r, n, 1.0f)}, n, reduction_scale(r, n),
                 loss, stream);
}

void mse_forward(const float* x, const float* target, int64_t n, Reduction r, float* loss,
                 Stream stream) {
  reduce_to_loss(MseTerm{x, target}, n, reduction_scale(r, n), loss, stream);
}

void mse_backward(const float* x, const float* target, int64_t n, Reduction r, float gout,
                  float* gx, Stream stream) {
  launch_binary_map(MseGrad{grad_scale(r, n, gout)}, x, target, gx, n, stream);
}

void bce_with_logits_elementwise(const float* x, const float* target, int64_t n, float* out, Stream stream) {
  launch_binary_map(BceValue{}, x, target, out, n, stream);
}

void mse_elementwise(const float* x, const float* target, int64_t n, float* out, Stream stream) {
  launch_binary_map(MseValue{}, x, target, out, n, stream);
}

void softmax_cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t C,
                                   Reduction r, float* loss, Stream stream) {
  const double scale = reduction_scale(r, N);
  if (N <= 0) {  // the empty sum: 0 (Sum) or NaN (Mean), as the CPU
    sum_partials<<<1, kThreads, 0, stream>>>(nullptr, 0, scale, loss);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  double* row_loss = static_cast<double*>(malloc_device(sizeof(double) * static_cast<size_t>(N), stream));
  softmax_ce_row_losses<<<row_blocks(N), kThreads, 0, stream>>>(logits, labels, N, C, row_loss);
  LL_CUDA_CHECK_LAUNCH();
  sum_partials<<<1, kThreads, 0, stream>>>(row_loss, N, scale, loss);
  LL_CUDA_CHECK_LAUNCH();
  free_device(row_loss);
}

void softmax_cross_entropy_backward(const float* logits, const int32_t* labels, int64_t N,
                                    int64_t C, Reduction r, float gout, float* gx, Stream stream) {
  if (N <= 0 || C <= 0) return;
  softmax_ce_grad<<<row_blocks(N), kThreads, 0, stream>>>(logits, labels, N, C,
                                                          grad_scale(r, N, gout), gx);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
