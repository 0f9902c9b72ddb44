// conv_transpose2d.h: transposed 2-D convolution (PyTorch's ConvTranspose2d), NCHW.
// It is the adjoint of conv2d with the same kernel: its forward is conv2d's data gradient.
//   x (N, C, H, W), w (C, K, R, S)  [PyTorch's layout: in_channels first], bias (K) or nullptr
//   -> y (N, K, P, Q), P = (H - 1) stride_h - 2 pad_h + R + output_padding_h (same for Q)
//   y[n, k, i*stride_h - pad_h + r, j*stride_w - pad_w + s] += x[n, c, i, j] * w[c, k, r, s]
//   (terms landing outside P x Q are dropped), then + bias[k]
// Requires 0 <= output_padding < stride, as PyTorch does (the CPU kernels throw
// std::invalid_argument otherwise); output_padding only adds rows at the bottom / columns at the
// right, which receive the terms that reach them (else only the bias).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

struct ConvTranspose2dShape {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1;                       // output channels
  int64_t R = 1, S = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t output_padding_h = 0, output_padding_w = 0;
  int64_t P() const { return (H - 1) * stride_h - 2 * pad_h + R + output_padding_h; }
  int64_t Q() const { return (W - 1) * stride_w - 2 * pad_w + S + output_padding_w; }
};

namespace cpu {
void conv_transpose2d_forward(const ConvTranspose2dShape& s, const float* x, const float* w,
                              const float* bias, float* y);
void conv_transpose2d_backward_data(const ConvTranspose2dShape& s, const float* gy, const float* w,
                                    float* gx);
void conv_transpose2d_backward_weight(const ConvTranspose2dShape& s, const float* x, const float* gy,
                                      float* gw);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/conv_transpose2d.cu): the arguments of cpu::, device pointers, on
// `stream`; routed on cuda::conv_backend() like conv2d's (see kernels/conv2d.h).
void conv_transpose2d_forward(const ConvTranspose2dShape& s, const float* x, const float* w,
                              const float* bias, float* y, Stream stream);
void conv_transpose2d_backward_data(const ConvTranspose2dShape& s, const float* gy, const float* w,
                                    float* gx, Stream stream);
void conv_transpose2d_backward_weight(const ConvTranspose2dShape& s, const float* x,
                                      const float* gy, float* gw, Stream stream);

// The same, one backend each: im2col + cuBLAS (conv_transpose2d.cu) and cuDNN (cudnn_conv.cu;
// std::runtime_error in a build without cuDNN).
void conv_transpose2d_forward_native(const ConvTranspose2dShape& s, const float* x, const float* w,
                                     const float* bias, float* y, Stream stream);
void conv_transpose2d_backward_data_native(const ConvTranspose2dShape& s, const float* gy,
                                           const float* w, float* gx, Stream stream);
void conv_transpose2d_backward_weight_native(const ConvTranspose2dShape& s, const float* x,
                                             const float* gy, float* gw, Stream stream);
void conv_transpose2d_forward_cudnn(const ConvTranspose2dShape& s, const float* x, const float* w,
                                    const float* bias, float* y, Stream stream);
void conv_transpose2d_backward_data_cudnn(const ConvTranspose2dShape& s, const float* gy,
                                          const float* w, float* gx, Stream stream);
void conv_transpose2d_backward_weight_cudnn(const ConvTranspose2dShape& s, const float* x,
                                            const float* gy, float* gw, Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
