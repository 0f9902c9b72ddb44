// test_engine_cuda.cpp: the engine on CUDA against the engine on the CPU.
//
// Every row of the op table (tests/engine/op_cases.h, the rows of the gradient check) and a second
// table of larger and odd sizes run forward and backward on both devices from the same inputs; the
// outputs and every input gradient must agree within the row's tolerance
//   |cuda - cpu| <= atol max|cpu| + rtol |cpu|
// (atol scaled by the tensor's largest value; default atol 1e-5, rtol 1e-4: sums in another order;
// batch norm 1e-4, 1e-3). Then: tensors
// (creation, copies, views, host reads), Module::to round trips, optimizer steps, checkpoints
// written from the GPU and read on the CPU, random ops, the pinned staging of host-to-device
// copies, and the device flag. Every test starts with LL_REQUIRE_GPU(): it skips, saying why,
// where no GPU is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <iostream>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/checkpoint.h"
#include "engine/device.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "tests/common/compare.h"
#include "tests/common/temp_dir.h"
#include "tests/cuda/cuda_harness.h"
#include "tests/engine/op_cases.h"

namespace ll::test {
namespace {

constexpr Device kCuda = Device::CUDA;
constexpr Device kCpu = Device::CPU;

// `case_scale`: the largest magnitude anywhere in the case (its output and every gradient), or 0.
::testing::AssertionResult same_values(const Tensor& gpu, const Tensor& cpu, Tolerance tol, const std::string& what,
                                       double case_scale = 0.0) {
  if (!gpu.defined() || !cpu.defined()) {
    return ::testing::AssertionFailure() << what << ": defined on " << (gpu.defined() ? "cuda" : "cpu") << " only";
  }
  if (gpu.shape() != cpu.shape()) {
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(gpu.shape()) << " on cuda, "
                                         << shape_str(cpu.shape()) << " on cpu";
  }
  if (gpu.device() != kCuda) return ::testing::AssertionFailure() << what << ": " << gpu.str() << " is not on cuda";
  const std::vector<float> g = gpu.to_vector(), c = cpu.to_vector();
  // atol is relative to the tensor's largest value: a gradient of size 1e-5 everywhere (a mean over
  // 1e5 elements) is held to the same relative standard as one of size 1.
  double largest = 0.0;
  for (float v : c) largest = std::max(largest, static_cast<double>(std::fabs(v)));
  // A gradient that is zero in exact arithmetic (a conv bias before BatchNorm, whose mean BatchNorm
  // removes) is float cancellation noise, of the size of one rounding of the case's larger values,
  // and differs between any two summation orders (the GPU's fused multiply-adds and cuBLAS's order
  // against the CPU's; found by the emulator once it contracted and reordered as a GPU does). So the
  // scale is at least 1/1000 of the case's largest value: atol * 1e-3 ~ one float ulp of it.
  largest = std::max(largest, 1e-3 * case_scale);
  const Tolerance scaled{tol.atol * std::max(largest, 1e-30), tol.rtol};
  return all_close(g.data(), c.data(), static_cast<int64_t>(g.size()), scaled, what);
}

::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  if (!x.empty() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) {
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0) {
        return ::testing::AssertionFailure() << what << ": first difference at " << i << ": " << x[i] << " vs " << y[i];
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// Runs a row on both devices: the forward output, then backward with the same random projection R,
// then each input's gradient.
void expect_parity(const GradCase& gc) {
  CaseSetup cpu = gc.setup(kCpu);
  CaseSetup gpu = gc.setup(kCuda);
  ASSERT_EQ(cpu.inputs.size(), gpu.inputs.size());
  for (size_t i = 0; i < gpu.inputs.size(); ++i) {
    ASSERT_EQ(gpu.inputs[i].device(), kCuda) << "input " << i << " of " << gc.name << " was not moved to the GPU";
  }
  const Tensor y_cpu = cpu.f();
  const Tensor y_gpu = gpu.f();
  EXPECT_TRUE(same_values(y_gpu, y_cpu, gc.parity, gc.name + " output"));

  std::mt19937 gen(4321);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> r(static_cast<size_t>(y_cpu.numel()));
  for (float& v : r) v = dist(gen);
  y_cpu.backward(Tensor::from_vector(r, y_cpu.shape()));
  y_gpu.backward(Tensor::from_vector(r, y_gpu.shape(), kCuda));
  double case_scale = 0.0;
  const auto widen = [&](const Tensor& t) {
    if (!t.defined()) return;
    for (float v : t.to_vector()) case_scale = std::max(case_scale, static_cast<double>(std::fabs(v)));
  };
  widen(y_cpu);
  for (size_t i = 0; i < cpu.inputs.size(); ++i) widen(cpu.inputs[i].grad());
  for (size_t i = 0; i < cpu.inputs.size(); ++i) {
    const Tensor gc_cpu = cpu.inputs[i].grad(), gc_gpu = gpu.inputs[i].grad();
    ASSERT_TRUE(gc_gpu.defined()) << gc.name << ": input " << i << " received no gradient on cuda";
    EXPECT_TRUE(same_values(gc_gpu, gc_cpu, gc.parity, gc.name + " gradient of input " + std::to_string(i),
                            case_scale));
  }
}

std::string row_name(const std::string& name) {
  std::string n = name;
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

// ---- the gradient-check table on both devices ----------------------------------------------------

class OpParity : public ::testing::TestWithParam<GradCase> {};

TEST_P(OpParity, CudaMatchesCpu) {
  LL_REQUIRE_GPU();
  expect_parity(GetParam());
}

INSTANTIATE_TEST_SUITE_P(EngineCuda, OpParity, ::testing::ValuesIn(all_op_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) { return row_name(info.param.name); });

// ---- larger and odd sizes: vectorized paths, tails, grid-stride loops, the models' shapes -------

std::vector<GradCase> large_cases() {
  using V = std::vector<Tensor>;
  std::vector<GradCase> c;
  // Sizes around the float4 and block boundaries; a slice starting at row 1 of an (n + 1, 1)
  // tensor gives a data pointer 4 bytes past an aligned one (the unaligned path of float4 kernels).
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{4097}, int64_t{100003}}) {
    const std::string s = std::to_string(n);
    c.push_back(op_case("add_n" + s, [n](Device d) { return V{leaf(d, {n}, 1), leaf(d, {n}, 2)}; },
                        [](const V& a) { return add(a[0], a[1]); }));
    c.push_back(op_case("mul_unaligned_n" + s, [n](Device d) { return V{leaf(d, {n + 1, 1}, 1), leaf(d, {n, 1}, 2)}; },
                        [n](const V& a) { return mul(a[0].slice(1, n + 1), a[1]); }));
    c.push_back(op_case("sub_scale_add_scalar_n" + s, [n](Device d) { return V{leaf(d, {n}, 1), leaf(d, {n}, 2)}; },
                        [](const V& a) { return add_scalar(scale(sub(a[0], a[1]), 0.75f), -0.5f); }));
    c.push_back(op_case("exp_unaligned_n" + s, [n](Device d) { return V{leaf(d, {n + 1}, 3, -3.0f, 3.0f)}; },
                        [n](const V& a) { return exp(a[0].slice(1, n + 1)); }));
    c.push_back(op_case("sum_all_n" + s, [n](Device d) { return V{leaf(d, {n}, 4)}; }, [](const V& a) { return sum(a[0]); }));
    c.push_back(op_case("mean_all_unaligned_n" + s, [n](Device d) { return V{leaf(d, {n + 1}, 4)}; },
                        [n](const V& a) { return mean(a[0].slice(1, n + 1)); }));
    c.push_back(op_case("activations_n" + s, [n](Device d) { return V{leaf(d, {n}, 5, -3.0f, 3.0f)}; },
                        [](const V& a) { return add(add(relu(a[0]), leaky_relu(a[0], 0.2f)), add(tanh(a[0]), sigmoid(a[0]))); }));
    c.push_back(op_case("dropout_n" + s, [n](Device d) { return V{leaf(d, {n}, 6)}; }, [](const V& a) {
      Generator gen(5, 3);
      return dropout(a[0], 0.3f, true, gen);
    }));
    c.push_back(op_case("bce_with_logits_mean_n" + s, [n](Device d) { return V{leaf(d, {n}, 7, -4.0f, 4.0f)}; },
                        [](const V& a) { return bce_with_logits(a[0], constant(a[0].device(), {a[0].numel()}, 8, 0.0f, 1.0f)); }));
    c.push_back(op_case("mse_sum_n" + s, [n](Device d) { return V{leaf(d, {n}, 9), leaf(d, {n}, 10)}; },
                        [](const V& a) { return mse_loss(a[0], a[1], Reduction::Sum); }, {}, {1e-5, 2e-4}));
  }
  // Reductions along a dimension, with inner sizes 1, odd and large.
  c.push_back(op_case("sum_dim1_129x1023x3", [](Device d) { return V{leaf(d, {129, 1023, 3}, 11)}; },
                      [](const V& a) { return sum(a[0], 1); }));
  c.push_back(op_case("sum_dim0_4097x7", [](Device d) { return V{leaf(d, {4097, 7}, 12)}; },
                      [](const V& a) { return sum(a[0], 0); }));
  c.push_back(op_case("mean_dim_last_33x4099", [](Device d) { return V{leaf(d, {33, 4099}, 13)}; },
                      [](const V& a) { return mean(a[0], -1, true); }));
  c.push_back(op_case("cat_narrow_dim1_odd", [](Device d) { return V{leaf(d, {37, 13, 5}, 14), leaf(d, {37, 1, 5}, 15)}; },
                      [](const V& a) { return narrow(cat(a, 1), 1, 3, 9); }));
  // The MLP-VAE's layers (batch 128, 784-400-20) and odd GEMM sizes.
  c.push_back(op_case("linear_mlp_vae_fc1_128x784_400", [](Device d) {
    return V{leaf(d, {128, 784}, 16, 0.0f, 1.0f), leaf(d, {400, 784}, 17, -0.036f, 0.036f), leaf(d, {400}, 18, -0.036f, 0.036f)};
  }, [](const V& a) { return linear(a[0], a[1], a[2]); }, {}, {1e-4, 1e-4}));
  c.push_back(op_case("linear_odd_37x131_67", [](Device d) { return V{leaf(d, {37, 131}, 19), leaf(d, {67, 131}, 20), leaf(d, {67}, 21)}; },
                      [](const V& a) { return linear(a[0], a[1], a[2]); }, {}, {1e-4, 1e-4}));
  c.push_back(op_case("matmul_odd_1x257_3", [](Device d) { return V{leaf(d, {1, 257}, 22), leaf(d, {257, 3}, 23)}; },
                      [](const V& a) { return matmul(a[0], a[1]); }, {}, {1e-4, 1e-4}));
  // DCGAN-28 / conv VAE convolutions (batch 16 to keep the CPU side short).
  auto conv = [&c](std::string name, Shape x, Shape w, Pair stride, Pair pad, bool bias) {
    c.push_back(op_case(std::move(name),
                        [x, w, bias](Device d) {
                          V in{leaf(d, x, 24), leaf(d, w, 25, -0.1f, 0.1f)};
                          if (bias) in.push_back(leaf(d, {w[0]}, 26));
                          return in;
                        },
                        [stride, pad, bias](const V& a) { return conv2d(a[0], a[1], bias ? a[2] : Tensor(), stride, pad); },
                        {}, {1e-4, 1e-4}));
  };
  conv("conv2d_dcgan28_d1_16x1x28x28", {16, 1, 28, 28}, {64, 1, 4, 4}, {2, 2}, {1, 1}, false);
  conv("conv2d_dcgan28_d2_16x64x14x14", {16, 64, 14, 14}, {128, 64, 4, 4}, {2, 2}, {1, 1}, false);
  conv("conv2d_dcgan28_d3_16x128x7x7", {16, 128, 7, 7}, {1, 128, 7, 7}, {1, 1}, {0, 0}, false);
  conv("conv2d_vae_enc1_16x1x28x28_bias", {16, 1, 28, 28}, {32, 1, 4, 4}, {2, 2}, {1, 1}, true);
  conv("conv2d_odd_3x5x13x11_3x3_p1", {3, 5, 13, 11}, {7, 5, 3, 3}, {1, 1}, {1, 1}, true);
  auto convt = [&c](std::string name, Shape x, Shape w, Pair stride, Pair pad, Pair outpad, bool bias) {
    c.push_back(op_case(std::move(name),
                        [x, w, bias](Device d) {
                          V in{leaf(d, x, 27), leaf(d, w, 28, -0.1f, 0.1f)};
                          if (bias) in.push_back(leaf(d, {w[1]}, 29));
                          return in;
                        },
                        [stride, pad, outpad, bias](const V& a) {
                          return conv_transpose2d(a[0], a[1], bias ? a[2] : Tensor(), stride, pad, outpad);
                        },
                        {}, {1e-4, 1e-4}));
  };
  convt("conv_transpose2d_dcgan28_g1_16x100x1x1", {16, 100, 1, 1}, {100, 128, 7, 7}, {1, 1}, {0, 0}, {0, 0}, false);
  convt("conv_transpose2d_dcgan28_g2_16x128x7x7", {16, 128, 7, 7}, {128, 64, 4, 4}, {2, 2}, {1, 1}, {0, 0}, false);
  convt("conv_transpose2d_dcgan28_g3_16x64x14x14", {16, 64, 14, 14}, {64, 1, 4, 4}, {2, 2}, {1, 1}, {0, 0}, false);
  convt("conv_transpose2d_odd_2x3x5x7_op1_bias", {2, 3, 5, 7}, {3, 4, 3, 3}, {2, 2}, {1, 1}, {1, 1}, true);
  c.push_back(op_case("pad2d_gan128_16x8x17x17", [](Device d) { return V{leaf(d, {16, 8, 17, 17}, 30)}; },
                      [](const V& a) { return pad2d(a[0], {3, 4, 3, 4}); }));
  // Batch norm at the GAN's sizes.
  c.push_back(op_case("batch_norm_2d_train_32x128x7x7", [](Device d) {
    return V{leaf(d, {32, 128, 7, 7}, 31, -2.0f, 3.0f), leaf(d, {128}, 32, 0.5f, 1.5f), leaf(d, {128}, 33)};
  }, bn_train, {}, {1e-4, 1e-3}));
  c.push_back(op_case("batch_norm_1d_train_128x400", [](Device d) {
    return V{leaf(d, {128, 400}, 34), leaf(d, {400}, 35, 0.5f, 1.5f), leaf(d, {400}, 36)};
  }, bn_train, {}, {1e-4, 1e-3}));
  // The VAE's losses at batch 128.
  c.push_back(op_case("kl_normal_128x20", [](Device d) { return V{leaf(d, {128, 20}, 37), leaf(d, {128, 20}, 38, -2.0f, 1.0f)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 4.0f, Reduction::Sum); }));
  c.push_back(op_case("reparameterize_128x20", [](Device d) { return V{leaf(d, {128, 20}, 39), leaf(d, {128, 20}, 40)}; },
                      [](const V& a) {
                        Generator gen(9, 1);
                        return reparameterize(a[0], a[1], gen);
                      }, {}, {1e-4, 1e-4}));
  c.push_back(op_case("bce_with_logits_sum_128x784", [](Device d) { return V{leaf(d, {128, 784}, 41, -5.0f, 5.0f)}; },
                      [](const V& a) {
                        return bce_with_logits(a[0], constant(a[0].device(), {128, 784}, 42, 0.0f, 1.0f), Reduction::Sum);
                      }, {}, {1e-5, 2e-4}));
  // Reduction::None at the VAE's shapes, summed per image as `latentlab score` does.
  c.push_back(op_case("bce_with_logits_none_rows_128x784", [](Device d) { return V{leaf(d, {128, 784}, 45, -5.0f, 5.0f)}; },
                      [](const V& a) {
                        return sum(bce_with_logits(a[0], constant(a[0].device(), {128, 784}, 46, 0.0f, 1.0f), Reduction::None), 1);
                      }, {}, {1e-5, 2e-4}));
  c.push_back(op_case("mse_none_unaligned_1001", [](Device d) { return V{leaf(d, {1002}, 47), leaf(d, {1001}, 48)}; },
                      [](const V& a) { return mse_loss(a[0].slice(1, 1002), a[1], Reduction::None); }));
  c.push_back(op_case("kl_normal_none_128x20", [](Device d) { return V{leaf(d, {128, 20}, 49), leaf(d, {128, 20}, 50, -2.0f, 1.0f)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 4.0f, Reduction::None); }));
  c.push_back(op_case("cross_entropy_128x10", [](Device d) { return V{leaf(d, {128, 10}, 43, -3.0f, 3.0f)}; },
                      [](const V& a) {
                        std::vector<int32_t> labels(128);
                        for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>((i * 7) % 10);
                        return cross_entropy(a[0], labels);
                      }));
  c.push_back(op_case("embedding_cgan_d_10x784_128", [](Device d) { return V{leaf(d, {10, 784}, 44)}; },
                      [](const V& a) {
                        std::vector<int32_t> idx(128);
                        for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>((i * 3) % 10);
                        return embedding(a[0], idx);
                      }));
  return c;
}

class LargeOpParity : public ::testing::TestWithParam<GradCase> {};

TEST_P(LargeOpParity, CudaMatchesCpu) {
  LL_REQUIRE_GPU();
  expect_parity(GetParam());
}

INSTANTIATE_TEST_SUITE_P(EngineCuda, LargeOpParity, ::testing::ValuesIn(large_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) { return row_name(info.param.name); });

// ---- tensors ----------------------------------------------------------------------------------------

TEST(EngineCudaTensor, CreationFillsCopiesAndHostReads) {
  LL_REQUIRE_GPU();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4097}, int64_t{100003}}) {
    EXPECT_TRUE(bitwise_equal(Tensor::zeros({n}, kCuda), Tensor::zeros({n}), "zeros"));
    EXPECT_TRUE(bitwise_equal(Tensor::ones({n}, kCuda), Tensor::ones({n}), "ones"));
    EXPECT_TRUE(bitwise_equal(Tensor::full({n}, -2.75f, kCuda), Tensor::full({n}, -2.75f), "full"));
    const std::vector<float> v = random_vector(n, 3);
    const Tensor g = Tensor::from_vector(v, {n}, kCuda);
    EXPECT_EQ(g.device(), kCuda);
    EXPECT_EQ(g.to_vector(), v);
    const Tensor c = g.clone();  // device to device
    EXPECT_EQ(c.device(), kCuda);
    EXPECT_NE(c.data(), g.data());
    EXPECT_EQ(c.to_vector(), v);
    EXPECT_EQ(g.to(kCpu).to_vector(), v);
    EXPECT_EQ(g.at({n - 1}), v.back());
    // fill_ of a view touches only the view (the kernel's tail and offset handling).
    Tensor h = g.clone().reshape({n, 1});
    if (n > 2) {
      h.slice(1, n - 1).fill_(0.5f);
      std::vector<float> want = v;
      for (int64_t i = 1; i < n - 1; ++i) want[static_cast<size_t>(i)] = 0.5f;
      EXPECT_EQ(h.to_vector(), want);
    }
  }
  EXPECT_FLOAT_EQ(Tensor::scalar(3.5f, kCuda).item(), 3.5f);
  // copy_ in every direction.
  const std::vector<float> v = random_vector(1001, 4);
  Tensor cpu = Tensor::from_vector(v, {1001});
  Tensor gpu = Tensor::empty({1001}, kCuda);
  gpu.copy_(cpu);
  Tensor gpu2 = Tensor::empty({1001}, kCuda);
  gpu2.copy_(gpu);
  Tensor back = Tensor::empty({1001});
  back.copy_(gpu2);
  EXPECT_EQ(back.to_vector(), v);
}

