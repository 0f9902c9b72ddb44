// test_conv_cuda.cpp: the CUDA conv2d and conv_transpose2d (kernels/cuda/conv2d.cu,
// conv_transpose2d.cu, cudnn_conv.cu) against the CPU references, both backends (native im2col +
// cuBLAS, and cuDNN), every op: forward with and without bias, backward data, backward weight.
//
// Shapes: every conv layer of our models (models/gan.cpp, models/vae.cpp) with the model's
// channels and image sizes, at batch 4 (GAN-128 at batch 2, one DCGAN-64 layer at batch 128), and
// odd ones: 1x1 kernels (with stride 1: the native backend's no-im2col path), stride 2 and 3 with
// odd H and W, padding 0..2, 1x1 outputs (the native backend's single-GEMM path), asymmetric
// kernels, strides and paddings, output_padding, C = 3, N = 1, and small column budgets that cut
// the batch into chunks of 1 or 2 images (with a remainder).
//
// Tolerance: element i passes when
//   |got_i - ref_i| <= 1e-5 (|ref_i| + mag_i),   mag_i = sum over the terms of ref_i of |term|
// computed exactly as the reference is, from the absolute values of the inputs (e.g. forward:
// conv(|x|, |w|) + |bias|). A float32 sum of n terms in any order errs by at most about
// n u mag (u = 6e-8) and, with these random-signed inputs, typically by a few u mag; the bound
// leaves room for both implementations' rounding (GEMM blocking, cuDNN's algorithms) without
// hiding a wrong or missing term (which errs by ~|term| ~ mag / n >> 1e-5 mag for n < 10^4).
// cuDNN's transform-based algorithms (FFT, Winograd) err in proportion to the magnitude of a whole
// tile or transform rather than of one element's terms, so for the cuDNN backend the bound gets
// a second term, 1e-5 max_j mag_j: still far below the error of a wrong or missing term, which is
// what these tests guard against in our use of cuDNN (descriptors, layouts, the transposed conv's
// mapping).
// Outputs are poisoned with NaN first, so an element a kernel forgot to write fails.
// Determinism: every op run twice on the same inputs gives bit-identical outputs.
// On the CUDA emulator (tests/emu) the cuDNN backend runs on the emulator's cuDNN, a direct
// convolution behind checked descriptors; there the CudnnStandIn tests also plant misuse of the
// cuDNN API (wrong descriptors, a short workspace) and failures while a plan is built.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "tests/cuda/cuda_harness.h"

#if defined(LATENTLAB_CUDA_EMULATION) && defined(LATENTLAB_HAS_CUDNN)
#include <cudnn.h>  // the emulator's stand-in (tests/emu/include/cudnn.h)
#endif

