// vae.cu: the CUDA twins of the VAE kernels (kernels/vae.h).
//   reparam_forward    z = mu + exp(logvar / 2) * eps, eps_i = normal number philox.offset + i
//   reparam_backward   gmu = gz; glogvar = gz * 0.5 * exp(logvar / 2) * eps (eps regenerated)
//   kl_normal_fused    loss = weight * sum_i kl_normal(mu_i, logvar_i), and optionally
//                      gmu = weight * mu, glogvar = weight * 0.5 * (exp(logvar) - 1)
// The formulas are ll::f:: of kernels/common/formulas.h (Kingma & Welling 2014, sec. 2.4 and
// appendix B), the functions the CPU reference calls.
//
// Work per call (n latent values):
//   reparam_forward    reads mu, logvar (8 n bytes), writes z (4 n); 1 expf + 2 flops per element
//                      and a Philox block + 2 Box-Muller pairs per 4 elements
//   reparam_backward   reads logvar, gz (8 n), writes gmu, glogvar (8 n); as above
//   kl_normal_fused    reads mu, logvar (8 n), writes gmu, glogvar (8 n) when asked; 2 expf and
//                      ~10 flops per element. The VAE's shapes are tiny ((128, 20) = 2560
//                      values): there a call is one launch (or two) of a few microseconds, bound by
//                      launch latency, not by bandwidth.
//
// Design:
// - reparam: one thread per Philox block (grid-stride), the block's 4 normals from
//   curand_init(seed, subsequence, 4 * block) + curand_normal4: the layout of the CPU
//   (kernels/cpu/philox_loop.h, random.cu): same raw numbers; the normals agree to ~1e-5 absolute
//   (cuRAND's __sincosf). float4 loads and stores for whole blocks when philox.offset % 4 == 0 and
//   all pointers are 16-byte aligned; lane by lane otherwise (and in partial first/last blocks).
//   The backward regenerates the forward's eps from the same stream and writes gmu in the same pass.
// - kl_normal_fused: ONE pass over (mu, logvar) computes the terms and writes both gradients: a
//   block of 256 threads per chunk of 4096 values (the CPU's chunk, kernels/cpu/parallel.h),
//   thread t taking the float4 groups t, t + 256, ... (float4 loads/stores when aligned, four
//   scalars otherwise: the same additions), adding the float terms in float64, then a fixed tree
//   over the block (warp shuffles, then the 8 warp sums in order). Inputs of one chunk write the
//   loss directly; otherwise one float64 partial per chunk goes to scratch memory and a one-block
//   kernel adds them by the same fixed pattern and writes loss = (float)(weight * sum), as the CPU.
//   No atomics; the result depends on n only: deterministic, and within float64 rounding of the
//   CPU's sum before the final rounding to float.
// Parity with the CPU: expf is CUDA's (2 ulp) on the GPU, libm's on the CPU, and nvcc may contract
// mu + sigma * eps and 1 + logvar - mu * mu into fused multiply-adds (-fmad=true by default; the CPU
// builds with -ffp-contract=off): each value agrees to a few ulps, eps to ~1e-5 absolute.
#include "kernels/vae.h"

#include <curand_kernel.h>

#include "kernels/common/formulas.h"
#include "kernels/common/random_formulas.h"
#include "kernels/cuda/block_sum.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/philox.cuh"

namespace ll::kernels::cuda {

namespace {

using detail::block_normal4;
using detail::philox_blocks;

// ---- reparameterization ----------------------------------------------------------------------
template <bool kVec>
__global__ void __launch_bounds__(kBlock)
    reparam_forward_kernel(const float* mu, const float* logvar, float* z, int64_t n, PhiloxStream launch_ph) {
  const PhiloxStream ph = detail::at_launch(launch_ph);
  const uint64_t first = ph.offset >> 2;
  const int64_t blocks = philox_blocks(ph, n);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < blocks; t += stride) {
    const uint64_t block = first + static_cast<uint64_t>(t);
    const float4 eps = block_normal4(ph, block);
    if constexpr (kVec) {  // offset % 4 == 0: block t holds elements 4t .. 4t + 3
      if (4 * t + 4 <= n) {
        const float4 m = reinterpret_cast<const float4*>(mu)[t];
        const float4 l = reinterpret_cast<const float4*>(logvar)[t];
        reinterpret_cast<float4*>(z)[t] =
            make_float4(f::reparam(m.x, l.x, eps.x), f::reparam(m.y, l.y, eps.y),
                        f::reparam(m.z, l.z, eps.z), f::reparam(m.w, l.w, eps.w));
        continue;
      }
    }
    detail::for_each_in_block(ph, n, block, eps, [&](int64_t i, float e) {
      z[i] = f::reparam(mu[i], logvar[i], e);
    });
  }
}

// glogvar != nullptr; gmu may be nullptr.
template <bool kVec>
__global__ void __launch_bounds__(kBlock)
    reparam_backward_kernel(const float* logvar, const float* gz, float* gmu, float* glogvar,
                            int64_t n, PhiloxStream launch_ph) {
  const PhiloxStream ph = detail::at_launch(launch_ph);
  const uint64_t first = ph.offset >> 2;
  const int64_t blocks = philox_blocks(ph, n);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < blocks; t += stride) {
    const uint64_t block = first + static_cast<uint64_t>(t);
    const float4 eps = block_normal4(ph, block);
    if constexpr (kVec) {
      if (4 * t + 4 <= n) {
        const float4 l = reinterpret_cast<const float4*>(logvar)[t];
        const float4 g = reinterpret_cast<const float4*>(gz)[t];
        reinterpret_cast<float4*>(glogvar)[t] = make_float4(
            f::reparam_grad_logvar(l.x, eps.x, g.x), f::reparam_grad_logvar(l.y, eps.y, g.y),
            f::reparam_grad_logvar(l.z, eps.z, g.z), f::reparam_grad_logvar(l.w, eps.w, g.w));
        if (gmu != nullptr) reinterpret_cast<float4*>(gmu)[t] = g;
        continue;
      }
    }
    detail::for_each_in_block(ph, n, block, eps, [&](int64_t i, float e) {
      const float g = gz[i];
      glogvar[i] = f::reparam_grad_logvar(logvar[i], e, g);
      if (gmu != nullptr) gmu[i] = g;
    });
  }
}