TEST(EngineCudaTensor, MixedDevicesAreRefusedNamingTheOpAndBothDevices) {
  LL_REQUIRE_GPU();
  const Tensor a = Tensor::ones({2, 3}, kCuda), b = Tensor::ones({2, 3});
  try {
    (void)mul(a, b);
    FAIL() << "mul of a CUDA and a CPU tensor must be refused";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("mul"), std::string::npos) << m;
    EXPECT_NE(m.find("cuda"), std::string::npos) << m;
    EXPECT_NE(m.find("cpu"), std::string::npos) << m;
  }
  EXPECT_THROW((void)linear(Tensor::ones({2, 3}, kCuda), Tensor::ones({4, 3})), std::invalid_argument);
}

TEST(EngineCudaTensor, AutogradAccumulatesAndStaysOnTheDevice) {
  LL_REQUIRE_GPU();
  // x used twice, gradients accumulated over two backward passes, a slice's gradient: all on the GPU.
  for (Device d : {kCpu, kCuda}) {
    Tensor x = leaf(d, {4, 3}, 1);
    Tensor y = sum(mul(x, x)) + sum(x.slice(1, 3));
    y.backward();
    mean(x).backward();
    ASSERT_EQ(x.grad().device(), d);
  }
  Tensor xc = leaf(kCpu, {4, 3}, 1), xg = leaf(kCuda, {4, 3}, 1);
  for (Tensor* x : {&xc, &xg}) {
    (sum(mul(*x, *x)) + sum(x->slice(1, 3))).backward();
    mean(*x).backward();
  }
  EXPECT_TRUE(same_values(xg.grad(), xc.grad(), {1e-6, 1e-6}, "accumulated gradient"));
}