namespace ll {
namespace {

using kernels::Conv2dShape;
using kernels::ConvTranspose2dShape;
using kernels::cuda::ConvBackend;
using testing::DeviceBuffer;
namespace cpu = kernels::cpu;
namespace kc = kernels::cuda;

constexpr double kEps = 1e-5;

enum class Impl { Cpu, Native, Cudnn };

// ---- cases --------------------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  bool transpose = false;
  int64_t N = 1, C = 1, H = 1, W = 1, K = 1, R = 1, S = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t output_padding_h = 0, output_padding_w = 0;  // transposed only
  bool bias = false;
  int64_t column_budget = 0;  // the native backend's column budget in bytes; 0: the default
};

// x (N, C, H, W) -> K channels, square kernel, stride and padding
ConvCase conv(const std::string& name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
              int64_t R, int64_t stride, int64_t pad, bool bias = false) {
  ConvCase c;
  c.name = name;
  c.N = N, c.C = C, c.H = H, c.W = W, c.K = K, c.R = R, c.S = R;
  c.stride_h = c.stride_w = stride, c.pad_h = c.pad_w = pad;
  c.bias = bias;
  return c;
}

ConvCase convt(const std::string& name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
               int64_t R, int64_t stride, int64_t pad, int64_t output_padding = 0,
               bool bias = false) {
  ConvCase c = conv(name, N, C, H, W, K, R, stride, pad, bias);
  c.transpose = true;
  c.output_padding_h = c.output_padding_w = output_padding;
  return c;
}

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(Impl impl, std::ostream* os) {
  *os << (impl == Impl::Cpu ? "cpu" : impl == Impl::Native ? "native" : "cudnn");
}

ConvCase with_budget(ConvCase c, int64_t bytes) {
  c.column_budget = bytes;
  return c;
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> v;
  // DCGAN-64 discriminator (ndf = 64, RGB 64x64) and generator (nz = 100, ngf = 64), no bias.
  v.push_back(conv("dcgan64_D1", 4, 3, 64, 64, 64, 4, 2, 1));
  v.push_back(conv("dcgan64_D2", 4, 64, 32, 32, 128, 4, 2, 1));
  v.push_back(conv("dcgan64_D3", 4, 128, 16, 16, 256, 4, 2, 1));
  v.push_back(conv("dcgan64_D4", 4, 256, 8, 8, 512, 4, 2, 1));
  v.push_back(conv("dcgan64_D5", 4, 512, 4, 4, 1, 4, 1, 0));
  v.push_back(conv("dcgan64_D2_batch128", 128, 64, 32, 32, 128, 4, 2, 1));
  v.push_back(convt("dcgan64_G1", 4, 100, 1, 1, 512, 4, 1, 0));
  v.push_back(convt("dcgan64_G2", 4, 512, 4, 4, 256, 4, 2, 1));
  v.push_back(convt("dcgan64_G3", 4, 256, 8, 8, 128, 4, 2, 1));
  v.push_back(convt("dcgan64_G4", 4, 128, 16, 16, 64, 4, 2, 1));
  v.push_back(convt("dcgan64_G5", 4, 64, 32, 32, 3, 4, 2, 1));
  // DCGAN-28 (grayscale 28x28) and its conditional variant (label channel / one-hot code).
  v.push_back(conv("dcgan28_D1", 4, 1, 28, 28, 64, 4, 2, 1));
  v.push_back(conv("dcgan28_D2", 4, 64, 14, 14, 128, 4, 2, 1));
  v.push_back(conv("dcgan28_D3", 4, 128, 7, 7, 1, 7, 1, 0));
  v.push_back(convt("dcgan28_G1", 4, 100, 1, 1, 128, 7, 1, 0));
  v.push_back(convt("dcgan28_G2", 4, 128, 7, 7, 64, 4, 2, 1));
  v.push_back(convt("dcgan28_G3", 4, 64, 14, 14, 1, 4, 2, 1));
  v.push_back(conv("cgan28_D1", 4, 2, 28, 28, 64, 4, 2, 1));
  v.push_back(convt("cgan28_G1", 4, 110, 1, 1, 128, 7, 1, 0));
  // Conv VAE (w = 32, 1x28x28), with bias.
  v.push_back(conv("vae_enc1", 4, 1, 28, 28, 32, 4, 2, 1, true));
  v.push_back(conv("vae_enc2", 4, 32, 14, 14, 64, 4, 2, 1, true));
  v.push_back(convt("vae_dec1", 4, 64, 7, 7, 32, 4, 2, 1, 0, true));
  v.push_back(convt("vae_dec2", 4, 32, 14, 14, 1, 4, 2, 1, 0, true));
  // GAN-128 at batch 2, with bias: the discriminator's 3x3 convs (stride 2 after ZeroPad2d(0,1,0,1),
  // so 129 -> 64 ...), the generator's 4x4 stride-2 transposed convs and its last 8x8 conv after
  // ZeroPad2d(3,4,3,4).
  v.push_back(conv("gan128_D1", 2, 3, 128, 128, 128, 3, 1, 1, true));
  v.push_back(conv("gan128_D2", 2, 128, 129, 129, 128, 3, 2, 0, true));
  v.push_back(conv("gan128_D3", 2, 128, 65, 65, 128, 3, 2, 0, true));
  v.push_back(conv("gan128_D4", 2, 128, 33, 33, 128, 3, 2, 0, true));
  v.push_back(conv("gan128_D5", 2, 128, 17, 17, 128, 3, 2, 0, true));
  v.push_back(convt("gan128_G1", 2, 128, 8, 8, 128, 4, 2, 1, 0, true));
  v.push_back(convt("gan128_G2", 2, 128, 16, 16, 128, 4, 2, 1, 0, true));
  v.push_back(convt("gan128_G3", 2, 128, 32, 32, 128, 4, 2, 1, 0, true));
  v.push_back(convt("gan128_G4", 2, 128, 64, 64, 128, 4, 2, 1, 0, true));
  v.push_back(conv("gan128_G5", 2, 128, 135, 135, 3, 8, 1, 0, true));
  // Odd shapes.
  v.push_back(conv("pointwise_1x1", 3, 5, 7, 9, 4, 1, 1, 0, true));
  v.push_back(conv("pointwise_1x1_stride2", 2, 3, 9, 7, 6, 1, 2, 0));
  v.push_back(conv("stride2_odd_hw", 1, 3, 13, 11, 5, 3, 2, 1, true));
  v.push_back(conv("pad2_5x5", 2, 4, 5, 6, 3, 5, 1, 2));
  v.push_back(conv("kernel_covers_image", 3, 2, 4, 4, 7, 4, 1, 0, true));  // 1x1 output
  v.push_back(conv("stride3_pad2", 1, 3, 33, 31, 8, 5, 3, 2));
  v.push_back(conv("n1_c3", 1, 3, 10, 10, 2, 3, 1, 1, true));
  v.push_back(conv("k1_c1", 2, 1, 6, 5, 1, 3, 1, 1));
  {
    ConvCase c = conv("asymmetric", 2, 3, 8, 7, 4, 3, 1, 0, true);
    c.S = 2, c.stride_h = 2, c.stride_w = 1, c.pad_h = 1, c.pad_w = 0;
    v.push_back(c);
  }
  v.push_back(convt("t_output_padding_1", 2, 4, 5, 6, 3, 3, 2, 1, 1, true));
  {
    ConvCase c = convt("t_output_padding_1_0", 1, 3, 4, 5, 2, 3, 2, 0);
    c.output_padding_h = 1;
    v.push_back(c);
  }
  v.push_back(convt("t_stride3_output_padding_2", 2, 2, 3, 3, 3, 4, 3, 1, 2, true));
  v.push_back(convt("t_pointwise_1x1", 3, 4, 5, 5, 6, 1, 1, 0, 0, true));
  v.push_back(convt("t_pad2_5x5", 2, 3, 6, 6, 4, 5, 1, 2));
  v.push_back(convt("t_n1_c3", 1, 3, 7, 9, 3, 4, 2, 1, 0, true));
  {
    ConvCase c = convt("t_asymmetric", 2, 3, 5, 4, 2, 3, 2, 1, 1, true);
    c.S = 4, c.stride_w = 3, c.pad_w = 2, c.output_padding_w = 2;
    v.push_back(c);
  }
  // Chunked native paths: budgets of 1 byte (one image per chunk) and of about 2 images' column
  // matrices (chunks of 2, 2, 1; the weight gradient accumulates over chunks with beta = 1).
  v.push_back(with_budget(conv("chunks_of_1", 5, 3, 9, 9, 4, 3, 2, 1, true), 1));
  v.push_back(with_budget(conv("chunks_of_2", 5, 3, 9, 9, 4, 3, 2, 1, true), 6200));
  v.push_back(with_budget(conv("chunks_1x1_output", 5, 4, 4, 4, 3, 4, 1, 0), 512));
  v.push_back(with_budget(convt("t_chunks_of_1", 3, 4, 5, 5, 3, 4, 2, 1, 0, true), 1));
  v.push_back(with_budget(convt("t_chunks_of_2", 5, 4, 5, 5, 3, 4, 2, 1, 1, true), 10400));
  return v;
}

Conv2dShape conv_shape(const ConvCase& c) {
  Conv2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.stride_h, s.stride_w = c.stride_w, s.pad_h = c.pad_h, s.pad_w = c.pad_w;
  return s;
}

ConvTranspose2dShape convt_shape(const ConvCase& c) {
  ConvTranspose2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.stride_h, s.stride_w = c.stride_w, s.pad_h = c.pad_h, s.pad_w = c.pad_w;
  s.output_padding_h = c.output_padding_h, s.output_padding_w = c.output_padding_w;
  return s;
}

int64_t out_h(const ConvCase& c) { return c.transpose ? convt_shape(c).P() : conv_shape(c).P(); }
int64_t out_w(const ConvCase& c) { return c.transpose ? convt_shape(c).Q() : conv_shape(c).Q(); }
int64_t x_size(const ConvCase& c) { return c.N * c.C * c.H * c.W; }
int64_t y_size(const ConvCase& c) { return c.N * c.K * out_h(c) * out_w(c); }
// (K, C, R, S) for conv2d, (C, K, R, S) for the transposed conv: the same count
int64_t w_size(const ConvCase& c) { return c.K * c.C * c.R * c.S; }

// ---- the three ops on every implementation ------------------------------------------------------

// Host pointers for Impl::Cpu, device pointers otherwise.
void forward(const ConvCase& c, Impl impl, const float* x, const float* w, const float* b, float* y) {
  const auto st = testing::stream();
  if (c.transpose) {
    const ConvTranspose2dShape s = convt_shape(c);
    if (impl == Impl::Cpu) cpu::conv_transpose2d_forward(s, x, w, b, y);
    if (impl == Impl::Native) kc::conv_transpose2d_forward_native(s, x, w, b, y, st);
    if (impl == Impl::Cudnn) kc::conv_transpose2d_forward_cudnn(s, x, w, b, y, st);
  } else {
    const Conv2dShape s = conv_shape(c);
    if (impl == Impl::Cpu) cpu::conv2d_forward(s, x, w, b, y);
    if (impl == Impl::Native) kc::conv2d_forward_native(s, x, w, b, y, st);
    if (impl == Impl::Cudnn) kc::conv2d_forward_cudnn(s, x, w, b, y, st);
  }
}

void backward_data(const ConvCase& c, Impl impl, const float* gy, const float* w, float* gx) {
  const auto st = testing::stream();
  if (c.transpose) {
    const ConvTranspose2dShape s = convt_shape(c);
    if (impl == Impl::Cpu) cpu::conv_transpose2d_backward_data(s, gy, w, gx);
    if (impl == Impl::Native) kc::conv_transpose2d_backward_data_native(s, gy, w, gx, st);
    if (impl == Impl::Cudnn) kc::conv_transpose2d_backward_data_cudnn(s, gy, w, gx, st);
  } else {
    const Conv2dShape s = conv_shape(c);
    if (impl == Impl::Cpu) cpu::conv2d_backward_data(s, gy, w, gx);
    if (impl == Impl::Native) kc::conv2d_backward_data_native(s, gy, w, gx, st);
    if (impl == Impl::Cudnn) kc::conv2d_backward_data_cudnn(s, gy, w, gx, st);
  }
}

void backward_weight(const ConvCase& c, Impl impl, const float* x, const float* gy, float* gw) {
  const auto st = testing::stream();
  if (c.transpose) {
    const ConvTranspose2dShape s = convt_shape(c);
    if (impl == Impl::Cpu) cpu::conv_transpose2d_backward_weight(s, x, gy, gw);
    if (impl == Impl::Native) kc::conv_transpose2d_backward_weight_native(s, x, gy, gw, st);
    if (impl == Impl::Cudnn) kc::conv_transpose2d_backward_weight_cudnn(s, x, gy, gw, st);
  } else {
    const Conv2dShape s = conv_shape(c);
    if (impl == Impl::Cpu) cpu::conv2d_backward_weight(s, x, gy, gw);
    if (impl == Impl::Native) kc::conv2d_backward_weight_native(s, x, gy, gw, st);
    if (impl == Impl::Cudnn) kc::conv2d_backward_weight_cudnn(s, x, gy, gw, st);
  }
}

// ---- inputs, CPU references and their magnitudes, computed once per case ------------------------

std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

struct Reference {
  std::vector<float> x, w, b, gy;                        // inputs
  std::vector<float> y_bias, y_plain, gx, gw;            // CPU results
  std::vector<float> y_bias_mag, y_plain_mag, gx_mag, gw_mag;  // sums of |terms|
};

const Reference& reference(const ConvCase& c) {
  static std::map<std::string, std::unique_ptr<Reference>> cache;
  auto& slot = cache[c.name];
  if (slot) return *slot;
  auto r = std::make_unique<Reference>();
  const uint64_t seed = std::hash<std::string>{}(c.name);
  r->x = testing::random_vector(static_cast<size_t>(x_size(c)), seed + 1);
  r->w = testing::random_vector(static_cast<size_t>(w_size(c)), seed + 2);
  r->b = testing::random_vector(static_cast<size_t>(c.K), seed + 3);
  r->gy = testing::random_vector(static_cast<size_t>(y_size(c)), seed + 4);
  const auto ax = abs_of(r->x), aw = abs_of(r->w), ab = abs_of(r->b), agy = abs_of(r->gy);
  auto sized = [](int64_t n) { return std::vector<float>(static_cast<size_t>(n)); };
  r->y_bias = sized(y_size(c)), r->y_bias_mag = sized(y_size(c));
  r->y_plain = sized(y_size(c)), r->y_plain_mag = sized(y_size(c));
  r->gx = sized(x_size(c)), r->gx_mag = sized(x_size(c));
  r->gw = sized(w_size(c)), r->gw_mag = sized(w_size(c));
  forward(c, Impl::Cpu, r->x.data(), r->w.data(), r->b.data(), r->y_bias.data());
  forward(c, Impl::Cpu, ax.data(), aw.data(), ab.data(), r->y_bias_mag.data());
  forward(c, Impl::Cpu, r->x.data(), r->w.data(), nullptr, r->y_plain.data());
  forward(c, Impl::Cpu, ax.data(), aw.data(), nullptr, r->y_plain_mag.data());
  backward_data(c, Impl::Cpu, r->gy.data(), r->w.data(), r->gx.data());
  backward_data(c, Impl::Cpu, agy.data(), aw.data(), r->gx_mag.data());
  backward_weight(c, Impl::Cpu, r->x.data(), r->gy.data(), r->gw.data());
  backward_weight(c, Impl::Cpu, ax.data(), agy.data(), r->gw_mag.data());
  slot = std::move(r);
  return *slot;
}

// |got - ref| <= eps (|ref| + mag) + global_eps max(mag) element by element (see the file
// comment); NaN fails.
::testing::AssertionResult close_to(const std::vector<float>& got, const std::vector<float>& ref,
                                    const std::vector<float>& mag, double eps, double global_eps,
                                    const std::string& what) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
  }
  double max_mag = 0.0;
  for (const float m : mag) max_mag = std::max(max_mag, static_cast<double>(m));
  const double floor = global_eps * max_mag;
  int64_t bad = 0;
  double worst = 0.0;
  std::ostringstream first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i], m = mag[i];
    const double err = std::fabs(g - r), bound = eps * (std::fabs(r) + m) + floor;
    if (!(err <= bound)) {
      if (bad < 5) {
        first << "\n  [" << i << "] got " << g << " expected " << r << " (|err| " << err
              << ", bound " << bound << ")";
      }
      ++bad;
    }
    if (std::isfinite(err) && m > 0.0) worst = std::max(worst, err / m);
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size()
                                       << " elements outside " << eps << " (|ref| + sum |terms|) + "
                                       << global_eps << " max sum |terms|; largest |err| / sum |terms| "
                                       << worst << first.str();
}