// ---- fused KL ------------------------------------------------------------------------------------
constexpr int64_t kSumChunk = 4096;  // = kernels/cpu/parallel.h's kSumChunk
using detail::block_sum;  // kernels/cuda/block_sum.cuh

// One element: writes its gradients (when asked) and returns its KL term.
__device__ __forceinline__ float kl_element(float m, float l, float weight, float* gm, float* gl) {
  if (gm != nullptr) *gm = weight * f::kl_normal_grad_mu(m);
  if (gl != nullptr) *gl = weight * f::kl_normal_grad_logvar(l);
  return f::kl_normal(m, l);
}

// Block per chunk c (grid-stride over max(chunks, 1) chunks, so that n == 0 still writes the loss).
// With one chunk the block writes the loss; otherwise partial[c].
template <bool kVec>
__global__ void __launch_bounds__(kBlock)
    kl_chunk_kernel(const float* mu, const float* logvar, int64_t n, float weight, float* loss,
                    float* gmu, float* glogvar, int64_t chunks, double* partial) {
  const int64_t items = chunks > 0 ? chunks : 1;
  for (int64_t c = blockIdx.x; c < items; c += gridDim.x) {
    const int64_t begin = c * kSumChunk;
    const int64_t len = begin + kSumChunk < n ? kSumChunk : n - begin;  // <= 0 only when n == 0
    const int64_t len4 = len > 0 ? len >> 2 : 0;
    double acc = 0.0;
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < len4; j += kBlock) {
      const int64_t i = begin + 4 * j;
      float4 m, l;
      if constexpr (kVec) {
        m = reinterpret_cast<const float4*>(mu + i)[0];
        l = reinterpret_cast<const float4*>(logvar + i)[0];
      } else {
        m = make_float4(mu[i], mu[i + 1], mu[i + 2], mu[i + 3]);
        l = make_float4(logvar[i], logvar[i + 1], logvar[i + 2], logvar[i + 3]);
      }
      float4 gm, gl;
      const float t0 = kl_element(m.x, l.x, weight, &gm.x, &gl.x);
      const float t1 = kl_element(m.y, l.y, weight, &gm.y, &gl.y);
      const float t2 = kl_element(m.z, l.z, weight, &gm.z, &gl.z);
      const float t3 = kl_element(m.w, l.w, weight, &gm.w, &gl.w);
      acc += static_cast<double>(t0);
      acc += static_cast<double>(t1);
      acc += static_cast<double>(t2);
      acc += static_cast<double>(t3);
      if (gmu != nullptr) {
        if constexpr (kVec) {
          reinterpret_cast<float4*>(gmu + i)[0] = gm;
        } else {
          gmu[i] = gm.x, gmu[i + 1] = gm.y, gmu[i + 2] = gm.z, gmu[i + 3] = gm.w;
        }
      }
      if (glogvar != nullptr) {
        if constexpr (kVec) {
          reinterpret_cast<float4*>(glogvar + i)[0] = gl;
        } else {
          glogvar[i] = gl.x, glogvar[i + 1] = gl.y, glogvar[i + 2] = gl.z, glogvar[i + 3] = gl.w;
        }
      }
    }
    const int64_t tail = 4 * len4 + threadIdx.x;  // the chunk's last len % 4 values
    if (tail < len) {
      const int64_t i = begin + tail;
      acc += static_cast<double>(kl_element(mu[i], logvar[i], weight, gmu != nullptr ? gmu + i : nullptr,
                                            glogvar != nullptr ? glogvar + i : nullptr));
    }
    const double s = block_sum(acc);
    if (threadIdx.x == 0) {
      if (chunks <= 1) {
        *loss = static_cast<float>(static_cast<double>(weight) * s);
      } else {
        partial[c] = s;
      }
    }
  }
}