// ---- the pinned staging of host-to-device copies -------------------------------------------------

TEST(EngineCudaTensor, StagedCopiesKeepTheirValuesWhenTheSourceIsReusedAtOnce) {
  LL_REQUIRE_GPU();
  // Each copy is queued from a pinned block and returns; the host buffer is overwritten right
  // after. Every device tensor must still hold the values it was given.
  std::vector<float> host(70001);
  std::vector<Tensor> on_gpu;
  for (int k = 0; k < 24; ++k) {
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(k * 100000 + static_cast<int>(i));
    on_gpu.push_back(Tensor::from_vector(host, {static_cast<int64_t>(host.size())}, kCuda));
    if (k % 5 == 4) cuda_synchronize();  // lets staging blocks be reused
  }
  for (int k = 0; k < 24; ++k) {
    const std::vector<float> v = on_gpu[static_cast<size_t>(k)].to_vector();
    ASSERT_EQ(v.front(), static_cast<float>(k * 100000)) << "copy " << k;
    ASSERT_EQ(v.back(), static_cast<float>(k * 100000 + 70000)) << "copy " << k;
  }
  EXPECT_GT(pinned_allocator_stats().hits, 0) << "staging blocks are never reused";
  // Larger than the staging limit: the waiting copy.
  const int64_t big = static_cast<int64_t>(kMaxStagedCopyBytes / sizeof(float)) + 5;
  Tensor b = Tensor::full({big}, 1.25f).to(kCuda);
  EXPECT_EQ(b.at({big - 1}), 1.25f);
}

