// test_training.cpp: optimizers through the engine, and small problems that must be learned.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"

namespace ll {
namespace {

using namespace nn;

// loss = sum(c * p) has the constant gradient c: the updates can be written out by hand.
Tensor linear_loss(const Tensor& p, const std::vector<float>& c) {
  return sum(mul(p, Tensor::from_vector(c, p.shape())));
}

TEST(Optim, AdamMatchesTheAlgorithmByHand) {
  Tensor p = Tensor::from_vector({1.0f, -2.0f}, {2}).set_requires_grad();
  optim::Adam adam({p}, {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f});
  const std::vector<float> c{0.5f, -3.0f};
  double ref[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  for (int t = 1; t <= 3; ++t) {
    adam.zero_grad();
    linear_loss(p, c).backward();
    adam.step();
    for (int i = 0; i < 2; ++i) {
      m[i] = 0.9 * m[i] + 0.1 * c[i];
      v[i] = 0.999 * v[i] + 0.001 * c[i] * c[i];
      const double mhat = m[i] / (1 - std::pow(0.9, t)), vhat = v[i] / (1 - std::pow(0.999, t));
      ref[i] -= 0.1 * mhat / (std::sqrt(vhat) + 1e-8);
    }
    EXPECT_NEAR(p.at({0}), ref[0], 1e-6) << "step " << t;
    EXPECT_NEAR(p.at({1}), ref[1], 1e-6) << "step " << t;
  }
  EXPECT_EQ(adam.steps(), 3);
}

TEST(Optim, AdamWDecaysTheWeightsSeparately) {
  Tensor p = Tensor::from_vector({2.0f}, {1}).set_requires_grad();
  optim::Adam adamw({p}, {.lr = 0.1f, .weight_decay = 0.5f, .decoupled_weight_decay = true});
  linear_loss(p, {1.0f}).backward();
  adamw.step();
  // p = p (1 - lr wd) - lr * mhat / (sqrt(vhat) + eps) with mhat = 1, vhat = 1
  EXPECT_NEAR(p.item(), 2.0 * (1 - 0.05) - 0.1 / (1 + 1e-8), 1e-6);
}

TEST(Optim, SgdMomentumByHand) {
  Tensor p = Tensor::from_vector({1.0f}, {1}).set_requires_grad();
  optim::SGD sgd({p}, {.lr = 0.1f, .momentum = 0.9f});
  double ref = 1.0, buf = 0.0;
  for (int t = 0; t < 3; ++t) {
    sgd.zero_grad();
    linear_loss(p, {2.0f}).backward();
    sgd.step();
    buf = t == 0 ? 2.0 : 0.9 * buf + 2.0;  // PyTorch: the buffer starts as the first gradient
    ref -= 0.1 * buf;
    EXPECT_NEAR(p.item(), ref, 1e-6);
  }
}

TEST(Optim, ParametersWithoutGradientsAreSkipped) {
  Tensor a = Tensor::from_vector({1.0f}, {1}).set_requires_grad();
  Tensor b = Tensor::from_vector({1.0f}, {1}).set_requires_grad();
  optim::Adam adam({a, b}, {.lr = 0.1f});
  linear_loss(a, {1.0f}).backward();
  adam.step();
  EXPECT_NE(a.item(), 1.0f);
  EXPECT_EQ(b.item(), 1.0f);
}

TEST(Optim, StateDictResumesExactly) {
  // Two runs: one straight through 6 steps, one that saves after 3, restores into a fresh
  // optimizer and parameter copy, and goes on. They must agree bit for bit.
  auto run = [](int steps, Tensor& p, optim::Adam& adam) {
    for (int t = 0; t < steps; ++t) {
      adam.zero_grad();
      sum(mul(mul(p, p), Tensor::from_vector({1.0f, 3.0f, -2.0f}, {3}))).backward();
      adam.step();
    }
  };
  Tensor p1 = Tensor::from_vector({0.3f, -0.7f, 1.1f}, {3}).set_requires_grad();
  optim::Adam a1({p1}, {.lr = 0.05f});
  run(6, p1, a1);

  Tensor p2 = Tensor::from_vector({0.3f, -0.7f, 1.1f}, {3}).set_requires_grad();
  optim::Adam a2({p2}, {.lr = 0.05f});
  run(3, p2, a2);
  std::map<std::string, Tensor> saved;
  for (auto& [k, v] : a2.state_dict()) saved[k] = v.clone();
  Tensor p3 = p2.detach().clone().set_requires_grad();
  optim::Adam a3({p3}, {.lr = 0.05f});
  a3.load_state_dict(saved);
  run(3, p3, a3);
  EXPECT_EQ(p1.to_vector(), p3.to_vector());
  saved.erase("0.exp_avg");
  EXPECT_THROW(a3.load_state_dict(saved), std::invalid_argument);
}

TEST(Training, TwoLayerMlpLearnsXor) {
  Generator g(3);
  Sequential net{std::make_shared<Linear>(2, 8, g), std::make_shared<Tanh>(), std::make_shared<Linear>(8, 1, g)};
  optim::Adam adam(net.parameters(), {.lr = 0.05f});
  const Tensor x = Tensor::from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  const Tensor y = Tensor::from_vector({0, 1, 1, 0}, {4, 1});
  float first = 0.0f, last = 0.0f;
  for (int step = 0; step < 600; ++step) {
    adam.zero_grad();
    Tensor loss = bce_with_logits(net.forward(x), y);
    loss.backward();
    adam.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_GT(first, 0.5f);
  EXPECT_LT(last, 0.01f) << "XOR not learned: loss " << first << " -> " << last;
  NoGradGuard no_grad;
  const std::vector<float> p = sigmoid(net.forward(x)).to_vector();
  EXPECT_LT(p[0], 0.05f);
  EXPECT_GT(p[1], 0.95f);
  EXPECT_GT(p[2], 0.95f);
  EXPECT_LT(p[3], 0.05f);
}

TEST(Training, SameSeedSameRun) {
  // Determinism: two identical runs with dropout, BatchNorm and a conv give identical weights.
  auto run = [] {
    Generator g(11);
    auto drop_gen = std::make_shared<Generator>(12);
    Sequential net{std::make_shared<Conv2d>(1, 4, Pair{3, 3}, g, Pair{2, 2}, Pair{1, 1}), BatchNorm2d(4),
                   std::make_shared<LeakyReLU>(0.2f), std::make_shared<Flatten>(),
                   std::make_shared<Dropout>(0.3f, drop_gen), std::make_shared<Linear>(4 * 4 * 4, 3, g)};
    optim::Adam adam(net.parameters(), {.lr = 0.01f});
    Generator data(13);
    for (int step = 0; step < 5; ++step) {
      Tensor x = randn({8, 1, 8, 8}, data);
      adam.zero_grad();
      cross_entropy(net.forward(x), {0, 1, 2, 0, 1, 2, 0, 1}).backward();
      adam.step();
    }
    return net.parameters()[0].to_vector();
  };
  EXPECT_EQ(run(), run());
}

TEST(Training, SmallConvAutoencoderLossFalls) {
  // Encode 8x8 images to 4 numbers and back: conv, BatchNorm, LeakyReLU, transposed conv.
  Generator g(21);
  Sequential net{std::make_shared<Conv2d>(1, 4, Pair{4, 4}, g, Pair{2, 2}, Pair{1, 1}), BatchNorm2d(4),
                 std::make_shared<LeakyReLU>(0.2f), std::make_shared<Flatten>(), std::make_shared<Linear>(64, 4, g),
                 std::make_shared<Linear>(4, 64, g), std::make_shared<Unflatten>(Shape{4, 4, 4}),
                 std::make_shared<ReLU>(), std::make_shared<ConvTranspose2d>(4, 1, Pair{4, 4}, g, Pair{2, 2}, Pair{1, 1})};
  optim::Adam adam(net.parameters(), {.lr = 0.01f});
  // Images: a bright square at one of four corners.
  std::vector<float> img(16 * 64, 0.0f);
  for (int n = 0; n < 16; ++n) {
    const int oy = (n % 2) * 4, ox = ((n / 2) % 2) * 4;
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) img[static_cast<size_t>(n * 64 + (oy + y) * 8 + ox + x)] = 1.0f;
  }
  const Tensor x = Tensor::from_vector(img, {16, 1, 8, 8});
  float first = 0.0f, last = 0.0f;
  for (int step = 0; step < 150; ++step) {
    adam.zero_grad();
    Tensor loss = bce_with_logits(net.forward(x), x);
    loss.backward();
    adam.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_LT(last, 0.25f * first) << "loss " << first << " -> " << last;
}

}  // namespace
}  // namespace ll
