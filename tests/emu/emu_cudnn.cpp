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
// shows. Results are alpha * conv + beta * out (beta = 0 does not read out), summed in float (no
// fused multiply-adds) in orders unlike the CPU's im2col + GEMM: forward, each output over (c, r,
// s) in turn; backward data, each input over (r, s, k); backward filter, each weight over (n, p, q)
// in 32 interleaved partial sums, added at the end.
// The convolution is direct, written to vectorize: the input is split by stride phase and padded
// with zeros (Geometry), so that each filter tap reads one contiguous run per (n, c) plane, in step
// with the output plane; the padding's terms are added as zeros rather than skipped.
// The work is queued on the handle's stream (ll::emu::enqueue). ll::emu::cudnn_fail_next plants a
// failure for the tests of the callers' error paths.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
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

// Failures planted by ll::emu::cudnn_fail_next: (function, status), each taken by the next call.
std::mutex g_planted_mutex;
std::vector<std::pair<std::string, cudnnStatus_t>> g_planted;

// The status planted for this call of `function` (and forgotten), or CUDNN_STATUS_SUCCESS.
cudnnStatus_t take_planted(const char* function) {
  std::lock_guard<std::mutex> lock(g_planted_mutex);
  for (auto it = g_planted.begin(); it != g_planted.end(); ++it) {
    if (it->first == function) {
      const cudnnStatus_t st = it->second;
      g_planted.erase(it);
      return st;
    }
  }
  return CUDNN_STATUS_SUCCESS;
}

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

// floor(a / b) and a - b floor(a / b), for b > 0.
int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int floor_mod(int a, int b) { return a - b * floor_div(a, b); }

// One spatial axis of the convolution: output o, tap f read input o * stride + f * dil - pad (zero
// outside [0, in)). The input is split by stride phase: input i = e * stride + phase, entry e of
// its phase's row, shifted by `lo` entries of zeros (the padding) and extended to `len` entries, so
// that tap f of outputs 0..out-1 reads the consecutive entries start(f) .. start(f) + out - 1 of
// phase(f): every read in bounds, whatever the stride, padding and dilation.
struct Axis {
  int in, out, taps, stride, pad, dil, lo, len;
  Axis(int in_, int out_, int taps_, int stride_, int pad_, int dil_)
      : in(in_), out(out_), taps(taps_), stride(stride_), pad(pad_), dil(dil_) {
    lo = -floor_div(-pad, stride);  // ceil(pad / stride): entries before input 0
    const int last = floor_div((taps - 1) * dil - pad, stride);  // the last tap's shift
    len = lo + std::max(out + last, (in + stride - 1) / stride);  // every read and every input
  }
  int phase(int f) const { return floor_mod(f * dil - pad, stride); }
  int start(int f) const { return floor_div(f * dil - pad, stride) + lo; }
  int phase_of(int i) const { return i % stride; }
  int entry_of(int i) const { return i / stride + lo; }
};

// The shapes of one call, and the split layout shared by the three passes: an (N, C, H, W) tensor
// becomes, per (n, c), u * v planes (one per stride phase pair) of Hp rows of Wp entries; an
// (N, K, P, Q) one keeps its layout with rows padded to Wp (zeros after column Q). Tap (r, s) of
// every output of one (n, c) plane then reads one run of L = (P - 1) Wp + Q consecutive entries at
// tap_offset(r, s) in its split plane, in step with the padded output plane (the Wp - Q entries
// between two output rows read or feed nothing that is kept).
struct Geometry {
  int N, C, H, W, K, R, S, P, Q;
  bool flip;  // CUDNN_CONVOLUTION: the filter is applied flipped
  Axis ah, aw;
  size_t plane, group, out_plane, run;  // Hp Wp; u v Hp Wp; P Wp; L
  std::vector<size_t> tap_offset;       // per tap r * S + s, into one (n, c) group
  Geometry(const cudnnTensorStruct& x, const cudnnFilterStruct& w, const cudnnConvolutionStruct& c,
           const cudnnTensorStruct& y)
      : N(x.n), C(x.c), H(x.h), W(x.w), K(w.k), R(w.r), S(w.s), P(y.h), Q(y.w),
        flip(c.mode == CUDNN_CONVOLUTION), ah(x.h, y.h, w.r, c.u, c.pad_h, c.dil_h),
        aw(x.w, y.w, w.s, c.v, c.pad_w, c.dil_w) {
    plane = size_t(ah.len) * aw.len;
    group = size_t(ah.stride) * aw.stride * plane;
    out_plane = size_t(P) * aw.len;
    run = size_t(P - 1) * aw.len + Q;
    tap_offset.resize(size_t(R) * S);
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s) {
        tap_offset[size_t(r) * S + s] = (size_t(ah.phase(r)) * aw.stride + aw.phase(s)) * plane +
                                        size_t(ah.start(r)) * aw.len + aw.start(s);
      }
  }
  // Where tap (r, s)'s weight is stored within one (k, c) filter: flipped for CUDNN_CONVOLUTION.
  size_t weight_of(int r, int s) const {
    return flip ? size_t(R - 1 - r) * S + (S - 1 - s) : size_t(r) * S + s;
  }
  // Element (h, w) of one (n, c) plane in its split group.
  size_t split_index(int h, int w) const {
    return (size_t(ah.phase_of(h)) * aw.stride + aw.phase_of(w)) * plane + size_t(ah.entry_of(h)) * aw.len +
           aw.entry_of(w);
  }
};