// Sets the native backend's column budget for one scope (0: leave the default).
class ColumnBudget {
 public:
  explicit ColumnBudget(int64_t bytes) : saved_(kc::conv_column_budget()) {
    if (bytes > 0) kc::set_conv_column_budget(bytes);
  }
  ~ColumnBudget() { kc::set_conv_column_budget(saved_); }
  ColumnBudget(const ColumnBudget&) = delete;
  ColumnBudget& operator=(const ColumnBudget&) = delete;

 private:
  int64_t saved_;
};

bool have_cudnn() {
#ifdef LATENTLAB_HAS_CUDNN
  return true;
#else
  return false;
#endif
}

// ---- parity with the CPU ------------------------------------------------------------------------

using Param = std::tuple<ConvCase, Impl>;

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::get<0>(info.param).name + (std::get<1>(info.param) == Impl::Native ? "_native" : "_cudnn");
}

class ConvCuda : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override { kc::set_allow_tf32(false); }  // FP32 parity
};

TEST_P(ConvCuda, MatchesCpu) {
  LL_REQUIRE_GPU();
  const ConvCase& c = std::get<0>(GetParam());
  const Impl impl = std::get<1>(GetParam());
  if (impl == Impl::Cudnn && !have_cudnn()) GTEST_SKIP() << "built without cuDNN";
  const ColumnBudget budget(c.column_budget);
  const Reference& r = reference(c);
  DeviceBuffer<float> x(r.x), w(r.w), b(r.b), gy(r.gy);
  DeviceBuffer<float> y(r.y_bias.size()), gx(r.gx.size()), gw(r.gw.size());

  const double global = impl == Impl::Cudnn ? kEps : 0.0;
  if (c.bias) {
    y.poison();
    forward(c, impl, x.get(), w.get(), b.get(), y.get());
    EXPECT_TRUE(close_to(y.download(), r.y_bias, r.y_bias_mag, kEps, global, "forward with bias"));
  }
  y.poison();
  forward(c, impl, x.get(), w.get(), nullptr, y.get());
  EXPECT_TRUE(close_to(y.download(), r.y_plain, r.y_plain_mag, kEps, global, "forward without bias"));

  gx.poison();
  backward_data(c, impl, gy.get(), w.get(), gx.get());
  EXPECT_TRUE(close_to(gx.download(), r.gx, r.gx_mag, kEps, global, "backward data"));

  gw.poison();
  backward_weight(c, impl, x.get(), gy.get(), gw.get());
  EXPECT_TRUE(close_to(gw.download(), r.gw, r.gw_mag, kEps, global, "backward weight"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvCuda,
                         ::testing::Combine(::testing::ValuesIn(conv_cases()),
                                            ::testing::Values(Impl::Native, Impl::Cudnn)),
                         param_name);

// ---- determinism: the same call twice gives the same bits ---------------------------------------

std::vector<ConvCase> determinism_cases() {
  std::vector<ConvCase> v;
  for (const ConvCase& c : conv_cases()) {
    if (c.name == "dcgan64_D2_batch128" || c.name == "dcgan64_G4" || c.name == "gan128_G3" ||
        c.name == "vae_enc2" || c.name == "chunks_of_2" || c.name == "t_chunks_of_2" ||
        c.name == "dcgan64_D5") {
      v.push_back(c);
    }
  }
  return v;
}

class ConvCudaDeterminism : public ConvCuda {};

TEST_P(ConvCudaDeterminism, RepeatedCallsAreBitIdentical) {
  LL_REQUIRE_GPU();
  const ConvCase& c = std::get<0>(GetParam());
  const Impl impl = std::get<1>(GetParam());
  if (impl == Impl::Cudnn && !have_cudnn()) GTEST_SKIP() << "built without cuDNN";
  const ColumnBudget budget(c.column_budget);
  const Reference& r = reference(c);
  DeviceBuffer<float> x(r.x), w(r.w), b(r.b), gy(r.gy);
  DeviceBuffer<float> out(std::max({r.y_bias.size(), r.gx.size(), r.gw.size()}));
  auto twice = [&](auto&& run, size_t n) {
    std::vector<float> first, second;
    for (std::vector<float>* dst : {&first, &second}) {
      out.poison();
      run();
      *dst = out.download();
      dst->resize(n);
    }
    return ll::testing::bit_equal(first, second);
  };
  EXPECT_TRUE(twice([&] { backward_weight(c, impl, x.get(), gy.get(), out.get()); }, r.gw.size()))
      << "backward weight";
  EXPECT_TRUE(twice([&] { backward_data(c, impl, gy.get(), w.get(), out.get()); }, r.gx.size()))
      << "backward data";
  EXPECT_TRUE(twice([&] { forward(c, impl, x.get(), w.get(), b.get(), out.get()); }, r.y_bias.size()))
      << "forward";
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvCudaDeterminism,
                         ::testing::Combine(::testing::ValuesIn(determinism_cases()),
                                            ::testing::Values(Impl::Native, Impl::Cudnn)),
                         param_name);

// ---- backend selection ---------------------------------------------------------------------------

// Restores the process-wide backend when a test ends.
class BackendGuard {
 public:
  BackendGuard() : saved_(kc::conv_backend()) {}
  ~BackendGuard() { kc::set_conv_backend(saved_); }
  BackendGuard(const BackendGuard&) = delete;
  BackendGuard& operator=(const BackendGuard&) = delete;

 private:
  ConvBackend saved_;
};

// Host-only (no GPU needed): parsing and the process-wide setting.
TEST(ConvBackendSelection, ParsesNamesAndRejectsOthers) {
  const BackendGuard guard;
  EXPECT_EQ(kc::parse_conv_backend("native"), ConvBackend::Native);
  EXPECT_EQ(kc::parse_conv_backend("cudnn"), ConvBackend::Cudnn);
  EXPECT_STREQ(kc::conv_backend_name(ConvBackend::Native), "native");
  EXPECT_STREQ(kc::conv_backend_name(ConvBackend::Cudnn), "cudnn");
  try {
    kc::parse_conv_backend("cuDNN ");
    ADD_FAILURE() << "an unknown backend was accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("native"), std::string::npos) << what;
    EXPECT_NE(what.find("cudnn"), std::string::npos) << what;
  }
  EXPECT_EQ(kc::conv_backend(), ConvBackend::Native) << "the default backend";
  kc::set_conv_backend(ConvBackend::Cudnn);
  EXPECT_EQ(kc::conv_backend(), ConvBackend::Cudnn);
  EXPECT_THROW(kc::set_conv_column_budget(0), std::invalid_argument);
}

// Host-only: shapes the CPU rejects are rejected before any GPU work, by both backends.
TEST(ConvBackendSelection, RejectsInvalidShapesLikeTheCpu) {
  Conv2dShape bad;
  bad.N = 1, bad.C = 1, bad.H = 2, bad.W = 2, bad.K = 1, bad.R = 3, bad.S = 3;  // kernel > input
  EXPECT_THROW(kc::conv2d_forward_native(bad, nullptr, nullptr, nullptr, nullptr, nullptr),
               std::invalid_argument);
  EXPECT_THROW(kc::conv2d_backward_weight_native(bad, nullptr, nullptr, nullptr, nullptr),
               std::invalid_argument);
  ConvTranspose2dShape t;
  t.N = 1, t.C = 1, t.H = 3, t.W = 3, t.K = 1, t.R = 3, t.S = 3, t.stride_h = t.stride_w = 2;
  t.output_padding_h = 2;  // not smaller than the stride
  EXPECT_THROW(kc::conv_transpose2d_forward_native(t, nullptr, nullptr, nullptr, nullptr, nullptr),
               std::invalid_argument);
  if (have_cudnn()) {
    EXPECT_THROW(kc::conv2d_backward_data_cudnn(bad, nullptr, nullptr, nullptr, nullptr),
                 std::invalid_argument);
    EXPECT_THROW(kc::conv_transpose2d_backward_weight_cudnn(t, nullptr, nullptr, nullptr, nullptr),
                 std::invalid_argument);
  } else {
    EXPECT_THROW(kc::conv2d_forward_cudnn(bad, nullptr, nullptr, nullptr, nullptr, nullptr),
                 std::runtime_error);
  }
}

TEST(ConvBackendSelection, PlainEntryPointsRouteOnTheBackend) {
  LL_REQUIRE_GPU();
  if (!have_cudnn()) GTEST_SKIP() << "built without cuDNN";
  const BackendGuard guard;
  kc::set_allow_tf32(false);
  for (const bool transpose : {false, true}) {
    const ConvCase c = transpose ? convt("route_t", 2, 8, 6, 6, 5, 4, 2, 1, 0, true)
                                 : conv("route", 2, 5, 12, 12, 8, 4, 2, 1, true);
    const Reference& r = reference(c);
    DeviceBuffer<float> x(r.x), w(r.w), b(r.b), gy(r.gy);
    DeviceBuffer<float> y(r.y_bias.size()), gx(r.gx.size()), gw(r.gw.size());
    auto run_plain = [&] {
      const auto st = testing::stream();
      if (transpose) {
        const ConvTranspose2dShape s = convt_shape(c);
        kc::conv_transpose2d_forward(s, x.get(), w.get(), b.get(), y.get(), st);
        kc::conv_transpose2d_backward_data(s, gy.get(), w.get(), gx.get(), st);
        kc::conv_transpose2d_backward_weight(s, x.get(), gy.get(), gw.get(), st);
      } else {
        const Conv2dShape s = conv_shape(c);
        kc::conv2d_forward(s, x.get(), w.get(), b.get(), y.get(), st);
        kc::conv2d_backward_data(s, gy.get(), w.get(), gx.get(), st);
        kc::conv2d_backward_weight(s, x.get(), gy.get(), gw.get(), st);
      }
      return std::vector<std::vector<float>>{y.download(), gx.download(), gw.download()};
    };
    auto run_explicit = [&](Impl impl) {
      forward(c, impl, x.get(), w.get(), b.get(), y.get());
      backward_data(c, impl, gy.get(), w.get(), gx.get());
      backward_weight(c, impl, x.get(), gy.get(), gw.get());
      return std::vector<std::vector<float>>{y.download(), gx.download(), gw.download()};
    };
    for (const Impl impl : {Impl::Native, Impl::Cudnn}) {
      kc::set_conv_backend(impl == Impl::Native ? ConvBackend::Native : ConvBackend::Cudnn);
      const auto plain = run_plain();
      const auto expected = run_explicit(impl);
      for (size_t i = 0; i < plain.size(); ++i) {
        EXPECT_TRUE(ll::testing::bit_equal(plain[i], expected[i]))
            << c.name << " output " << i << " backend " << kc::conv_backend_name(kc::conv_backend());
      }
    }
  }
}

// ---- the emulator's cuDNN catches misuse (emulated build only) ----------------------------------
// The emulator's cuDNN (tests/emu/emu_cudnn.cpp) checks descriptors, algorithms and workspaces as
// cuDNN does, so that a bug in how cudnn_conv.cu describes a convolution fails in CI as it would on
// a GPU. These tests plant such bugs: they call the cuDNN API as cudnn_conv.cu's build_plan and its
// forward / backward_data / backward_filter do, with one thing wrong, and expect
// CUDNN_STATUS_BAD_PARAM; then they check that cudnn_conv.cu's plans own their descriptors, also
// when building one throws (ll::emu::cudnn_live_descriptors, ll::emu::cudnn_fail_next).
#if defined(LATENTLAB_CUDA_EMULATION) && defined(LATENTLAB_HAS_CUDNN)

// The descriptors of one conv2d, made as build_plan makes them (NCHW float, cross-correlation,
// FP32 math), except that x and y get the dimensions given; destroyed with the object.
struct StandInPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  StandInPlan(const Conv2dShape& s, const std::vector<int>& x_dims,
              const std::vector<int>& y_dims) {
    EXPECT_EQ(cudnnCreateTensorDescriptor(&x), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateTensorDescriptor(&y), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateFilterDescriptor(&w), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateConvolutionDescriptor(&conv), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, x_dims[0],
                                         x_dims[1], x_dims[2], x_dims[3]),
              CUDNN_STATUS_SUCCESS);
    if (!y_dims.empty()) {  // empty: y is left unset
      EXPECT_EQ(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, y_dims[0],
                                           y_dims[1], y_dims[2], y_dims[3]),
                CUDNN_STATUS_SUCCESS);
    }
    EXPECT_EQ(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                         static_cast<int>(s.K), static_cast<int>(s.C),
                                         static_cast<int>(s.R), static_cast<int>(s.S)),
              CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(
        cudnnSetConvolution2dDescriptor(conv, static_cast<int>(s.pad_h), static_cast<int>(s.pad_w),
                                        static_cast<int>(s.stride_h), static_cast<int>(s.stride_w),
                                        1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
        CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
  }
  ~StandInPlan() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  StandInPlan(const StandInPlan&) = delete;
  StandInPlan& operator=(const StandInPlan&) = delete;
};

// The first deterministic FP32 algorithm of a ranking, as cudnn_conv.cu's choose() takes it.
template <typename Perf>
Perf first_deterministic_fp32(const std::vector<Perf>& perf, int returned) {
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    if (p.status == CUDNN_STATUS_SUCCESS && p.determinism == CUDNN_DETERMINISTIC &&
        p.mathType == CUDNN_FMA_MATH) {
      return p;
    }
  }
  ADD_FAILURE() << "no deterministic FP32 algorithm among " << returned;
  return perf[0];
}

