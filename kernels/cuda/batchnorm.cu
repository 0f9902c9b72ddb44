// batchnorm.cu: CUDA twins of batch normalization (kernels/batchnorm.h; Ioffe & Szegedy 2015) over
// x viewed as (N, C, inner): training forward (batch statistics, running buffers), eval forward,
// the two backwards, and the two pieces of synchronized BatchNorm (batchnorm_moments: passes 1 and
// 2 below with the shard's mean and variance as the result; batchnorm_backward_input: pass 3 with
// the batch's sums). Per-element and per-channel arithmetic: kernels/common/batchnorm_formulas.h.
//
// Cost, with E = N * C * inner elements (M = N * inner per channel):
// - forward_train: reads x twice (statistics, then normalization) and writes y: 12E bytes, ~10
//   FP64 operations per element for the statistics (a Welford update) and 4 FLOPs for y.
// - forward_eval: reads x, writes y: 8E bytes, 4 FLOPs per element.
// - backward_train: reads x and gy twice (the two channel sums, then gx) and writes gx: 20E bytes
//   (8E without gx), ~6 FLOPs per element. backward_eval: 8E for the sums, 8E for gx.
// So all four are memory bound: at the DCGAN-64 generator's last BatchNorm (128, 64, 32 x 32),
// E = 8.4M, a training forward moves 101 MB, about 30 us at an H100's 3.35 TB/s.
//
// Design. Every op is at most three launches:
// 1. Channel reduction (the statistics of the forward; sum gy and sum gy * xhat of the backwards),
//    deterministic and accumulated in double. Each channel's M values are cut into a number of
//    parts that depends only on the shape; each part is reduced by one block with a fixed tree and
//    written to scratch memory (the caching allocator), then pass 2 merges a channel's parts in a
//    fixed order. Two layouts:
//    - "planes" (inner >= 32, e.g. BatchNorm2d): grid (C, K), the channel's M values split into
//      K = ceil(M / 8192) (at most 1024) contiguous chunks of its flat index j = n * inner + i. A
//      block's 256 threads take j = j0 + t, j0 + t + 256, ... (consecutive threads read consecutive
//      floats of a row: coalesced), stepping (n, i) without divisions. For (128, 64, 1024) that is
//      64 x 16 = 1024 blocks instead of 64, one per channel.
//    - "columns" (inner < 32, e.g. BatchNorm1d on (N, C), where inner = 1 and a channel's values
//      are strided by C): x is a (N, Q = C * inner) row-major matrix; a block is bx x by threads
//      (bx = min(32, Q rounded up to a power of 2) consecutive columns, by = 256 / bx row lanes),
//      grid (ceil(Q / bx), K row chunks); each thread reduces one column over its rows, so a warp
//      reads consecutive floats of a row; the by lanes of a column are merged by a fixed tree in
//      shared memory. A channel's parts are its inner columns times the K row chunks.
//    Within a thread the values are reduced in index order; across threads by fixed trees (warp
//    shuffles down to lane 0, or a shared-memory halving tree); pass 2 is one warp per channel: lane
//    l merges parts l, l + 32, ... in order, then a fixed shuffle tree. No atomics, no dependence
//    on timing: the same inputs give the same bits on every run.
//    Statistics use Welford's algorithm (B. P. Welford 1962, "Note on a method for calculating
//    corrected sums of squares and products") per thread, and partial (count, mean, M2) triples are
//    merged with the formula of Chan, Golub & LeVeque (1979, "Updating formulae and a pairwise
//    algorithm for computing sample variances"): n = na + nb, d = mean_b - mean_a,
//    mean = mean_a + d nb / n, M2 = M2a + M2b + d^2 na nb / n. All in double, so the mean and the
//    biased variance agree with the CPU's two-pass float64 values to ~1e-15 relative before they
//    are rounded to float.
// 2. Pass 2 (one warp per channel) also turns the channel's result into its scalars: save_mean,
//    save_invstd and the running buffers (forward); ggamma, gbeta and mean(gy), mean(gy xhat)
//    (backward).
// 3. Element-wise pass (y, or gx): x seen as (N, Q = C * inner); each thread owns one column (four
//    consecutive ones, with float4 loads and stores, when inner % 4 == 0 and the pointers are
//    16-byte aligned), loads its channel's scalars once, and walks the rows n = blockIdx.y,
//    blockIdx.y + gridDim.y, ... Coalesced for every inner, with no per-element division.
//
// Floating point: the element-wise formulas are ll::f's; nvcc contracts a * b + c into FMA by
// default, so y and gx may differ from the CPU's by about an ulp (the tests allow 1e-5).
#include <cmath>

