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

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// ---- short rows ----------------------------------------------------------------------------------
// d[0, n) = s[0, n) and d[0, n) += s[0, n). The rows of a small layer's column matrix are short
// (7 floats for a 7x7 output), so a vector loop with a scalar tail would spend most of its time in
// the tail; with AVX-512 the tail is one masked load and store (masked-off lanes are never read or
// written, so nothing past the row is touched).
inline void copy_floats(const float* s, int64_t n, float* d) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_loadu_ps(s + i));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, s + i));
  }
#else
  for (; i < n; ++i) d[i] = s[i];
#endif
}

inline void add_floats(const float* s, int64_t n, float* d) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i));
    _mm512_mask_storeu_ps(d + i, m, sum);
  }
#else
  for (; i < n; ++i) d[i] += s[i];
#endif
}

// ---- the polyphase view of one input channel ----------------------------------------------------
// With stride (sh, sw) a kernel tap (r, s) = (a sh + u, b sw + v), u < sh, v < sw, reads the padded
// input at (p sh + r, q sw + s) = ((p + a) sh + u, (q + b) sw + v). Cut the zero-padded channel into
// its sh * sw phases ("space-to-depth"),
//   phase[u, v][i, j] = xpad[i sh + u, j sw + v]      (0 outside the image),
// and every row of taps becomes a contiguous run: col[(r, s), p Q + q] = phase[u, v][p + a, q + b]
// for q = 0 .. Q-1. So im2col is one strided pass over the (small) input channel followed by plain
// copies of Q floats, with no bounds tests; col2im adds those runs back into the phases and then
// interleaves the phases into the image. A stride-1 convolution has one phase: the padded channel.
// (The same decomposition underlies the "polyphase" view of strided filters in signal processing;
// for convolutions see e.g. Dumoulin & Visin 2016, section 4, on strides.)
struct PhaseGeom {
  int64_t sh, sw;  // phases per direction (the strides)
  int64_t Hp, Wp;  // one phase's size: rows p + a for p < P, a <= (R - 1) / sh (and columns alike)
  explicit PhaseGeom(const ConvGeom& g)
      : sh(g.stride_h), sw(g.stride_w), Hp(g.P + (g.R - 1) / g.stride_h),
        Wp(g.Q + (g.S - 1) / g.stride_w) {}
  int64_t plane() const { return Hp * Wp; }
  int64_t floats() const { return sh * sw * plane(); }  // all phases of one channel
};

// phases (sh * sw planes of Hp x Wp) <- channel xc (H, W), zero where the padded position is
// outside the image
inline void channel_to_phases(const ConvGeom& g, const PhaseGeom& f, const float* xc, float* phases) {
  for (int64_t u = 0; u < f.sh; ++u) {
    for (int64_t v = 0; v < f.sw; ++v) {
      float* plane = phases + (u * f.sw + v) * f.plane();
      const int64_t w_off = v - g.pad_w;  // column j reads input column j sw + w_off
      int64_t j0, j1;
      valid_range(w_off, f.sw, g.W, f.Wp, j0, j1);
      for (int64_t i = 0; i < f.Hp; ++i) {
        float* d = plane + i * f.Wp;
        const int64_t h = i * f.sh + u - g.pad_h;
        if (h < 0 || h >= g.H) {
          std::fill(d, d + f.Wp, 0.0f);
          continue;
        }
        const float* row = xc + h * g.W;
        std::fill(d, d + j0, 0.0f);
        for (int64_t j = j0; j < j1; ++j) d[j] = row[j * f.sw + w_off];
        std::fill(d + j1, d + f.Wp, 0.0f);
      }
    }
  }
}

// The adjoint of channel_to_phases: gxc (H, W) <- the phases' entries that lie inside the image
// (overwrites gxc; the padding's entries are dropped).
// Pixels that no tap reaches (the last rows or columns when the stride does not divide the padded
// size) lie beyond the phases and get 0.
inline void phases_to_channel(const ConvGeom& g, const PhaseGeom& f, const float* phases, float* gxc) {
  const bool all_columns = (g.W - 1 + g.pad_w) / f.sw < f.Wp;
  for (int64_t h = 0; h < g.H; ++h) {
    const int64_t hp = h + g.pad_h, u = hp % f.sh, i = hp / f.sh;
    float* row = gxc + h * g.W;
    if (i >= f.Hp || !all_columns) std::fill(row, row + g.W, 0.0f);
    if (i >= f.Hp) continue;
    for (int64_t v = 0; v < f.sw; ++v) {
      const float* src = phases + (u * f.sw + v) * f.plane() + i * f.Wp;
      const int64_t w_off = v - g.pad_w;
      int64_t j0, j1;
      valid_range(w_off, f.sw, g.W, f.Wp, j0, j1);
      for (int64_t j = j0; j < j1; ++j) row[j * f.sw + w_off] = src[j];
    }
  }
}

