// conv2d.cu: 2-D convolution on the GPU by im2col + cuBLAS GEMMs (the native backend), the
// run-time choice between it and cuDNN (kernels/cuda/cudnn_conv.cu), and the routed entry points
// (see kernels/conv2d.h).
//
// FLOPs: each of forward, backward data and backward weight does 2 N K C R S P Q (one multiply-add
// per kernel tap per output pixel); forward adds N K P Q for the bias.
// Bytes (per op, besides the operands x, w, y once each): the column matrix, 4 N C R S P Q,
// written once and read once (forward: im2col then GEMM; backward data: GEMM then col2im; backward
// weight: im2col then GEMM), plus 8 N K P Q for the gy gather of backward weight when P Q > 1.
// For the DCGAN layers (4x4 kernels, stride 2) the column matrix is 4x the input, and the GEMMs
// are compute-bound: the aim is cuBLAS's FP32 rate, with cuDNN beside it in bench_cuda_conv.
//
// Design. With col_n (C*R*S, P*Q) the column matrix of image n (kernels/cuda/im2col.cuh):
//   forward          y_n (K, PQ)        = w (K, CRS) col_n          strided-batched GEMM, A stride 0
//   backward data    col_n (CRS, PQ)    = w^T (CRS, K) gy_n         strided-batched GEMM, then col2im
//   backward weight  gw (K, CRS)       += gy_chunk (K, G PQ) col_chunk^T (G PQ, CRS)   one GEMM
// The batch is cut into chunks of G images whose column matrices fit conv_column_budget()
// (256 MiB by default); G depends only on the shape and that bound. Forward and backward data
// need no reduction over the batch, so each image's GEMM writes its own output (strided-batched:
// y_n and col_n are laid out exactly as the GEMMs want them, no scatter). Backward weight sums over
// the batch: per chunk one GEMM whose contraction runs over the chunk's images side by side (the
// "wide" column layout, and gy gathered from (G, K, PQ) into (K, G PQ)), the chunks in batch order
// accumulating into gw with beta = 1 after the first. cuBLAS is bit-reproducible on one stream,
// col2im gathers in a fixed order, so every result is deterministic.
// Special cases: a 1x1 kernel with stride 1 and no padding has col_n = x_n and col2im = identity,
// so forward and backward data are one strided-batched GEMM on x / gx directly; a 1x1 output
// (P Q = 1, e.g. a DCGAN discriminator's last layer) turns the G matrix-vector products into one
// GEMM over the chunk (the batched column layout is then (G, CRS) row-major).
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"
#include "kernels/gemm.h"

namespace ll::kernels::cuda {

// ---- backend selection ------------------------------------------------------------------------
namespace {
std::atomic<ConvBackend> g_backend{ConvBackend::Native};
std::atomic<int64_t> g_column_budget{int64_t{256} << 20};
}  // namespace

void set_conv_backend(ConvBackend b) { g_backend.store(b); }
ConvBackend conv_backend() { return g_backend.load(); }

const char* conv_backend_name(ConvBackend b) {
  return b == ConvBackend::Cudnn ? "cudnn" : "native";
}

ConvBackend parse_conv_backend(const std::string& s) {
  if (s == "native") return ConvBackend::Native;
  if (s == "cudnn") return ConvBackend::Cudnn;
  throw std::invalid_argument("unknown convolution backend '" + s +
                              "': expected 'native' (im2col + cuBLAS) or 'cudnn'");
}

void set_conv_column_budget(int64_t bytes) {
  if (bytes < 1) {
    throw std::invalid_argument("set_conv_column_budget: " + std::to_string(bytes) +
                                " bytes; the bound must be positive");
  }
  g_column_budget.store(bytes);
}
int64_t conv_column_budget() { return g_column_budget.load(); }

// ---- native backend ---------------------------------------------------------------------------
namespace {

// Images per chunk so that `floats_per_image` times it stays within the column budget (>= 1).
int64_t images_per_chunk(int64_t N, int64_t floats_per_image) {
  const int64_t budget = conv_column_budget() / static_cast<int64_t>(sizeof(float));
  if (floats_per_image <= 0) return std::max<int64_t>(N, 1);
  return std::clamp<int64_t>(budget / floats_per_image, 1, std::max<int64_t>(N, 1));
}

bool pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// Scratch floats for the work on `stream`, freed when the scope ends (safe once that work is
// enqueued: the stream-ordered allocator reuses the block behind it).
class Scratch {
 public:
  Scratch(int64_t floats, Stream stream)
      : p_(static_cast<float*>(malloc_device(static_cast<size_t>(floats) * sizeof(float), stream))) {}
  ~Scratch() { free_device(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return p_; }

 private:
  float* p_;
};

}  // namespace

void conv2d_forward_native(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y, Stream stream) {
  detail::check_conv(s, "conv2d_forward");
  const int64_t N = s.N, K = s.K, CRS = s.C * s.R * s.S, PQ = s.P() * s.Q(), CHW = s.C * s.H * s.W;
  if (N == 0 || K == 0) return;
  if (CRS == 0) {  // no input channels: the GEMM is an empty sum
    LL_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(N * K * PQ) * sizeof(float), stream));
  } else if (pointwise(s)) {
    // y_n (K, HW) = w (K, C) x_n (C, HW)
    gemm_strided_batched(false, false, K, PQ, CRS, 1.0f, w, 0, x, CHW, 0.0f, y, K * PQ, N, stream);
  } else {
    const int64_t group = images_per_chunk(N, CRS * PQ);
    Scratch col(group * CRS * PQ, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      // batched layout: col_j (CRS, PQ) at col + j CRS PQ
      detail::im2col(s, x + n0 * CHW, G, col.get(), PQ, CRS * PQ, stream);
      if (PQ == 1) {
        // y_chunk (G, K) = col (G, CRS) w^T
        gemm(false, true, G, K, CRS, 1.0f, col.get(), w, 0.0f, y + n0 * K, stream);
      } else {
        gemm_strided_batched(false, false, K, PQ, CRS, 1.0f, w, 0, col.get(), CRS * PQ, 0.0f,
                             y + n0 * K * PQ, K * PQ, G, stream);
      }
    }
  }
  if (bias) bias_add(y, bias, N, K, PQ, stream);
}