#include "kernels/batchnorm.h"
#include "kernels/common/batchnorm_formulas.h"
#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kPlanesMinInner = 32;   // below: the "columns" layout
constexpr int64_t kPlaneChunk = 8192;     // values per block in the planes layout (32 per thread)
constexpr int64_t kMaxPlaneChunks = 1024;
constexpr int64_t kRowsPerThread = 8;     // rows per thread in the columns layout
constexpr int64_t kMaxGridY = 65535;

// ---- accumulators ---------------------------------------------------------------------------
// A default-initialized accumulator ({}) is the empty one. Both are trivial types so that they can
// live in shared memory.

// Welford's running (count, mean, M2 = sum of squared deviations from the mean).
struct Welford {
  double n, mean, m2;
};
__device__ __forceinline__ void welford_push(Welford& a, double x) {
  a.n += 1.0;
  const double d = x - a.mean;
  a.mean += d / a.n;
  a.m2 += d * (x - a.mean);
}
// Chan, Golub & LeVeque's merge; a is the part with the lower indices. Merging with an empty part
// returns the other one unchanged.
__device__ __forceinline__ Welford merge(const Welford& a, const Welford& b) {
  if (b.n == 0.0) return a;
  if (a.n == 0.0) return b;
  const double n = a.n + b.n;
  const double d = b.mean - a.mean;
  const double wb = b.n / n;
  return {n, a.mean + d * wb, a.m2 + b.m2 + d * d * a.n * wb};
}
__device__ __forceinline__ Welford shfl_down(const Welford& a, int off) {
  return {__shfl_down_sync(0xffffffffu, a.n, off), __shfl_down_sync(0xffffffffu, a.mean, off),
          __shfl_down_sync(0xffffffffu, a.m2, off)};
}

// The backward's two channel sums: sum gy and sum gy * xhat.
struct Sums {
  double gy, gy_xhat;
};
__device__ __forceinline__ Sums merge(const Sums& a, const Sums& b) {
  return {a.gy + b.gy, a.gy_xhat + b.gy_xhat};
}
__device__ __forceinline__ Sums shfl_down(const Sums& a, int off) {
  return {__shfl_down_sync(0xffffffffu, a.gy, off), __shfl_down_sync(0xffffffffu, a.gy_xhat, off)};
}

// Lane 0 ends with lanes 0..31 merged by a fixed tree (lane l takes lane l + off, lower first).
template <typename Acc>
__device__ __forceinline__ Acc warp_merge(Acc a) {
  for (int off = 16; off > 0; off /= 2) a = merge(a, shfl_down(a, off));
  return a;
}

// Thread 0 ends with the block's kThreads accumulators merged: each warp's by warp_merge, then the
// kWarps warp results by warp 0 the same way. Every thread of the block must call it.
template <typename Acc>
__device__ Acc block_merge(Acc a) {
  __shared__ Acc warp_acc[kWarps];
  a = warp_merge(a);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_acc[warp] = a;
  __syncthreads();
  if (warp == 0) {
    a = lane < kWarps ? warp_acc[lane] : Acc{};
    a = warp_merge(a);
  }
  return a;
}

// ---- what the reductions read ---------------------------------------------------------------
// A source gives the per-channel constants (channel(c)) and adds element j to an accumulator.

