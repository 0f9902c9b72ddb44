// test_pointwise_cuda.cpp: the CUDA pointwise kernels against their CPU references: activations,
// element-wise arithmetic, copy_rows, transpose2d, the deterministic sums, broadcast_dim, pad2d
// and embedding (kernels/cuda/{activation,elementwise,reduce,pad,embedding}.cu).
//
// Every case runs the CPU reference and the CUDA twin on the same seeded inputs and compares:
// - the maps (one table, MapCases) at n = 1, 3, 7, 1023, 4097 and 1 << 20, each with 16-byte
//   aligned pointers (the float4 path with its scalar tail) and with every pointer offset by one
//   float (the scalar path); at n = 4097 also with one buffer at a time offset by one float and the
//   others aligned (the scalar path must be chosen when any pointer is unaligned). The output buffer
//   is poisoned (NaN bytes) first and framed by guard floats on each side (4 before an aligned
//   output, 1 before an unaligned one, 1 after): every output must be written, and nothing outside
//   [0, n) may be.
// - the shaped ops (copy_rows, transpose2d, sum_dim, broadcast_dim, pad2d, embedding) on tables of
//   shapes with odd sizes.
//
// Tolerances (|gpu - cpu| <= atol + rtol |cpu|), per op:
// - bit for bit ({0, 0}): ReLU, LeakyReLU forward and backward, sigmoid backward, fill, copy, add,
//   sub, mul, scale, add_scalar, axpy (written with __fmul_rn/__fadd_rn: never fused), copy_rows,
//   transpose2d, broadcast_dim, pad2d, embedding forward and backward (the same float additions in
//   the same order), sum_dim with inner > 1 (the CPU's float64 order exactly).
// - tanh forward: rtol 6e-7 (CUDA's tanhf is within 2 ulp, libm's within ~1-2 ulp: 4 ulp apart at
//   most, 4 * 2^-23 = 4.8e-7 relative).
// - sigmoid forward: rtol 1e-6 (1 / (1 + expf(-x)) or e / (1 + e): expf within 2 ulp on the GPU,
//   plus one add and one division rounded on each side: 6 ulp at most).
// - tanh backward: atol 1.5e-7, rtol 3e-7. gy * (1 - y * y) with |gy|, |y| < 1: nvcc contracts
//   1 - y * y into a fused multiply-add by default (-fmad=true; the CPU has -ffp-contract=off), which
//   skips the rounding of y * y: a difference of at most |gy| * 2^-24 absolute (6e-8), plus the
//   final product's rounding. With -fmad=false for this file the result is bit for bit.
// - exp: rtol 5e-7 (CUDA's expf within 2 ulp, glibc's within 1 ulp).
// - log: atol 1e-7, rtol 3e-7 (CUDA's logf within 1 ulp, glibc's within 1 ulp; inputs in
//   [0.05, 20], so |log| near 0 around 1 where the ulp is tiny: the absolute term covers it).
// - sum_all, sum_dim with inner == 1: atol 1e-9 sum|x|, rtol 1e-6. Both sides add the same floats
//   in float64 (GPU: a fixed tree; CPU: index order), so they differ by float64 rounding (~1e-16
//   sum|x|) before the final rounding to float: at most 1 float ulp (1.2e-7 relative). Every sum is
//   also run on inputs whose partial sums are all exact (multiples of 1/16): there bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/pad.h"
#include "kernels/reduce.h"
#include "tests/common/compare.h"
#include "tests/cuda/cuda_harness.h"

