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
#include "kernels/conv2d.h"
#include "kernels/cuda_runtime.h"
#include <cstdint>
#include <stdexcept>
#include <string>

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

// ---- the shape rules, shared by both backends --------------------------------------------------
// The conv2d whose adjoint a transposed conv is (kernels/cpu/conv_transpose2d.cpp): from the
// transposed conv's output (N, K, P, Q) to its input (N, C, H, W), weight (C, K, R, S), the same
// stride and padding. Throws std::invalid_argument, naming `fn` and the shape, for invalid shapes.
inline Conv2dShape adjoint_conv(const ConvTranspose2dShape& t, const char* fn) {
  const bool ok = t.N >= 0 && t.C >= 0 && t.K >= 0 && t.H >= 1 && t.W >= 1 && t.R >= 1 &&
                  t.S >= 1 && t.stride_h >= 1 && t.stride_w >= 1 && t.pad_h >= 0 && t.pad_w >= 0 &&
                  t.output_padding_h >= 0 && t.output_padding_w >= 0 &&
                  t.output_padding_h < t.stride_h && t.output_padding_w < t.stride_w &&
                  t.P() >= 1 && t.Q() >= 1;
  if (!ok) {
    throw std::invalid_argument(
        std::string(fn) + ": invalid shape x (" + std::to_string(t.N) + ", " + std::to_string(t.C) +
        ", " + std::to_string(t.H) + ", " + std::to_string(t.W) + "), w (" + std::to_string(t.C) +
        ", " + std::to_string(t.K) + ", " + std::to_string(t.R) + ", " + std::to_string(t.S) +
        "), stride (" + std::to_string(t.stride_h) + ", " + std::to_string(t.stride_w) +
        "), padding (" + std::to_string(t.pad_h) + ", " + std::to_string(t.pad_w) +
        "), output_padding (" + std::to_string(t.output_padding_h) + ", " +
        std::to_string(t.output_padding_w) +
        ") (output_padding must be smaller than stride, and the output at least 1 x 1)");
  }
  Conv2dShape c;
  c.N = t.N;
  c.C = t.K;  // the conv's input is the transposed conv's output (N, K, P, Q)
  c.H = t.P();
  c.W = t.Q();
  c.K = t.C;  // ... and its output the transposed conv's input (N, C, H, W)
  c.R = t.R;
  c.S = t.S;
  c.stride_h = t.stride_h;
  c.stride_w = t.stride_w;
  c.pad_h = t.pad_h;
  c.pad_w = t.pad_w;
  return c;  // c.P() == t.H and c.Q() == t.W, as kernels/cpu/conv_transpose2d.cpp shows
}

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