struct StatsSource {
  using Acc = Welford;
  struct Channel {};
  const float* x;
  __device__ Channel channel(int64_t) const { return {}; }
  __device__ void push(Acc& a, const Channel&, int64_t j) const {
    welford_push(a, static_cast<double>(x[j]));
  }
};

// sum gy and sum gy * xhat with xhat = (x - mean) * invstd, as the CPU: the product in double of
// gy and the float xhat. Training reads the saved statistics; eval (invstd == nullptr) the running
// mean and 1 / sqrt(running_var + eps).
struct GradSource {
  using Acc = Sums;
  struct Channel {
    float mean, invstd;
  };
  const float* x;
  const float* gy;
  const float* mean;
  const float* invstd;
  const float* running_var;
  float eps;
  __device__ Channel channel(int64_t c) const {
    return {mean[c], invstd != nullptr ? invstd[c]
                                       : static_cast<float>(f::bn_invstd(running_var[c], eps))};
  }
  __device__ void push(Acc& a, const Channel& ch, int64_t j) const {
    const double g = static_cast<double>(gy[j]);
    a.gy += g;
    a.gy_xhat += g * static_cast<double>(f::bn_xhat(x[j], ch.mean, ch.invstd));
  }
};

// ---- pass 1: the parts of each channel ------------------------------------------------------

// "planes": block (c, k) reduces values j in [k * chunk, (k + 1) * chunk) of channel c, where
// value j of the channel is x[(n * C + c) * inner + i], n = j / inner, i = j % inner.
// out[c * K + k], K = gridDim.y.
template <typename Src>
__global__ void __launch_bounds__(kThreads)
    reduce_planes(Src src, int64_t N, int64_t C, int64_t inner, int64_t chunk,
                  typename Src::Acc* __restrict__ out) {
  using Acc = typename Src::Acc;
  const int64_t c = blockIdx.x, k = blockIdx.y;
  const int64_t M = N * inner;
  const int64_t j0 = k * chunk;
  const int64_t j1 = j0 + chunk < M ? j0 + chunk : M;
  const typename Src::Channel ch = src.channel(c);
  Acc acc{};
  int64_t j = j0 + threadIdx.x;
  if (j < j1) {
    // (n, i) of j, then advanced by kThreads values per step: n += kThreads / inner,
    // i += kThreads % inner, carrying at most once since i < inner before the step.
    int64_t n = j / inner, i = j - n * inner;
    const int64_t dn = kThreads / inner, di = kThreads % inner;
    for (; j < j1; j += kThreads) {
      src.push(acc, ch, (n * C + c) * inner + i);
      n += dn;
      i += di;
      if (i >= inner) {
        i -= inner;
        ++n;
      }
    }
  }
  acc = block_merge(acc);
  if (threadIdx.x == 0) out[c * gridDim.y + k] = acc;
}

// "columns": x as (N, Q) with Q = C * inner; thread (tx, ty) of block (bx_i, k) reduces column
// q = bx_i * blockDim.x + tx over rows n = k * rows + ty, + blockDim.y, ... (< min(N, (k+1) rows)).
// out[q * K + k], K = gridDim.y, so channel c's parts are out[c * inner * K .. (c+1) * inner * K).
template <typename Src>
__global__ void __launch_bounds__(kThreads)
    reduce_columns(Src src, int64_t N, int64_t Q, int64_t inner, int64_t rows,
                   typename Src::Acc* __restrict__ out) {
  using Acc = typename Src::Acc;
  __shared__ Acc part[kThreads];
  const int bx = blockDim.x, by = blockDim.y;  // bx * by == kThreads, both powers of 2
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t q = blockIdx.x * int64_t{bx} + tx;
  const int64_t k = blockIdx.y;
  Acc acc{};
  if (q < Q) {
    const typename Src::Channel ch = src.channel(q / inner);
    const int64_t n0 = k * rows;
    const int64_t n1 = n0 + rows < N ? n0 + rows : N;
    for (int64_t n = n0 + ty; n < n1; n += by) src.push(acc, ch, n * Q + q);
  }
  part[ty * bx + tx] = acc;
  __syncthreads();
  for (int s = by / 2; s > 0; s /= 2) {
    if (ty < s) part[ty * bx + tx] = merge(part[ty * bx + tx], part[(ty + s) * bx + tx]);
    __syncthreads();
  }
  if (ty == 0 && q < Q) out[q * gridDim.y + k] = part[tx];
}

