// emu_cudnn.cpp: the cuDNN convolution API subset of include/cudnn.h for the CUDA emulator, over a
// direct CPU convolution. What is checked, as cuDNN does (cuDNN 9 API reference, cudnn_cnn):
//   - descriptors: NCHW float only (CUDNN_STATUS_NOT_SUPPORTED otherwise), positive sizes, pads
//     >= 0, strides and dilations >= 1, a descriptor used before it was set (BAD_PARAM);
//   - a call's descriptors agree: x's channels are w's, y's shape is the convolution's output
//     shape (cudnnGetConvolution2dForwardOutputDim), the bias of cudnnAddTensor is 1 or the output's
//     size in each dimension (BAD_PARAM otherwise);
//   - the algorithm is one this emulation offers, and the workspace is at least what it asked for
//     and is device memory (BAD_PARAM); operands outside device memory abort (a GPU would fault).
// The ranking (cudnnGet*Algorithm_v7): with a math type that allows tensor cores (not
// CUDNN_FMA_MATH), first a TF32 algorithm (mathType CUDNN_TENSOR_OP_MATH: x and w, or dy, rounded
// to TF32 before the FP32 sums); then, as in cuDNN, non-deterministic algorithms ahead of
// deterministic ones for the backward passes (ALGO_0 is non-deterministic in cuDNN); the
// deterministic FP32 ones ask for a workspace, which the call fills, so a workspace freed too early
// shows. Results are alpha * conv + beta * out (beta = 0 does not read out), summed in float over
// (c, r, s) for each output, an order unlike the CPU's im2col + GEMM.
// The work is queued on the handle's stream (ll::emu::enqueue).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cudnn.h"

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  bool set = false;
  int n = 0, c = 0, h = 0, w = 0;
};
struct cudnnFilterStruct {
  bool set = false;
  int k = 0, c = 0, r = 0, s = 0;
};
struct cudnnConvolutionStruct {
  bool set = false;
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

long g_live = 0;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "\nCUDA emulator (cuDNN): %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

void check_device(const char* fn, const char* name, const void* p, size_t elems) {
  if (elems == 0) return;
  if (!p || !ll::emu::is_device_range(p, elems * sizeof(float))) {
    die(std::string(fn) + ": operand " + name + " (" + std::to_string(elems) +
        " floats) is not inside one device allocation (a GPU would fault)");
  }
}

size_t count(const cudnnTensorStruct& t) { return size_t(t.n) * t.c * t.h * t.w; }
size_t count(const cudnnFilterStruct& f) { return size_t(f.k) * f.c * f.r * f.s; }

int out_dim(int in, int pad, int filter, int stride, int dil) {
  return (in + 2 * pad - ((filter - 1) * dil + 1)) / stride + 1;
}

// The x / w / y triple of one convolution agree.
cudnnStatus_t check_triple(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                           cudnnTensorDescriptor_t y) {
  if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
  if (x->c != w->c) return CUDNN_STATUS_BAD_PARAM;
  const int p = out_dim(x->h, c->pad_h, w->r, c->u, c->dil_h), q = out_dim(x->w, c->pad_w, w->s, c->v, c->dil_w);
  if (p < 1 || q < 1) return CUDNN_STATUS_BAD_PARAM;
  if (y->n != x->n || y->c != w->k || y->h != p || y->w != q) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

float tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}
std::vector<float> copy_of(const float* p, size_t n, bool round) {
  std::vector<float> v(p, p + n);
  if (round) {
    for (float& e : v) e = tf32(e);
  }
  return v;
}

struct Geometry {
  int N, C, H, W, K, R, S, P, Q, pad_h, pad_w, u, v, dil_h, dil_w;
  bool flip;  // CUDNN_CONVOLUTION: the filter is applied flipped
  Geometry(const cudnnTensorStruct& x, const cudnnFilterStruct& w, const cudnnConvolutionStruct& c,
           const cudnnTensorStruct& y)
      : N(x.n), C(x.c), H(x.h), W(x.w), K(w.k), R(w.r), S(w.s), P(y.h), Q(y.w), pad_h(c.pad_h), pad_w(c.pad_w),
        u(c.u), v(c.v), dil_h(c.dil_h), dil_w(c.dil_w), flip(c.mode == CUDNN_CONVOLUTION) {}
  size_t xi(int n, int ch, int h, int w) const { return ((size_t(n) * C + ch) * H + h) * W + w; }
  size_t yi(int n, int k, int p, int q) const { return ((size_t(n) * K + k) * P + p) * Q + q; }
  size_t wi(int k, int ch, int r, int s) const {
    if (flip) {
      r = R - 1 - r;
      s = S - 1 - s;
    }
    return ((size_t(k) * C + ch) * R + r) * S + s;
  }
};

void blend(float* out, const std::vector<float>& acc, float alpha, float beta) {
  for (size_t i = 0; i < acc.size(); ++i) out[i] = beta == 0.0f ? alpha * acc[i] : alpha * acc[i] + beta * out[i];
}

void forward(const Geometry& g, const float* x, const float* w, float* y, float alpha, float beta) {
  std::vector<float> acc(size_t(g.N) * g.K * g.P * g.Q, 0.0f);
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k)
      for (int p = 0; p < g.P; ++p)
        for (int q = 0; q < g.Q; ++q) {
          float s = 0.0f;
          for (int c = 0; c < g.C; ++c)
            for (int r = 0; r < g.R; ++r) {
              const int h = p * g.u - g.pad_h + r * g.dil_h;
              if (h < 0 || h >= g.H) continue;
              for (int t = 0; t < g.S; ++t) {
                const int ww = q * g.v - g.pad_w + t * g.dil_w;
                if (ww < 0 || ww >= g.W) continue;
                s += x[g.xi(n, c, h, ww)] * w[g.wi(k, c, r, t)];
              }
            }
          acc[g.yi(n, k, p, q)] = s;
        }
  blend(y, acc, alpha, beta);
}

