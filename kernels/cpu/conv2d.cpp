// conv2d.cpp: 2-D convolution on the CPU by im2col + GEMM (see kernels/conv2d.h and the column
// matrix in kernels/cpu/im2col.h).
//
// A group of G images is one GEMM, so that small layers (a 28x28 VAE with 1 input channel) still
// give BLAS a wide matrix. With col (C*R*S, G*P*Q) the group's column matrix:
//   forward          out (K, G*P*Q) = w (K, C*R*S) col,         then out -> y (N, K, P, Q) + bias
//   backward data    col = w^T (C*R*S, K) gy (K, G*P*Q),        then col2im -> gx (N, C, H, W)
//   backward weight  gw (K, C*R*S) += gy (K, G*P*Q) col^T,      the groups in image order
// OpenMP splits the memory-bound im2col / col2im / copies by (image, channel) and gemm splits the
// GEMM by tiles of its output (see gemm.cpp): every output element is written by one thread, and
// the only reduction (over the batch, in backward weight) happens inside the GEMMs and across
// groups in a fixed order, so no result depends on the thread count. The group size depends only
// on the shape. im2col and col2im go through each channel's polyphase view (im2col.h), so their
// inner loops are contiguous runs; a kernel that covers the whole input skips them (whole_input).
#include "kernels/conv2d.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/im2col.h"
#include "kernels/cpu/parallel.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace ll::kernels::cpu {

namespace {
using detail::ConvGeom;

// The kernel covers the whole unpadded input (R = H, S = W, no padding: P = Q = 1), as in a DCGAN
// discriminator's last layer or, through conv_transpose2d, a generator's first. Then the column of
// image n is x[n] itself, flattened to C*H*W, and the column matrix of a group is the group's
// images transposed: im2col's gather would touch one cache line per entry, a blocked transpose
// writes whole lines. The backward passes need no column matrix at all, only x as an (N, C*H*W)
// matrix: gx = gy w and gw = gy^T x are one GEMM each.
bool whole_input(const ConvGeom& g) {
  return g.R == g.H && g.S == g.W && g.pad_h == 0 && g.pad_w == 0;
}

// col (C*R*S, G*P*Q) <- images [n0, n0 + G) of x (N, C, H, W)
void im2col_group(const ConvGeom& g, const float* x, int64_t n0, int64_t G, float* col) {
  const int64_t ld = G * g.pixels(), image = g.C * g.H * g.W;
  if (whole_input(g)) {  // one column per image, the image itself: col = x[n0, n0 + G)^T
    transpose2d(x + n0 * image, col, G, image);
    return;
  }
  const detail::Lowering lower(g);
#pragma omp parallel for collapse(2) schedule(static) if (g.rows() * ld >= kParallelGrain)
  for (int64_t j = 0; j < G; ++j) {
    for (int64_t c = 0; c < g.C; ++c) {
      detail::im2col_channels(lower, x + (n0 + j) * image, c, c + 1, col + j * g.pixels(), ld);
    }
  }
}

// gx[n0 + j] (C, H, W) <- col2im of image j's columns of col (C*R*S, G*P*Q)
void col2im_group(const ConvGeom& g, const float* col, int64_t n0, int64_t G, float* gx) {
  const int64_t ld = G * g.pixels(), image = g.C * g.H * g.W;
  const detail::Lowering lower(g);
#pragma omp parallel for collapse(2) schedule(static) if (g.rows() * ld >= kParallelGrain)
  for (int64_t j = 0; j < G; ++j) {
    for (int64_t c = 0; c < g.C; ++c) {
      detail::col2im_channels(lower, col + j * g.pixels(), ld, c, c + 1, gx + (n0 + j) * image);
    }
  }
}

// dst (K, G*PQ) <- images [n0, n0 + G) of src (N, K, PQ): the batch side by side in one matrix
void gather_group(const float* src, int64_t n0, int64_t G, int64_t K, int64_t PQ, float* dst) {
#pragma omp parallel for collapse(2) schedule(static) if (G * K * PQ >= kParallelGrain)
  for (int64_t j = 0; j < G; ++j) {
    for (int64_t k = 0; k < K; ++k) {
      const float* s = src + ((n0 + j) * K + k) * PQ;
      std::copy(s, s + PQ, dst + k * G * PQ + j * PQ);
    }
  }
}

// images [n0, n0 + G) of dst (N, K, PQ) <- src (K, G*PQ) + bias[k] (bias may be nullptr)
void scatter_group(const float* src, const float* bias, int64_t n0, int64_t G, int64_t K,
                   int64_t PQ, float* dst) {
#pragma omp parallel for collapse(2) schedule(static) if (G * K * PQ >= kParallelGrain)
  for (int64_t j = 0; j < G; ++j) {
    for (int64_t k = 0; k < K; ++k) {
      const float* s = src + k * G * PQ + j * PQ;
      float* d = dst + ((n0 + j) * K + k) * PQ;
      const float b = bias ? bias[k] : 0.0f;
      for (int64_t i = 0; i < PQ; ++i) d[i] = s[i] + b;
    }
  }
}

void add_bias_image(float* y, const float* bias, int64_t K, int64_t PQ) {
#pragma omp parallel for schedule(static) if (K * PQ >= kParallelGrain)
  for (int64_t k = 0; k < K; ++k) {
    float* d = y + k * PQ;
    for (int64_t i = 0; i < PQ; ++i) d[i] += bias[k];
  }
}
}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  check_shape(s, "conv2d_forward");
  const ConvGeom g(s);
  const int64_t K = s.K, CRS = g.rows(), PQ = g.pixels();
  if (s.N == 0 || K == 0) return;
  const int64_t group = detail::images_per_group(s.N, (CRS + K) * PQ);
  float* ws = detail::workspace(group * (CRS + K) * PQ);
  for (int64_t n0 = 0; n0 < s.N; n0 += group) {
    const int64_t G = std::min(group, s.N - n0);
    float* col = ws;  // (C*R*S, G*P*Q)
    im2col_group(g, x, n0, G, col);
    if (G == 1) {  // y[n0] (K, P*Q) is the GEMM's result itself
      float* yn = y + n0 * K * PQ;
      gemm(false, false, K, PQ, CRS, 1.0f, w, col, 0.0f, yn);
      if (bias) add_bias_image(yn, bias, K, PQ);
    } else {
      float* out = ws + CRS * G * PQ;  // (K, G*P*Q)
      gemm(false, false, K, G * PQ, CRS, 1.0f, w, col, 0.0f, out);
      scatter_group(out, bias, n0, G, K, PQ, y);
    }
  }
}