namespace ll::kernels {
namespace {

using test::all_close;
using test::Tolerance;
using testing::DeviceBuffer;
namespace gpu = ll::kernels::cuda;

constexpr Tolerance kExact{0.0, 0.0};

// The byte pattern DeviceBuffer::poison() writes (0xFF bytes: a NaN).
float poison_value() {
  const uint32_t bits = 0xFFFFFFFFu;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
bool is_poison(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits == 0xFFFFFFFFu;
}

// v placed at [off, off + v.size()) of a buffer with `off` guard floats before and one after, all
// guards poison.
std::vector<float> framed(const std::vector<float>& v, int off) {
  std::vector<float> out(v.size() + static_cast<size_t>(off) + 1, poison_value());
  std::copy(v.begin(), v.end(), out.begin() + off);
  return out;
}

// Checks that the guards around [off, off + n) still hold poison, then returns the window.
std::vector<float> unframe(const std::vector<float>& buf, int off, size_t n, const std::string& what) {
  for (size_t i = 0; i < buf.size(); ++i) {
    if (i >= static_cast<size_t>(off) && i < off + n) continue;
    EXPECT_TRUE(is_poison(buf[i])) << what << ": the kernel wrote outside its output, at guard " << i;
  }
  return std::vector<float>(buf.begin() + off, buf.begin() + off + static_cast<std::ptrdiff_t>(n));
}

// ---- the maps --------------------------------------------------------------------------------
// fn(in, out, n): in[k] are the inputs; for an in-place case in[inout] == out.
using MapFn = std::function<void(const float* const* in, float* out, int64_t n)>;

struct MapCase {
  std::string name;
  int arity;        // number of inputs (0 for fill)
  float lo, hi;     // inputs uniform in [lo, hi)
  Tolerance tol;
  MapFn cpu, gpu;
  int inout = -1;   // the input that is also the output (in-place), or -1
};

constexpr float kSlope = 0.2f;

const std::vector<MapCase>& map_cases() {
  static const std::vector<MapCase> cases = [] {
    using A = Activation;
    auto s = [] { return testing::stream(); };
    std::vector<MapCase> c;
    // Activations forward: y = act(x).
    auto act_fwd = [&](std::string name, A a, float lo, float hi, Tolerance tol) {
      c.push_back({name, 1, lo, hi, tol,
                   [a](const float* const* in, float* out, int64_t n) { cpu::activation_forward(a, kSlope, in[0], out, n); },
                   [a, s](const float* const* in, float* out, int64_t n) { gpu::activation_forward(a, kSlope, in[0], out, n, s()); }});
    };
    act_fwd("relu_fwd", A::ReLU, -2.0f, 2.0f, kExact);
    act_fwd("leaky_relu_fwd", A::LeakyReLU, -2.0f, 2.0f, kExact);
    act_fwd("tanh_fwd", A::Tanh, -4.0f, 4.0f, {0.0, 6e-7});
    act_fwd("sigmoid_fwd", A::Sigmoid, -8.0f, 8.0f, {0.0, 1e-6});
    // Backward: inputs (x, gy) for ReLU/LeakyReLU, (y, gy) for tanh (y in (-1, 1)) / sigmoid (y in (0, 1)).
    auto act_bwd = [&](std::string name, A a, bool from_y, float lo, float hi, Tolerance tol) {
      c.push_back({name, 2, lo, hi, tol,
                   [a, from_y](const float* const* in, float* out, int64_t n) {
                     cpu::activation_backward(a, kSlope, from_y ? nullptr : in[0], from_y ? in[0] : nullptr, in[1], out, n);
                   },
                   [a, from_y, s](const float* const* in, float* out, int64_t n) {
                     gpu::activation_backward(a, kSlope, from_y ? nullptr : in[0], from_y ? in[0] : nullptr, in[1], out, n, s());
                   }});
    };
    act_bwd("relu_bwd", A::ReLU, false, -2.0f, 2.0f, kExact);
    act_bwd("leaky_relu_bwd", A::LeakyReLU, false, -2.0f, 2.0f, kExact);
    act_bwd("tanh_bwd", A::Tanh, true, -0.999f, 0.999f, {1.5e-7, 3e-7});
    act_bwd("sigmoid_bwd", A::Sigmoid, true, 0.001f, 0.999f, kExact);
    // Element-wise.
    c.push_back({"fill", 0, 0.0f, 1.0f, kExact,
                 [](const float* const*, float* out, int64_t n) { cpu::fill(out, 0.375f, n); },
                 [s](const float* const*, float* out, int64_t n) { gpu::fill(out, 0.375f, n, s()); }});
    c.push_back({"copy", 1, -1.0f, 1.0f, kExact,
                 [](const float* const* in, float* out, int64_t n) { cpu::copy(in[0], out, n); },
                 [s](const float* const* in, float* out, int64_t n) { gpu::copy(in[0], out, n, s()); }});
    auto binary = [&](std::string name, void (*cf)(const float*, const float*, float*, int64_t),
                      void (*gf)(const float*, const float*, float*, int64_t, cuda::Stream), int inout) {
      c.push_back({name, 2, -1.0f, 1.0f, kExact,
                   [cf](const float* const* in, float* out, int64_t n) { cf(in[0], in[1], out, n); },
                   [gf, s](const float* const* in, float* out, int64_t n) { gf(in[0], in[1], out, n, s()); }, inout});
    };
    binary("add", cpu::add, gpu::add, -1);
    binary("add_inplace", cpu::add, gpu::add, 0);  // add(g, dg, g): gradient accumulation
    binary("sub", cpu::sub, gpu::sub, -1);
    binary("mul", cpu::mul, gpu::mul, -1);
    binary("mul_inplace", cpu::mul, gpu::mul, 1);
    c.push_back({"scale", 1, -1.0f, 1.0f, kExact,
                 [](const float* const* in, float* out, int64_t n) { cpu::scale(in[0], -1.7f, out, n); },
                 [s](const float* const* in, float* out, int64_t n) { gpu::scale(in[0], -1.7f, out, n, s()); }});
    c.push_back({"add_scalar", 1, -1.0f, 1.0f, kExact,
                 [](const float* const* in, float* out, int64_t n) { cpu::add_scalar(in[0], 0.3f, out, n); },
                 [s](const float* const* in, float* out, int64_t n) { gpu::add_scalar(in[0], 0.3f, out, n, s()); }});
    // axpy: inputs (x, y); y is updated in place.
    c.push_back({"axpy", 2, -1.0f, 1.0f, kExact,
                 [](const float* const* in, float* out, int64_t n) { cpu::axpy(0.7f, in[0], out, n); },
                 [s](const float* const* in, float* out, int64_t n) { gpu::axpy(0.7f, in[0], out, n, s()); }, 1});
    c.push_back({"exp", 1, -10.0f, 10.0f, {0.0, 5e-7},
                 [](const float* const* in, float* out, int64_t n) { cpu::exp(in[0], out, n); },
                 [s](const float* const* in, float* out, int64_t n) { gpu::exp(in[0], out, n, s()); }});
    c.push_back({"log", 1, 0.05f, 20.0f, {1e-7, 3e-7},
                 [](const float* const* in, float* out, int64_t n) { cpu::log(in[0], out, n); },
                 [s](const float* const* in, float* out, int64_t n) { gpu::log(in[0], out, n, s()); }});
    return c;
  }();
  return cases;
}

// (case index, n, unaligned buffer): -1 none, -2 every buffer, k >= 0 buffer k alone (the inputs
// 0 .. arity - 1, the output arity). An aligned buffer starts 4 floats into its allocation (16 bytes:
// still aligned, with guards before it), an unaligned one 1 float.
using MapParam = std::tuple<int, int64_t, int>;
constexpr int kAllAligned = -1, kAllUnaligned = -2;

class PointwiseMap : public ::testing::TestWithParam<MapParam> {};

TEST_P(PointwiseMap, MatchesCpu) {
  LL_REQUIRE_GPU();
  const auto [ci, n, unaligned] = GetParam();
  const MapCase& c = map_cases()[static_cast<size_t>(ci)];
  const std::string what = c.name + " n=" + std::to_string(n) + " unaligned=" + std::to_string(unaligned);
  auto offset_of = [unaligned = unaligned](int k) { return unaligned == kAllUnaligned || unaligned == k ? 1 : 4; };

  std::vector<std::vector<float>> in;
  for (int k = 0; k < c.arity; ++k) {
    in.push_back(test::random_vector(n, static_cast<uint32_t>(100 + 7 * k + ci), c.lo, c.hi));
  }
  // ReLU's kink: exact zeros of both signs among the inputs.
  if (c.arity > 0 && c.lo < 0.0f && c.hi > 0.0f) {
    for (int64_t i = 0; i < n; i += 97) in[0][static_cast<size_t>(i)] = (i / 97) % 2 ? 0.0f : -0.0f;
  }

  // CPU reference.
  std::vector<float> ref = c.inout >= 0 ? in[static_cast<size_t>(c.inout)] : std::vector<float>(n);
  {
    std::vector<const float*> p;
    for (auto& v : in) p.push_back(v.data());
    if (c.inout >= 0) p[static_cast<size_t>(c.inout)] = ref.data();
    c.cpu(p.data(), ref.data(), n);
  }

  // GPU: buffer k offset by offset_of(k) floats, guards around the output.
  std::vector<std::unique_ptr<DeviceBuffer<float>>> din;
  std::vector<const float*> p;
  for (int k = 0; k < c.arity; ++k) {
    const int off = offset_of(k);
    din.push_back(std::make_unique<DeviceBuffer<float>>(framed(in[static_cast<size_t>(k)], off)));
    p.push_back(din.back()->get() + off);
  }
  const int off = offset_of(c.arity);
  DeviceBuffer<float> dout(static_cast<size_t>(n) + static_cast<size_t>(off) + 1);
  if (c.inout >= 0) {
    dout.upload(framed(in[static_cast<size_t>(c.inout)], off));
    p[static_cast<size_t>(c.inout)] = dout.get() + off;
  } else {
    dout.poison();
  }
  c.gpu(p.data(), dout.get() + off, n);
  const std::vector<float> got = unframe(dout.download(), off, static_cast<size_t>(n), what);
  EXPECT_TRUE(all_close(got.data(), ref.data(), n, c.tol, what));
}

std::vector<MapParam> map_params() {
  std::vector<MapParam> params;
  for (int ci = 0; ci < static_cast<int>(map_cases().size()); ++ci) {
    const MapCase& c = map_cases()[static_cast<size_t>(ci)];
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{7}, int64_t{1023}, int64_t{4097}, int64_t{1} << 20}) {
      params.emplace_back(ci, n, kAllAligned);
      params.emplace_back(ci, n, kAllUnaligned);
      if (n != 4097 || c.arity == 0) continue;  // fill: its one buffer is covered above
      for (int k = 0; k <= c.arity; ++k) {
        if (k != c.inout) params.emplace_back(ci, n, k);  // the in-place input is the output buffer
      }
    }
  }
  return params;
}

std::string map_name(const ::testing::TestParamInfo<MapParam>& info) {
  const auto [ci, n, unaligned] = info.param;
  const MapCase& c = map_cases()[static_cast<size_t>(ci)];
  std::string suffix;
  if (unaligned == kAllUnaligned) {
    suffix = "_unaligned";
  } else if (unaligned == c.arity) {
    suffix = "_unaligned_out";
  } else if (unaligned >= 0) {
    suffix = "_unaligned_in" + std::to_string(unaligned);
  }
  return c.name + "_n" + std::to_string(n) + suffix;
}

INSTANTIATE_TEST_SUITE_P(Cuda, PointwiseMap, ::testing::ValuesIn(map_params()), map_name);

// ---- copy_rows --------------------------------------------------------------------------------
struct CopyRowsCase {
  int64_t src_stride, src_offset, dst_stride, dst_offset, outer, len;
};

class CopyRows : public ::testing::TestWithParam<CopyRowsCase> {};

TEST_P(CopyRows, MatchesCpu) {
  LL_REQUIRE_GPU();
  const CopyRowsCase c = GetParam();
  const int64_t src_n = c.outer * c.src_stride, dst_n = c.outer * c.dst_stride;
  const std::vector<float> src = test::random_vector(src_n, 11);
  std::vector<float> ref = test::random_vector(dst_n, 12);  // rows outside the copy keep these
  DeviceBuffer<float> dsrc(src), ddst(ref);
  cpu::copy_rows(src.data(), c.src_stride, c.src_offset, ref.data(), c.dst_stride, c.dst_offset, c.outer, c.len);
  gpu::copy_rows(dsrc.get(), c.src_stride, c.src_offset, ddst.get(), c.dst_stride, c.dst_offset, c.outer, c.len,
                 testing::stream());
  EXPECT_TRUE(all_close(ddst.download().data(), ref.data(), dst_n, kExact, "copy_rows"));
}

// (src_stride, src_offset, dst_stride, dst_offset, outer, len): cat / narrow along dim 1.
INSTANTIATE_TEST_SUITE_P(Cuda, CopyRows,
                         ::testing::Values(CopyRowsCase{100, 0, 110, 10, 128, 100},   // cat, float4 path
                                           CopyRowsCase{100, 0, 120, 20, 128, 100},
                                           CopyRowsCase{20, 0, 30, 20, 128, 10},      // float4 path off: offset 20 ok, len 10 not
                                           CopyRowsCase{7, 3, 5, 1, 33, 4},           // odd strides
                                           CopyRowsCase{784, 0, 794, 784, 128, 10},   // cgan: image + label channel
                                           CopyRowsCase{1, 0, 1, 0, 100003, 1},       // one float per row
                                           CopyRowsCase{1 << 20, 0, 1 << 20, 0, 2, 1 << 20}));

// ---- transpose2d --------------------------------------------------------------------------------
class Transpose : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(Transpose, MatchesCpu) {
  LL_REQUIRE_GPU();
  const auto [rows, cols] = GetParam();
  const std::vector<float> x = test::random_vector(rows * cols, 21);
  std::vector<float> ref(static_cast<size_t>(rows * cols));
  cpu::transpose2d(x.data(), ref.data(), rows, cols);
  DeviceBuffer<float> dx(x), dy(ref.size());
  dy.poison();
  gpu::transpose2d(dx.get(), dy.get(), rows, cols, testing::stream());
  EXPECT_TRUE(all_close(dy.download().data(), ref.data(), rows * cols, kExact,
                        "transpose2d " + std::to_string(rows) + "x" + std::to_string(cols)));
}

INSTANTIATE_TEST_SUITE_P(Cuda, Transpose,
                         ::testing::Values(std::pair<int64_t, int64_t>{1, 1}, std::pair<int64_t, int64_t>{1, 7},
                                           std::pair<int64_t, int64_t>{7, 1}, std::pair<int64_t, int64_t>{32, 32},
                                           std::pair<int64_t, int64_t>{33, 65}, std::pair<int64_t, int64_t>{400, 784},
                                           std::pair<int64_t, int64_t>{1023, 1025},
                                           std::pair<int64_t, int64_t>{3, 300007}));

// ---- sums --------------------------------------------------------------------------------------
Tolerance sum_tolerance(const float* x, int64_t n) {
  double abs_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(static_cast<double>(x[i]));
  return {1e-9 * abs_sum + 1e-30, 1e-6};
}

// Small multiples of 1/16: every partial sum is exact in float64 whatever the order, so the GPU's
// tree and the CPU's sequence must give the same float bit for bit. A missing or doubled element
// (which a relative tolerance on a sum of millions could hide) shows here.
std::vector<float> dyadic_vector(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 37 - 15) / 16.0f;
  return v;
}

