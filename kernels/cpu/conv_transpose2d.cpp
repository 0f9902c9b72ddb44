// conv_transpose2d.cpp: transposed 2-D convolution as the adjoint of conv2d (see
// kernels/conv_transpose2d.h; Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep
// learning", section 4).
//
// Take the conv2d that maps the transposed conv's output back onto its input: from K channels of
// P x Q to C channels of H x W, same kernel, stride and padding. Its weight, (out, in, R, S) =
// (C, K, R, S), is exactly ConvTranspose2d's layout, and its output size is
//   (P + 2 pad - R) / stride + 1 = ((H - 1) stride + output_padding) / stride + 1 = H
// because output_padding < stride. Then, with that conv written A:
//   forward          y  = A^T x            = conv2d_backward_data(gy := x)
//   backward data    gx = A gy             = conv2d_forward(x := gy)
//   backward weight  gw[c,k,r,s] = sum x[n,c,h,w] gy[n,k,h st - pad + r, w st - pad + s]
//                                          = conv2d_backward_weight(x := gy, gy := x)
// output_padding only makes P one or more rows taller at the bottom (Q at the right); A reads those
// rows where the kernel reaches them and A^T leaves them at zero (plus bias) where it does not.
#include "kernels/conv_transpose2d.h"

#include <stdexcept>
#include <string>

#include "kernels/bias.h"
#include "kernels/conv2d.h"

namespace ll::kernels::cpu {


void conv_transpose2d_forward(const ConvTranspose2dShape& s, const float* x, const float* w,
                              const float* bias, float* y) {
  const Conv2dShape c = adjoint_conv(s, "conv_transpose2d_forward");
  // x (N, C, H, W) plays the conv's output gradient, y (N, K, P, Q) its input gradient.
  conv2d_backward_data(c, x, w, y);
  if (bias && s.N > 0) bias_add(y, bias, s.N, s.K, s.P() * s.Q());
}

void conv_transpose2d_backward_data(const ConvTranspose2dShape& s, const float* gy, const float* w,
                                    float* gx) {
  const Conv2dShape c = adjoint_conv(s, "conv_transpose2d_backward_data");
  // gy (N, K, P, Q) is the conv's input, gx (N, C, H, W) its output.
  conv2d_forward(c, gy, w, nullptr, gx);
}

void conv_transpose2d_backward_weight(const ConvTranspose2dShape& s, const float* x,
                                      const float* gy, float* gw) {
  const Conv2dShape c = adjoint_conv(s, "conv_transpose2d_backward_weight");
  // The conv's input is gy (N, K, P, Q) and its output gradient x (N, C, H, W); gw is (C, K, R, S).
  conv2d_backward_weight(c, gy, x, gw);
}

}  // namespace ll::kernels::cpu