// The calling thread's scratch for one channel's phases (grow-only).
inline float* phase_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

#if defined(__AVX512F__)
// ---- small images: the taps of an output row straight from registers (AVX-512) -----------------
// An output row (p fixed) of tap (r, s) reads input row h = p sh - pad_h + r at columns
// w = q sw + s - pad_w, q < Q (zero where w falls outside [0, W)). When an input row fits in 32
// floats (W <= 32, S <= 32) and an output row in 16 (Q <= 16), two masked loads bring the input row into
// registers, and one permute per tap picks its Q columns, the padding's lanes zeroed by the
// permute's mask: no phase buffer, no scalar gather, nothing read outside the row. col2im runs the
// other way: each input row is summed in two registers over its taps in (r, s) order and stored
// once. The 28x28 models (DCGAN-28, the conv VAE) and DCGAN-64's 32x32 and smaller layers take this
// path; larger images take the polyphase one above.
struct RegisterTaps {
  bool usable = false;
  __mmask16 q_mask = 0;              // the Q lanes of an output row
  __mmask16 row_lo = 0, row_hi = 0;  // the W lanes of an input row
  __m512i pick[32];                  // im2col: lane q <- input lane q sw + s - pad_w ...
  __mmask16 pick_mask[32];           // ... where that is a column of the image (else 0)
  __m512i put_lo[32], put_hi[32];    // col2im: input lane w (w + 16) <- lane (w + pad_w - s) / sw ...
  __mmask16 put_lo_mask[32], put_hi_mask[32];  // ... where tap s reads column w
  explicit RegisterTaps(const ConvGeom& g) {
    usable = g.Q <= 16 && g.W <= 32 && g.S <= 32;
    if (!usable) return;
    const int64_t sw = g.stride_w;
    q_mask = static_cast<__mmask16>((1u << g.Q) - 1u);
    const uint32_t row = g.W >= 32 ? 0xffffffffu : (1u << g.W) - 1u;
    row_lo = static_cast<__mmask16>(row & 0xffffu);
    row_hi = static_cast<__mmask16>(row >> 16);
    // A tap whose columns all fall in the padding gets empty masks: zeros in im2col, nothing in col2im.
    for (int64_t s = 0; s < g.S; ++s) {
      alignas(64) int32_t a[16], lo[16], hi[16];
      uint32_t ma = 0, mlo = 0, mhi = 0;
      for (int64_t q = 0; q < 16; ++q) {
        const int64_t w = q * sw + s - g.pad_w;
        const bool in = q < g.Q && w >= 0 && w < g.W;
        a[q] = in ? static_cast<int32_t>(w) : 0;
        if (in) ma |= 1u << q;
      }
      for (int64_t i = 0; i < 16; ++i) {  // lanes w = i (lo) and w = 16 + i (hi)
        lo[i] = 0;
        hi[i] = 0;
        const int64_t d_lo = i + g.pad_w - s, d_hi = 16 + i + g.pad_w - s;
        if (i < g.W && d_lo >= 0 && d_lo % sw == 0 && d_lo / sw < g.Q) {
          lo[i] = static_cast<int32_t>(d_lo / sw);
          mlo |= 1u << i;
        }
        if (16 + i < g.W && d_hi >= 0 && d_hi % sw == 0 && d_hi / sw < g.Q) {
          hi[i] = static_cast<int32_t>(d_hi / sw);
          mhi |= 1u << i;
        }
      }
      pick[s] = _mm512_load_si512(a);
      pick_mask[s] = static_cast<__mmask16>(ma);
      put_lo[s] = _mm512_load_si512(lo);
      put_hi[s] = _mm512_load_si512(hi);
      put_lo_mask[s] = static_cast<__mmask16>(mlo);
      put_hi_mask[s] = static_cast<__mmask16>(mhi);
    }
  }
};

inline void im2col_channel_registers(const ConvGeom& g, const RegisterTaps& t, const float* xc,
                                     int64_t c, float* col, int64_t ld) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = 0; r < g.R; ++r) {
    float* rows = col + (c * g.R + r) * g.S * ld;  // tap (r, 0)'s row; tap (r, s) is s ld further
    for (int64_t p = 0; p < g.P; ++p) {
      const int64_t h = p * g.stride_h - g.pad_h + r;
      float* d = rows + p * g.Q;
      if (h < 0 || h >= g.H) {
        for (int64_t s = 0; s < g.S; ++s) _mm512_mask_storeu_ps(d + s * ld, t.q_mask, zero);
        continue;
      }
      const float* row = xc + h * g.W;
      const __m512 lo = _mm512_maskz_loadu_ps(t.row_lo, row);
      const __m512 hi = _mm512_maskz_loadu_ps(t.row_hi, row + 16);
      for (int64_t s = 0; s < g.S; ++s) {
        const __m512 v = _mm512_maskz_permutex2var_ps(t.pick_mask[s], lo, t.pick[s], hi);
        _mm512_mask_storeu_ps(d + s * ld, t.q_mask, v);
      }
    }
  }
}