void conv2d_backward_data_native(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                                 Stream stream) {
  detail::check_conv(s, "conv2d_backward_data");
  const int64_t N = s.N, K = s.K, CRS = s.C * s.R * s.S, PQ = s.P() * s.Q(), CHW = s.C * s.H * s.W;
  if (N == 0 || s.C == 0) return;
  if (K == 0) {  // no output channels: nothing flows back
    LL_CUDA_CHECK(cudaMemsetAsync(gx, 0, static_cast<size_t>(N * CHW) * sizeof(float), stream));
    return;
  }
  if (pointwise(s)) {
    // gx_n (C, HW) = w^T (C, K) gy_n (K, HW)
    gemm_strided_batched(true, false, CRS, PQ, K, 1.0f, w, 0, gy, K * PQ, 0.0f, gx, CHW, N, stream);
    return;
  }
  const int64_t group = images_per_chunk(N, CRS * PQ);
  Scratch col(group * CRS * PQ, stream);
  for (int64_t n0 = 0; n0 < N; n0 += group) {
    const int64_t G = std::min(group, N - n0);
    if (PQ == 1) {
      // col (G, CRS) = gy_chunk (G, K) w (K, CRS)
      gemm(false, false, G, CRS, K, 1.0f, gy + n0 * K, w, 0.0f, col.get(), stream);
    } else {
      gemm_strided_batched(true, false, CRS, PQ, K, 1.0f, w, 0, gy + n0 * K * PQ, K * PQ, 0.0f,
                           col.get(), CRS * PQ, G, stream);
    }
    detail::col2im(s, col.get(), G, PQ, CRS * PQ, gx + n0 * CHW, stream);
  }
}

void conv2d_backward_weight_native(const Conv2dShape& s, const float* x, const float* gy,
                                   float* gw, Stream stream) {
  detail::check_conv(s, "conv2d_backward_weight");
  const int64_t N = s.N, K = s.K, CRS = s.C * s.R * s.S, PQ = s.P() * s.Q(), CHW = s.C * s.H * s.W;
  if (K == 0 || CRS == 0) return;
  if (N == 0) {
    LL_CUDA_CHECK(cudaMemsetAsync(gw, 0, static_cast<size_t>(K * CRS) * sizeof(float), stream));
    return;
  }
  if (PQ == 1) {
    // gw (K, CRS) += gy_chunk^T (K, G) col (G, CRS); batched layout col (G, CRS)
    const int64_t group = images_per_chunk(N, CRS);
    Scratch col(group * CRS, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      detail::im2col(s, x + n0 * CHW, G, col.get(), 1, CRS, stream);
      gemm(true, false, K, CRS, G, 1.0f, gy + n0 * K, col.get(), n0 == 0 ? 0.0f : 1.0f, gw,
           stream);
    }
    return;
  }
  // Wide layout: the chunk's column matrices side by side, col (CRS, G PQ), and gy likewise.
  const int64_t group = images_per_chunk(N, (CRS + K) * PQ);
  Scratch col(group * CRS * PQ, stream);
  Scratch gathered(group > 1 ? group * K * PQ : 0, stream);
  for (int64_t n0 = 0; n0 < N; n0 += group) {
    const int64_t G = std::min(group, N - n0);
    detail::im2col(s, x + n0 * CHW, G, col.get(), G * PQ, PQ, stream);
    const float* gyg = gy + n0 * K * PQ;  // gy_n (K, PQ) is the operand itself when G == 1
    if (G > 1) {
      detail::gather_images(gyg, G, K, PQ, gathered.get(), stream);
      gyg = gathered.get();
    }
    // gw (K, CRS) (+)= gy_chunk (K, G PQ) col^T (G PQ, CRS)
    gemm(false, true, K, CRS, G * PQ, 1.0f, gyg, col.get(), n0 == 0 ? 0.0f : 1.0f, gw, stream);
  }
}

// ---- routed entry points ----------------------------------------------------------------------

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, Stream stream) {
  if (conv_backend() == ConvBackend::Cudnn) {
    conv2d_forward_cudnn(s, x, w, bias, y, stream);
  } else {
    conv2d_forward_native(s, x, w, bias, y, stream);
  }
}

void conv2d_backward_data(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                          Stream stream) {
  if (conv_backend() == ConvBackend::Cudnn) {
    conv2d_backward_data_cudnn(s, gy, w, gx, stream);
  } else {
    conv2d_backward_data_native(s, gy, w, gx, stream);
  }
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                            Stream stream) {
  if (conv_backend() == ConvBackend::Cudnn) {
    conv2d_backward_weight_cudnn(s, x, gy, gw, stream);
  } else {
    conv2d_backward_weight_native(s, x, gy, gw, stream);
  }
}

}  // namespace ll::kernels::cuda