// ---- modules ----------------------------------------------------------------------------------------

std::shared_ptr<nn::Sequential> small_net(Generator& g) {
  using namespace nn;
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
      std::make_shared<Conv2d>(1, 4, Pair{3, 3}, g, Pair{1, 1}, Pair{1, 1}), BatchNorm2d(4),
      std::make_shared<LeakyReLU>(0.2f), std::make_shared<Flatten>(), std::make_shared<Linear>(4 * 6 * 6, 5, g)});
}

TEST(EngineCudaModule, ToMovesParametersGradientsAndBuffersAndBackExactly) {
  LL_REQUIRE_GPU();
  Generator g(3);
  auto net = small_net(g);
  const Tensor x = leaf(kCpu, {3, 1, 6, 6}, 5).set_requires_grad(false);
  sum(net->forward(x)).backward();  // gradients and BatchNorm statistics on the CPU
  std::map<std::string, std::vector<float>> values, grads;
  for (auto& [name, t] : net->state_dict()) values[name] = t.to_vector();
  for (auto& [name, p] : net->named_parameters()) grads[name] = p.grad().to_vector();

  net->to(kCuda);
  for (auto& [name, p] : net->named_parameters()) {
    EXPECT_EQ(p.device(), kCuda) << name;
    EXPECT_TRUE(p.is_leaf() && p.requires_grad()) << name;
    ASSERT_TRUE(p.grad().defined()) << name << ": the gradient was dropped";
    EXPECT_EQ(p.grad().device(), kCuda) << name;
    EXPECT_EQ(p.grad().to_vector(), grads[name]) << name;
  }
  for (auto& [name, b] : net->named_buffers()) EXPECT_EQ(b.device(), kCuda) << name;
  for (auto& [name, t] : net->state_dict()) EXPECT_EQ(t.to_vector(), values[name]) << name;

  net->to(kCpu);
  for (auto& [name, t] : net->state_dict()) {
    EXPECT_EQ(t.device(), kCpu) << name;
    EXPECT_EQ(t.to_vector(), values[name]) << name;
  }
}

