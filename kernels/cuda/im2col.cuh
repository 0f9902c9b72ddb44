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

// ---- shape checks (the CPU kernels' rules and messages) ---------------------------------------

inline std::string describe(const Conv2dShape& s) {
  return "x (" + std::to_string(s.N) + ", " + std::to_string(s.C) + ", " + std::to_string(s.H) +
         ", " + std::to_string(s.W) + "), w (" + std::to_string(s.K) + ", " + std::to_string(s.C) +
         ", " + std::to_string(s.R) + ", " + std::to_string(s.S) + "), stride (" +
         std::to_string(s.stride_h) + ", " + std::to_string(s.stride_w) + "), padding (" +
         std::to_string(s.pad_h) + ", " + std::to_string(s.pad_w) + ")";
}

// Throws std::invalid_argument unless the shape is one the CPU reference accepts, with every
// spatial size and channel count small enough for the kernels' 32-bit geometry (and cuDNN's int).
inline void check_conv(const Conv2dShape& s, const char* fn) {
  const bool ok = s.N >= 0 && s.C >= 0 && s.K >= 0 && s.H >= 1 && s.W >= 1 && s.R >= 1 &&
                  s.S >= 1 && s.stride_h >= 1 && s.stride_w >= 1 && s.pad_h >= 0 && s.pad_w >= 0 &&
                  // not P() >= 1: C++ division truncates toward zero, so (2 - 3) / 2 + 1 is 1
                  s.H + 2 * s.pad_h >= s.R && s.W + 2 * s.pad_w >= s.S;
  if (!ok) {
    throw std::invalid_argument(std::string(fn) + ": invalid shape " + describe(s) +
                                " (the padded input must be at least as large as the kernel)");
  }
  constexpr int64_t kMax = int64_t{1} << 30;
  const int64_t dims[] = {s.N, s.C, s.K, s.H + 2 * s.pad_h, s.W + 2 * s.pad_w, s.R * s.S,
                          s.stride_h * (s.H + 2 * s.pad_h), s.stride_w * (s.W + 2 * s.pad_w)};
  for (const int64_t d : dims) {
    if (d >= kMax) {
      throw std::invalid_argument(std::string(fn) + ": shape " + describe(s) +
                                  " too large for the CUDA kernels (a size reaches 2^30)");
    }
  }
}

// The conv2d whose adjoint a transposed conv is (kernels/cpu/conv_transpose2d.cpp): input
// (N, K, P, Q) -> output (N, C, H, W), weight (C, K, R, S), same stride and padding. Throws
// std::invalid_argument with the CPU's message for shapes the CPU rejects.
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
  c.C = t.K;
  c.H = t.P();
  c.W = t.Q();
  c.K = t.C;
  c.R = t.R;
  c.S = t.S;
  c.stride_h = t.stride_h;
  c.stride_w = t.stride_w;
  c.pad_h = t.pad_h;
  c.pad_w = t.pad_w;
  check_conv(c, fn);  // the size limits; c.P() == t.H and c.Q() == t.W
  return c;
}

}  // namespace ll::kernels::cuda::detail