// ---- pass 2: one warp per channel merges its `parts` accumulators and finishes ---------------
template <typename Acc, typename Finish>
__global__ void __launch_bounds__(kThreads)
    finish_channels(const Acc* __restrict__ in, int64_t C, int64_t parts, Finish finish) {
  const int lane = threadIdx.x % 32;
  const int64_t c = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  if (c >= C) return;  // the whole warp
  Acc a{};
  for (int64_t t = lane; t < parts; t += 32) a = merge(a, in[c * parts + t]);
  a = warp_merge(a);
  if (lane == 0) finish(c, a);
}

// Forward: the float statistics (CPU: save_mean = float(mean), save_invstd = float(1/sqrt(var +
// eps)) from the double mean and biased variance) and PyTorch's running-buffer update.
struct FinishStats {
  int64_t M;
  float eps, momentum;
  float* running_mean;
  float* running_var;
  float* save_mean;
  float* save_invstd;
  __device__ void operator()(int64_t c, const Welford& a) const {
    const double mean = a.mean;
    const double var = a.m2 / a.n;  // biased; a.n == M
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = static_cast<float>(f::bn_invstd(var, eps));
    if (running_mean != nullptr) {
      running_mean[c] = static_cast<float>(f::bn_running_update(running_mean[c], mean, momentum));
    }
    if (running_var != nullptr) {
      running_var[c] = static_cast<float>(
          f::bn_running_update(running_var[c], f::bn_unbiased_var(var, M), momentum));
    }
  }
};

// Synchronized BatchNorm's shard statistics: the mean and the biased variance (0 and 0 when the
// shard is empty, as the CPU).
struct FinishMoments {
  float* mean;
  float* var;
  __device__ void operator()(int64_t c, const Welford& a) const {
    mean[c] = a.n > 0.0 ? static_cast<float>(a.mean) : 0.0f;
    var[c] = a.n > 0.0 ? static_cast<float>(a.m2 / a.n) : 0.0f;
  }
};

// Backward: ggamma = sum gy xhat, gbeta = sum gy (each may be nullptr) and, for the training gx,
// mean(gy) and mean(gy xhat) rounded to float (nullptr in eval).
struct FinishGrad {
  int64_t M;
  float* ggamma;
  float* gbeta;
  float* mean_gy;
  float* mean_gy_xhat;
  __device__ void operator()(int64_t c, const Sums& a) const {
    if (ggamma != nullptr) ggamma[c] = static_cast<float>(a.gy_xhat);
    if (gbeta != nullptr) gbeta[c] = static_cast<float>(a.gy);
    if (mean_gy != nullptr) {
      mean_gy[c] = static_cast<float>(a.gy / static_cast<double>(M));
      mean_gy_xhat[c] = static_cast<float>(a.gy_xhat / static_cast<double>(M));
    }
  }
};