void conv2d_backward_data(const Conv2dShape& s, const float* gy, const float* w, float* gx) {
  check_shape(s, "conv2d_backward_data");
  const ConvGeom g(s);
  const int64_t K = s.K, CRS = g.rows(), PQ = g.pixels();
  if (s.N == 0 || s.C == 0) return;
  if (whole_input(g)) {  // gx (N, C*H*W) = gy (N, K) w
    gemm(false, false, s.N, CRS, K, 1.0f, gy, w, 0.0f, gx);
    return;
  }
  const int64_t group = detail::images_per_group(s.N, (CRS + K) * PQ);
  float* ws = detail::workspace(group * (CRS + K) * PQ);
  for (int64_t n0 = 0; n0 < s.N; n0 += group) {
    const int64_t G = std::min(group, s.N - n0);
    float* col = ws;                      // (C*R*S, G*P*Q)
    const float* gyg = gy + n0 * K * PQ;  // gy[n0] (K, P*Q) is the operand itself when G == 1
    if (G > 1) {
      float* t = ws + CRS * G * PQ;  // (K, G*P*Q)
      gather_group(gy, n0, G, K, PQ, t);
      gyg = t;
    }
    gemm(true, false, CRS, G * PQ, K, 1.0f, w, gyg, 0.0f, col);
    col2im_group(g, col, n0, G, gx);
  }
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* gy, float* gw) {
  check_shape(s, "conv2d_backward_weight");
  const ConvGeom g(s);
  const int64_t K = s.K, CRS = g.rows(), PQ = g.pixels();
  if (K == 0 || CRS == 0) return;
  if (s.N == 0) {
    std::fill(gw, gw + K * CRS, 0.0f);
    return;
  }
  if (whole_input(g)) {  // gw (K, C*H*W) = gy^T (K, N) x (N, C*H*W)
    gemm(true, false, K, CRS, s.N, 1.0f, gy, x, 0.0f, gw);
    return;
  }
  const int64_t group = detail::images_per_group(s.N, (CRS + K) * PQ);
  float* ws = detail::workspace(group * (CRS + K) * PQ);
  for (int64_t n0 = 0; n0 < s.N; n0 += group) {
    const int64_t G = std::min(group, s.N - n0);
    float* col = ws;  // (C*R*S, G*P*Q)
    im2col_group(g, x, n0, G, col);
    const float* gyg = gy + n0 * K * PQ;
    if (G > 1) {
      float* t = ws + CRS * G * PQ;  // (K, G*P*Q)
      gather_group(gy, n0, G, K, PQ, t);
      gyg = t;
    }
    // gw (K, C*R*S) = sum over the group's pixels of gy * col^T; later groups add on (beta = 1)
    gemm(false, true, K, CRS, G * PQ, 1.0f, gyg, col, n0 == 0 ? 0.0f : 1.0f, gw);
  }
}

}  // namespace ll::kernels::cpu
