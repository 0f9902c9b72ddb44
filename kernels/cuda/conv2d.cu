// conv2d.cu: 2-D convolution on the GPU by im2col + cuBLAS GEMMs (the native backend), the
// run-time choice between it and cuDNN (kernels/cuda/cudnn_conv.cu), and the routed entry points
// (see kernels/conv2d.h).
//
// FLOPs: each of forward, backward data and backward weight does 2 N K C R S P Q (one multiply-add
// per kernel tap per output pixel); forward adds N K P Q for the bias.
// Bytes (per op, besides the operands x, w, y once each): the column matrix, 4 N C R S P Q,
// written once and read once (forward: im2col then GEMM; backward data: GEMM then col2im; backward
// weight: im2col then GEMM), plus 8 N K P Q for permuting gy or y where the batch is folded
// (below): backward weight when P Q > 1, forward and backward data when 1 < P Q <= 64. None of it
// when the kernel covers the whole image (then the column matrix is x itself).
// For the DCGAN layers (4x4 kernels, stride 2) the column matrix is 4x the input, and the GEMMs
// are compute-bound: the aim is cuBLAS's FP32 rate, with cuDNN beside it in bench_cuda_conv.
//
// Design. With col_n (C*R*S, P*Q) the column matrix of image n (kernels/cuda/im2col.cuh), each
// pass is a GEMM over column matrices. The batch is cut into chunks of G images whose scratch
// (column matrices, plus the gathered gy or the GEMM's output where a pass needs them) fits
// conv_column_budget() (256 MiB by default); G depends only on the shape and that bound. Which GEMM
// shape a pass uses depends on the output map's size P Q:
//
//   forward          P Q > 64:  y_n (K, PQ) = w (K, CRS) col_n           strided-batched GEMM
//                    P Q <= 64: y_chunk (K, G PQ) = w col (CRS, G PQ)    one GEMM, then scattered
//                                                                        to (G, K, PQ), + bias
//   backward data    P Q > 64:  col_n (CRS, PQ) = w^T (CRS, K) gy_n      strided-batched, col2im
//                    P Q <= 64: col (CRS, G PQ) = w^T gy_chunk (K, G PQ) gy gathered, one GEMM,
//                                                                        col2im (wide layout)
//   backward weight  any P Q:   gw (K, CRS) += gy_chunk (K, G PQ) col^T  one GEMM per chunk
//
// "Folding" means the batched images sit side by side in the GEMM's N dimension (the "wide" column
// layout: col (CRS, G PQ), image j in columns j PQ .. j PQ + PQ - 1), so one GEMM of N = G P Q
// replaces G products of N = P Q, which for a 4x4 or 8x8 map are too skinny to fill cuBLAS's tiles
// (the layers at the ends of a DCGAN: the discriminator's 4x4 maps, the generator's 4x4 input).
// Its price is one permutation of y (forward: scatter_images from (K, G PQ) to (G, K, PQ), with
// the bias added on the way instead of a bias_add pass) or of gy (backward data: gather_images):
// 8 G K P Q bytes against 2 G K C R S P Q FLOPs. For large maps the strided-batched GEMMs write
// y_n and col_n exactly where they belong (no permutation), and their N = P Q fills the tiles.
// The weight gradient sums over the batch, so it was folded from the start: per chunk one GEMM
// whose contraction runs over the chunk's images side by side, the chunks in batch order
// accumulating into gw with beta = 1 after the first.
// 1x1 outputs (P Q = 1) use the batched layout, which is then already folded: col (G, CRS)
// row-major, y_chunk (G, K) = col w^T, col = gy_chunk (G, K) w, gw += gy_chunk^T (K, G) col; no
// permutation at all. When moreover the kernel covers the whole unpadded input (R = H, S = W, no
// padding: a DCGAN discriminator's last layer), col is x itself: each pass is one GEMM over the
// whole batch, with no im2col, col2im or scratch (y = x w^T, gx = gy w, gw = gy^T x).
// A 1x1 kernel with stride 1 and no padding on large maps has col_n = x_n and col2im = identity,
// so forward and backward data are one strided-batched GEMM on x / gx directly; on small maps it
// takes the folded path (im2col is then the gather of x into the wide layout).
// Determinism: cuBLAS is bit-reproducible on one stream; im2col, gather and scatter are copies;
// col2im gathers in a fixed order; the chunking depends only on the shape and the budget; so every
// result is deterministic. The bias added in the scatter is the same float add as bias_add's.
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