// Passes 1 and 2 for one source; the layout and the parts per channel depend only on the shape.
template <typename Src, typename Finish>
void reduce_channels(const BatchNormShape& s, const Src& src, const Finish& finish, Stream stream) {
  using Acc = typename Src::Acc;
  const int64_t M = s.N * s.inner;
  int64_t parts = 0;  // per channel
  if (s.inner >= kPlanesMinInner) {
    int64_t K = (M + kPlaneChunk - 1) / kPlaneChunk;
    K = K < 1 ? 1 : (K > kMaxPlaneChunks ? kMaxPlaneChunks : K);
    const int64_t chunk = (M + K - 1) / K;
    parts = K;
    DeviceScratch acc(sizeof(Acc) * static_cast<size_t>(s.C * parts), stream);
    Acc* accs = static_cast<Acc*>(acc.p);
    reduce_planes<<<dim3(static_cast<unsigned>(s.C), static_cast<unsigned>(K)), kThreads, 0,
                    stream>>>(src, s.N, s.C, s.inner, chunk, accs);
    LL_CUDA_CHECK_LAUNCH();
    finish_channels<<<static_cast<unsigned>((s.C + kWarps - 1) / kWarps), kThreads, 0, stream>>>(
        accs, s.C, parts, finish);
    LL_CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t Q = s.C * s.inner;
  int bx = 1;
  while (bx < 32 && bx < Q) bx *= 2;
  const int by = kThreads / bx;
  int64_t rows = by * kRowsPerThread;
  int64_t K = (s.N + rows - 1) / rows;
  if (K > kMaxGridY) {
    rows = (s.N + kMaxGridY - 1) / kMaxGridY;
    K = (s.N + rows - 1) / rows;
  }
  if (K < 1) K = 1;
  parts = s.inner * K;
  DeviceScratch acc(sizeof(Acc) * static_cast<size_t>(Q * K), stream);
  Acc* accs = static_cast<Acc*>(acc.p);
  // Q == 0 (inner == 0: an empty batch or plane) still launches one block column, so that pass 2
  // writes the empty sums (0), as the CPU does, instead of failing on a zero-sized grid.
  const dim3 grid(static_cast<unsigned>(Q > 0 ? (Q + bx - 1) / bx : 1), static_cast<unsigned>(K));
  reduce_columns<<<grid, dim3(bx, by), 0, stream>>>(src, s.N, Q, s.inner, rows, accs);
  LL_CUDA_CHECK_LAUNCH();
  finish_channels<<<static_cast<unsigned>((s.C + kWarps - 1) / kWarps), kThreads, 0, stream>>>(
      accs, s.C, parts, finish);
  LL_CUDA_CHECK_LAUNCH();
}

// ---- pass 3: element-wise -------------------------------------------------------------------
// An op gives its channel constants (channel(c)), the update of one element (one) or of four
// consecutive elements of the same channel at a 16-byte aligned index (four), and, on the host,
// whether its arrays allow float4 (aligned()).

__device__ __forceinline__ float4 load4(const float* p, int64_t j) {
  return *reinterpret_cast<const float4*>(p + j);
}
__device__ __forceinline__ void store4(float* p, int64_t j, float4 v) {
  *reinterpret_cast<float4*>(p + j) = v;
}

// y = (x - mean) * invstd * gamma + beta with the batch statistics (train) or the running ones
// (eval: invstd == nullptr, computed from running_var as the CPU does).
struct ForwardOp {
  struct Channel {
    float mean, invstd, g, b;
  };
  const float* x;
  float* y;
  const float* gamma;
  const float* beta;
  const float* mean;
  const float* invstd;
  const float* running_var;
  float eps;
  __device__ Channel channel(int64_t c) const {
    return {mean[c],
            invstd != nullptr ? invstd[c] : static_cast<float>(f::bn_invstd(running_var[c], eps)),
            gamma != nullptr ? gamma[c] : 1.0f, beta != nullptr ? beta[c] : 0.0f};
  }
  __device__ float at(const Channel& ch, float v) const {
    return f::bn_forward(v, ch.mean, ch.invstd, ch.g, ch.b);
  }
  __device__ void one(const Channel& ch, int64_t j) const { y[j] = at(ch, x[j]); }
  __device__ void four(const Channel& ch, int64_t j) const {
    const float4 v = load4(x, j);
    store4(y, j, make_float4(at(ch, v.x), at(ch, v.y), at(ch, v.z), at(ch, v.w)));
  }
  bool aligned() const { return aligned16(x) && aligned16(y); }
};

// Training gx = (gy - mean(gy) - xhat mean(gy xhat)) * gamma * invstd.
struct GradTrainOp {
  struct Channel {
    float mean, invstd, mean_gy, mean_gy_xhat, scale;
  };
  const float* x;
  const float* gy;
  float* gx;
  const float* gamma;
  const float* save_mean;
  const float* save_invstd;
  const float* mean_gy;
  const float* mean_gy_xhat;
  const float* var;  // used when save_invstd == nullptr (synchronized BatchNorm): invstd from var
  float eps;
  __device__ Channel channel(int64_t c) const {
    const float invstd = save_invstd != nullptr ? save_invstd[c]
                                                : static_cast<float>(f::bn_invstd(var[c], eps));
    return {save_mean[c], invstd, mean_gy[c], mean_gy_xhat[c],
            (gamma != nullptr ? gamma[c] : 1.0f) * invstd};
  }
  __device__ float at(const Channel& ch, float xv, float g) const {
    return f::bn_backward_train_gx(g, f::bn_xhat(xv, ch.mean, ch.invstd), ch.mean_gy,
                                   ch.mean_gy_xhat, ch.scale);
  }
  __device__ void one(const Channel& ch, int64_t j) const { gx[j] = at(ch, x[j], gy[j]); }
  __device__ void four(const Channel& ch, int64_t j) const {
    const float4 a = load4(x, j), g = load4(gy, j);
    store4(gx, j, make_float4(at(ch, a.x, g.x), at(ch, a.y, g.y), at(ch, a.z, g.z),
                              at(ch, a.w, g.w)));
  }
  bool aligned() const { return aligned16(x) && aligned16(gy) && aligned16(gx); }
};

// Eval gx = gy * gamma / sqrt(running_var + eps).
struct GradEvalOp {
  struct Channel {
    float scale;
  };
  const float* gy;
  float* gx;
  const float* gamma;
  const float* running_var;
  float eps;
  __device__ Channel channel(int64_t c) const {
    const float invstd = static_cast<float>(f::bn_invstd(running_var[c], eps));
    return {(gamma != nullptr ? gamma[c] : 1.0f) * invstd};
  }
  __device__ void one(const Channel& ch, int64_t j) const { gx[j] = gy[j] * ch.scale; }
  __device__ void four(const Channel& ch, int64_t j) const {
    const float4 g = load4(gy, j);
    store4(gx, j, make_float4(g.x * ch.scale, g.y * ch.scale, g.z * ch.scale, g.w * ch.scale));
  }
  bool aligned() const { return aligned16(gy) && aligned16(gx); }
};

// Thread t of block (bx_i, ny) owns column q = (bx_i * kThreads + t) * kWidth (kWidth consecutive
// columns of one channel) and walks rows n = ny, ny + gridDim.y, ... < N.
template <typename Op, int kWidth>
__global__ void __launch_bounds__(kThreads) apply_columns(Op op, int64_t N, int64_t Q, int64_t inner) {
  const int64_t q = (blockIdx.x * int64_t{kThreads} + threadIdx.x) * kWidth;
  if (q >= Q) return;
  const typename Op::Channel ch = op.channel(q / inner);
  for (int64_t n = blockIdx.y; n < N; n += gridDim.y) {
    if constexpr (kWidth == 4) {
      op.four(ch, n * Q + q);
    } else {
      op.one(ch, n * Q + q);
    }
  }
}

template <typename Op>
void apply(const BatchNormShape& s, const Op& op, Stream stream) {
  const int64_t Q = s.C * s.inner;
  if (s.N <= 0 || Q <= 0) return;
  // float4: four consecutive columns then share a channel and every row starts 16-byte aligned.
  const bool vec4 = s.inner % 4 == 0 && op.aligned();
  const int64_t width = vec4 ? 4 : 1;
  const int64_t grid_x = (Q + kThreads * width - 1) / (kThreads * width);
  // Rows per grid line: enough blocks to fill the device (about 2048), each thread at least one
  // row; the split depends only on the shape.
  int64_t grid_y = 2048 / grid_x;
  grid_y = grid_y < 1 ? 1 : grid_y;
  grid_y = grid_y > s.N ? s.N : grid_y;
  grid_y = grid_y > kMaxGridY ? kMaxGridY : grid_y;
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));
  if (vec4) {
    apply_columns<Op, 4><<<grid, kThreads, 0, stream>>>(op, s.N, Q, s.inner);
  } else {
    apply_columns<Op, 1><<<grid, kThreads, 0, stream>>>(op, s.N, Q, s.inner);
  }
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace

