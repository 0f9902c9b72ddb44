// optim.cu: CUDA twins of the optimizer updates (kernels/optim.h): Adam/AdamW (adam_step and the
// multi-tensor adam_step_multi) and SGD with momentum, dampening, Nesterov and weight decay. The
// per-element arithmetic is ll::f::adam_update / ll::f::sgd_update (kernels/common/formulas.h,
// PyTorch's torch/optim/adam.py, adamw.py, sgd.py); the step-dependent coefficients come from the
// host (adam_coeffs), so a kernel only walks memory.
//
// Cost per element: Adam reads p, g, m, v and writes p, m, v: 28 bytes, about 16 FLOPs and one
// sqrt and two divisions. SGD reads p, g (and buf) and writes p (and buf): 12 bytes (20 with
// momentum), at most 6 FLOPs. Both are memory bound: on an H100 (3.35 TB/s) a 16M-parameter Adam
// step moves 470 MB, about 140 us at the bandwidth limit.
//
// Design.
// - adam_step_multi: the tensors are packed into a kernel-argument struct (up to kMaxTensors = 48
//   tensors, 2.1 KB of the 4 KB parameter space) together with the prefix sums of their block
//   counts. Each block updates one chunk of kChunk = 4096 elements of one tensor (256 threads, four
//   float4 per thread); it finds its tensor by a binary search over the prefix sums (uniform over
//   the block, so the indexed parameter loads do not diverge). A model with 20 parameter tensors
//   costs one launch instead of 20; more than 48 tensors, or more than kMaxBlocks blocks, start a
//   new launch. Very large tensors are cut into pieces at multiples of kChunk (alignment kept).
// - adam_step is adam_step_multi over one tensor: the same kernel, so the two are bitwise equal by
//   construction, and the float4 path of a single tensor is the same code as in the multi case.
// - float4 loads and stores when p, g, m and v are all 16-byte aligned (every chunk then starts
//   aligned: kChunk is a multiple of 4); otherwise, or for the last n % 4 elements, scalar.
// - sgd_step: a grid-stride loop, float4 when p, g (and buf) are aligned.
// Every element is read and written by exactly one thread: no reduction, deterministic.
//
// Floating point: nvcc contracts a * b + c into one FMA by default (-fmad=true); the CPU reference
// is built with -ffp-contract=off. Compiled with -fmad=false this file computes exactly the CPU's
// roundings (IEEE sqrtf and division are the defaults, -prec-sqrt=true -prec-div=true), so the
// results are bitwise the CPU's; with contraction they differ by a few ulps
// (tests/cuda/test_optim_cuda.cpp documents the tolerance).
#include <stdexcept>

#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"