// x (N, C, H, W) in the split layout (rounded to TF32 if asked).
std::vector<float> split_input(const Geometry& g, const float* x, bool round) {
  std::vector<float> out(size_t(g.N) * g.C * g.group, 0.0f);
  for (size_t nc = 0; nc < size_t(g.N) * g.C; ++nc) {
    const float* src = x + nc * g.H * g.W;
    float* dst = out.data() + nc * g.group;
    for (int h = 0; h < g.H; ++h)
      for (int w = 0; w < g.W; ++w) {
        const float v = src[size_t(h) * g.W + w];
        dst[g.split_index(h, w)] = round ? tf32(v) : v;
      }
  }
  return out;
}

// y (N, K, P, Q) with rows padded to Wp by zeros (rounded to TF32 if asked).
std::vector<float> pad_output(const Geometry& g, const float* y, bool round) {
  std::vector<float> out(size_t(g.N) * g.K * g.out_plane, 0.0f);
  for (size_t nk = 0; nk < size_t(g.N) * g.K; ++nk)
    for (int p = 0; p < g.P; ++p) {
      const float* src = y + (nk * g.P + p) * g.Q;
      float* dst = out.data() + nk * g.out_plane + size_t(p) * g.aw.len;
      for (int q = 0; q < g.Q; ++q) dst[q] = round ? tf32(src[q]) : src[q];
    }
  return out;
}

// out = alpha * acc + beta * out (beta = 0: out is not read).
float blended(float acc, float out, float alpha, float beta) {
  return beta == 0.0f ? alpha * acc : alpha * acc + beta * out;
}

// a[i] = (((a[i] + b[0][i] s[0]) + b[1][i] s[1]) + ...) for the first M (b, s) pairs, i < n, each
// element's adds in that order: the inner loop of the forward and backward-data passes, M terms
// per load and store of a.
constexpr int kGroup = 4;
template <int M>
void axpy_group(float* __restrict a, const float* __restrict b0, const float* __restrict b1,
                const float* __restrict b2, const float* __restrict b3, const float (&s)[kGroup], size_t n) {
  const float s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
  for (size_t i = 0; i < n; ++i) {
    float v = a[i] + b0[i] * s0;
    if constexpr (M > 1) v += b1[i] * s1;
    if constexpr (M > 2) v += b2[i] * s2;
    if constexpr (M > 3) v += b3[i] * s3;
    a[i] = v;
  }
}
void axpy_group(int m, float* a, const float* const (&b)[kGroup], const float (&s)[kGroup], size_t n) {
  switch (m) {
    case 1: axpy_group<1>(a, b[0], b[0], b[0], b[0], s, n); break;
    case 2: axpy_group<2>(a, b[0], b[1], b[1], b[1], s, n); break;
    case 3: axpy_group<3>(a, b[0], b[1], b[2], b[2], s, n); break;
    default: axpy_group<4>(a, b[0], b[1], b[2], b[3], s, n); break;
  }
}