void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             Stream stream) {
  if (s.C <= 0) return;
  // Phase 3 needs the float statistics: in the caller's save buffers, or in scratch (no_grad).
  DeviceScratch local(save_mean == nullptr || save_invstd == nullptr
                    ? 2 * sizeof(float) * static_cast<size_t>(s.C)
                    : 0,
                stream);
  if (local.p != nullptr) {
    save_mean = static_cast<float*>(local.p);
    save_invstd = save_mean + s.C;
  }
  reduce_channels(s, StatsSource{x},
                  FinishStats{s.N * s.inner, eps, momentum, running_mean, running_var, save_mean,
                              save_invstd},
                  stream);
  apply(s, ForwardOp{x, y, gamma, beta, save_mean, save_invstd, nullptr, eps}, stream);
}

void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, Stream stream) {
  if (s.C <= 0) return;
  apply(s, ForwardOp{x, y, gamma, beta, running_mean, nullptr, running_var, eps}, stream);
}

void batchnorm_backward_train(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* save_mean, const float* save_invstd,
                              float* gx, float* ggamma, float* gbeta, Stream stream) {
  if (s.C <= 0 || (gx == nullptr && ggamma == nullptr && gbeta == nullptr)) return;
  const int64_t M = s.N * s.inner;
  // mean(gy) and mean(gy xhat) per channel, for gx.
  DeviceScratch means(gx != nullptr ? 2 * sizeof(float) * static_cast<size_t>(s.C) : 0, stream);
  float* mean_gy = static_cast<float*>(means.p);
  float* mean_gy_xhat = mean_gy != nullptr ? mean_gy + s.C : nullptr;
  reduce_channels(s, GradSource{x, gy, save_mean, save_invstd, nullptr, 0.0f},
                  FinishGrad{M, ggamma, gbeta, mean_gy, mean_gy_xhat}, stream);
  if (gx == nullptr) return;
  apply(s,
        GradTrainOp{x, gy, gx, gamma, save_mean, save_invstd, mean_gy, mean_gy_xhat, nullptr, 0.0f},
        stream);
}

void batchnorm_backward_eval(const BatchNormShape& s, const float* x, const float* gy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* gx, float* ggamma,
                             float* gbeta, Stream stream) {
  if (s.C <= 0) return;
  if (ggamma != nullptr || gbeta != nullptr) {
    reduce_channels(s, GradSource{x, gy, running_mean, nullptr, running_var, eps},
                    FinishGrad{s.N * s.inner, ggamma, gbeta, nullptr, nullptr}, stream);
  }
  if (gx != nullptr) apply(s, GradEvalOp{gy, gx, gamma, running_var, eps}, stream);
}

void batchnorm_moments(const BatchNormShape& s, const float* x, float* mean, float* var,
                       Stream stream) {
  if (s.C <= 0) return;
  reduce_channels(s, StatsSource{x}, FinishMoments{mean, var}, stream);
}

void batchnorm_backward_input(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* mean, const float* var, float eps,
                              const float* mean_gy, const float* mean_gy_xhat, float* gx,
                              Stream stream) {
  if (s.C <= 0) return;
  apply(s, GradTrainOp{x, gy, gx, gamma, mean, nullptr, mean_gy, mean_gy_xhat, var, eps}, stream);
}

}  // namespace ll::kernels::cuda
