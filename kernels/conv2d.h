// conv2d.h: 2-D convolution (cross-correlation, as PyTorch's Conv2d), NCHW.
//   x (N, C, H, W), w (K, C, R, S), bias (K) or nullptr -> y (N, K, P, Q)
//   y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s] * w[k,c,r,s]
//   (x is zero outside the image)
//   P = (H + 2 pad_h - R) / stride_h + 1,  Q = (W + 2 pad_w - S) / stride_w + 1  (floor division)
// Requires H + 2 pad_h >= R and W + 2 pad_w >= S (P() alone cannot tell: C++ rounds -1 / 2 to 0);
// the CPU kernels throw std::invalid_argument otherwise.
// CPU: im2col + one GEMM per group of images (kernels/cpu/conv2d.cpp; the column matrix is built
// from registers for rows of up to 32 floats, else through each channel's polyphase view, and a
// kernel that covers the whole input needs none). CUDA (kernels/cuda/conv2d.cu): im2col + cuBLAS GEMMs,
// the column buffer bounded by chunking the batch (strided-batched GEMMs per image, or, for output
// maps of at most 64 pixels, one GEMM over the chunk's images; a kernel that covers the whole
// unpadded input is one GEMM over the batch without a column matrix); cuDNN (cudnn_conv.cu) as the
// run-time alternative and baseline (set_conv_backend, `--conv-backend native|cudnn`).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>
#include <stdexcept>
#include <string>

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

// ---- the shape rules, shared by both backends --------------------------------------------------
// "x (N, C, H, W), w (K, C, R, S), stride (sh, sw), padding (ph, pw)", for messages.
inline std::string describe(const Conv2dShape& s) {
  return "x (" + std::to_string(s.N) + ", " + std::to_string(s.C) + ", " + std::to_string(s.H) +
         ", " + std::to_string(s.W) + "), w (" + std::to_string(s.K) + ", " + std::to_string(s.C) +
         ", " + std::to_string(s.R) + ", " + std::to_string(s.S) + "), stride (" +
         std::to_string(s.stride_h) + ", " + std::to_string(s.stride_w) + "), padding (" +
         std::to_string(s.pad_h) + ", " + std::to_string(s.pad_w) + ")";
}

// Throws std::invalid_argument, naming `fn` and the shape, unless the shape is valid.
inline void check_shape(const Conv2dShape& s, const char* fn) {
  const bool ok = s.N >= 0 && s.C >= 0 && s.K >= 0 && s.H >= 1 && s.W >= 1 && s.R >= 1 &&
                  s.S >= 1 && s.stride_h >= 1 && s.stride_w >= 1 && s.pad_h >= 0 && s.pad_w >= 0 &&
                  // not P() >= 1: C++ division truncates toward zero, so (2 - 3) / 2 + 1 is 1
                  s.H + 2 * s.pad_h >= s.R && s.W + 2 * s.pad_w >= s.S;
  if (!ok) {
    throw std::invalid_argument(std::string(fn) + ": invalid shape " + describe(s) +
                                " (the padded input must be at least as large as the kernel)");
  }
}

namespace cpu {
// Each overwrites its output.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
// gx = dL/dx from gy = dL/dy
void conv2d_backward_data(const Conv2dShape& s, const float* gy, const float* w, float* gx);
// gw = dL/dw (summed over the batch). The bias gradient is bias_backward(gy, ..., N, K, P*Q).
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* gy, float* gw);
}  // namespace cpu

namespace cuda {
// Two implementations of every CUDA convolution (conv2d and conv_transpose2d), chosen at run time:
//   Native  im2col + cuBLAS GEMMs (kernels/cuda/conv2d.cu, conv_transpose2d.cu, im2col.cu)
//   Cudnn   cuDNN's convolutions (kernels/cuda/cudnn_conv.cu), the baseline; its *_cudnn entry
//           points throw std::runtime_error in a build without cuDNN.
// Both are deterministic (fixed-order sums; cuDNN restricted to its deterministic algorithms) and
// FP32 unless allow_tf32(). The plain entry points route on conv_backend() (process-wide, default
// Native); tests and benches call the explicit *_native / *_cudnn ones.
enum class ConvBackend { Native, Cudnn };
void set_conv_backend(ConvBackend b);
ConvBackend conv_backend();
// "native" or "cudnn"; anything else throws std::invalid_argument naming the accepted values.
ConvBackend parse_conv_backend(const std::string& s);
const char* conv_backend_name(ConvBackend b);  // "native" / "cudnn"

// The native backend's bound on its column-matrix scratch (bytes; default 256 MiB): the batch is
// cut into chunks of images whose column matrices fit (at least one image per chunk). The chunking
// depends only on the shape and this bound, so results are reproducible. Tests lower it to
// exercise the chunked paths.
void set_conv_column_budget(int64_t bytes);
int64_t conv_column_budget();

// The CUDA twins: the arguments of cpu::, device pointers, on `stream`; routed on conv_backend().
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, Stream stream);
void conv2d_backward_data(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                          Stream stream);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                            Stream stream);

// The same, one backend each.
void conv2d_forward_native(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y, Stream stream);
void conv2d_backward_data_native(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                                 Stream stream);
void conv2d_backward_weight_native(const Conv2dShape& s, const float* x, const float* gy,
                                   float* gw, Stream stream);
void conv2d_forward_cudnn(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Stream stream);
void conv2d_backward_data_cudnn(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                                Stream stream);
void conv2d_backward_weight_cudnn(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                                  Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