TEST(EngineCudaModule, TrainingForwardUpdatesTheBuffersOnTheDevice) {
  LL_REQUIRE_GPU();
  Generator g1(3), g2(3);
  auto a = small_net(g1), b = small_net(g2);
  b->to(kCuda);
  const Tensor x = leaf(kCpu, {8, 1, 6, 6}, 6).set_requires_grad(false);
  for (int i = 0; i < 3; ++i) {
    (void)a->forward(x);
    (void)b->forward(x.to(kCuda));
  }
  const auto sa = a->state_dict(), sb = b->state_dict();
  for (auto& [name, t] : sa) EXPECT_TRUE(same_values(sb.at(name), t, {1e-6, 1e-5}, name));
  EXPECT_EQ(sb.at("1.num_batches_tracked").item(), 3.0f);
}

// ---- optimizers ---------------------------------------------------------------------------------------

// Three steps of an optimizer on the same parameters and gradients on both devices; parameters and
// state must agree. The update formulas are the same inline functions (kernels/common/formulas.h);
// only the rounding of contracted multiply-adds can differ.
template <typename Opt, typename Options>
void expect_optimizer_parity(const Options& options, const std::string& what) {
  std::vector<Tensor> pc, pg;
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{4097}, int64_t{100003}}) {
    pc.push_back(leaf(kCpu, {n}, static_cast<uint32_t>(n)));
    pg.push_back(leaf(kCuda, {n}, static_cast<uint32_t>(n)));
  }
  Opt oc(pc, options), og(pg, options);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < pc.size(); ++i) {
      const std::vector<float> grad = random_vector(pc[i].numel(), static_cast<uint32_t>(100 * step + i), -2.0f, 2.0f);
      pc[i].set_grad(Tensor::from_vector(grad, pc[i].shape()));
      pg[i].set_grad(Tensor::from_vector(grad, pg[i].shape(), kCuda));
    }
    oc.step();
    og.step();
  }
  for (size_t i = 0; i < pc.size(); ++i) {
    EXPECT_TRUE(same_values(pg[i], pc[i], {1e-6, 1e-5}, what + " parameter " + std::to_string(i)));
  }
  const auto sc = oc.state_dict(), sg = og.state_dict();
  ASSERT_EQ(sc.size(), sg.size());
  for (auto& [name, t] : sc) {
    const std::vector<float> a = sg.at(name).to_vector(), b = t.to_vector();
    EXPECT_TRUE(all_close(a.data(), b.data(), static_cast<int64_t>(a.size()), {1e-6, 1e-5}, what + " state " + name));
  }
}

