// test_fold_bias_cuda.cpp: the CUDA paths for small output maps and Linear-shaped bias gradients,
// against the CPU references (kernels/cpu):
//
// - bias_backward with inner == 1 (gy an (N, C) row-major matrix: Linear layers, 1x1 conv outputs),
//   kernels/cuda/bias.cu's "columns" layout: C not a multiple of 32 (1, 3, 5, 33, 37, 100, 784,
//   1000: blocks of 1 to 32 channels), N from 1 to 1.1 million, so that the rows are cut into one
//   chunk (written straight to gb), several chunks with a short last one (the (K, C) partials and
//   the second pass), and the most chunks there are (1024, then longer chunks); unaligned gy.
//   Tolerance: both sides add in float64 and round once, so they may differ by the one rounding
//   (2^-23 |ref|) plus the float64 order error (1e-9 sum |terms| covers a million terms; a float32
//   accumulation would err by ~1e-5 of it and fail).
// - conv2d and conv_transpose2d (native backend) whose GEMMs fold the batch
//   (kernels/cuda/conv2d.cu), with output maps (for the transposed conv: input maps) of
//   P Q = 1 (the kernel covering the whole image: one GEMM over the batch, no column matrix; other
//   1x1 outputs: the batched layout), 4 and 16 (the wide layout, the y scatter and the gy gather),
//   64 (the last folded size) and 81 (the first unfolded one); 1x1 kernels on small maps,
//   asymmetric shapes, output_padding; batch sizes and column budgets that cut the batch into
//   chunks of 1 (no scatter), 2 or 3 (with a last chunk of 1), or leave it whole (up to 64
//   images). Tolerance as tests/cuda/test_conv_cuda.cpp:
//   |got - ref| <= 1e-5 (|ref| + sum |terms|).
//
// Every output is poisoned with NaN first, every op runs twice and must repeat bit for bit, and the
// forward with bias must equal the forward without bias followed by bias_add bit for bit (the
// folded forward adds the bias in its scatter).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "tests/cuda/cuda_harness.h"