void backward_data(const Geometry& g, const float* w, const float* dy, float* dx, float alpha, float beta) {
  std::vector<float> acc(size_t(g.N) * g.C * g.H * g.W, 0.0f);
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k)
      for (int p = 0; p < g.P; ++p)
        for (int q = 0; q < g.Q; ++q) {
          const float d = dy[g.yi(n, k, p, q)];
          for (int c = 0; c < g.C; ++c)
            for (int r = 0; r < g.R; ++r) {
              const int h = p * g.u - g.pad_h + r * g.dil_h;
              if (h < 0 || h >= g.H) continue;
              for (int t = 0; t < g.S; ++t) {
                const int ww = q * g.v - g.pad_w + t * g.dil_w;
                if (ww < 0 || ww >= g.W) continue;
                acc[g.xi(n, c, h, ww)] += d * w[g.wi(k, c, r, t)];
              }
            }
        }
  blend(dx, acc, alpha, beta);
}

void backward_filter(const Geometry& g, const float* x, const float* dy, float* dw, float alpha, float beta) {
  std::vector<float> acc(size_t(g.K) * g.C * g.R * g.S, 0.0f);
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k)
      for (int p = 0; p < g.P; ++p)
        for (int q = 0; q < g.Q; ++q) {
          const float d = dy[g.yi(n, k, p, q)];
          for (int c = 0; c < g.C; ++c)
            for (int r = 0; r < g.R; ++r) {
              const int h = p * g.u - g.pad_h + r * g.dil_h;
              if (h < 0 || h >= g.H) continue;
              for (int t = 0; t < g.S; ++t) {
                const int ww = q * g.v - g.pad_w + t * g.dil_w;
                if (ww < 0 || ww >= g.W) continue;
                acc[g.wi(k, c, r, t)] += d * x[g.xi(n, c, h, ww)];
              }
            }
        }
  blend(dw, acc, alpha, beta);
}

// The algorithms offered for each pass: {algo, deterministic, tf32, workspace needed}.
struct Offer {
  int algo;
  bool deterministic, tensor_op, workspace;
};
const Offer kFwd[] = {{1, true, true, true}, {0, true, false, false}, {2, true, false, true}};
const Offer kBwdData[] = {{1, true, true, true}, {0, false, false, false}, {1, true, false, true}};
const Offer kBwdFilter[] = {{1, true, true, true}, {0, false, false, false}, {3, false, false, true},
                            {1, true, false, true}};

size_t workspace_for(const Offer& o, size_t operand_floats) { return o.workspace ? operand_floats * sizeof(float) : 0; }