namespace ll::kernels::cuda {

namespace {

constexpr int kMaxTensors = 48;
constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;             // elements per block: 256 threads x 4 float4
constexpr int64_t kMaxBlocks = int64_t{1} << 24;  // per launch (and per piece of one tensor)

static_assert(kChunk % (4 * kThreads) == 0, "a chunk is whole float4 rounds of the block");

struct AdamLaunch {
  AdamTensor t[kMaxTensors];
  int32_t first_block[kMaxTensors + 1];  // tensor i owns blocks [first_block[i], first_block[i+1])
  int32_t count;
};
static_assert(sizeof(AdamLaunch) <= 4096, "kernel parameters are limited to 4 KB");

__device__ __forceinline__ bool all_aligned16(const void* a, const void* b, const void* c,
                                              const void* d) {
  const uintptr_t bits = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) |
                         reinterpret_cast<uintptr_t>(c) | reinterpret_cast<uintptr_t>(d);
  return (bits & 15u) == 0;
}

// c_device: inside a CUDA graph the coefficients change from launch to launch (the step count, the
// learning rate), so they are read from device memory when non-null (engine/cuda_graph.h).
__global__ void __launch_bounds__(kThreads)
    adam_multi_kernel(f::AdamCoeffs c_arg, const f::AdamCoeffs* c_device, AdamLaunch L) {
  const f::AdamCoeffs c = c_device != nullptr ? *c_device : c_arg;
  const int32_t b = static_cast<int32_t>(blockIdx.x);
  // The tensor of this block: the last i with first_block[i] <= b (first_block is nondecreasing
  // and no tensor in the launch is empty, so it is strictly increasing).
  int lo = 0, hi = L.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (L.first_block[mid] <= b) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const AdamTensor T = L.t[lo];
  const int64_t begin = static_cast<int64_t>(b - L.first_block[lo]) * kChunk;
  const int64_t end = begin + kChunk < T.n ? begin + kChunk : T.n;
  const int64_t tid = threadIdx.x;

  if (all_aligned16(T.p, T.g, T.m, T.v)) {
    const int64_t end4 = begin + (end - begin) / 4 * 4;  // begin is a multiple of 4
    for (int64_t i = begin + 4 * tid; i < end4; i += 4 * int64_t{kThreads}) {
      float4 p = *reinterpret_cast<const float4*>(T.p + i);
      const float4 g = *reinterpret_cast<const float4*>(T.g + i);
      float4 m = *reinterpret_cast<const float4*>(T.m + i);
      float4 v = *reinterpret_cast<const float4*>(T.v + i);
      f::adam_update(c, p.x, g.x, m.x, v.x);
      f::adam_update(c, p.y, g.y, m.y, v.y);
      f::adam_update(c, p.z, g.z, m.z, v.z);
      f::adam_update(c, p.w, g.w, m.w, v.w);
      *reinterpret_cast<float4*>(T.p + i) = p;
      *reinterpret_cast<float4*>(T.m + i) = m;
      *reinterpret_cast<float4*>(T.v + i) = v;
    }
    const int64_t i = end4 + tid;  // at most 3 elements left, in the tensor's last chunk
    if (i < end) f::adam_update(c, T.p[i], T.g[i], T.m[i], T.v[i]);
  } else {
    for (int64_t i = begin + tid; i < end; i += kThreads) {
      f::adam_update(c, T.p[i], T.g[i], T.m[i], T.v[i]);
    }
  }
}

template <bool kHasBuf>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(f::SgdCoeffs c, float* __restrict__ p, const float* __restrict__ g,
               float* __restrict__ buf, int64_t n, bool vec4) {
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  const int64_t first = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  int64_t tail = 0;  // where the scalar loop starts
  if (vec4) {
    const int64_t n4 = n / 4;
    for (int64_t q = first; q < n4; q += stride) {
      float4 pv = reinterpret_cast<const float4*>(p)[q];
      const float4 gv = reinterpret_cast<const float4*>(g)[q];
      float4 bv = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // untouched without momentum
      if (kHasBuf) bv = reinterpret_cast<const float4*>(buf)[q];
      f::sgd_update(c, pv.x, gv.x, bv.x);
      f::sgd_update(c, pv.y, gv.y, bv.y);
      f::sgd_update(c, pv.z, gv.z, bv.z);
      f::sgd_update(c, pv.w, gv.w, bv.w);
      reinterpret_cast<float4*>(p)[q] = pv;
      if (kHasBuf) reinterpret_cast<float4*>(buf)[q] = bv;
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + first; i < n; i += stride) {
    float unused = 0.0f;  // sgd_update touches buf only when momentum != 0
    f::sgd_update(c, p[i], g[i], kHasBuf ? buf[i] : unused);
  }
}

void launch_adam(const f::AdamCoeffs& c, const f::AdamCoeffs* c_device, AdamLaunch& L, int64_t blocks,
                 Stream stream) {
  if (L.count == 0) return;
  L.first_block[L.count] = static_cast<int32_t>(blocks);
  adam_multi_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(c, c_device, L);
  LL_CUDA_CHECK_LAUNCH();
  L.count = 0;
}

}  // namespace

void adam_step_multi(const f::AdamCoeffs& c, const AdamTensor* tensors, int64_t count, Stream stream,
                     const f::AdamCoeffs* coeffs_device) {
  AdamLaunch L{};
  L.count = 0;
  int64_t blocks = 0;  // in the launch being packed
  for (int64_t k = 0; k < count; ++k) {
    const AdamTensor& t = tensors[k];
    // Pieces of at most kMaxBlocks chunks, cut at multiples of kChunk so alignment is kept.
    for (int64_t offset = 0; offset < t.n; offset += kMaxBlocks * kChunk) {
      const int64_t n = t.n - offset < kMaxBlocks * kChunk ? t.n - offset : kMaxBlocks * kChunk;
      const int64_t nb = (n + kChunk - 1) / kChunk;
      if (L.count == kMaxTensors || blocks + nb > kMaxBlocks) {
        launch_adam(c, coeffs_device, L, blocks, stream);
        blocks = 0;
      }
      L.t[L.count] = AdamTensor{t.p + offset, t.g + offset, t.m + offset, t.v + offset, n};
      L.first_block[L.count] = static_cast<int32_t>(blocks);
      ++L.count;
      blocks += nb;
    }
  }
  launch_adam(c, coeffs_device, L, blocks, stream);
}

void adam_step(const f::AdamCoeffs& c, float* p, const float* g, float* m, float* v, int64_t n,
               Stream stream) {
  const AdamTensor t{p, g, m, v, n};
  adam_step_multi(c, &t, 1, stream);
}

void sgd_step(const f::SgdCoeffs& c, float* p, const float* g, float* buf, int64_t n,
              Stream stream) {
  if (buf == nullptr && c.momentum != 0.0f) {
    throw std::invalid_argument("sgd_step: momentum needs a momentum buffer");
  }
  if (n <= 0) return;
  // Without momentum the buffer is never touched (as on the CPU): leave it out of the traffic.
  if (c.momentum == 0.0f) buf = nullptr;
  const bool vec4 = aligned16(p) && aligned16(g) && (buf == nullptr || aligned16(buf));
  const unsigned grid = grid_for(vec4 ? (n + 3) / 4 : n, kThreads);
  if (buf != nullptr) {
    sgd_kernel<true><<<grid, kThreads, 0, stream>>>(c, p, g, buf, n, vec4);
  } else {
    sgd_kernel<false><<<grid, kThreads, 0, stream>>>(c, p, g, buf, n, vec4);
  }
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