class SumAll : public ::testing::TestWithParam<std::tuple<int64_t, int>> {};

TEST_P(SumAll, MatchesCpuAndSumDim) {
  LL_REQUIRE_GPU();
  const auto [n, off] = GetParam();
  const std::vector<float> x = test::random_vector(n, 31, -1.0f, 2.0f);
  float ref = 0.0f;
  cpu::sum_all(x.data(), n, &ref);
  DeviceBuffer<float> dx(framed(x, off)), dout(2);
  dout.poison();
  gpu::sum_all(dx.get() + off, n, dout.get(), testing::stream());
  gpu::sum_dim(dx.get() + off, dout.get() + 1, 1, n, 1, testing::stream());
  const std::vector<float> got = dout.download();
  const std::string what = "sum_all n=" + std::to_string(n) + " offset=" + std::to_string(off);
  EXPECT_TRUE(all_close(&got[0], &ref, 1, sum_tolerance(x.data(), n), what));
  // As on the CPU, sum_dim(x, 1, n, 1) is sum_all(x, n) bit for bit.
  EXPECT_EQ(std::memcmp(&got[0], &got[1], sizeof(float)), 0) << what << ": " << got[0] << " vs " << got[1];
  // Deterministic: a second run gives the same bits.
  gpu::sum_all(dx.get() + off, n, dout.get() + 1, testing::stream());
  const std::vector<float> again = dout.download();
  EXPECT_EQ(std::memcmp(&got[0], &again[1], sizeof(float)), 0) << what << ": run twice";
  // Exactly summable inputs: bit for bit.
  const std::vector<float> xd = dyadic_vector(n);
  float ref_d = 0.0f;
  cpu::sum_all(xd.data(), n, &ref_d);
  DeviceBuffer<float> dxd(framed(xd, off));
  gpu::sum_all(dxd.get() + off, n, dout.get(), testing::stream());
  const float got_d = dout.download()[0];
  EXPECT_EQ(got_d, ref_d) << what << ": exactly summable inputs";
}