TEST(EngineCudaOptim, AdamAdamWAndSgdStepLikeTheCpu) {
  LL_REQUIRE_GPU();
  expect_optimizer_parity<optim::Adam>(optim::AdamOptions{.lr = 1e-3}, "Adam");
  expect_optimizer_parity<optim::Adam>(optim::AdamOptions{.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999}, "Adam(DCGAN)");
  expect_optimizer_parity<optim::Adam>(
      optim::AdamOptions{.lr = 1e-3, .weight_decay = 1e-2, .decoupled_weight_decay = true}, "AdamW");
  expect_optimizer_parity<optim::Adam>(optim::AdamOptions{.lr = 1e-3, .weight_decay = 1e-2}, "Adam(L2)");
  expect_optimizer_parity<optim::SGD>(optim::SgdOptions{.lr = 0.1}, "SGD");
  expect_optimizer_parity<optim::SGD>(optim::SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-3},
                                      "SGD(momentum)");
  expect_optimizer_parity<optim::SGD>(optim::SgdOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true}, "SGD(Nesterov)");
}

TEST(EngineCudaOptim, StateIsCreatedOnTheParametersDeviceAndSkipsParametersWithoutGradients) {
  LL_REQUIRE_GPU();
  Tensor a = leaf(kCuda, {5}, 1), b = leaf(kCuda, {3}, 2);
  const std::vector<float> b_before = b.to_vector();
  optim::Adam adam({a, b});
  for (auto& [name, t] : adam.state_dict()) {
    if (name != "step" && name != "step_exact") {  // the step count lives on the host
      EXPECT_EQ(t.device(), kCuda) << name;
    }
  }
  a.set_grad(Tensor::ones({5}, kCuda));
  adam.step();
  EXPECT_EQ(b.to_vector(), b_before);  // no gradient: untouched, as in PyTorch
  EXPECT_NE(a.to_vector(), leaf(kCpu, {5}, 1).to_vector());
}