// lanes[j] += the sum over i = j (mod kLanes), i < n, of a[i] b[i], in order of i: a dot product
// kept in kLanes partial sums (four vectors of 8, so that the adds pipeline; the backward-filter
// pass).
constexpr int kLanes = 32;
typedef float Lanes8 __attribute__((vector_size(32)));  // (never passed by value: no ABI warning)
void dot_lanes(float* lanes, const float* a, const float* b, size_t n) {
  Lanes8 l0, l1, l2, l3;
  std::memcpy(&l0, lanes, sizeof l0);
  std::memcpy(&l1, lanes + 8, sizeof l1);
  std::memcpy(&l2, lanes + 16, sizeof l2);
  std::memcpy(&l3, lanes + 24, sizeof l3);
  const auto add = [a, b](Lanes8& l, size_t at) {  // l += a[at .. at + 8) * b[at .. at + 8)
    Lanes8 x, y;
    std::memcpy(&x, a + at, sizeof x);
    std::memcpy(&y, b + at, sizeof y);
    l += x * y;
  };
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    add(l0, i);
    add(l1, i + 8);
    add(l2, i + 16);
    add(l3, i + 24);
  }
  for (Lanes8* l : {&l0, &l1, &l2}) {  // what is left: whole vectors, then single elements
    if (i + 8 > n) break;
    add(*l, i);
    i += 8;
  }
  std::memcpy(lanes, &l0, sizeof l0);
  std::memcpy(lanes + 8, &l1, sizeof l1);
  std::memcpy(lanes + 16, &l2, sizeof l2);
  std::memcpy(lanes + 24, &l3, sizeof l3);
  for (size_t j = i % kLanes; i < n; ++i, ++j) lanes[j] += a[i] * b[i];
}

// y[n, k] = alpha * sum over (c, r, s), in that order, of x[n, c, tap (r, s)] w[k, c, r, s]
// (+ beta y). Each (n, k) output plane is accumulated whole, kGroup consecutive (c, r, s) terms at
// a time (the padding's terms are zeros).
void forward(const Geometry& g, const float* xs, const float* w, float* y, float alpha, float beta) {
  std::vector<float> acc(g.out_plane);
  const int taps = g.R * g.S;
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int c = 0; c < g.C; ++c) {
        const float* xg = xs + (size_t(n) * g.C + c) * g.group;
        const float* wk = w + (size_t(k) * g.C + c) * taps;
        for (int t0 = 0; t0 < taps; t0 += kGroup) {
          const float* b[kGroup] = {};
          float s[kGroup] = {};
          const int m = std::min(kGroup, taps - t0);
          for (int j = 0; j < m; ++j) {
            b[j] = xg + g.tap_offset[size_t(t0 + j)];
            s[j] = wk[g.weight_of((t0 + j) / g.S, (t0 + j) % g.S)];
          }
          axpy_group(m, acc.data(), b, s, g.run);
        }
      }
      float* out = y + (size_t(n) * g.K + k) * g.P * g.Q;
      for (int p = 0; p < g.P; ++p)
        for (int q = 0; q < g.Q; ++q) {
          float& o = out[size_t(p) * g.Q + q];
          o = blended(acc[size_t(p) * g.aw.len + q], o, alpha, beta);
        }
    }
}

// dx[n, c] = alpha * sum over (r, s, k), in that order, of dy[n, k] w[k, c, r, s] scattered to the
// inputs tap (r, s) reads (+ beta dx), accumulated per (n, c) in the split layout, kGroup
// consecutive k at a time.
void backward_data(const Geometry& g, const float* w, const float* dyp, float* dx, float alpha, float beta) {
  std::vector<float> acc(g.group);
  const size_t taps = size_t(g.R) * g.S;
  for (int n = 0; n < g.N; ++n)
    for (int c = 0; c < g.C; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int r = 0; r < g.R; ++r)
        for (int s = 0; s < g.S; ++s) {
          float* a = acc.data() + g.tap_offset[size_t(r) * g.S + s];
          const size_t tap = g.weight_of(r, s);
          for (int k0 = 0; k0 < g.K; k0 += kGroup) {
            const float* b[kGroup] = {};
            float wv[kGroup] = {};
            const int m = std::min(kGroup, g.K - k0);
            for (int j = 0; j < m; ++j) {
              b[j] = dyp + (size_t(n) * g.K + k0 + j) * g.out_plane;
              wv[j] = w[(size_t(k0 + j) * g.C + c) * taps + tap];
            }
            axpy_group(m, a, b, wv, g.run);
          }
        }
      float* out = dx + (size_t(n) * g.C + c) * g.H * g.W;
      for (int h = 0; h < g.H; ++h)
        for (int x = 0; x < g.W; ++x) {
          float& o = out[size_t(h) * g.W + x];
          o = blended(acc[g.split_index(h, x)], o, alpha, beta);
        }
    }
}