template <typename Perf, typename Algo, size_t M>
cudnnStatus_t rank(const Offer (&offers)[M], const cudnnConvolutionStruct& c, size_t ws_floats, int requested,
                   int* returned, Perf* perf) {
  if (!returned || !perf || requested < 1) return CUDNN_STATUS_BAD_PARAM;
  int n = 0;
  for (const Offer& o : offers) {
    if (o.tensor_op && c.math == CUDNN_FMA_MATH) continue;
    if (n == requested) break;
    Perf p{};
    p.algo = static_cast<Algo>(o.algo);
    p.status = CUDNN_STATUS_SUCCESS;
    p.time = 1.0f + n;
    p.memory = workspace_for(o, ws_floats);
    p.determinism = o.deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    p.mathType = o.tensor_op ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    perf[n++] = p;
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

// The offer an (algo, math type) pair selects, or null.
template <size_t M>
const Offer* find_offer(const Offer (&offers)[M], int algo, cudnnMathType_t math) {
  const bool tensor = math != CUDNN_FMA_MATH;
  for (const Offer& o : offers) {
    if (o.algo == algo && o.tensor_op == tensor) return &o;
  }
  for (const Offer& o : offers) {  // a tensor-op math type with an FP32-only algorithm runs in FP32
    if (o.algo == algo && !o.tensor_op) return &o;
  }
  return nullptr;
}

cudnnStatus_t check_workspace(const Offer* o, size_t need_floats, const void* ws, size_t bytes) {
  if (!o) return CUDNN_STATUS_BAD_PARAM;
  const size_t need = workspace_for(*o, need_floats);
  if (bytes < need) return CUDNN_STATUS_BAD_PARAM;
  if (need > 0 && (!ws || !ll::emu::is_device_range(ws, need))) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

namespace ll::emu {
long cudnn_live_descriptors() { return g_live; }
}  // namespace ll::emu

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}
size_t cudnnGetVersion() { return CUDNN_VERSION; }
cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return CUDNN_STATUS_BAD_PARAM;
  *handle = new cudnnContext;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  if (!handle) return CUDNN_STATUS_BAD_PARAM;
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUDNN_STATUS_BAD_PARAM;
  handle->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* stream) {
  if (!handle || !stream) return CUDNN_STATUS_BAD_PARAM;
  *stream = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

#define LL_EMU_DESCRIPTOR(Type, Struct, Create, Destroy)       \
  cudnnStatus_t Create(Type* d) {                              \
    if (!d) return CUDNN_STATUS_BAD_PARAM;                     \
    *d = new Struct;                                           \
    ++g_live;                                                  \
    return CUDNN_STATUS_SUCCESS;                               \
  }                                                            \
  cudnnStatus_t Destroy(Type d) {                              \
    if (d) {                                                   \
      delete d;                                                \
      --g_live;                                                \
    }                                                          \
    return CUDNN_STATUS_SUCCESS;                               \
  }
LL_EMU_DESCRIPTOR(cudnnTensorDescriptor_t, cudnnTensorStruct, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor)
LL_EMU_DESCRIPTOR(cudnnFilterDescriptor_t, cudnnFilterStruct, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor)
LL_EMU_DESCRIPTOR(cudnnConvolutionDescriptor_t, cudnnConvolutionStruct, cudnnCreateConvolutionDescriptor,
                  cudnnDestroyConvolutionDescriptor)
#undef LL_EMU_DESCRIPTOR

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  if (!d || n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = cudnnTensorStruct{true, n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (!d || k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = cudnnFilterStruct{true, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute_type) {
  if (!d || pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dilation_h < 1 || dilation_w < 1) return CUDNN_STATUS_BAD_PARAM;
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_BAD_PARAM;
  if (compute_type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  const cudnnMathType_t math = d->math;
  *d = cudnnConvolutionStruct{true, pad_h, pad_w, u, v, dilation_h, dilation_w, mode, math};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (!d || math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH) return CUDNN_STATUS_BAD_PARAM;
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t* math) {
  if (!d || !math) return CUDNN_STATUS_BAD_PARAM;
  *math = d->math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int* n, int* k, int* h, int* wo) {
  if (!c || !x || !w || !c->set || !x->set || !w->set || !n || !k || !h || !wo) return CUDNN_STATUS_BAD_PARAM;
  if (x->c != w->c) return CUDNN_STATUS_BAD_PARAM;
  *n = x->n;
  *k = w->k;
  *h = out_dim(x->h, c->pad_h, w->r, c->u, c->dil_h);
  *wo = out_dim(x->w, c->pad_w, w->s, c->v, c->dil_w);
  return *h >= 1 && *wo >= 1 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t h, int* count) {
  if (!h || !count) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t h, int* count) {
  if (!h || !count) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t h, int* count) {
  if (!h || !count) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                     cudnnTensorDescriptor_t y, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(x, w, c, y); st != CUDNN_STATUS_SUCCESS) return st;
  return rank<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(kFwd, *c, count(*x), requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                          cudnnTensorDescriptor_t dx, int requested, int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(dx, w, c, dy); st != CUDNN_STATUS_SUCCESS) return st;
  return rank<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(kBwdData, *c, count(*dy), requested,
                                                                              returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                            cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                            cudnnFilterDescriptor_t dw, int requested, int* returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(x, dw, c, dy); st != CUDNN_STATUS_SUCCESS) return st;
  return rank<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(kBwdFilter, *c, count(*dw),
                                                                                  requested, returned, perf);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                      cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* bytes) {
  if (!h || !bytes) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(x, w, c, y); st != CUDNN_STATUS_SUCCESS) return st;
  const Offer* o = find_offer(kFwd, algo, c->math);
  if (!o) return CUDNN_STATUS_NOT_SUPPORTED;
  *bytes = workspace_for(*o, count(*x));
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                           cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                           cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
  if (!h || !bytes) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(dx, w, c, dy); st != CUDNN_STATUS_SUCCESS) return st;
  const Offer* o = find_offer(kBwdData, algo, c->math);
  if (!o) return CUDNN_STATUS_NOT_SUPPORTED;
  *bytes = workspace_for(*o, count(*dy));
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                             cudnnTensorDescriptor_t dy,
                                                             cudnnConvolutionDescriptor_t c,
                                                             cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
  if (!h || !bytes) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(x, dw, c, dy); st != CUDNN_STATUS_SUCCESS) return st;
  const Offer* o = find_offer(kBwdFilter, algo, c->math);
  if (!o) return CUDNN_STATUS_NOT_SUPPORTED;
  *bytes = workspace_for(*o, count(*dw));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd, const void* x,
                                      cudnnFilterDescriptor_t wd, const void* w, cudnnConvolutionDescriptor_t c,
                                      cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes, const void* beta,
                                      cudnnTensorDescriptor_t yd, void* y) {
  if (!h || !alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(xd, wd, c, yd); st != CUDNN_STATUS_SUCCESS) return st;
  const Offer* o = find_offer(kFwd, algo, c->math);
  if (const cudnnStatus_t st = check_workspace(o, count(*xd), ws, ws_bytes); st != CUDNN_STATUS_SUCCESS) return st;
  check_device("cudnnConvolutionForward", "x", x, count(*xd));
  check_device("cudnnConvolutionForward", "w", w, count(*wd));
  check_device("cudnnConvolutionForward", "y", y, count(*yd));
  const Geometry g(*xd, *wd, *c, *yd);
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const bool t = o->tensor_op;
  const size_t nx = count(*xd), nw = count(*wd), need = workspace_for(*o, nx);
  auto xp = static_cast<const float*>(x);
  auto wp = static_cast<const float*>(w);
  auto yp = static_cast<float*>(y);
  ll::emu::enqueue(h->stream, [=] {
    if (need) std::memset(ws, 0xFF, need);
    const std::vector<float> xv = copy_of(xp, nx, t), wv = copy_of(wp, nw, t);
    forward(g, xv.data(), wv.data(), yp, a, b);
  }, "cudnnConvolutionForward");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t wd,
                                           const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
                                           cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdDataAlgo_t algo,
                                           void* ws, size_t ws_bytes, const void* beta, cudnnTensorDescriptor_t dxd,
                                           void* dx) {
  if (!h || !alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(dxd, wd, c, dyd); st != CUDNN_STATUS_SUCCESS) return st;
  const Offer* o = find_offer(kBwdData, algo, c->math);
  if (const cudnnStatus_t st = check_workspace(o, count(*dyd), ws, ws_bytes); st != CUDNN_STATUS_SUCCESS) return st;
  check_device("cudnnConvolutionBackwardData", "w", w, count(*wd));
  check_device("cudnnConvolutionBackwardData", "dy", dy, count(*dyd));
  check_device("cudnnConvolutionBackwardData", "dx", dx, count(*dxd));
  const Geometry g(*dxd, *wd, *c, *dyd);
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const bool t = o->tensor_op;
  const size_t ny = count(*dyd), nw = count(*wd), need = workspace_for(*o, ny);
  auto wp = static_cast<const float*>(w);
  auto dyp = static_cast<const float*>(dy);
  auto dxp = static_cast<float*>(dx);
  ll::emu::enqueue(h->stream, [=] {
    if (need) std::memset(ws, 0xFF, need);
    const std::vector<float> wv = copy_of(wp, nw, t), dyv = copy_of(dyp, ny, t);
    backward_data(g, wv.data(), dyv.data(), dxp, a, b);
  }, "cudnnConvolutionBackwardData");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd,
                                             const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void* ws, size_t ws_bytes, const void* beta, cudnnFilterDescriptor_t dwd,
                                             void* dw) {
  if (!h || !alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(xd, dwd, c, dyd); st != CUDNN_STATUS_SUCCESS) return st;
  const Offer* o = find_offer(kBwdFilter, algo, c->math);
  if (const cudnnStatus_t st = check_workspace(o, count(*dwd), ws, ws_bytes); st != CUDNN_STATUS_SUCCESS) return st;
  check_device("cudnnConvolutionBackwardFilter", "x", x, count(*xd));
  check_device("cudnnConvolutionBackwardFilter", "dy", dy, count(*dyd));
  check_device("cudnnConvolutionBackwardFilter", "dw", dw, count(*dwd));
  const Geometry g(*xd, *dwd, *c, *dyd);
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const bool t = o->tensor_op;
  const size_t nx = count(*xd), ny = count(*dyd), need = workspace_for(*o, count(*dwd));
  auto xp = static_cast<const float*>(x);
  auto dyp = static_cast<const float*>(dy);
  auto dwp = static_cast<float*>(dw);
  ll::emu::enqueue(h->stream, [=] {
    if (need) std::memset(ws, 0xFF, need);
    const std::vector<float> xv = copy_of(xp, nx, t), dyv = copy_of(dyp, ny, t);
    backward_filter(g, xv.data(), dyv.data(), dwp, a, b);
  }, "cudnnConvolutionBackwardFilter");
  return CUDNN_STATUS_SUCCESS;
}

// C = alpha A + beta C, A broadcast over each dimension where it has size 1.
cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t ad, const void* A,
                             const void* beta, cudnnTensorDescriptor_t cd, void* C) {
  if (!h || !alpha || !beta || !ad || !cd || !ad->set || !cd->set) return CUDNN_STATUS_BAD_PARAM;
  const int as[4] = {ad->n, ad->c, ad->h, ad->w}, cs[4] = {cd->n, cd->c, cd->h, cd->w};
  for (int i = 0; i < 4; ++i) {
    if (as[i] != 1 && as[i] != cs[i]) return CUDNN_STATUS_BAD_PARAM;
  }
  check_device("cudnnAddTensor", "A", A, count(*ad));
  check_device("cudnnAddTensor", "C", C, count(*cd));
  const cudnnTensorStruct a_shape = *ad, c_shape = *cd;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  auto ap = static_cast<const float*>(A);
  auto cp = static_cast<float*>(C);
  ll::emu::enqueue(h->stream, [=] {
    const cudnnTensorStruct& a = a_shape;
    const cudnnTensorStruct& c = c_shape;
    size_t i = 0;
    for (int n = 0; n < c.n; ++n)
      for (int ch = 0; ch < c.c; ++ch)
        for (int y = 0; y < c.h; ++y)
          for (int x = 0; x < c.w; ++x, ++i) {
            const size_t j = ((size_t(a.n == 1 ? 0 : n) * a.c + (a.c == 1 ? 0 : ch)) * a.h + (a.h == 1 ? 0 : y)) * a.w +
                             (a.w == 1 ? 0 : x);
            cp[i] = be == 0.0f ? al * ap[j] : al * ap[j] + be * cp[i];
          }
  }, "cudnnAddTensor");
  return CUDNN_STATUS_SUCCESS;
}
