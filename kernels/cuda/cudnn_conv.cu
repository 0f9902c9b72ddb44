// cudnn_conv.cu: conv2d and conv_transpose2d (forward, backward data, backward weight) through
// cuDNN's convolution API: the baseline for, and run-time alternative to, the native im2col +
// cuBLAS backend (kernels/conv2d.h: ConvBackend::Cudnn, the *_cudnn entry points).
//
// FLOPs per op: 2 N K C R S P Q for conv2d; for a transposed conv, 2 N C K R S H W (its adjoint
// conv's count). Bytes: the operands once each at best, plus whatever workspace cuDNN's algorithm
// uses (reported by cuDNN; capped at kMaxWorkspace).
//
// Design. cuDNN 9's legacy convolution API (cudnn_cnn.h: cudnnConvolutionForward,
// cudnnConvolutionBackwardData, cudnnConvolutionBackwardFilter; NCHW float tensors, a
// CUDNN_CROSS_CORRELATION convolution descriptor, which is PyTorch's Conv2d). A transposed conv is
// its adjoint conv's opposite pass (kernels/cpu/conv_transpose2d.cpp): forward = backward data,
// backward data = forward, backward weight = backward filter with x and gy exchanged.
// Per (op, shape, TF32 setting) one plan is built on first use and kept: the descriptors and the
// algorithm, picked from cudnnGetConvolution*Algorithm_v7's heuristic ranking (no benchmarking, so
// nothing synchronizes), restricted to:
//   - status CUDNN_STATUS_SUCCESS and a workspace of at most kMaxWorkspace;
//   - determinism == CUDNN_DETERMINISTIC, for all three ops (the result must not depend on timing);
//   - FP32 arithmetic: the descriptor's math type is CUDNN_FMA_MATH ("restricted to kernels that
//     use FMA instructions", i.e. no TF32 tensor cores) and only results reporting that math type
//     are taken, unless allow_tf32(), where CUDNN_DEFAULT_MATH lets cuDNN pick TF32 tensor-core
//     kernels. The chosen result's math type is set on the descriptor, as cuDNN asks (the
//     algorithm and the math type together select the kernel).
// (cuDNN 9 API reference, cudnn_cnn library: cudnnGetConvolutionForwardAlgorithm_v7,
// cudnnConvolutionFwdAlgoPerf_t; cudnn_graph: cudnnMathType_t, cudnnDeterminism_t.)
// The workspace comes from malloc_device and is freed once the call is enqueued. The handle is
// created once and bound to the caller's stream on every call. The bias is cudnnAddTensor with a
// (1, K, 1, 1) descriptor. cuDNN takes int sizes; detail::check_conv bounds them.
// Built only where LATENTLAB_HAS_CUDNN is defined; otherwise every entry point throws.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"

#ifdef LATENTLAB_HAS_CUDNN

#include <cudnn.h>

#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <tuple>
#include <vector>