// ---- checkpoints ------------------------------------------------------------------------------------

TEST(EngineCudaCheckpoint, WrittenFromTheGpuLoadsOnTheCpuIdentically) {
  LL_REQUIRE_GPU();
  TempDir dir;
  Generator g(11);
  auto gpu_net = small_net(g);
  gpu_net->to(kCuda);
  (void)gpu_net->forward(leaf(kCuda, {4, 1, 6, 6}, 3));  // moves the BatchNorm statistics
  const std::string path = dir.file("net.safetensors");
  save_module(path, *gpu_net, {{"note", "written from cuda"}});

  Generator other(99);
  auto cpu_net = small_net(other);
  const Metadata meta = load_module(path, *cpu_net);
  EXPECT_EQ(meta.at("note"), "written from cuda");
  const auto a = gpu_net->state_dict(), b = cpu_net->state_dict();
  for (auto& [name, t] : a) EXPECT_TRUE(bitwise_equal(b.at(name), t, name)) << name;

  // And back: a CPU file into a model on the GPU.
  Generator third(5);
  auto gpu_again = small_net(third);
  gpu_again->to(kCuda);
  load_module(path, *gpu_again);
  for (auto& [name, t] : gpu_again->state_dict()) {
    EXPECT_EQ(t.device(), kCuda) << name;
    EXPECT_TRUE(bitwise_equal(t, a.at(name), name)) << name;
  }
}

TEST(EngineCudaCheckpoint, OptimizerStateRoundTripsThroughAFile) {
  LL_REQUIRE_GPU();
  TempDir dir;
  Tensor p = leaf(kCuda, {257}, 1);
  optim::Adam adam({p});
  p.set_grad(Tensor::from_vector(random_vector(257, 2), {257}, kCuda));
  adam.step();
  const std::string path = dir.file("opt.safetensors");
  save_tensors(path, adam.state_dict());
  Tensor q = leaf(kCuda, {257}, 1);
  optim::Adam again({q});
  again.load_state_dict(load_tensors(path));
  EXPECT_EQ(again.steps(), 1);
  const auto s1 = adam.state_dict(), s2 = again.state_dict();
  for (auto& [name, t] : s1) EXPECT_TRUE(bitwise_equal(s2.at(name), t, name)) << name;
  for (auto& [name, t] : s2) {
    if (name != "step" && name != "step_exact") {  // the step count lives on the host
      EXPECT_EQ(t.device(), kCuda) << name;
    }
  }
}

// ---- random ops: one Philox stream, both devices ----------------------------------------------------

