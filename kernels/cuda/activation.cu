// activation.cu: the CUDA twins of the pointwise activations (kernels/activation.h): ReLU,
// LeakyReLU, tanh and sigmoid, forward y = act(x) and backward gx = act'(.) * gy.
//
// Work per call (n elements, 4-byte floats):
//   forward   reads x, writes y:                       8 n bytes;  1 (ReLU, LeakyReLU) to ~20
//             (tanh, sigmoid: one expf/tanhf each) flops per element
//   backward  reads x or y, reads gy, writes gx:       12 n bytes; 1 to 3 flops per element
// All four are memory-bound on any GPU (under 2 flops per byte), so the limit is DRAM bandwidth:
// on an H100 SXM (3.35 TB/s) 1M elements forward move 8 MB, about 2.5 us at the limit.
//
// Design:
// - The per-element arithmetic is ll::f:: of kernels/common/formulas.h, the functions the CPU
//   reference calls; a functor per activation hands it to one generic map kernel.
// - One thread per 4 elements: when every pointer is 16-byte aligned (kernels::cuda::aligned16)
//   the kernel reads and writes float4 (one 128-bit transaction per thread), and the last n % 4
//   elements are taken one by one by the first threads; otherwise (a view at an odd offset) a
//   scalar path with one element per thread. Grid-stride loops with int64 indices, the grid capped
//   by grid_for(), so any n is covered.
// - Every output element is written by exactly one thread from its own inputs: deterministic.
// - No __restrict__: the engine may run an activation in place (y == x, gx == gy); each element is
//   read before it is written by the same thread, which is correct for aliasing pointers.
// Parity with the CPU: ReLU and LeakyReLU forward and backward and the sigmoid backward are the
// same IEEE operations on both sides (bit for bit). tanhf and expf are libm's on the CPU and CUDA's
// (2 ulp) on the GPU, so tanh and sigmoid forward agree to a few ulps; tanh's backward
// gy * (1 - y * y) may be contracted to a fused multiply-add by nvcc (-fmad=true is its default,
// the CPU builds with -ffp-contract=off), which changes it by at most |gy| * 2^-24 absolute.
#include "kernels/activation.h"

#include "kernels/common/formulas.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"

namespace ll::kernels::cuda {

namespace {

using detail::map1;
using detail::map2;

// ---- the activations as functors over ll::f:: ----------------------------------------------------
struct ReluFwd {
  __device__ float operator()(float x) const { return f::relu(x); }
};
struct LeakyReluFwd {
  float slope;
  __device__ float operator()(float x) const { return f::leaky_relu(x, slope); }
};
struct TanhFwd {
  __device__ float operator()(float x) const { return f::tanh_(x); }
};
struct SigmoidFwd {
  __device__ float operator()(float x) const { return f::sigmoid(x); }
};

// Backward functors take (the saved tensor, gy).
struct ReluBwd {  // from x
  __device__ float operator()(float x, float gy) const { return f::relu_grad(x, gy); }
};
struct LeakyReluBwd {  // from x
  float slope;
  __device__ float operator()(float x, float gy) const { return f::leaky_relu_grad(x, gy, slope); }
};
struct TanhBwd {  // from y = tanh(x)
  __device__ float operator()(float y, float gy) const { return f::tanh_grad_from_y(y, gy); }
};
struct SigmoidBwd {  // from y = sigmoid(x)
  __device__ float operator()(float y, float gy) const { return f::sigmoid_grad_from_y(y, gy); }
};

}  // namespace

void activation_forward(Activation a, float slope, const float* x, float* y, int64_t n,
                        Stream stream) {
  switch (a) {
    case Activation::ReLU: map1(x, y, n, ReluFwd{}, stream); break;
    case Activation::LeakyReLU: map1(x, y, n, LeakyReluFwd{slope}, stream); break;
    case Activation::Tanh: map1(x, y, n, TanhFwd{}, stream); break;
    case Activation::Sigmoid: map1(x, y, n, SigmoidFwd{}, stream); break;
  }
}

void activation_backward(Activation a, float slope, const float* x, const float* y, const float* gy,
                         float* gx, int64_t n, Stream stream) {
  switch (a) {
    case Activation::ReLU: map2(x, gy, gx, n, ReluBwd{}, stream); break;
    case Activation::LeakyReLU: map2(x, gy, gx, n, LeakyReluBwd{slope}, stream); break;
    case Activation::Tanh: map2(y, gy, gx, n, TanhBwd{}, stream); break;
    case Activation::Sigmoid: map2(y, gy, gx, n, SigmoidBwd{}, stream); break;
  }
}

}  // namespace ll::kernels::cuda