#define LL_CUDNN_CHECK(call)                                                                \
  do {                                                                                      \
    const cudnnStatus_t ll_st_ = (call);                                                    \
    if (ll_st_ != CUDNN_STATUS_SUCCESS)                                                     \
      ::ll::kernels::cuda::fail(#call, cudnnGetErrorString(ll_st_), __FILE__, __LINE__);    \
  } while (0)

namespace ll::kernels::cuda {

namespace {

// The most workspace a cuDNN algorithm may ask for.
constexpr size_t kMaxWorkspace = size_t{1} << 30;

cudnnHandle_t handle_on(Stream stream) {
  // Created once, never destroyed (a static destructor could run after the CUDA runtime is gone).
  static const cudnnHandle_t handle = [] {
    cudnnHandle_t h = nullptr;
    LL_CUDNN_CHECK(cudnnCreate(&h));
    return h;
  }();
  LL_CUDNN_CHECK(cudnnSetStream(handle, stream));
  return handle;
}

enum class Op { Forward, BackwardData, BackwardFilter };

const char* op_name(Op op) {
  switch (op) {
    case Op::Forward: return "forward";
    case Op::BackwardData: return "backward data";
    case Op::BackwardFilter: return "backward filter";
  }
  return "?";
}

// One convolution pass, its descriptors and its algorithm. x is the conv's input (N, C, H, W), y
// its output (N, K, P, Q), w (K, C, R, S). bias_x / bias_y describe (1, C, 1, 1) / (1, K, 1, 1)
// for cudnnAddTensor onto x (a transposed conv's forward) or y (a conv's forward).
// The plan owns its descriptors: a plan whose build throws (no algorithm meets our rules, a
// descriptor cuDNN rejects) destroys the ones it created.
struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias_x = nullptr, bias_y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace = 0;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // the status is ignored: nothing to do about a failed destroy in a destructor
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias_x) cudnnDestroyTensorDescriptor(bias_x);
    if (bias_y) cudnnDestroyTensorDescriptor(bias_y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, bool>;

std::string describe_perf(cudnnStatus_t status, size_t memory, cudnnDeterminism_t det,
                          cudnnMathType_t math, int algo) {
  std::ostringstream s;
  s << "algo " << algo << " (" << cudnnGetErrorString(status) << ", " << memory << " bytes, "
    << (det == CUDNN_DETERMINISTIC ? "deterministic" : "non-deterministic") << ", math type "
    << static_cast<int>(math) << ")";
  return s.str();
}

// The first result of cuDNN's ranking that meets our rules (see the file comment).
template <typename Perf>
const Perf& choose(const std::vector<Perf>& perf, bool tf32, Op op, const Conv2dShape& s) {
  for (const Perf& p : perf) {
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace) continue;
    if (p.determinism != CUDNN_DETERMINISTIC) continue;
    if (!tf32 && p.mathType != CUDNN_FMA_MATH) continue;
    return p;
  }
  std::ostringstream msg;
  msg << "cuDNN offers no deterministic " << (tf32 ? "" : "FP32 (FMA) ") << "algorithm with at most "
      << kMaxWorkspace << " bytes of workspace for conv2d " << op_name(op) << " of "
      << kernels::describe(s) << "; it returned:";
  for (const Perf& p : perf) {
    msg << " " << describe_perf(p.status, p.memory, p.determinism, p.mathType, static_cast<int>(p.algo));
  }
  throw CudaError(msg.str());
}

void set_tensor(cudnnTensorDescriptor_t d, int64_t n, int64_t c, int64_t h, int64_t w) {
  LL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                            static_cast<int>(n), static_cast<int>(c),
                                            static_cast<int>(h), static_cast<int>(w)));
}

Plan* build_plan(cudnnHandle_t handle, Op op, const Conv2dShape& s, bool tf32) {
  auto plan = std::make_unique<Plan>();
  Plan& p = *plan;
  LL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  LL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  LL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias_x));
  LL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias_y));
  LL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  LL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
  set_tensor(p.x, s.N, s.C, s.H, s.W);
  set_tensor(p.y, s.N, s.K, s.P(), s.Q());
  set_tensor(p.bias_x, 1, s.C, 1, 1);
  set_tensor(p.bias_y, 1, s.K, 1, 1);
  LL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                            static_cast<int>(s.K), static_cast<int>(s.C),
                                            static_cast<int>(s.R), static_cast<int>(s.S)));
  LL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      p.conv, static_cast<int>(s.pad_h), static_cast<int>(s.pad_w), static_cast<int>(s.stride_h),
      static_cast<int>(s.stride_w), 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  LL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));

  // cuDNN must agree with our output size (it checks the y descriptor against it too).
  int n = 0, k = 0, oh = 0, ow = 0;
  LL_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &k, &oh, &ow));
  if (n != s.N || k != s.K || oh != s.P() || ow != s.Q()) {
    throw CudaError("cuDNN computes output (" + std::to_string(n) + ", " + std::to_string(k) +
                    ", " + std::to_string(oh) + ", " + std::to_string(ow) + ") for " +
                    kernels::describe(s) + ", expected P = " + std::to_string(s.P()) +
                    ", Q = " + std::to_string(s.Q()));
  }

  cudnnMathType_t math = CUDNN_FMA_MATH;
  // cuDNN's ranking of the op's algorithms (the *AlgorithmMaxCount and *Algorithm_v7 calls of
  // each op), then the first that meets our rules.
  const auto pick = [&](auto perf_type, auto max_count_fn, auto find_fn) {
    using Perf = decltype(perf_type);
    int max_count = 0;
    LL_CUDNN_CHECK(max_count_fn(&max_count));
    std::vector<Perf> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    LL_CUDNN_CHECK(find_fn(static_cast<int>(perf.size()), &returned, perf.data()));
    perf.resize(static_cast<size_t>(returned));
    const Perf& best = choose(perf, tf32, op, s);
    p.algo = static_cast<int>(best.algo);
    math = best.mathType;
  };
  switch (op) {
    case Op::Forward:
      pick(cudnnConvolutionFwdAlgoPerf_t{},
           [&](int* c) { return cudnnGetConvolutionForwardAlgorithmMaxCount(handle, c); },
           [&](int k, int* r, cudnnConvolutionFwdAlgoPerf_t* out) {
             return cudnnGetConvolutionForwardAlgorithm_v7(handle, p.x, p.w, p.conv, p.y, k, r, out);
           });
      break;
    case Op::BackwardData:
      pick(cudnnConvolutionBwdDataAlgoPerf_t{},
           [&](int* c) { return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, c); },
           [&](int k, int* r, cudnnConvolutionBwdDataAlgoPerf_t* out) {
             return cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, p.w, p.y, p.conv, p.x, k, r, out);
           });
      break;
    case Op::BackwardFilter:
      pick(cudnnConvolutionBwdFilterAlgoPerf_t{},
           [&](int* c) { return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, c); },
           [&](int k, int* r, cudnnConvolutionBwdFilterAlgoPerf_t* out) {
             return cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, p.x, p.y, p.conv, p.w, k, r, out);
           });
      break;
  }
  LL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, math));
  // The workspace of the chosen algorithm as cuDNN states it for these descriptors.
  switch (op) {
    case Op::Forward:
      LL_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
          handle, p.x, p.w, p.conv, p.y, static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), &p.workspace));
      break;
    case Op::BackwardData:
      LL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          handle, p.w, p.y, p.conv, p.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo),
          &p.workspace));
      break;
    case Op::BackwardFilter:
      LL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle, p.x, p.y, p.conv, p.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo),
          &p.workspace));
      break;
  }
  return plan.release();
}

