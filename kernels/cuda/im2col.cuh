// im2col.cuh (internal to kernels/cuda): the column matrix that turns a convolution into GEMMs on
// the GPU, its adjoint col2im, and the shape checks shared by conv2d.cu, conv_transpose2d.cu and
// cudnn_conv.cu. Kernels in kernels/cuda/im2col.cu.
//
// The column matrix of one image x (C, H, W) is the CPU's (kernels/cpu/im2col.h):
//   col[(c R + r) S + s, p Q + q] = x[c, p stride_h - pad_h + r, q stride_w - pad_w + s]
// (0 where the tap falls in the padding), so that y (K, P*Q) = w (K, C*R*S) col (C*R*S, P*Q).
// A chunk of G images shares one buffer; element (image j, row, column pq) lives at
//   j * image_stride + row * ld + pq
// which covers the two layouts the GEMMs use:
//   batched  image_stride = C*R*S*P*Q, ld = P*Q    (G matrices one after the other)
//   wide     image_stride = P*Q,       ld = G*P*Q  (one matrix, images side by side)
// The wide layout is how conv2d.cu folds a chunk of the batch into one GEMM (its N dimension is
// G*P*Q instead of P*Q); gather_images / scatter_images move gy and y between (G, K, P*Q) and that
// layout's (K, G*P*Q).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/cuda_runtime.h"

namespace ll::kernels::cuda::detail {

// col <- the column matrices of images x[0 .. G) (x points at the chunk's first image, (G, C, H, W)).
// Writes every element of the G column blocks (zeros in the padding).
void im2col(const Conv2dShape& s, const float* x, int64_t G, float* col, int64_t ld,
            int64_t image_stride, Stream stream);

// gx[0 .. G) (G, C, H, W) <- the adjoint of im2col: every pixel gets the sum of the column entries
// that were read from it, added in the CPU's order (r, then s), in float. Overwrites gx. A gather
// (one thread per pixel), so no atomics and a fixed order.
void col2im(const Conv2dShape& s, const float* col, int64_t G, int64_t ld, int64_t image_stride,
            float* gx, Stream stream);

// dst (K, G*PQ) <- src (G, K, PQ): a chunk's images side by side in one matrix (the gy operand of
// the wide weight-gradient GEMM).
void gather_images(const float* src, int64_t G, int64_t K, int64_t PQ, float* dst, Stream stream);

// dst (G, K, PQ) <- src (K, G*PQ) + bias[k] (bias may be nullptr): the inverse of gather_images,
// for the folded forward's output; the bias is added as bias_add would (one float add), so the
// result is bit-identical to a scatter followed by bias_add.
void scatter_images(const float* src, int64_t G, int64_t K, int64_t PQ, const float* bias,
                    float* dst, Stream stream);

// ---- shape checks (the CPU kernels' rules and messages) ---------------------------------------

// Throws std::invalid_argument unless the shape is one the CPU reference accepts, with every
// spatial size and channel count small enough for the kernels' 32-bit geometry (and cuDNN's int).
inline void check_conv(const Conv2dShape& s, const char* fn) {
  check_shape(s, fn);  // kernels/conv2d.h, the CPU's rules and messages
  constexpr int64_t kMax = int64_t{1} << 30;
  const int64_t dims[] = {s.N, s.C, s.K, s.H + 2 * s.pad_h, s.W + 2 * s.pad_w, s.R * s.S,
                          s.stride_h * (s.H + 2 * s.pad_h), s.stride_w * (s.W + 2 * s.pad_w)};
  for (const int64_t d : dims) {
    if (d >= kMax) {
      throw std::invalid_argument(std::string(fn) + ": shape " + kernels::describe(s) +
                                  " too large for the CUDA kernels (a size reaches 2^30)");
    }
  }
}

// kernels::adjoint_conv (the conv2d whose adjoint a transposed conv is; the CPU's rules and
// messages), with check_conv's size limits on top.
inline Conv2dShape adjoint_conv(const ConvTranspose2dShape& t, const char* fn) {
  const Conv2dShape c = kernels::adjoint_conv(t, fn);  // kernels/conv_transpose2d.h
  check_conv(c, fn);  // the size limits; c.P() == t.H and c.Q() == t.W
  return c;
}

}  // namespace ll::kernels::cuda::detail