INSTANTIATE_TEST_SUITE_P(Cuda, SumAll,
                         ::testing::Combine(::testing::Values<int64_t>(0, 1, 3, 7, 1023, 1024, 1025, 4096, 4097,
                                                                       3 * 4096 + 5, int64_t{1} << 20,
                                                                       int64_t{16} << 20),
                                            ::testing::Values(0, 1)));

struct DimCase {
  int64_t outer, mid, inner;
  int off;  // pointer offset in floats
};

class SumDim : public ::testing::TestWithParam<DimCase> {};

TEST_P(SumDim, MatchesCpu) {
  LL_REQUIRE_GPU();
  const DimCase c = GetParam();
  const int64_t n = c.outer * c.mid * c.inner, m = c.outer * c.inner;
  const std::vector<float> x = test::random_vector(n, 41, -1.0f, 2.0f);
  std::vector<float> ref(static_cast<size_t>(m));
  cpu::sum_dim(x.data(), ref.data(), c.outer, c.mid, c.inner);
  DeviceBuffer<float> dx(framed(x, c.off)), dy(static_cast<size_t>(m) + static_cast<size_t>(c.off) + 1);
  dy.poison();
  gpu::sum_dim(dx.get() + c.off, dy.get() + c.off, c.outer, c.mid, c.inner, testing::stream());
  const std::string what = "sum_dim (" + std::to_string(c.outer) + ", " + std::to_string(c.mid) + ", " +
                           std::to_string(c.inner) + ") offset=" + std::to_string(c.off);
  const std::vector<float> got = unframe(dy.download(), c.off, static_cast<size_t>(m), what);
  // inner > 1: the CPU's float64 order exactly. inner == 1: row sums by a fixed tree.
  Tolerance tol = kExact;
  if (c.inner == 1) {
    for (int64_t o = 0; o < c.outer; ++o) {
      const Tolerance t = sum_tolerance(x.data() + o * c.mid, c.mid);
      tol.atol = std::max(tol.atol, t.atol);
      tol.rtol = t.rtol;
    }
  }
  EXPECT_TRUE(all_close(got.data(), ref.data(), m, tol, what));
  // Exactly summable inputs: bit for bit whatever the order.
  const std::vector<float> xd = dyadic_vector(n);
  std::vector<float> ref_d(static_cast<size_t>(m));
  cpu::sum_dim(xd.data(), ref_d.data(), c.outer, c.mid, c.inner);
  DeviceBuffer<float> dxd(framed(xd, c.off));
  gpu::sum_dim(dxd.get() + c.off, dy.get() + c.off, c.outer, c.mid, c.inner, testing::stream());
  const std::vector<float> got_d = unframe(dy.download(), c.off, static_cast<size_t>(m), what);
  EXPECT_TRUE(all_close(got_d.data(), ref_d.data(), m, kExact, what + " (exactly summable inputs)"));
}