// The plan of (op, shape, allow_tf32()), built on first use; plans live as long as the process.
const Plan& plan_for(cudnnHandle_t handle, Op op, const Conv2dShape& s) {
  static std::mutex mutex;
  static auto* plans = new std::map<Key, Plan*>;  // leaked on purpose, like the handle
  const bool tf32 = allow_tf32();
  const Key key{static_cast<int>(op), s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.stride_w,
                s.pad_h, s.pad_w, tf32};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, build_plan(handle, op, s, tf32)).first;
  return *it->second;
}

// Workspace for one call, freed when the scope ends (safe: the work is enqueued on the stream
// the caching allocator's next user queues behind).
class Workspace {
 public:
  Workspace(size_t bytes, Stream stream) : bytes_(bytes), p_(malloc_device(bytes, stream)) {}
  ~Workspace() { free_device(p_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  void* p_;
};

const float kOne = 1.0f, kZero = 0.0f;

// y = conv(x, w) (+ bias (K)), y (N, K, P, Q).
void forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y,
             Stream stream) {
  cudnnHandle_t h = handle_on(stream);
  const Plan& p = plan_for(h, Op::Forward, s);
  Workspace ws(p.workspace, stream);
  LL_CUDNN_CHECK(cudnnConvolutionForward(h, &kOne, p.x, x, p.w, w, p.conv,
                                         static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), ws.get(),
                                         ws.bytes(), &kZero, p.y, y));
  if (bias) LL_CUDNN_CHECK(cudnnAddTensor(h, &kOne, p.bias_y, bias, &kOne, p.y, y));
}

// gx = conv's data gradient from gy (+ bias (C) per channel of gx, for a transposed conv's
// forward), gx (N, C, H, W).
void backward_data(const Conv2dShape& s, const float* gy, const float* w, const float* bias,
                   float* gx, Stream stream) {
  cudnnHandle_t h = handle_on(stream);
  const Plan& p = plan_for(h, Op::BackwardData, s);
  Workspace ws(p.workspace, stream);
  LL_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &kOne, p.w, w, p.y, gy, p.conv,
                                              static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo),
                                              ws.get(), ws.bytes(), &kZero, p.x, gx));
  if (bias) LL_CUDNN_CHECK(cudnnAddTensor(h, &kOne, p.bias_x, bias, &kOne, p.x, gx));
}

// gw (K, C, R, S) = the weight gradient summed over the batch (overwritten: beta = 0).
void backward_filter(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                     Stream stream) {
  cudnnHandle_t h = handle_on(stream);
  const Plan& p = plan_for(h, Op::BackwardFilter, s);
  Workspace ws(p.workspace, stream);
  LL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, p.x, x, p.y, gy, p.conv,
                                                static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo),
                                                ws.get(), ws.bytes(), &kZero, p.w, gw));
}

void zero(float* p, int64_t n, Stream stream) {
  if (n > 0) LL_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream));
}

// The three conv2d passes with the empty shapes cuDNN rejects (a zero dimension) handled as the CPU
// reference does; `bias_on_gx` is the transposed conv's bias (C channels of gx).
void conv_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                  float* y, Stream stream) {
  const int64_t PQ = s.P() * s.Q();
  if (s.N == 0 || s.K == 0) return;
  if (s.C == 0) {  // an empty sum: y = bias, or 0
    zero(y, s.N * s.K * PQ, stream);
    if (bias) bias_add(y, bias, s.N, s.K, PQ, stream);
    return;
  }
  forward(s, x, w, bias, y, stream);
}