// Output maps of at most this many pixels (P Q) fold a chunk of the batch into the GEMM's N
// dimension (the wide layout) in forward and backward data; larger ones keep one GEMM per image
// (strided-batched), whose N = P Q already fills cuBLAS's tiles. A choice, not a measurement: the
// fold costs one extra pass over y or gy (8 G K P Q bytes, against 2 G K C R S P Q FLOPs of the
// GEMM), and bench_cuda_conv's conv_fold/ cases time both GEMM shapes on a GPU.
constexpr int64_t kFoldMaxPQ = 64;

// Images per chunk so that `floats_per_image` times it stays within the column budget (>= 1).
int64_t images_per_chunk(int64_t N, int64_t floats_per_image) {
  const int64_t budget = conv_column_budget() / static_cast<int64_t>(sizeof(float));
  if (floats_per_image <= 0) return std::max<int64_t>(N, 1);
  return std::clamp<int64_t>(budget / floats_per_image, 1, std::max<int64_t>(N, 1));
}

bool pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// The kernel covers the whole unpadded image (R = H, S = W, no padding; any stride): P = Q = 1 and
// the column matrix of image n, (C R S, 1), is x_n itself (C H W values in the same order), so the
// batch's column matrices in the batched layout, (N, C R S) row-major, are x: no im2col, no
// col2im, no scratch, and each pass is one GEMM over the whole batch. A DCGAN discriminator's last
// layer (4x4 or 7x7 input, kernel of the same size) and, through the adjoint, a generator's first
// transposed conv (1x1 input, stride 1, no padding); a 1x1 conv on 1x1 maps too.
bool whole_image(const Conv2dShape& s) {
  return s.R == s.H && s.S == s.W && s.pad_h == 0 && s.pad_w == 0;
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
  bool bias_done = false;
  if (CRS == 0) {  // no input channels: the GEMM is an empty sum
    LL_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(N * K * PQ) * sizeof(float), stream));
  } else if (whole_image(s)) {
    // y (N, K) = x (N, CRS) w^T
    gemm(false, true, N, K, CRS, 1.0f, x, w, 0.0f, y, stream);
  } else if (pointwise(s) && PQ > kFoldMaxPQ) {
    // y_n (K, HW) = w (K, C) x_n (C, HW)
    gemm_strided_batched(false, false, K, PQ, CRS, 1.0f, w, 0, x, CHW, 0.0f, y, K * PQ, N, stream);
  } else if (PQ == 1) {
    const int64_t group = images_per_chunk(N, CRS);
    Scratch col(group * CRS, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      // batched layout col (G, CRS); y_chunk (G, K) = col w^T
      detail::im2col(s, x + n0 * CHW, G, col.get(), 1, CRS, stream);
      gemm(false, true, G, K, CRS, 1.0f, col.get(), w, 0.0f, y + n0 * K, stream);
    }
  } else if (PQ <= kFoldMaxPQ) {
    // Folded: y_chunk (K, G PQ) = w (K, CRS) col (CRS, G PQ) in the wide layout, then scattered to
    // (G, K, PQ) with the bias added on the way. With chunks of one image the GEMM writes y_n.
    const int64_t group = images_per_chunk(N, (CRS + K) * PQ);
    Scratch col(group * CRS * PQ, stream);
    Scratch out(group > 1 ? group * K * PQ : 0, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      detail::im2col(s, x + n0 * CHW, G, col.get(), G * PQ, PQ, stream);
      if (group == 1) {
        gemm(false, false, K, PQ, CRS, 1.0f, w, col.get(), 0.0f, y + n0 * K * PQ, stream);
      } else {
        gemm(false, false, K, G * PQ, CRS, 1.0f, w, col.get(), 0.0f, out.get(), stream);
        detail::scatter_images(out.get(), G, K, PQ, bias, y + n0 * K * PQ, stream);
      }
    }
    bias_done = group > 1;
  } else {
    const int64_t group = images_per_chunk(N, CRS * PQ);
    Scratch col(group * CRS * PQ, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      // batched layout: col_j (CRS, PQ) at col + j CRS PQ; y_j (K, PQ) = w col_j
      detail::im2col(s, x + n0 * CHW, G, col.get(), PQ, CRS * PQ, stream);
      gemm_strided_batched(false, false, K, PQ, CRS, 1.0f, w, 0, col.get(), CRS * PQ, 0.0f,
                           y + n0 * K * PQ, K * PQ, G, stream);
    }
  }
  if (bias && !bias_done) bias_add(y, bias, N, K, PQ, stream);
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
  if (whole_image(s)) {
    // gx (N, CHW) = gy (N, K) w (K, CRS): the column matrix is gx, col2im the identity
    gemm(false, false, N, CRS, K, 1.0f, gy, w, 0.0f, gx, stream);
    return;
  }
  if (pointwise(s) && PQ > kFoldMaxPQ) {
    // gx_n (C, HW) = w^T (C, K) gy_n (K, HW)
    gemm_strided_batched(true, false, CRS, PQ, K, 1.0f, w, 0, gy, K * PQ, 0.0f, gx, CHW, N, stream);
    return;
  }
  if (PQ == 1) {
    const int64_t group = images_per_chunk(N, CRS);
    Scratch col(group * CRS, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      // batched layout col (G, CRS) = gy_chunk (G, K) w (K, CRS)
      gemm(false, false, G, CRS, K, 1.0f, gy + n0 * K, w, 0.0f, col.get(), stream);
      detail::col2im(s, col.get(), G, 1, CRS, gx + n0 * CHW, stream);
    }
    return;
  }
  if (PQ <= kFoldMaxPQ) {
    // Folded: gy gathered from (G, K, PQ) into (K, G PQ), col (CRS, G PQ) = w^T gy_chunk in the
    // wide layout, col2im from it. With chunks of one image gy_n is the operand itself.
    const int64_t group = images_per_chunk(N, (CRS + K) * PQ);
    Scratch col(group * CRS * PQ, stream);
    Scratch gathered(group > 1 ? group * K * PQ : 0, stream);
    for (int64_t n0 = 0; n0 < N; n0 += group) {
      const int64_t G = std::min(group, N - n0);
      const float* gyg = gy + n0 * K * PQ;
      if (G > 1) {
        detail::gather_images(gyg, G, K, PQ, gathered.get(), stream);
        gyg = gathered.get();
      }
      gemm(true, false, CRS, G * PQ, K, 1.0f, w, gyg, 0.0f, col.get(), stream);
      detail::col2im(s, col.get(), G, G * PQ, PQ, gx + n0 * CHW, stream);
    }
    return;
  }
  const int64_t group = images_per_chunk(N, CRS * PQ);
  Scratch col(group * CRS * PQ, stream);
  for (int64_t n0 = 0; n0 < N; n0 += group) {
    const int64_t G = std::min(group, N - n0);
    // batched layout: col_j (CRS, PQ) = w^T (CRS, K) gy_j (K, PQ)
    gemm_strided_batched(true, false, CRS, PQ, K, 1.0f, w, 0, gy + n0 * K * PQ, K * PQ, 0.0f,
                         col.get(), CRS * PQ, G, stream);
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
  if (whole_image(s)) {
    // gw (K, CRS) = gy^T (K, N) x (N, CRS): one GEMM over the whole batch
    gemm(true, false, K, CRS, N, 1.0f, gy, x, 0.0f, gw, stream);
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