INSTANTIATE_TEST_SUITE_P(Cuda, SumDim,
                         ::testing::Values(DimCase{1, 128, 400, 0},    // Linear bias gradient
                                           DimCase{128, 784, 1, 0},    // per-row sums (warp rows)
                                           DimCase{64, 64, 256, 0},    // conv feature map
                                           DimCase{4, 1030, 1, 0},     // one chunk per row, block path
                                           DimCase{3, 9000, 1, 0},     // 3 chunks per row, partials
                                           DimCase{3, 9000, 1, 1},     // the same, scalar loads
                                           DimCase{2, 9000, 3, 0},     // strided, 3 chunks
                                           DimCase{5, 1, 7, 0}, DimCase{1, 1, 1, 0}, DimCase{7, 3, 1, 1},
                                           DimCase{7, 0, 5, 0},        // empty sums are 0
                                           DimCase{1, int64_t{1} << 20, 1, 0},
                                           DimCase{33, 17, 129, 1}));

class BroadcastDim : public ::testing::TestWithParam<DimCase> {};

TEST_P(BroadcastDim, MatchesCpu) {
  LL_REQUIRE_GPU();
  const DimCase c = GetParam();
  const int64_t n = c.outer * c.mid * c.inner, m = c.outer * c.inner;
  const std::vector<float> gy = test::random_vector(m, 51);
  std::vector<float> ref(static_cast<size_t>(n));
  cpu::broadcast_dim(gy.data(), ref.data(), c.outer, c.mid, c.inner);
  DeviceBuffer<float> dgy(framed(gy, c.off)), dgx(static_cast<size_t>(n) + static_cast<size_t>(c.off) + 1);
  dgx.poison();
  gpu::broadcast_dim(dgy.get() + c.off, dgx.get() + c.off, c.outer, c.mid, c.inner, testing::stream());
  const std::string what = "broadcast_dim (" + std::to_string(c.outer) + ", " + std::to_string(c.mid) + ", " +
                           std::to_string(c.inner) + ") offset=" + std::to_string(c.off);
  const std::vector<float> got = unframe(dgx.download(), c.off, static_cast<size_t>(n), what);
  EXPECT_TRUE(all_close(got.data(), ref.data(), n, kExact, what));
}