// dw[k, c, r, s] = alpha * the dot product over (n, p, q) of dy[n, k, p, q] and x[n, c, tap (r, s)
// of (p, q)] (+ beta dw): per n a dot_lanes over the run, the kLanes partial sums added in order
// at the end.
void backward_filter(const Geometry& g, const float* xs, const float* dyp, float* dw, float alpha, float beta) {
  const size_t taps = size_t(g.R) * g.S;
  std::vector<float> lanes(taps * kLanes);
  for (int c = 0; c < g.C; ++c)
    for (int k = 0; k < g.K; ++k) {
      std::fill(lanes.begin(), lanes.end(), 0.0f);
      for (int n = 0; n < g.N; ++n) {
        const float* d = dyp + (size_t(n) * g.K + k) * g.out_plane;
        const float* xg = xs + (size_t(n) * g.C + c) * g.group;
        for (size_t t = 0; t < taps; ++t) dot_lanes(lanes.data() + t * kLanes, d, xg + g.tap_offset[t], g.run);
      }
      float* out = dw + (size_t(k) * g.C + c) * taps;
      for (int r = 0; r < g.R; ++r)
        for (int s = 0; s < g.S; ++s) {
          const float* l = lanes.data() + (size_t(r) * g.S + s) * kLanes;
          float sum = 0.0f;
          for (int j = 0; j < kLanes; ++j) sum += l[j];
          float& o = out[g.weight_of(r, s)];
          o = blended(sum, o, alpha, beta);
        }
    }
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
                   int* returned, Perf* perf, cudnnStatus_t status) {
  if (!returned || !perf || requested < 1) return CUDNN_STATUS_BAD_PARAM;
  int n = 0;
  for (const Offer& o : offers) {
    if (o.tensor_op && c.math == CUDNN_FMA_MATH) continue;
    if (n == requested) break;
    Perf p{};
    p.algo = static_cast<Algo>(o.algo);
    p.status = status;  // CUDNN_STATUS_SUCCESS unless a failure was planted
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
void cudnn_fail_next(const char* function, cudnnStatus_t status) {
  if (!function || status == CUDNN_STATUS_SUCCESS) die("cudnn_fail_next needs a function name and a failure status");
  std::lock_guard<std::mutex> lock(g_planted_mutex);
  g_planted.emplace_back(function, status);
}
}  // namespace ll::emu

// First in every entry point below that can fail: a failure planted for it is returned.
#define LL_EMU_PLANTED_FAILURE()                                                                 \
  if (const cudnnStatus_t planted_ = take_planted(__func__); planted_ != CUDNN_STATUS_SUCCESS) \
  return planted_

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
  LL_EMU_PLANTED_FAILURE();
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
  LL_EMU_PLANTED_FAILURE();
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
    LL_EMU_PLANTED_FAILURE();                                  \
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
  LL_EMU_PLANTED_FAILURE();
  if (!d || n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = cudnnTensorStruct{true, n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  LL_EMU_PLANTED_FAILURE();
  if (!d || k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = cudnnFilterStruct{true, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute_type) {
  LL_EMU_PLANTED_FAILURE();
  if (!d || pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dilation_h < 1 || dilation_w < 1) return CUDNN_STATUS_BAD_PARAM;
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_BAD_PARAM;
  if (compute_type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  const cudnnMathType_t math = d->math;
  *d = cudnnConvolutionStruct{true, pad_h, pad_w, u, v, dilation_h, dilation_w, mode, math};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  LL_EMU_PLANTED_FAILURE();
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
  LL_EMU_PLANTED_FAILURE();
  if (!c || !x || !w || !c->set || !x->set || !w->set || !n || !k || !h || !wo) return CUDNN_STATUS_BAD_PARAM;
  if (x->c != w->c) return CUDNN_STATUS_BAD_PARAM;
  *n = x->n;
  *k = w->k;
  *h = out_dim(x->h, c->pad_h, w->r, c->u, c->dil_h);
  *wo = out_dim(x->w, c->pad_w, w->s, c->v, c->dil_w);
  return *h >= 1 && *wo >= 1 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t h, int* count) {
  LL_EMU_PLANTED_FAILURE();
  if (!h || !count) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t h, int* count) {
  LL_EMU_PLANTED_FAILURE();
  if (!h || !count) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t h, int* count) {
  LL_EMU_PLANTED_FAILURE();
  if (!h || !count) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                     cudnnTensorDescriptor_t y, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  // A planted failure marks every algorithm returned, as cuDNN reports those it cannot run here.
  const cudnnStatus_t planted = take_planted(__func__);
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(x, w, c, y); st != CUDNN_STATUS_SUCCESS) return st;
  return rank<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(kFwd, *c, count(*x), requested, returned, perf,
                                                                              planted);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                          cudnnTensorDescriptor_t dx, int requested, int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  // A planted failure marks every algorithm returned, as cuDNN reports those it cannot run here.
  const cudnnStatus_t planted = take_planted(__func__);
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(dx, w, c, dy); st != CUDNN_STATUS_SUCCESS) return st;
  return rank<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(kBwdData, *c, count(*dy), requested,
                                                                              returned, perf, planted);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                            cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                            cudnnFilterDescriptor_t dw, int requested, int* returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  // A planted failure marks every algorithm returned, as cuDNN reports those it cannot run here.
  const cudnnStatus_t planted = take_planted(__func__);
  if (!h) return CUDNN_STATUS_BAD_PARAM;
  if (const cudnnStatus_t st = check_triple(x, dw, c, dy); st != CUDNN_STATUS_SUCCESS) return st;
  return rank<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(kBwdFilter, *c, count(*dw),
                                                                                  requested, returned, perf, planted);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                      cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* bytes) {
  LL_EMU_PLANTED_FAILURE();
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
  LL_EMU_PLANTED_FAILURE();
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
  LL_EMU_PLANTED_FAILURE();
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
  LL_EMU_PLANTED_FAILURE();
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
    const std::vector<float> xs = split_input(g, xp, t), wv = copy_of(wp, nw, t);
    forward(g, xs.data(), wv.data(), yp, a, b);
  }, "cudnnConvolutionForward");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t wd,
                                           const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
                                           cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdDataAlgo_t algo,
                                           void* ws, size_t ws_bytes, const void* beta, cudnnTensorDescriptor_t dxd,
                                           void* dx) {
  LL_EMU_PLANTED_FAILURE();
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
  const size_t nw = count(*wd), need = workspace_for(*o, count(*dyd));
  auto wp = static_cast<const float*>(w);
  auto dyp = static_cast<const float*>(dy);
  auto dxp = static_cast<float*>(dx);
  ll::emu::enqueue(h->stream, [=] {
    if (need) std::memset(ws, 0xFF, need);
    const std::vector<float> wv = copy_of(wp, nw, t), dys = pad_output(g, dyp, t);
    backward_data(g, wv.data(), dys.data(), dxp, a, b);
  }, "cudnnConvolutionBackwardData");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd,
                                             const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void* ws, size_t ws_bytes, const void* beta, cudnnFilterDescriptor_t dwd,
                                             void* dw) {
  LL_EMU_PLANTED_FAILURE();
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
  const size_t need = workspace_for(*o, count(*dwd));
  auto xp = static_cast<const float*>(x);
  auto dyp = static_cast<const float*>(dy);
  auto dwp = static_cast<float*>(dw);
  ll::emu::enqueue(h->stream, [=] {
    if (need) std::memset(ws, 0xFF, need);
    const std::vector<float> xs = split_input(g, xp, t), dys = pad_output(g, dyp, t);
    backward_filter(g, xs.data(), dys.data(), dwp, a, b);
  }, "cudnnConvolutionBackwardFilter");
  return CUDNN_STATUS_SUCCESS;
}

// C = alpha A + beta C, A broadcast over each dimension where it has size 1.
cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t ad, const void* A,
                             const void* beta, cudnnTensorDescriptor_t cd, void* C) {
  LL_EMU_PLANTED_FAILURE();
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