// Distance in units in the last place between two finite floats of the same sign (a large number
// when the signs differ).
int64_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof(float));
  std::memcpy(&ib, &b, sizeof(float));
  if ((ia < 0) != (ib < 0)) return a == b ? 0 : int64_t{1} << 40;
  return std::llabs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
}

// Uniforms are bit for bit (cuRAND's x 2^-32 + 2^-33 is exact). Normals are Box-Muller on the same
// raw bits, but cuRAND's curand_normal4 uses the hardware __sincosf (absolute error about 2^-21 of
// the angle's sine, times a radius of at most 6.7: kernels/cuda/random.cu) where the CPU uses
// sinf/cosf, so they agree within a few ulps or 2e-5 absolute (times the std of a fill).
::testing::AssertionResult within_ulps(const std::vector<float>& a, const std::vector<float>& b, int64_t ulps,
                                       float abs_tol, const std::string& what) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  int64_t bad = 0, worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int64_t d = ulp_distance(a[i], b[i]);
    worst = std::max(worst, d);
    if (d > ulps && !(std::fabs(a[i] - b[i]) <= abs_tol)) {
      if (++bad <= 3) std::cerr << what << " [" << i << "]: " << a[i] << " vs " << b[i] << "\n";
    }
  }
  if (bad) return ::testing::AssertionFailure() << what << ": " << bad << " values beyond " << ulps << " ulps";
  return ::testing::AssertionSuccess() << "worst " << worst << " ulps";
}

TEST(EngineCudaRandom, SameSeedGivesTheSameNumbersOnBothDevices) {
  LL_REQUIRE_GPU();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{4097}, int64_t{100003}}) {
    Generator a(2024, 5), b(2024, 5);
    // An odd first draw puts the second at an offset that is a multiple of 4 but not of the block.
    (void)randn({3}, a);
    (void)randn({3}, b, kCuda);
    const std::string s = " n=" + std::to_string(n);
    EXPECT_TRUE(within_ulps(rand({n}, b, kCuda).to_vector(), rand({n}, a).to_vector(), 0, 0.0f, "rand" + s));
    EXPECT_TRUE(within_ulps(randn({n}, b, kCuda).to_vector(), randn({n}, a).to_vector(), 8, 2e-5f, "randn" + s));
    EXPECT_EQ(a.offset(), b.offset());
    // Initializations draw on the tensor's device.
    Tensor tc = Tensor::empty({n}), tg = Tensor::empty({n}, kCuda);
    init::normal_(tc, 0.0f, 0.02f, a);
    init::normal_(tg, 0.0f, 0.02f, b);
    EXPECT_TRUE(within_ulps(tg.to_vector(), tc.to_vector(), 8, 0.02f * 2e-5f, "normal_" + s));
    init::uniform_(tc, -0.3f, 0.3f, a);
    init::uniform_(tg, -0.3f, 0.3f, b);
    // lo + (hi - lo) u cancels near 0: there one ulp of (hi - lo) u is many ulps of the result.
    EXPECT_TRUE(within_ulps(tg.to_vector(), tc.to_vector(), 2, 1e-7f, "uniform_" + s));
  }
}

TEST(EngineCudaRandom, ModulesInitializedOnEitherDeviceAgree) {
  LL_REQUIRE_GPU();
  // A module made on the CPU and moved equals the one made on the CPU, bit for bit; default and
  // DCGAN initializations redrawn on the GPU agree within ulps.
  Generator g1(7), g2(7);
  auto a = small_net(g1), b = small_net(g2);
  b->to(kCuda);
  for (auto& [name, t] : a->state_dict()) EXPECT_TRUE(bitwise_equal(b->state_dict().at(name), t, name));
  Generator r1(8), r2(8);
  for (auto& [name, t] : a->named_parameters()) {
    Tensor tc = t, tg = b->state_dict().at(name);
    init::normal_(tc, 0.0f, 0.02f, r1);
    init::normal_(tg, 0.0f, 0.02f, r2);
    EXPECT_TRUE(within_ulps(tg.to_vector(), tc.to_vector(), 8, 0.02f * 2e-5f, name));
  }
}

// ---- the device flag ----------------------------------------------------------------------------

TEST(EngineCudaDevice, AutoPicksTheGpuAndCudaIsAccepted) {
  LL_REQUIRE_GPU();
  EXPECT_TRUE(cuda_ops_built());
  EXPECT_EQ(parse_device("auto"), kCuda);
  EXPECT_EQ(parse_device("cuda"), kCuda);
  EXPECT_NO_THROW(set_cuda_options("native", false));
  EXPECT_THROW(set_cuda_options("winograd", false), std::invalid_argument);
}

}  // namespace
}  // namespace ll::test