INSTANTIATE_TEST_SUITE_P(Cuda, BroadcastDim,
                         ::testing::Values(DimCase{1, 128, 400, 0}, DimCase{1, 128, 400, 1},
                                           DimCase{128, 784, 1, 0}, DimCase{64, 64, 256, 0},
                                           DimCase{5, 1, 7, 0}, DimCase{1, 1, 1, 0}, DimCase{7, 3, 1, 1},
                                           DimCase{33, 17, 129, 1}));

// ---- pad2d ----------------------------------------------------------------------------------------
class Pad : public ::testing::TestWithParam<Pad2dShape> {};

TEST_P(Pad, ForwardAndBackwardMatchCpu) {
  LL_REQUIRE_GPU();
  const Pad2dShape s = GetParam();
  const int64_t nx = s.N * s.C * s.H * s.W, ny = s.N * s.C * s.P() * s.Q();
  const std::vector<float> x = test::random_vector(nx, 61), gy = test::random_vector(ny, 62);
  std::vector<float> y(static_cast<size_t>(ny)), gx(static_cast<size_t>(nx));
  cpu::pad2d_forward(s, x.data(), y.data());
  cpu::pad2d_backward(s, gy.data(), gx.data());
  DeviceBuffer<float> dx(x), dgy(gy), dy(y.size()), dgx(gx.size());
  dy.poison();
  dgx.poison();
  gpu::pad2d_forward(s, dx.get(), dy.get(), testing::stream());
  gpu::pad2d_backward(s, dgy.get(), dgx.get(), testing::stream());
  const std::string what = "pad2d N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " " + std::to_string(s.H) +
                           "x" + std::to_string(s.W) + " pad " + std::to_string(s.top) + "," + std::to_string(s.bottom) +
                           "," + std::to_string(s.left) + "," + std::to_string(s.right);
  EXPECT_TRUE(all_close(dy.download().data(), y.data(), ny, kExact, what + " forward"));
  EXPECT_TRUE(all_close(dgx.download().data(), gx.data(), nx, kExact, what + " backward"));
}

