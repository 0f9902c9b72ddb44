// conv2d.h: 2-D convolution (cross-correlation, as PyTorch's Conv2d), NCHW.
//   x (N, C, H, W), w (K, C, R, S), bias (K) or nullptr -> y (N, K, P, Q)
//   y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s] * w[k,c,r,s]
//   (x is zero outside the image)
//   P = (H + 2 pad_h - R) / stride_h + 1,  Q = (W + 2 pad_w - S) / stride_w + 1  (floor division)
// Requires H + 2 pad_h >= R and W + 2 pad_w >= S (P() alone cannot tell: C++ rounds -1 / 2 to 0);
// the CPU kernels throw std::invalid_argument otherwise.
// CPU: im2col + one GEMM per group of images. CUDA: implicit GEMM, cuDNN as the baseline (CUDA
// backend issue).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

struct Conv2dShape {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1;                       // output channels
  int64_t R = 1, S = 1;                // kernel height, width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t P() const { return (H + 2 * pad_h - R) / stride_h + 1; }
  int64_t Q() const { return (W + 2 * pad_w - S) / stride_w + 1; }
};

namespace cpu {
// Each overwrites its output.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
// gx = dL/dx from gy = dL/dy
void conv2d_backward_data(const Conv2dShape& s, const float* gy, const float* w, float* gx);
// gw = dL/dw (summed over the batch). The bias gradient is bias_backward(gy, ..., N, K, P*Q).
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* gy, float* gw);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/conv2d.cu): the arguments of cpu::, device pointers, on `stream`.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, Stream stream);
void conv2d_backward_data(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                          Stream stream);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                            Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