void conv_backward_data(const Conv2dShape& s, const float* gy, const float* w,
                        const float* bias_on_gx, float* gx, Stream stream) {
  const int64_t HW = s.H * s.W;
  if (s.N == 0 || s.C == 0) return;
  if (s.K == 0) {
    zero(gx, s.N * s.C * HW, stream);
    if (bias_on_gx) bias_add(gx, bias_on_gx, s.N, s.C, HW, stream);
    return;
  }
  backward_data(s, gy, w, bias_on_gx, gx, stream);
}

void conv_backward_filter(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                          Stream stream) {
  if (s.K == 0 || s.C == 0) return;
  if (s.N == 0) {
    zero(gw, s.K * s.C * s.R * s.S, stream);
    return;
  }
  backward_filter(s, x, gy, gw, stream);
}

}  // namespace

void conv2d_forward_cudnn(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Stream stream) {
  detail::check_conv(s, "conv2d_forward");
  conv_forward(s, x, w, bias, y, stream);
}

void conv2d_backward_data_cudnn(const Conv2dShape& s, const float* gy, const float* w, float* gx,
                                Stream stream) {
  detail::check_conv(s, "conv2d_backward_data");
  conv_backward_data(s, gy, w, nullptr, gx, stream);
}

void conv2d_backward_weight_cudnn(const Conv2dShape& s, const float* x, const float* gy, float* gw,
                                  Stream stream) {
  detail::check_conv(s, "conv2d_backward_weight");
  conv_backward_filter(s, x, gy, gw, stream);
}

void conv_transpose2d_forward_cudnn(const ConvTranspose2dShape& s, const float* x, const float* w,
                                    const float* bias, float* y, Stream stream) {
  const Conv2dShape c = detail::adjoint_conv(s, "conv_transpose2d_forward");
  // x (N, C, H, W) is the adjoint conv's output gradient, y (N, K, P, Q) its input gradient; the
  // bias has one value per channel of y, the conv's input channels.
  conv_backward_data(c, x, w, bias, y, stream);
}

void conv_transpose2d_backward_data_cudnn(const ConvTranspose2dShape& s, const float* gy,
                                          const float* w, float* gx, Stream stream) {
  const Conv2dShape c = detail::adjoint_conv(s, "conv_transpose2d_backward_data");
  conv_forward(c, gy, w, nullptr, gx, stream);
}

void conv_transpose2d_backward_weight_cudnn(const ConvTranspose2dShape& s, const float* x,
                                            const float* gy, float* gw, Stream stream) {
  const Conv2dShape c = detail::adjoint_conv(s, "conv_transpose2d_backward_weight");
  conv_backward_filter(c, gy, x, gw, stream);
}

}  // namespace ll::kernels::cuda

#else  // no cuDNN in this build

namespace ll::kernels::cuda {

namespace {
[[noreturn]] void no_cudnn(const char* fn) {
  throw std::runtime_error(std::string(fn) +
                           ": latentlab was built without cuDNN (the cudnn convolution backend is "
                           "unavailable; use the native backend)");
}
}  // namespace

void conv2d_forward_cudnn(const Conv2dShape&, const float*, const float*, const float*, float*,
                          Stream) {
  no_cudnn("conv2d_forward_cudnn");
}
void conv2d_backward_data_cudnn(const Conv2dShape&, const float*, const float*, float*, Stream) {
  no_cudnn("conv2d_backward_data_cudnn");
}
void conv2d_backward_weight_cudnn(const Conv2dShape&, const float*, const float*, float*, Stream) {
  no_cudnn("conv2d_backward_weight_cudnn");
}
void conv_transpose2d_forward_cudnn(const ConvTranspose2dShape&, const float*, const float*,
                                    const float*, float*, Stream) {
  no_cudnn("conv_transpose2d_forward_cudnn");
}
void conv_transpose2d_backward_data_cudnn(const ConvTranspose2dShape&, const float*, const float*,
                                          float*, Stream) {
  no_cudnn("conv_transpose2d_backward_data_cudnn");
}
void conv_transpose2d_backward_weight_cudnn(const ConvTranspose2dShape&, const float*,
                                            const float*, float*, Stream) {
  no_cudnn("conv_transpose2d_backward_weight_cudnn");
}

}  // namespace ll::kernels::cuda

#endif  // LATENTLAB_HAS_CUDNN