Pad2dShape pad_shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t t, int64_t b, int64_t l, int64_t r) {
  Pad2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.top = t, s.bottom = b, s.left = l, s.right = r;
  return s;
}

INSTANTIATE_TEST_SUITE_P(Cuda, Pad,
                         ::testing::Values(pad_shape(2, 128, 128, 128, 3, 4, 3, 4),  // GAN-128 G, before the 8x8 conv
                                           pad_shape(4, 128, 16, 16, 0, 1, 0, 1),    // GAN-128 D, before a stride-2 conv
                                           pad_shape(1, 1, 1, 1, 0, 0, 0, 0), pad_shape(1, 1, 1, 1, 2, 0, 0, 3),
                                           pad_shape(3, 5, 7, 9, 1, 2, 3, 0), pad_shape(2, 3, 1, 13, 0, 5, 1, 1)));

// ---- embedding --------------------------------------------------------------------------------------
struct EmbCase {
  int64_t N, num, dim;
  int off;  // offset of table / y / gy / gtable pointers, in floats
};

class Embedding : public ::testing::TestWithParam<EmbCase> {};

TEST_P(Embedding, ForwardAndBackwardMatchCpu) {
  LL_REQUIRE_GPU();
  const EmbCase c = GetParam();
  const std::vector<float> table = test::random_vector(c.num * c.dim, 71);
  const std::vector<float> gy = test::random_vector(c.N * c.dim, 72);
  std::vector<int32_t> idx(static_cast<size_t>(c.N));
  std::mt19937 gen(73);
  for (auto& i : idx) i = static_cast<int32_t>(gen() % static_cast<uint32_t>(c.num));  // repeats when N > num
  std::vector<float> y(static_cast<size_t>(c.N * c.dim)), gt(static_cast<size_t>(c.num * c.dim));
  cpu::embedding_forward(table.data(), idx.data(), y.data(), c.N, c.num, c.dim);
  cpu::embedding_backward(gy.data(), idx.data(), gt.data(), c.N, c.num, c.dim);

  DeviceBuffer<float> dtable(framed(table, c.off)), dgy(framed(gy, c.off));
  DeviceBuffer<int32_t> didx(idx);
  DeviceBuffer<float> dy(y.size() + static_cast<size_t>(c.off) + 1), dgt(gt.size() + static_cast<size_t>(c.off) + 1);
  dy.poison();
  dgt.poison();
  gpu::embedding_forward(dtable.get() + c.off, didx.get(), dy.get() + c.off, c.N, c.num, c.dim, testing::stream());
  gpu::embedding_backward(dgy.get() + c.off, didx.get(), dgt.get() + c.off, c.N, c.num, c.dim, testing::stream());
  const std::string what = "embedding N=" + std::to_string(c.N) + " num=" + std::to_string(c.num) +
                           " dim=" + std::to_string(c.dim) + " offset=" + std::to_string(c.off);
  const auto got_y = unframe(dy.download(), c.off, y.size(), what + " forward");
  const auto got_gt = unframe(dgt.download(), c.off, gt.size(), what + " backward");
  EXPECT_TRUE(all_close(got_y.data(), y.data(), c.N * c.dim, kExact, what + " forward"));
  // The same float additions in the same order (increasing n) per table element: bit for bit.
  EXPECT_TRUE(all_close(got_gt.data(), gt.data(), c.num * c.dim, kExact, what + " backward"));
}