// The handle cudnn_conv.cu keeps, here one per test, bound to the compute stream.
class CudnnHandle {
 public:
  CudnnHandle() {
    EXPECT_EQ(cudnnCreate(&h_), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetStream(h_, testing::stream()), CUDNN_STATUS_SUCCESS);
  }
  ~CudnnHandle() { cudnnDestroy(h_); }
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  cudnnHandle_t get() const { return h_; }

 private:
  cudnnHandle_t h_ = nullptr;
};

bool all_nan(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float e) { return std::isnan(e); });
}

TEST(CudnnStandIn, RejectsDescriptorsThatDisagree) {
  LL_REQUIRE_GPU();
  // x (2, 3, 9, 9), w (4, 3, 3, 3), stride 2, pad 1: y (2, 4, 5, 5).
  const ConvCase c = conv("standin_descriptors", 2, 3, 9, 9, 4, 3, 2, 1);
  const Conv2dShape s = conv_shape(c);
  const int N = 2, C = 3, H = 9, W = 9, K = 4, P = static_cast<int>(s.P()),
            Q = static_cast<int>(s.Q());
  ASSERT_EQ(P, 5);
  const long live_at_start = ll::emu::cudnn_live_descriptors();
  const CudnnHandle handle;
  const cudnnHandle_t h = handle.get();
  const Reference& r = reference(c);
  DeviceBuffer<float> x(r.x), w(r.w), gy(r.gy), y(r.y_plain.size()), gx(r.gx.size()),
      gw(r.gw.size());
  const float one = 1.0f, zero = 0.0f;
  {
    // As cudnn_conv.cu does it: every call succeeds and computes the convolution.
    const StandInPlan ok(s, {N, C, H, W}, {N, K, P, Q});
    int n = 0, k = 0, oh = 0, ow = 0;
    EXPECT_EQ(cudnnGetConvolution2dForwardOutputDim(ok.conv, ok.x, ok.w, &n, &k, &oh, &ow),
              CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(std::vector<int>({n, k, oh, ow}), std::vector<int>({N, K, P, Q}));
    int max_count = 0, returned = 0;
    EXPECT_EQ(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count), CUDNN_STATUS_SUCCESS);
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(max_count));
    ASSERT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(h, ok.x, ok.w, ok.conv, ok.y, max_count,
                                                     &returned, perf.data()),
              CUDNN_STATUS_SUCCESS);
    const cudnnConvolutionFwdAlgo_t algo = first_deterministic_fp32(perf, returned).algo;
    size_t bytes = 0;
    EXPECT_EQ(cudnnGetConvolutionForwardWorkspaceSize(h, ok.x, ok.w, ok.conv, ok.y, algo, &bytes),
              CUDNN_STATUS_SUCCESS);
    DeviceBuffer<char> ws(std::max<size_t>(bytes, 1));
    y.poison();
    EXPECT_EQ(cudnnConvolutionForward(h, &one, ok.x, x.get(), ok.w, w.get(), ok.conv, algo,
                                      ws.get(), bytes, &zero, ok.y, y.get()),
              CUDNN_STATUS_SUCCESS);
    EXPECT_TRUE(close_to(y.download(), r.y_plain, r.y_plain_mag, kEps, kEps, "stand-in forward"));
  }
  // y's shape is not the convolution's output shape (a wrong P, Q, K or N in build_plan's
  // set_tensor(p.y, ...)): every call that takes y says so, and nothing runs.
  for (const std::vector<int>& bad_y :
       {std::vector<int>{N, K, P + 1, Q}, std::vector<int>{N, K, P, Q - 1},
        std::vector<int>{N, K + 1, P, Q}, std::vector<int>{N - 1, K, P, Q},
        std::vector<int>{N, K, Q, P + 2}}) {
    SCOPED_TRACE("y (" + std::to_string(bad_y[0]) + ", " + std::to_string(bad_y[1]) + ", " +
                 std::to_string(bad_y[2]) + ", " + std::to_string(bad_y[3]) + ")");
    const StandInPlan bad(s, {N, C, H, W}, bad_y);
    int returned = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[8];
    cudnnConvolutionBwdDataAlgoPerf_t bwd_data[8];
    cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[8];
    EXPECT_EQ(
        cudnnGetConvolutionForwardAlgorithm_v7(h, bad.x, bad.w, bad.conv, bad.y, 8, &returned, fwd),
        CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, bad.w, bad.y, bad.conv, bad.x, 8,
                                                          &returned, bwd_data),
              CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, bad.x, bad.y, bad.conv, bad.w, 8,
                                                            &returned, bwd_filter),
              CUDNN_STATUS_BAD_PARAM);
    size_t bytes = 0;
    EXPECT_EQ(
        cudnnGetConvolutionForwardWorkspaceSize(h, bad.x, bad.w, bad.conv, bad.y,
                                                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &bytes),
        CUDNN_STATUS_BAD_PARAM);
    y.poison();
    gx.poison();
    gw.poison();
    EXPECT_EQ(cudnnConvolutionForward(h, &one, bad.x, x.get(), bad.w, w.get(), bad.conv,
                                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                      bad.y, y.get()),
              CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnConvolutionBackwardData(h, &one, bad.w, w.get(), bad.y, gy.get(), bad.conv,
                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero,
                                           bad.x, gx.get()),
              CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnConvolutionBackwardFilter(h, &one, bad.x, x.get(), bad.y, gy.get(), bad.conv,
                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero,
                                             bad.w, gw.get()),
              CUDNN_STATUS_BAD_PARAM);
    EXPECT_TRUE(all_nan(y.download()) && all_nan(gx.download()) && all_nan(gw.download()))
        << "a rejected call wrote";
  }
  {
    // x's channels are not w's (C + 1 in set_tensor(p.x, ...)).
    const StandInPlan bad(s, {N, C + 1, H, W}, {N, K, P, Q});
    int n = 0, k = 0, oh = 0, ow = 0;
    EXPECT_EQ(cudnnGetConvolution2dForwardOutputDim(bad.conv, bad.x, bad.w, &n, &k, &oh, &ow),
              CUDNN_STATUS_BAD_PARAM);
    int returned = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[8];
    EXPECT_EQ(
        cudnnGetConvolutionForwardAlgorithm_v7(h, bad.x, bad.w, bad.conv, bad.y, 8, &returned, fwd),
        CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnConvolutionForward(h, &one, bad.x, x.get(), bad.w, w.get(), bad.conv,
                                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                      bad.y, y.get()),
              CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnConvolutionBackwardData(h, &one, bad.w, w.get(), bad.y, gy.get(), bad.conv,
                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero,
                                           bad.x, gx.get()),
              CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(cudnnConvolutionBackwardFilter(h, &one, bad.x, x.get(), bad.y, gy.get(), bad.conv,
                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero,
                                             bad.w, gw.get()),
              CUDNN_STATUS_BAD_PARAM);
  }
  {
    // y never set (a set_tensor call missing from build_plan).
    const StandInPlan bad(s, {N, C, H, W}, {});
    int returned = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[8];
    EXPECT_EQ(
        cudnnGetConvolutionForwardAlgorithm_v7(h, bad.x, bad.w, bad.conv, bad.y, 8, &returned, fwd),
        CUDNN_STATUS_BAD_PARAM);
  }
  {
    // The workspace: the chosen backward-data and backward-filter algorithms (deterministic, FP32)
    // ask for one; a byte less than asked, none, or host memory in its place is refused, and the
    // workspace asked for is accepted.
    const StandInPlan ok(s, {N, C, H, W}, {N, K, P, Q});
    int returned = 0;
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> data_perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    ASSERT_EQ(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, ok.w, ok.y, ok.conv, ok.x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          &returned, data_perf.data()),
              CUDNN_STATUS_SUCCESS);
    const cudnnConvolutionBwdDataAlgo_t data_algo =
        first_deterministic_fp32(data_perf, returned).algo;
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> filter_perf(
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    ASSERT_EQ(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, ok.x, ok.y, ok.conv, ok.w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                            &returned, filter_perf.data()),
              CUDNN_STATUS_SUCCESS);
    const cudnnConvolutionBwdFilterAlgo_t filter_algo =
        first_deterministic_fp32(filter_perf, returned).algo;
    size_t data_bytes = 0, filter_bytes = 0;
    EXPECT_EQ(cudnnGetConvolutionBackwardDataWorkspaceSize(h, ok.w, ok.y, ok.conv, ok.x, data_algo,
                                                           &data_bytes),
              CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, ok.x, ok.y, ok.conv, ok.w,
                                                             filter_algo, &filter_bytes),
              CUDNN_STATUS_SUCCESS);
    ASSERT_GT(data_bytes, 0u);
    ASSERT_GT(filter_bytes, 0u);
    DeviceBuffer<char> ws(std::max(data_bytes, filter_bytes));
    std::vector<char> host(ws.size());
    auto data = [&](void* p, size_t bytes) {
      return cudnnConvolutionBackwardData(h, &one, ok.w, w.get(), ok.y, gy.get(), ok.conv,
                                          data_algo, p, bytes, &zero, ok.x, gx.get());
    };
    auto filter = [&](void* p, size_t bytes) {
      return cudnnConvolutionBackwardFilter(h, &one, ok.x, x.get(), ok.y, gy.get(), ok.conv,
                                            filter_algo, p, bytes, &zero, ok.w, gw.get());
    };
    gx.poison();
    gw.poison();
    EXPECT_EQ(data(ws.get(), data_bytes - 1), CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(data(nullptr, data_bytes), CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(data(host.data(), data_bytes), CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(filter(ws.get(), filter_bytes - 1), CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(filter(nullptr, filter_bytes), CUDNN_STATUS_BAD_PARAM);
    EXPECT_EQ(filter(host.data(), filter_bytes), CUDNN_STATUS_BAD_PARAM);
    EXPECT_TRUE(all_nan(gx.download()) && all_nan(gw.download())) << "a rejected call wrote";
    EXPECT_EQ(data(ws.get(), data_bytes), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(filter(ws.get(), filter_bytes), CUDNN_STATUS_SUCCESS);
    EXPECT_TRUE(close_to(gx.download(), r.gx, r.gx_mag, kEps, kEps, "stand-in backward data"));
    EXPECT_TRUE(close_to(gw.download(), r.gw, r.gw_mag, kEps, kEps, "stand-in backward filter"));
  }
  EXPECT_EQ(ll::emu::cudnn_live_descriptors(), live_at_start) << "descriptors leaked";
}

// cudnn_conv.cu's plans: one per (op, shape, TF32 setting), six descriptors each, kept for the
// process; a plan whose build throws (a cuDNN call fails, or no algorithm meets its rules) leaves
// no descriptor behind and is not kept.
TEST(CudnnStandIn, PlansOwnTheirDescriptors) {
  LL_REQUIRE_GPU();
  kc::set_allow_tf32(false);
  const auto st = testing::stream();
  const long kPerPlan = 6;
  // Shapes no other test of this file plans (plans are cached by shape):
  // x (1, 2, H, 7), w (3, 2, 3, 3).
  auto shape = [](int64_t H) { return conv_shape(conv("standin_plans", 1, 2, H, 7, 3, 3, 1, 1)); };
  const Conv2dShape s = shape(7);
  DeviceBuffer<float> x(static_cast<size_t>(1 * 2 * 16 * 7)), w(static_cast<size_t>(3 * 2 * 3 * 3));
  DeviceBuffer<float> y(static_cast<size_t>(1 * 3 * 16 * 7)), gx(x.size()), gw(w.size());
  x.upload(testing::random_vector(x.size(), 1));
  w.upload(testing::random_vector(w.size(), 2));
  y.upload(testing::random_vector(y.size(), 3));

  const long start = ll::emu::cudnn_live_descriptors();
  kc::conv2d_forward_cudnn(s, x.get(), w.get(), nullptr, y.get(), st);
  EXPECT_EQ(ll::emu::cudnn_live_descriptors(), start + kPerPlan)
      << "the first forward builds one plan";
  kc::conv2d_forward_cudnn(s, x.get(), w.get(), nullptr, y.get(), st);
  EXPECT_EQ(ll::emu::cudnn_live_descriptors(), start + kPerPlan) << "the second reuses it";
  kc::conv2d_backward_data_cudnn(s, y.get(), w.get(), gx.get(), st);
  kc::conv2d_backward_weight_cudnn(s, x.get(), y.get(), gw.get(), st);
  kc::conv2d_backward_data_cudnn(s, y.get(), w.get(), gx.get(), st);
  EXPECT_EQ(ll::emu::cudnn_live_descriptors(), start + 3 * kPerPlan) << "one plan per op";

  // Building a plan throws at each step that can fail: the descriptors made before are destroyed,
  // and the same call afterwards builds the plan anew (the failed one was not kept).
  struct Planted {
    const char* function;
    cudnnStatus_t status;
    const char* message;  // in the exception's text
  };
  const Planted planted[] = {
      {"cudnnCreateTensorDescriptor", CUDNN_STATUS_INTERNAL_ERROR, "cudnnCreateTensorDescriptor"},
      // after the four tensor descriptors
      {"cudnnCreateFilterDescriptor", CUDNN_STATUS_INTERNAL_ERROR, "cudnnCreateFilterDescriptor"},
      {"cudnnCreateConvolutionDescriptor", CUDNN_STATUS_INTERNAL_ERROR,
       "cudnnCreateConvolutionDescriptor"},
      {"cudnnSetConvolution2dDescriptor", CUDNN_STATUS_NOT_SUPPORTED,
       "cudnnSetConvolution2dDescriptor"},
      {"cudnnGetConvolution2dForwardOutputDim", CUDNN_STATUS_BAD_PARAM,
       "cudnnGetConvolution2dForwardOutputDim"},
      // every algorithm of the ranking unusable: choose() throws
      {"cudnnGetConvolutionBackwardFilterAlgorithm_v7", CUDNN_STATUS_NOT_SUPPORTED,
       "offers no deterministic"},
      {"cudnnGetConvolutionBackwardFilterWorkspaceSize", CUDNN_STATUS_BAD_PARAM,
       "cudnnGetConvolutionBackwardFilterWorkspaceSize"},
  };
  int64_t H = 8;
  for (const Planted& p : planted) {
    SCOPED_TRACE(p.function);
    const Conv2dShape fresh = shape(H++);
    const long before = ll::emu::cudnn_live_descriptors();
    ll::emu::cudnn_fail_next(p.function, p.status);
    try {
      kc::conv2d_backward_weight_cudnn(fresh, x.get(), y.get(), gw.get(), st);
      ADD_FAILURE() << "the planted failure did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(p.message), std::string::npos) << e.what();
    }
    EXPECT_EQ(ll::emu::cudnn_live_descriptors(), before) << "a failed plan leaked descriptors";
    kc::conv2d_backward_weight_cudnn(fresh, x.get(), y.get(), gw.get(), st);
    EXPECT_EQ(ll::emu::cudnn_live_descriptors(), before + kPerPlan)
        << "the plan is built on the next call";
  }
  const std::vector<float> out = gw.download();  // waits for the queued work
  EXPECT_FALSE(std::any_of(out.begin(), out.end(), [](float e) { return std::isnan(e); }));
}

#endif  // LATENTLAB_CUDA_EMULATION && LATENTLAB_HAS_CUDNN

}  // namespace
}  // namespace ll