__global__ void __launch_bounds__(kBlock)
    kl_partials_kernel(const double* partial, int64_t chunks, float weight, float* loss) {
  double acc = 0.0;
  for (int64_t c = threadIdx.x; c < chunks; c += kBlock) acc += partial[c];
  const double s = block_sum(acc);
  if (threadIdx.x == 0) *loss = static_cast<float>(static_cast<double>(weight) * s);
}

}  // namespace

void reparam_forward(const float* mu, const float* logvar, float* z, int64_t n,
                     const PhiloxStream& philox, Stream stream) {
  if (n <= 0) return;
  const int64_t blocks = philox_blocks(philox, n);
  if (philox.offset % 4 == 0 && aligned16(mu) && aligned16(logvar) && aligned16(z)) {
    reparam_forward_kernel<true><<<grid_for(blocks), kBlock, 0, stream>>>(mu, logvar, z, n, philox);
  } else {
    reparam_forward_kernel<false><<<grid_for(blocks), kBlock, 0, stream>>>(mu, logvar, z, n, philox);
  }
  LL_CUDA_CHECK_LAUNCH();
}

void reparam_backward(const float* logvar, const float* gz, float* gmu, float* glogvar, int64_t n,
                      const PhiloxStream& philox, Stream stream) {
  if (n <= 0) return;
  if (glogvar == nullptr) {  // only gmu = gz: a copy
    if (gmu != nullptr && gmu != gz) {
      LL_CUDA_CHECK(cudaMemcpyAsync(gmu, gz, static_cast<size_t>(n) * sizeof(float),
                                    cudaMemcpyDeviceToDevice, stream));
    }
    return;
  }
  const int64_t blocks = philox_blocks(philox, n);
  const bool vec = philox.offset % 4 == 0 && aligned16(logvar) && aligned16(gz) && aligned16(glogvar) &&
                   (gmu == nullptr || aligned16(gmu));
  if (vec) {
    reparam_backward_kernel<true><<<grid_for(blocks), kBlock, 0, stream>>>(logvar, gz, gmu, glogvar, n, philox);
  } else {
    reparam_backward_kernel<false><<<grid_for(blocks), kBlock, 0, stream>>>(logvar, gz, gmu, glogvar, n, philox);
  }
  LL_CUDA_CHECK_LAUNCH();
}

// Reduction::None: one thread per element (grid-stride), out[i] = weight * kl_normal(mu_i, logvar_i).
__global__ void __launch_bounds__(kBlock)
    kl_elementwise_kernel(const float* __restrict__ mu, const float* __restrict__ logvar, int64_t n, float weight,
                          float* __restrict__ out) {
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += stride) {
    out[i] = weight * f::kl_normal(mu[i], logvar[i]);
  }
}

void kl_normal_elementwise(const float* mu, const float* logvar, int64_t n, float weight, float* out, Stream stream) {
  if (n <= 0) return;
  kl_elementwise_kernel<<<grid_for(n), kBlock, 0, stream>>>(mu, logvar, n, weight, out);
  LL_CUDA_CHECK_LAUNCH();
}

void kl_normal_fused(const float* mu, const float* logvar, int64_t n, float weight, float* loss,
                     float* gmu, float* glogvar, Stream stream) {
  if (n < 0) n = 0;
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  // Chunk starts are multiples of 4096 floats, so aligned base pointers keep every float4 aligned.
  const bool vec = aligned16(mu) && aligned16(logvar) && (gmu == nullptr || aligned16(gmu)) &&
                   (glogvar == nullptr || aligned16(glogvar));
  double* partial = nullptr;
  if (chunks > 1) partial = static_cast<double*>(malloc_device(static_cast<size_t>(chunks) * sizeof(double), stream));
  const unsigned grid = grid_for(chunks > 0 ? chunks : 1, 1);
  if (vec) {
    kl_chunk_kernel<true><<<grid, kBlock, 0, stream>>>(mu, logvar, n, weight, loss, gmu, glogvar, chunks, partial);
  } else {
    kl_chunk_kernel<false><<<grid, kBlock, 0, stream>>>(mu, logvar, n, weight, loss, gmu, glogvar, chunks, partial);
  }
  LL_CUDA_CHECK_LAUNCH();
  if (chunks > 1) {
    kl_partials_kernel<<<1, kBlock, 0, stream>>>(partial, chunks, weight, loss);
    LL_CUDA_CHECK_LAUNCH();
    free_device(partial);  // safe right after enqueuing: allocated for `stream` (stream-ordered reuse)
  }
}

}  // namespace ll::kernels::cuda
