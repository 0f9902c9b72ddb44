// im2col.h (internal to kernels/cpu): the column matrix that turns a convolution into one GEMM.
//
// For one image x (C, H, W) and a conv with kernel (R, S), the column matrix has one row per kernel
// tap (c, r, s) and one column per output pixel (p, q), 0 where the tap falls in the padding:
//   col[(c R + r) S + s, p Q + q] = x[c, p stride_h - pad_h + r, q stride_w - pad_w + s]
// so that y (K, P*Q) = w (K, C*R*S) col (C*R*S, P*Q). (Chellapilla, Puri & Simard 2006, "High
// performance convolutional neural networks for document processing"; Caffe's im2col has the same
// layout.) col2im is its adjoint: it adds every column entry back onto the pixel it was read from.
//
// Several images share one GEMM: image j of a group owns columns [j P Q, (j + 1) P Q) of a column
// matrix whose rows are `ld` = group * P * Q long.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/conv2d.h"

namespace ll::kernels::cpu::detail {

// The convolution's geometry with its output size, computed once.
struct ConvGeom {
  int64_t C, H, W, R, S, stride_h, stride_w, pad_h, pad_w, P, Q;
  explicit ConvGeom(const Conv2dShape& s) : C(s.C), H(s.H), W(s.W), R(s.R), S(s.S) {
    stride_h = s.stride_h, stride_w = s.stride_w, pad_h = s.pad_h, pad_w = s.pad_w;
    P = s.P(), Q = s.Q();
  }
  int64_t rows() const { return C * R * S; }  // rows of the column matrix
  int64_t pixels() const { return P * Q; }    // columns per image
};

inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// The outputs q in [q_begin, q_end) read an input column w = q stride + offset inside [0, width).
inline void valid_range(int64_t offset, int64_t stride, int64_t width, int64_t count,
                        int64_t& q_begin, int64_t& q_end) {
  q_begin = std::clamp<int64_t>(ceil_div(-offset, stride), 0, count);
  q_end = std::clamp<int64_t>(ceil_div(width - offset, stride), q_begin, count);
}

// Writes the column block of one image x (C, H, W) into col (rows() rows of stride ld), for the
// channels [c_begin, c_end) only, so that callers can split the work by (image, channel).
inline void im2col_channels(const ConvGeom& g, const float* x, int64_t c_begin, int64_t c_end,
                            float* col, int64_t ld) {
  for (int64_t c = c_begin; c < c_end; ++c) {
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        float* dst = col + ((c * g.R + r) * g.S + s) * ld;
        const int64_t w_off = s - g.pad_w;
        int64_t q0, q1;
        valid_range(w_off, g.stride_w, g.W, g.Q, q0, q1);
        for (int64_t p = 0; p < g.P; ++p) {
          float* d = dst + p * g.Q;
          const int64_t h = p * g.stride_h - g.pad_h + r;
          if (h < 0 || h >= g.H) {
            std::fill(d, d + g.Q, 0.0f);
            continue;
          }
          const float* row = x + (c * g.H + h) * g.W;  // row[w] is x[c, h, w]
          std::fill(d, d + q0, 0.0f);
          if (g.stride_w == 1) {
            if (q1 > q0) std::copy(row + q0 + w_off, row + q1 + w_off, d + q0);
          } else {
            for (int64_t q = q0; q < q1; ++q) d[q] = row[q * g.stride_w + w_off];
          }
          std::fill(d + q1, d + g.Q, 0.0f);
        }
      }
    }
  }
}

// The adjoint of im2col_channels: gx[c] (H, W) = sum of the column entries read from each pixel,
// for the channels [c_begin, c_end) of one image. Overwrites those channels of gx. The taps are
// added in a fixed order (r, s, p, q), so the result does not depend on how channels are split.
inline void col2im_channels(const ConvGeom& g, const float* col, int64_t ld, int64_t c_begin,
                            int64_t c_end, float* gx) {
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* plane = gx + c * g.H * g.W;
    std::fill(plane, plane + g.H * g.W, 0.0f);
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        const float* src = col + ((c * g.R + r) * g.S + s) * ld;
        const int64_t w_off = s - g.pad_w;
        int64_t q0, q1;
        valid_range(w_off, g.stride_w, g.W, g.Q, q0, q1);
        for (int64_t p = 0; p < g.P; ++p) {
          const int64_t h = p * g.stride_h - g.pad_h + r;
          if (h < 0 || h >= g.H) continue;
          const float* sp = src + p * g.Q;
          float* row = plane + h * g.W;  // row[w] is gx[c, h, w]
          for (int64_t q = q0; q < q1; ++q) row[q * g.stride_w + w_off] += sp[q];
        }
      }
    }
  }
}

// A group of images shares one GEMM; its column matrix and GEMM operand/result live in one
// workspace of at most about this many floats (4 MiB), so the workspace stays cache-friendly and
// bounded for large layers. The group size depends only on the shape, never on threads or timing.
constexpr int64_t kWorkspaceFloats = int64_t{1} << 20;

inline int64_t images_per_group(int64_t N, int64_t floats_per_image) {
  if (floats_per_image <= 0) return std::max<int64_t>(N, 1);
  return std::clamp<int64_t>(kWorkspaceFloats / floats_per_image, 1, std::max<int64_t>(N, 1));
}

// The calling thread's workspace: grow-only, so steady-state training allocates nothing. Only the
// thread that calls the kernel touches it (OpenMP workers write into disjoint parts of it).
inline float* workspace(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

}  // namespace ll::kernels::cpu::detail
