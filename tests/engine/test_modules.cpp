// test_modules.cpp: parameter names, default initializations, modes and state dicts of nn modules.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/ops/ops.h"

namespace ll {
namespace {

using namespace nn;

std::vector<std::string> names(const NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

// Every value within [-bound, bound], and the spread not collapsed (a real uniform draw).
void expect_uniform_within(const Tensor& t, float bound) {
  float lo = 1e9f, hi = -1e9f;
  for (float v : t.to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_GT(hi - lo, bound) << "values of " << t.str() << " do not spread over the range";
}

TEST(Modules, PyTorchParameterNamesAndShapes) {
  Generator g(0);
  Sequential net{std::make_shared<Linear>(784, 400, g), std::make_shared<ReLU>(), std::make_shared<Linear>(400, 20, g)};
  EXPECT_EQ(names(net.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(net.num_parameters(), 784 * 400 + 400 + 400 * 20 + 20);

  Sequential conv{std::make_shared<Conv2d>(3, 64, Pair{4, 4}, g, Pair{2, 2}, Pair{1, 1}, false), BatchNorm2d(64),
                  std::make_shared<LeakyReLU>(0.2f), std::make_shared<ConvTranspose2d>(64, 3, Pair{4, 4}, g)};
  EXPECT_EQ(names(conv.named_parameters()),
            (std::vector<std::string>{"0.weight", "1.weight", "1.bias", "3.weight", "3.bias"}));
  EXPECT_EQ(names(conv.named_buffers()),
            (std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"}));
  auto sd = conv.state_dict();
  EXPECT_EQ(sd.at("0.weight").shape(), (Shape{64, 3, 4, 4}));
  EXPECT_EQ(sd.at("3.weight").shape(), (Shape{64, 3, 4, 4}));  // ConvTranspose2d: (in, out, kh, kw)
  EXPECT_EQ(sd.at("3.bias").shape(), (Shape{3}));
}

TEST(Modules, DefaultInitializationsFollowPyTorch) {
  Generator g(1);
  Linear fc(100, 50, g);
  expect_uniform_within(fc.weight, 1.0f / std::sqrt(100.0f));
  expect_uniform_within(fc.bias, 1.0f / std::sqrt(100.0f));
  Conv2d c(8, 16, {3, 3}, g);
  expect_uniform_within(c.weight, 1.0f / std::sqrt(8.0f * 9.0f));
  ConvTranspose2d ct(16, 4, {4, 4}, g);
  // PyTorch computes fan_in from weight.size(1) = out_channels for transposed convolutions.
  expect_uniform_within(ct.weight, 1.0f / std::sqrt(4.0f * 16.0f));
  auto bn = BatchNorm2d(5);
  EXPECT_EQ(bn->weight.to_vector(), std::vector<float>(5, 1.0f));
  EXPECT_EQ(bn->bias.to_vector(), std::vector<float>(5, 0.0f));
  EXPECT_EQ(bn->running_var.to_vector(), std::vector<float>(5, 1.0f));
  Embedding e(1000, 10, g);  // N(0, 1)
  double s = 0, s2 = 0;
  for (float v : e.weight.to_vector()) {
    s += v;
    s2 += v * v;
  }
  EXPECT_NEAR(s / 10000, 0.0, 0.05);
  EXPECT_NEAR(s2 / 10000, 1.0, 0.05);
  // Same seed, same weights.
  Generator g1(9), g2(9);
  EXPECT_EQ(Linear(7, 3, g1).weight.to_vector(), Linear(7, 3, g2).weight.to_vector());
}

TEST(Modules, BatchNormTrainEvalAndRunningStatistics) {
  auto bn = BatchNorm1d(2);
  // Channel 0 values 1, 3 (mean 2, biased var 1, unbiased 2); channel 1 values 0, 0.
  Tensor x = Tensor::from_vector({1, 0, 3, 0}, {2, 2});
  Tensor y = bn->forward(x);
  EXPECT_NEAR(y.at({0, 0}), -1.0f / std::sqrt(1.0f + 1e-5f), 1e-6);
  EXPECT_NEAR(bn->running_mean.at({0}), 0.1f * 2.0f, 1e-7);
  EXPECT_NEAR(bn->running_var.at({0}), 0.9f * 1.0f + 0.1f * 2.0f, 1e-6);  // unbiased variance
  EXPECT_EQ(bn->num_batches_tracked.item(), 1.0f);
  bn->eval();
  EXPECT_FALSE(bn->is_training());
  Tensor ye = bn->forward(x);  // uses the running statistics
  EXPECT_NEAR(ye.at({0, 0}), (1.0f - 0.2f) / std::sqrt(1.1f + 1e-5f), 1e-5);
  EXPECT_EQ(bn->num_batches_tracked.item(), 1.0f);
  EXPECT_THROW(bn->forward(Tensor::ones({2, 3})), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d(2)->forward(Tensor::ones({2, 2})), std::invalid_argument);
}

TEST(Modules, TrainAndEvalReachEveryChild) {
  Generator g(0);
  auto inner = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{BatchNorm1d(3)});
  Sequential outer{std::make_shared<Linear>(2, 3, g), inner};
  outer.eval();
  EXPECT_FALSE((*inner)[0].is_training());
  outer.train();
  EXPECT_TRUE((*inner)[0].is_training());
  EXPECT_EQ(names(outer.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.0.weight", "1.0.bias"}));
}

TEST(Modules, LoadStateDictChecksNamesAndShapes) {
  Generator g1(1), g2(2);
  Sequential a{std::make_shared<Linear>(4, 3, g1)};
  Sequential b{std::make_shared<Linear>(4, 3, g2)};
  EXPECT_NE(a.state_dict().at("0.weight").to_vector(), b.state_dict().at("0.weight").to_vector());
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(a.state_dict().at("0.weight").to_vector(), b.state_dict().at("0.weight").to_vector());
  // Loaded values are copies: the parameters stay distinct tensors that require grad.
  EXPECT_NE(a.state_dict().at("0.weight").data(), b.state_dict().at("0.weight").data());
  EXPECT_TRUE(b.parameters()[0].requires_grad());

  auto sd = a.state_dict();
  sd.erase("0.bias");
  try {
    b.load_state_dict(sd);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing entry '0.bias'"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(b.load_state_dict(sd, /*strict=*/false));
  sd = a.state_dict();
  sd["0.extra"] = Tensor::ones({1});
  EXPECT_THROW(b.load_state_dict(sd), std::invalid_argument);
  sd = a.state_dict();
  sd["0.weight"] = Tensor::ones({3, 5});
  try {
    b.load_state_dict(sd);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(3, 5)"), std::string::npos) << e.what();
  }
}

TEST(Modules, ShapeOfALayerStackMatchesTheArithmetic) {
  Generator g(0);
  // The DCGAN generator's first two layers: (N, 100, 1, 1) -> (N, 512, 4, 4) -> (N, 256, 8, 8).
  ConvTranspose2d t1(100, 64, {4, 4}, g, {1, 1}, {0, 0}, {0, 0}, false);
  ConvTranspose2d t2(64, 32, {4, 4}, g, {2, 2}, {1, 1}, {0, 0}, false);
  Tensor z = Tensor::ones({2, 100, 1, 1});
  EXPECT_EQ(t2.forward(t1.forward(z)).shape(), (Shape{2, 32, 8, 8}));
  // A conv encoder on 28x28: 4x4 stride 2 padding 1 halves the size.
  Conv2d c(1, 8, {4, 4}, g, {2, 2}, {1, 1});
  EXPECT_EQ(c.forward(Tensor::ones({3, 1, 28, 28})).shape(), (Shape{3, 8, 14, 14}));
  Unflatten u({8, 7, 7});
  EXPECT_EQ(u.forward(Tensor::ones({2, 392})).shape(), (Shape{2, 8, 7, 7}));
}

}  // namespace
}  // namespace ll