INSTANTIATE_TEST_SUITE_P(Cuda, Embedding,
                         ::testing::Values(EmbCase{128, 10, 10, 0},     // cgan28 G: label_emb (10, 10)
                                           EmbCase{128, 10, 784, 0},    // cgan28 D: label_emb (10, 28 * 28)
                                           EmbCase{128, 10, 784, 1},
                                           EmbCase{7, 3, 5, 1}, EmbCase{1, 1, 1, 0},
                                           EmbCase{1000, 17, 130, 0},   // two column slices, ragged
                                           EmbCase{4096, 1000, 256, 0}, // many repeats per row
                                           EmbCase{33, 200, 3, 0}));    // rows no index points to: zeros

// Out-of-range indices: the CPU throws; the GPU must not touch memory out of bounds: NaN rows
// forward, ignored backward.
TEST(EmbeddingCuda, OutOfRangeIndicesStayInBounds) {
  LL_REQUIRE_GPU();
  const int64_t N = 4, num = 3, dim = 6;
  const std::vector<float> table = test::random_vector(num * dim, 81), gy = test::random_vector(N * dim, 82);
  const std::vector<int32_t> idx = {1, -1, 3, 1};
  DeviceBuffer<float> dtable(table), dgy(gy), dy(N * dim), dgt(num * dim);
  DeviceBuffer<int32_t> didx(idx);
  gpu::embedding_forward(dtable.get(), didx.get(), dy.get(), N, num, dim, testing::stream());
  gpu::embedding_backward(dgy.get(), didx.get(), dgt.get(), N, num, dim, testing::stream());
  const std::vector<float> y = dy.download(), gt = dgt.download();
  for (int64_t j = 0; j < dim; ++j) {
    EXPECT_EQ(y[j], table[dim + j]);
    EXPECT_TRUE(std::isnan(y[dim + j]));
    EXPECT_TRUE(std::isnan(y[2 * dim + j]));
    EXPECT_EQ(gt[j], 0.0f);                                // row 0: no index
    EXPECT_EQ(gt[dim + j], (0.0f + gy[j]) + gy[3 * dim + j]);  // row 1: n = 0, 3
    EXPECT_EQ(gt[2 * dim + j], 0.0f);
  }
}

}  // namespace
}  // namespace ll::kernels
