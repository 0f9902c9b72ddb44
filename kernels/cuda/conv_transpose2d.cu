// conv_transpose2d.cu: transposed 2-D convolution on the GPU as the adjoint of conv2d (see
// kernels/conv_transpose2d.h and kernels/cpu/conv_transpose2d.cpp), native backend and routing.
//
// With A the conv2d from the transposed conv's output (N, K, P, Q) to its input (N, C, H, W) with
// the same kernel, stride and padding (detail::adjoint_conv; its weight (C, K, R, S) is exactly
// ConvTranspose2d's layout):
//   forward          y  = A^T x   = conv2d backward data (gy := x), then + bias
//   backward data    gx = A gy    = conv2d forward (x := gy), no bias
//   backward weight  gw           = conv2d backward weight (x := gy, gy := x)
// so this file only maps shapes and calls kernels/cuda/conv2d.cu's native entry points (and
// cudnn_conv.cu does the same with cuDNN). FLOPs: 2 N C K R S H W per op (every input pixel meets
// every kernel tap once), plus N K P Q for the bias; bytes and design: those of conv2d.cu for the
// adjoint conv (the column matrix, 4 N K R S H W bytes, written and read once). The bias is a
// separate pass (bias_add) over y. Deterministic as conv2d.cu is.
// Folding the batch into the GEMMs (conv2d.cu's header) follows from the mapping: the adjoint
// conv's output map is this conv's *input* map (c.P() c.Q() = H W), so
//   forward and backward data   folded (one GEMM per chunk of images, N = G H W) when H W <= 64,
//                               e.g. a generator's 4x4 and 8x8 inputs; one GEMM over the whole
//                               batch with no column matrix when the input is 1x1 with no
//                               padding and no output_padding, any stride (a generator's first
//                               layer: y (N, K R S) = x (N, C) w (C, K R S), gx = gy w^T);
//   backward weight             always one GEMM per chunk (the wide layout; for that first layer
//                               gw (C, K R S) = x^T (C, N) gy (N, K R S), one GEMM).
#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"

namespace ll::kernels::cuda {

void conv_transpose2d_forward_native(const ConvTranspose2dShape& s, const float* x, const float* w,
                                     const float* bias, float* y, Stream stream) {
  const Conv2dShape c = detail::adjoint_conv(s, "conv_transpose2d_forward");
  // x (N, C, H, W) plays the conv's output gradient, y (N, K, P, Q) its input gradient. Overwrites
  // all of y: col2im writes every pixel, including output_padding rows no tap reaches (as 0).
  conv2d_backward_data_native(c, x, w, y, stream);
  if (bias && s.N > 0) bias_add(y, bias, s.N, s.K, s.P() * s.Q(), stream);
}

void conv_transpose2d_backward_data_native(const ConvTranspose2dShape& s, const float* gy,
                                           const float* w, float* gx, Stream stream) {
  const Conv2dShape c = detail::adjoint_conv(s, "conv_transpose2d_backward_data");
  conv2d_forward_native(c, gy, w, nullptr, gx, stream);
}

void conv_transpose2d_backward_weight_native(const ConvTranspose2dShape& s, const float* x,
                                             const float* gy, float* gw, Stream stream) {
  const Conv2dShape c = detail::adjoint_conv(s, "conv_transpose2d_backward_weight");
  // The conv's input is gy (N, K, P, Q), its output gradient x (N, C, H, W); gw is (C, K, R, S).
  conv2d_backward_weight_native(c, gy, x, gw, stream);
}

// ---- routed entry points ----------------------------------------------------------------------

void conv_transpose2d_forward(const ConvTranspose2dShape& s, const float* x, const float* w,
                              const float* bias, float* y, Stream stream) {
  if (conv_backend() == ConvBackend::Cudnn) {
    conv_transpose2d_forward_cudnn(s, x, w, bias, y, stream);
  } else {
    conv_transpose2d_forward_native(s, x, w, bias, y, stream);
  }
}

void conv_transpose2d_backward_data(const ConvTranspose2dShape& s, const float* gy, const float* w,
                                    float* gx, Stream stream) {
  if (conv_backend() == ConvBackend::Cudnn) {
    conv_transpose2d_backward_data_cudnn(s, gy, w, gx, stream);
  } else {
    conv_transpose2d_backward_data_native(s, gy, w, gx, stream);
  }
}

void conv_transpose2d_backward_weight(const ConvTranspose2dShape& s, const float* x,
                                      const float* gy, float* gw, Stream stream) {
  if (conv_backend() == ConvBackend::Cudnn) {
    conv_transpose2d_backward_weight_cudnn(s, x, gy, gw, stream);
  } else {
    conv_transpose2d_backward_weight_native(s, x, gy, gw, stream);
  }
}

}  // namespace ll::kernels::cuda