namespace ll {
namespace {

using kernels::Conv2dShape;
using kernels::ConvTranspose2dShape;
using testing::DeviceBuffer;
namespace cpu = kernels::cpu;
namespace kc = kernels::cuda;

std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

// |got - ref| <= rel |ref| + mag_eps mag element by element; NaN fails.
::testing::AssertionResult close_to(const std::vector<float>& got, const std::vector<float>& ref,
                                    const std::vector<float>& mag, double rel, double mag_eps,
                                    const std::string& what) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
  }
  int64_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i], m = mag[i];
    const double err = std::fabs(g - r), bound = rel * std::fabs(r) + mag_eps * m;
    if (!(err <= bound)) {
      if (bad < 5) {
        first << "\n  [" << i << "] got " << g << " expected " << r << " (|err| " << err
              << ", bound " << bound << ")";
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size()
                                       << " elements outside the bound" << first.str();
}

// ---- bias_backward, inner == 1 ------------------------------------------------------------------

struct LinearBiasCase {
  int64_t N, C;
  int64_t offset;  // floats between the allocation and gy (1: not 16-byte aligned)
};

std::string linear_bias_name(const LinearBiasCase& c) {
  std::ostringstream name;
  name << "n" << c.N << "_c" << c.C;
  if (c.offset) name << "_offset" << c.offset;
  return name.str();
}

void PrintTo(const LinearBiasCase& c, std::ostream* os) { *os << linear_bias_name(c); }

// Comments: the block (bx channels x by row lanes), the rows per chunk and the number of chunks
// that kernels/cuda/bias.cu picks (chunks of by * 16 rows, at most 1024 chunks).
const LinearBiasCase kLinearBiasCases[] = {
    {1, 1, 0},          // 1 x 256 block, one chunk
    {1, 37, 0},         // one row
    {7, 5, 1},          // 8 x 32, one chunk, unaligned
    {128, 784, 0},      // MLP-VAE fc4: 32 x 8, 128 rows: one chunk, 25 column blocks
    {129, 100, 0},      // two chunks, the second of one row
    {1000, 37, 1},      // 32 x 8: 8 chunks of 128 (the last 104), two column blocks
    {3000, 5, 0},       // 8 x 32: 6 chunks of 512 (the last 440)
    {20000, 1, 3},      // 1 x 256: 5 chunks of 4096
    {4097, 33, 0},      // 33 chunks, the last of one row
    {2048, 1000, 0},    // 16 chunks, 32 column blocks
    {1100003, 3, 1},    // 4 x 64: 1075 chunks of 1024 capped: 1024 chunks of 1075 rows
};

class LinearBiasCuda : public ::testing::TestWithParam<LinearBiasCase> {};

TEST_P(LinearBiasCuda, BackwardMatchesCpuAndIsDeterministic) {
  LL_REQUIRE_GPU();
  const LinearBiasCase c = GetParam();
  const int64_t n = c.N * c.C;
  const auto gy = testing::random_vector(static_cast<size_t>(n + c.offset), 41);
  std::vector<float> ref(static_cast<size_t>(c.C)), mag(ref.size());
  cpu::bias_backward(gy.data() + c.offset, ref.data(), c.N, c.C, 1);
  cpu::bias_backward(abs_of(gy).data() + c.offset, mag.data(), c.N, c.C, 1);
  DeviceBuffer<float> dgy(gy), dgb(ref.size());
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    dgb.poison();
    kc::bias_backward(dgy.get() + c.offset, dgb.get(), c.N, c.C, 1, testing::stream());
    const auto got = dgb.download();
    if (run == 0) {
      EXPECT_TRUE(close_to(got, ref, mag, 1.2e-7, 1e-9, linear_bias_name(c)));
      first = got;
    } else {
      EXPECT_TRUE(testing::bit_equal(got, first)) << "second run differs";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearBiasCuda, ::testing::ValuesIn(kLinearBiasCases),
                         [](const ::testing::TestParamInfo<LinearBiasCase>& info) {
                           return linear_bias_name(info.param);
                         });

// A column of one value repeated: the double accumulation is exact where a float one is not
// (2^24 + 1 is not a float: adding 1.0f to 2^24 in float does nothing).
TEST(LinearBiasCudaAccuracy, AccumulatesInDouble) {
  LL_REQUIRE_GPU();
  const int64_t N = (int64_t{1} << 17) + 1, C = 2;
  std::vector<float> gy(static_cast<size_t>(N * C));
  for (int64_t n = 0; n < N; ++n) {
    gy[static_cast<size_t>(n * C)] = n == 0 ? 16777216.0f : 1.0f;  // 2^24, then ones
    gy[static_cast<size_t>(n * C + 1)] = n % 2 == 0 ? 0.1f : -0.1f;
  }
  std::vector<float> ref(2);
  cpu::bias_backward(gy.data(), ref.data(), N, C, 1);
  DeviceBuffer<float> dgy(gy), dgb(2);
  dgb.poison();
  kc::bias_backward(dgy.get(), dgb.get(), N, C, 1, testing::stream());
  const auto got = dgb.download();
  EXPECT_EQ(got[0], ref[0]);
  EXPECT_EQ(got[0], static_cast<float>(16777216.0 + static_cast<double>(N - 1)));
  EXPECT_EQ(got[1], ref[1]);
}

// ---- convolutions with small output maps -------------------------------------------------------

struct FoldCase {
  std::string name;
  bool transpose = false;
  int64_t N = 1, C = 1, H = 1, W = 1, K = 1, R = 1, S = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t output_padding_h = 0, output_padding_w = 0;
  int64_t chunk = 0;  // images per chunk of the folded passes (0: the default budget)
};

FoldCase conv(const std::string& name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
              int64_t R, int64_t stride, int64_t pad, int64_t chunk = 0) {
  FoldCase c;
  c.name = name;
  c.N = N, c.C = C, c.H = H, c.W = W, c.K = K, c.R = c.S = R;
  c.stride_h = c.stride_w = stride, c.pad_h = c.pad_w = pad;
  c.chunk = chunk;
  return c;
}

FoldCase convt(const std::string& name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
               int64_t R, int64_t stride, int64_t pad, int64_t output_padding = 0,
               int64_t chunk = 0) {
  FoldCase c = conv(name, N, C, H, W, K, R, stride, pad, chunk);
  c.transpose = true;
  c.output_padding_h = c.output_padding_w = output_padding;
  return c;
}

void PrintTo(const FoldCase& c, std::ostream* os) { *os << c.name; }

Conv2dShape conv_shape(const FoldCase& c) {
  Conv2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.stride_h, s.stride_w = c.stride_w, s.pad_h = c.pad_h, s.pad_w = c.pad_w;
  return s;
}

ConvTranspose2dShape convt_shape(const FoldCase& c) {
  ConvTranspose2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.stride_h, s.stride_w = c.stride_w, s.pad_h = c.pad_h, s.pad_w = c.pad_w;
  s.output_padding_h = c.output_padding_h, s.output_padding_w = c.output_padding_w;
  return s;
}

// The conv whose GEMMs run: the case itself, or the transposed conv's adjoint.
Conv2dShape gemm_conv(const FoldCase& c) {
  return c.transpose ? kernels::adjoint_conv(convt_shape(c), "test") : conv_shape(c);
}

int64_t out_h(const FoldCase& c) { return c.transpose ? convt_shape(c).P() : conv_shape(c).P(); }
int64_t out_w(const FoldCase& c) { return c.transpose ? convt_shape(c).Q() : conv_shape(c).Q(); }
int64_t x_size(const FoldCase& c) { return c.N * c.C * c.H * c.W; }
int64_t y_size(const FoldCase& c) { return c.N * c.K * out_h(c) * out_w(c); }
int64_t w_size(const FoldCase& c) { return c.K * c.C * c.R * c.S; }

// The column budget (bytes) that gives the folded passes chunks of `images` images: they keep
// (C R S + K) P Q floats per image of the conv that runs (conv2d.cu). The 1x1-output passes keep
// C R S floats per image, so the same budget gives them at least as many.
int64_t budget_for(const FoldCase& c, int64_t images) {
  const Conv2dShape s = gemm_conv(c);
  const int64_t per_image = (s.C * s.R * s.S + s.K) * s.P() * s.Q();
  return images * per_image * static_cast<int64_t>(sizeof(float));
}

std::vector<FoldCase> fold_cases() {
  std::vector<FoldCase> v;
  // P Q = 1, the kernel covering the whole image: one GEMM over the batch (DCGAN-64 D5-like, a
  // 7x7 one as DCGAN-28's D3, a non-square one, a 1x1 conv on 1x1 maps).
  v.push_back(conv("whole_4x4", 11, 7, 4, 4, 3, 4, 1, 0));
  v.push_back(conv("whole_7x7_k1", 5, 3, 7, 7, 1, 7, 1, 0));
  {
    FoldCase c = conv("whole_3x5_stride", 6, 2, 3, 5, 4, 3, 2, 0);
    c.S = 5, c.stride_w = 3;
    v.push_back(c);
  }
  v.push_back(conv("whole_pointwise_1x1", 9, 13, 1, 1, 5, 1, 1, 0));
  // P Q = 1 otherwise: the batched layout, chunked.
  v.push_back(conv("pq1_stride3", 6, 4, 5, 5, 3, 3, 3, 0));
  v.push_back(conv("pq1_stride3_chunks2", 7, 4, 5, 5, 3, 3, 3, 0, 2));
  v.push_back(conv("pq1_padded", 5, 3, 2, 2, 6, 4, 1, 1));
  v.push_back(conv("pq1_padded_chunks1", 5, 3, 2, 2, 6, 4, 1, 1, 1));
  v.push_back(conv("pq1_kernel_size_of_image_padded", 4, 3, 3, 3, 5, 3, 3, 1));  // not the whole
  // P Q = 4: 2x2 maps, and 1x4 from an asymmetric conv.
  v.push_back(conv("pq4", 7, 3, 5, 5, 5, 3, 2, 0));
  v.push_back(conv("pq4_chunks3", 7, 3, 5, 5, 5, 3, 2, 0, 3));
  v.push_back(conv("pq4_chunks1", 4, 3, 5, 5, 5, 3, 2, 0, 1));
  {
    FoldCase c = conv("pq1x4_asymmetric", 6, 2, 4, 9, 3, 4, 1, 0);
    c.S = 3, c.stride_w = 2;
    v.push_back(c);
  }
  // P Q = 16: DCGAN-64 D4-like (8x8 -> 4x4, 4x4 kernel, stride 2, padding 1), odd channels.
  v.push_back(conv("pq16_d4", 9, 5, 8, 8, 6, 4, 2, 1));
  v.push_back(conv("pq16_d4_batch64", 64, 3, 8, 8, 5, 4, 2, 1));
  v.push_back(conv("pq16_d4_chunks2", 9, 5, 8, 8, 6, 4, 2, 1, 2));
  v.push_back(conv("pq16_d4_chunks1", 3, 5, 8, 8, 6, 4, 2, 1, 1));
  v.push_back(conv("pq16_3x3_pad1", 5, 7, 4, 4, 9, 3, 1, 1));
  v.push_back(conv("pq16_pointwise", 5, 6, 4, 4, 7, 1, 1, 0));
  v.push_back(conv("pq16_pointwise_chunks2", 5, 6, 4, 4, 7, 1, 1, 0, 2));
  // The boundary: P Q = 64 is folded, 81 is not.
  v.push_back(conv("pq64_8x8", 3, 2, 8, 8, 3, 3, 1, 1, 2));
  v.push_back(conv("pq81_9x9", 3, 2, 9, 9, 3, 3, 1, 1, 2));
  // Transposed: the adjoint conv's map is the input's. A 1x1 input with stride 1 (DCGAN G1-like:
  // the whole-image GEMMs), with stride 2 and output_padding (a 1x1 output, not the whole image).
  v.push_back(convt("t_whole_1x1", 5, 7, 1, 1, 3, 4, 1, 0));
  v.push_back(convt("t_1x1_output_padding", 4, 3, 1, 1, 2, 3, 2, 0, 1));
  v.push_back(convt("t_1x1_output_padding_chunks1", 4, 3, 1, 1, 2, 3, 2, 0, 1, 1));
  // 2x2 and 4x4 inputs (DCGAN-64 G2-like), chunked.
  v.push_back(convt("t_pq4", 7, 5, 2, 2, 3, 4, 2, 1));
  v.push_back(convt("t_pq4_chunks3", 7, 5, 2, 2, 3, 4, 2, 1, 0, 3));
  v.push_back(convt("t_pq16_g2", 9, 6, 4, 4, 4, 4, 2, 1));
  v.push_back(convt("t_pq16_g2_chunks2", 9, 6, 4, 4, 4, 4, 2, 1, 0, 2));
  v.push_back(convt("t_pq16_g2_chunks1", 3, 6, 4, 4, 4, 4, 2, 1, 0, 1));
  v.push_back(convt("t_pq16_output_padding", 5, 3, 4, 4, 2, 3, 2, 1, 1, 2));
  v.push_back(convt("t_pq16_pointwise", 6, 5, 4, 4, 3, 1, 1, 0, 0, 4));
  return v;
}

// Host pointers for the CPU, device pointers for the GPU (the native backend).
void forward(const FoldCase& c, bool gpu, const float* x, const float* w, const float* b,
             float* y) {
  if (c.transpose) {
    const ConvTranspose2dShape s = convt_shape(c);
    gpu ? kc::conv_transpose2d_forward_native(s, x, w, b, y, testing::stream())
        : cpu::conv_transpose2d_forward(s, x, w, b, y);
  } else {
    const Conv2dShape s = conv_shape(c);
    gpu ? kc::conv2d_forward_native(s, x, w, b, y, testing::stream())
        : cpu::conv2d_forward(s, x, w, b, y);
  }
}

void backward_data(const FoldCase& c, bool gpu, const float* gy, const float* w, float* gx) {
  if (c.transpose) {
    const ConvTranspose2dShape s = convt_shape(c);
    gpu ? kc::conv_transpose2d_backward_data_native(s, gy, w, gx, testing::stream())
        : cpu::conv_transpose2d_backward_data(s, gy, w, gx);
  } else {
    const Conv2dShape s = conv_shape(c);
    gpu ? kc::conv2d_backward_data_native(s, gy, w, gx, testing::stream())
        : cpu::conv2d_backward_data(s, gy, w, gx);
  }
}

void backward_weight(const FoldCase& c, bool gpu, const float* x, const float* gy, float* gw) {
  if (c.transpose) {
    const ConvTranspose2dShape s = convt_shape(c);
    gpu ? kc::conv_transpose2d_backward_weight_native(s, x, gy, gw, testing::stream())
        : cpu::conv_transpose2d_backward_weight(s, x, gy, gw);
  } else {
    const Conv2dShape s = conv_shape(c);
    gpu ? kc::conv2d_backward_weight_native(s, x, gy, gw, testing::stream())
        : cpu::conv2d_backward_weight(s, x, gy, gw);
  }
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

class FoldConvCuda : public ::testing::TestWithParam<FoldCase> {
 protected:
  void SetUp() override { kc::set_allow_tf32(false); }  // FP32 parity
};

// Runs `run` (which writes `out`) twice on a NaN-poisoned `out`; checks the repeat bit for bit and
// returns the first result.
std::vector<float> twice(DeviceBuffer<float>& out, const std::function<void()>& run,
                         const std::string& what) {
  std::vector<float> first;
  for (int i = 0; i < 2; ++i) {
    out.poison();
    run();
    auto got = out.download();
    if (i == 0) {
      first = std::move(got);
    } else {
      EXPECT_TRUE(testing::bit_equal(got, first)) << what << ": the second run differs";
    }
  }
  return first;
}

TEST_P(FoldConvCuda, MatchesCpuAndIsDeterministic) {
  LL_REQUIRE_GPU();
  const FoldCase& c = GetParam();
  const ColumnBudget budget(c.chunk > 0 ? budget_for(c, c.chunk) : 0);
  const uint64_t seed = std::hash<std::string>{}(c.name);
  const auto x = testing::random_vector(static_cast<size_t>(x_size(c)), seed + 1);
  const auto w = testing::random_vector(static_cast<size_t>(w_size(c)), seed + 2);
  const auto b = testing::random_vector(static_cast<size_t>(c.K), seed + 3);
  const auto gy = testing::random_vector(static_cast<size_t>(y_size(c)), seed + 4);
  const auto ax = abs_of(x), aw = abs_of(w), ab = abs_of(b), agy = abs_of(gy);
  auto sized = [](int64_t n) { return std::vector<float>(static_cast<size_t>(n)); };
  auto y_ref = sized(y_size(c)), y_mag = sized(y_size(c)), y0_ref = sized(y_size(c)),
       y0_mag = sized(y_size(c)), gx_ref = sized(x_size(c)), gx_mag = sized(x_size(c)),
       gw_ref = sized(w_size(c)), gw_mag = sized(w_size(c));
  forward(c, false, x.data(), w.data(), b.data(), y_ref.data());
  forward(c, false, ax.data(), aw.data(), ab.data(), y_mag.data());
  forward(c, false, x.data(), w.data(), nullptr, y0_ref.data());
  forward(c, false, ax.data(), aw.data(), nullptr, y0_mag.data());
  backward_data(c, false, gy.data(), w.data(), gx_ref.data());
  backward_data(c, false, agy.data(), aw.data(), gx_mag.data());
  backward_weight(c, false, x.data(), gy.data(), gw_ref.data());
  backward_weight(c, false, ax.data(), agy.data(), gw_mag.data());

  DeviceBuffer<float> dx(x), dw(w), db(b), dgy(gy);
  DeviceBuffer<float> dy(y_ref.size()), dgx(gx_ref.size()), dgw(gw_ref.size());
  constexpr double kEps = 1e-5;

  const auto y = twice(dy, [&] { forward(c, true, dx.get(), dw.get(), db.get(), dy.get()); },
                       "forward with bias");
  EXPECT_TRUE(close_to(y, y_ref, y_mag, kEps, kEps, "forward with bias"));
  const auto y0 = twice(dy, [&] { forward(c, true, dx.get(), dw.get(), nullptr, dy.get()); },
                        "forward without bias");
  EXPECT_TRUE(close_to(y0, y0_ref, y0_mag, kEps, kEps, "forward without bias"));
  // The bias where the forward adds it (the folded scatter, or bias_add) is the same float add.
  kc::bias_add(dy.get(), db.get(), c.N, c.K, out_h(c) * out_w(c), testing::stream());
  EXPECT_TRUE(testing::bit_equal(dy.download(), y))
      << "forward with bias differs from forward without bias + bias_add";

  const auto gx = twice(dgx, [&] { backward_data(c, true, dgy.get(), dw.get(), dgx.get()); },
                        "backward data");
  EXPECT_TRUE(close_to(gx, gx_ref, gx_mag, kEps, kEps, "backward data"));
  const auto gw = twice(dgw, [&] { backward_weight(c, true, dx.get(), dgy.get(), dgw.get()); },
                        "backward weight");
  EXPECT_TRUE(close_to(gw, gw_ref, gw_mag, kEps, kEps, "backward weight"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, FoldConvCuda, ::testing::ValuesIn(fold_cases()),
                         [](const ::testing::TestParamInfo<FoldCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace ll