inline void col2im_channel_registers(const ConvGeom& g, const RegisterTaps& t, const float* col,
                                     int64_t ld, int64_t c, float* gxc) {
  for (int64_t h = 0; h < g.H; ++h) {
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t off = h + g.pad_h - r;  // = p stride_h for the output row p that reads row h
      if (off < 0 || off % g.stride_h != 0 || off / g.stride_h >= g.P) continue;
      const float* src = col + (c * g.R + r) * g.S * ld + (off / g.stride_h) * g.Q;
      for (int64_t s = 0; s < g.S; ++s) {
        const __m512 v = _mm512_maskz_loadu_ps(t.q_mask, src + s * ld);
        const __mmask16 ml = t.put_lo_mask[s], mh = t.put_hi_mask[s];
        lo = _mm512_mask_add_ps(lo, ml, lo, _mm512_maskz_permutexvar_ps(ml, t.put_lo[s], v));
        hi = _mm512_mask_add_ps(hi, mh, hi, _mm512_maskz_permutexvar_ps(mh, t.put_hi[s], v));
      }
    }
    float* row = gxc + h * g.W;
    _mm512_mask_storeu_ps(row, t.row_lo, lo);
    _mm512_mask_storeu_ps(row + 16, t.row_hi, hi);
  }
}
#endif

// How a convolution's column matrix is made, decided once per call and shared by the threads.
struct Lowering {
  ConvGeom g;
  PhaseGeom f;
#if defined(__AVX512F__)
  RegisterTaps taps;
  explicit Lowering(const ConvGeom& geom) : g(geom), f(geom), taps(geom) {}
  bool registers() const { return taps.usable; }
#else
  explicit Lowering(const ConvGeom& geom) : g(geom), f(geom) {}
  bool registers() const { return false; }
#endif
};

// Writes the column block of one image x (C, H, W) into col (rows() rows of stride ld), for the
// channels [c_begin, c_end) only, so that callers can split the work by (image, channel).
inline void im2col_channels(const Lowering& l, const float* x, int64_t c_begin, int64_t c_end,
                            float* col, int64_t ld) {
  const ConvGeom& g = l.g;
#if defined(__AVX512F__)
  if (l.registers()) {
    for (int64_t c = c_begin; c < c_end; ++c) im2col_channel_registers(g, l.taps, x + c * g.H * g.W, c, col, ld);
    return;
  }
#endif
  const PhaseGeom& f = l.f;
  float* phases = phase_scratch(f.floats());
  for (int64_t c = c_begin; c < c_end; ++c) {
    channel_to_phases(g, f, x + c * g.H * g.W, phases);
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        const float* src = phases + ((r % f.sh) * f.sw + s % f.sw) * f.plane() +
                           (r / f.sh) * f.Wp + s / f.sw;
        float* dst = col + ((c * g.R + r) * g.S + s) * ld;
        for (int64_t p = 0; p < g.P; ++p) copy_floats(src + p * f.Wp, g.Q, dst + p * g.Q);
      }
    }
  }
}

// The adjoint of im2col_channels: gx[c] (H, W) = sum of the column entries read from each pixel,
// for the channels [c_begin, c_end) of one image. Overwrites those channels of gx. Each pixel gets
// its taps added in the fixed order (r, s) (one entry per tap at most), so the result does not
// depend on how channels are split.
inline void col2im_channels(const Lowering& l, const float* col, int64_t ld, int64_t c_begin,
                            int64_t c_end, float* gx) {
  const ConvGeom& g = l.g;
#if defined(__AVX512F__)
  if (l.registers()) {
    for (int64_t c = c_begin; c < c_end; ++c) col2im_channel_registers(g, l.taps, col, ld, c, gx + c * g.H * g.W);
    return;
  }
#endif
  const PhaseGeom& f = l.f;
  float* phases = phase_scratch(f.floats());
  for (int64_t c = c_begin; c < c_end; ++c) {
    std::fill(phases, phases + f.floats(), 0.0f);
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        float* dst = phases + ((r % f.sh) * f.sw + s % f.sw) * f.plane() + (r / f.sh) * f.Wp +
                     s / f.sw;
        const float* src = col + ((c * g.R + r) * g.S + s) * ld;
        for (int64_t p = 0; p < g.P; ++p) add_floats(src + p * g.Q, g.Q, dst + p * f.Wp);
      }
    }
    phases_to_channel(g, f, phases, gx + c * g.H * g.W);
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
