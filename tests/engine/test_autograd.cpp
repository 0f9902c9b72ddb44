// test_autograd.cpp: Tensor views and the autograd behaviours that training loops rely on.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops/ops.h"

namespace ll {
namespace {

Tensor param(std::vector<float> v, Shape s) { return Tensor::from_vector(v, s).set_requires_grad(); }

TEST(Tensor, CreationAndShape) {
  Tensor t = Tensor::full({2, 3, 4}, 1.5f);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.str(), "Tensor(2, 3, 4) cpu");
  EXPECT_EQ(t.at({1, 2, 3}), 1.5f);
  EXPECT_EQ(Tensor::scalar(3.0f).item(), 3.0f);
  EXPECT_THROW(t.size(3), std::invalid_argument);
  EXPECT_THROW(Tensor::from_vector({1, 2, 3}, {2, 2}), std::invalid_argument);
  EXPECT_THROW(Tensor::empty({2, -1}), std::invalid_argument);
  EXPECT_THROW(t.item(), std::invalid_argument);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor r = t.reshape({2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  Tensor s = t.slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.to_vector(), (std::vector<float>{2, 3, 4, 5}));
  s.fill_(9.0f);  // writes through the view
  EXPECT_EQ(t.to_vector(), (std::vector<float>{0, 1, 9, 9, 9, 9}));
  EXPECT_EQ(r.at({1, 2}), 9.0f);
  Tensor c = t.clone();
  c.fill_(0.0f);
  EXPECT_EQ(t.at({0, 1}), 1.0f);  // a clone does not
  EXPECT_EQ(Tensor::zeros({2, 3, 4, 5}).flatten().shape(), (Shape{2, 60}));
  EXPECT_EQ(Tensor::zeros({2, 3, 4, 5}).flatten(2).shape(), (Shape{2, 3, 20}));
  EXPECT_THROW(t.reshape({4, 2}), std::invalid_argument);
  EXPECT_THROW(t.slice(2, 4), std::invalid_argument);
}

TEST(Autograd, ChainRuleThroughSharedUses) {
  // y = sum(x * x + 3x) -> dy/dx = 2x + 3, with x used three times.
  Tensor x = param({1, -2, 0.5f}, {3});
  Tensor y = sum(add(mul(x, x), scale(x, 3.0f)));
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5, -1, 4}));
}

TEST(Autograd, LeavesAccumulateUntilZeroGrad) {
  Tensor x = param({1, 2}, {2});
  sum(scale(x, 2.0f)).backward();
  sum(scale(x, 3.0f)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5, 5}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{1, 1}));
}

TEST(Autograd, GradientIsNotAnAliasOfAnotherTensor) {
  // add returns the same gradient tensor for both inputs; each leaf must get its own copy.
  Tensor a = param({1}, {1}), b = param({2}, {1});
  sum(add(a, b)).backward();
  a.grad().fill_(100.0f);
  EXPECT_EQ(b.grad().item(), 1.0f);
}

TEST(Autograd, DetachStopsGradients) {
  Tensor x = param({2}, {1});
  Tensor y = mul(x, x.detach());  // d/dx = x (only the first factor)
  EXPECT_FALSE(x.detach().requires_grad());
  y.backward();
  EXPECT_EQ(x.grad().item(), 2.0f);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = param({1, 2}, {2});
  Tensor y;
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    y = mul(x, x);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  try {
    sum(y).backward();
    FAIL() << "backward through a no_grad result must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("does not require grad"), std::string::npos);
  }
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAClearError) {
  Tensor x = param({1, 2}, {2});
  Tensor y = sum(mul(x, x));
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
  Tensor z = sum(mul(x, x));
  x.zero_grad();
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{4, 8}));
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = param({1, 2}, {2});
  Tensor y = scale(x, 2.0f);
  EXPECT_THROW(y.backward(), std::invalid_argument);
  y.backward(Tensor::from_vector({1, 10}, {2}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2, 20}));
  EXPECT_THROW(scale(x, 2.0f).backward(Tensor::ones({3})), std::invalid_argument);
}

TEST(Autograd, OnlyLeavesCanBeMarked) {
  Tensor x = param({1}, {1});
  Tensor y = scale(x, 2.0f);
  EXPECT_THROW(y.set_requires_grad(), std::invalid_argument);
  EXPECT_NO_THROW(y.detach().set_requires_grad());
}

// The pattern of one DCGAN step (pytorch/examples dcgan): D on real, D on detached fake, then G
// through D, each a separate backward; gradients of D and G stay separate.
TEST(Autograd, GanStepPattern) {
  Tensor g_w = param({0.5f}, {1, 1});   // generator: fake = z * g_w
  Tensor d_w = param({2.0f}, {1, 1});   // discriminator: logit = x * d_w
  Tensor z = Tensor::from_vector({1.0f}, {1, 1});
  Tensor real = Tensor::from_vector({3.0f}, {1, 1});
  Tensor ones = Tensor::ones({1, 1}), zeros = Tensor::zeros({1, 1});

  Tensor fake = matmul(z, g_w);
  // D step: real and detached fake.
  bce_with_logits(matmul(real, d_w), ones).backward();
  bce_with_logits(matmul(fake.detach(), d_w), zeros).backward();
  EXPECT_FALSE(g_w.grad().defined()) << "the detached fake must not reach the generator";
  // dL/dd_w = (s(6) - 1) * 3 + (s(1) - 0) * 0.5
  auto s = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  EXPECT_NEAR(d_w.grad().item(), (s(6.0) - 1.0) * 3.0 + s(1.0) * 0.5, 1e-6);

  // G step through D (D's gradient is accumulated too, as in PyTorch, and zeroed before D's next step).
  d_w.zero_grad();
  bce_with_logits(matmul(fake, d_w), ones).backward();
  // dL/dg_w = (s(1) - 1) * d_w * z
  EXPECT_NEAR(g_w.grad().item(), (s(1.0) - 1.0) * 2.0, 1e-6);
  EXPECT_TRUE(d_w.grad().defined());
}

TEST(Autograd, DeepGraphDoesNotOverflowTheStack) {
  Tensor x = param({1.0f}, {1});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add_scalar(y, 0.0f);
  sum(y).backward();
  EXPECT_EQ(x.grad().item(), 1.0f);
}

TEST(Ops, ShapeErrorsNameTheShapes) {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({3, 2});
  try {
    (void)add(a, b);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(matmul(a, a), std::invalid_argument);
  EXPECT_THROW(conv2d(Tensor::ones({1, 2, 5, 5}), Tensor::ones({4, 3, 3, 3})), std::invalid_argument);
  EXPECT_THROW(conv2d(Tensor::ones({1, 1, 2, 2}), Tensor::ones({1, 1, 3, 3})), std::invalid_argument);
  EXPECT_THROW(cross_entropy(Tensor::ones({2, 3}), {0, 3}), std::invalid_argument);
  EXPECT_THROW(embedding(Tensor::ones({4, 2}), {-1}), std::invalid_argument);
  EXPECT_THROW(conv_transpose2d(Tensor::ones({1, 1, 2, 2}), Tensor::ones({1, 1, 3, 3}), Tensor(), {2, 2}, {0, 0}, {2, 2}),
               std::invalid_argument);
  EXPECT_THROW(batch_norm(Tensor::ones({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true), std::invalid_argument);
}

TEST(Ops, ForwardValuesOnSmallCases) {
  // conv2d of a 3x3 ones image with a 2x2 ones kernel and bias 1: every output is 4 + 1.
  Tensor y = conv2d(Tensor::ones({1, 1, 3, 3}), Tensor::ones({1, 1, 2, 2}), Tensor::ones({1}));
  EXPECT_EQ(y.to_vector(), (std::vector<float>(4, 5.0f)));
  // conv_transpose2d of a single 1 with a 2x2 kernel, stride 2: the kernel itself.
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  EXPECT_EQ(conv_transpose2d(Tensor::ones({1, 1, 1, 1}), w, Tensor(), {2, 2}).to_vector(),
            (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(linear(Tensor::from_vector({1, 2}, {1, 2}), Tensor::from_vector({3, 4, 5, 6}, {2, 2}),
                   Tensor::from_vector({1, -1}, {2}))
                .to_vector(),
            (std::vector<float>{12, 16}));
  EXPECT_EQ(cat({Tensor::from_vector({1, 2}, {1, 2}), Tensor::from_vector({3}, {1, 1})}, 1).to_vector(),
            (std::vector<float>{1, 2, 3}));
  EXPECT_NEAR(kl_normal(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})).item(), 0.0f, 1e-7);
  EXPECT_NEAR(kl_normal(Tensor::ones({2, 1}), Tensor::zeros({2, 1}), 1.0f, Reduction::Mean).item(), 0.5f, 1e-6);
  // Reduction::None: the terms, in the input's shape; they add up to Sum's value.
  const Tensor mu = Tensor::from_vector({0, 1, -2, 0.5f}, {2, 2}), lv = Tensor::from_vector({0, 0, 1, -1}, {2, 2});
  const Tensor terms = kl_normal(mu, lv, 2.0f, Reduction::None);
  EXPECT_EQ(terms.shape(), (Shape{2, 2}));
  const std::vector<float> t = terms.to_vector();
  EXPECT_FLOAT_EQ(t[0], 0.0f);
  EXPECT_FLOAT_EQ(t[1], 1.0f);                                             // 2 * 0.5 * 1
  EXPECT_NEAR(t[2], 4.0f + std::exp(1.0f) - 1.0f - 1.0f, 1e-5);            // 2 * 0.5 (4 + e - 1 - 1)
  EXPECT_NEAR(sum(terms).item(), kl_normal(mu, lv, 2.0f, Reduction::Sum).item(), 1e-5);
  const Tensor lx = Tensor::from_vector({-3, 0, 2, 5}, {4}), ly = Tensor::from_vector({0, 0.5f, 1, 0.25f}, {4});
  EXPECT_NEAR(sum(bce_with_logits(lx, ly, Reduction::None)).item(), bce_with_logits(lx, ly, Reduction::Sum).item(), 1e-5);
  EXPECT_NEAR(bce_with_logits(lx, ly, Reduction::None).to_vector()[1], std::log(2.0f), 1e-6);
  EXPECT_NEAR(sum(mse_loss(lx, ly, Reduction::None)).item(), mse_loss(lx, ly, Reduction::Sum).item(), 1e-5);
  EXPECT_THROW(cross_entropy(Tensor::zeros({2, 3}), {0, 1}, Reduction::None), std::invalid_argument);
}

TEST(Ops, RandomOpsAreSeeded) {
  Generator g1(5), g2(5), g3(6);
  EXPECT_EQ(randn({10}, g1).to_vector(), randn({10}, g2).to_vector());
  EXPECT_NE(randn({10}, g1).to_vector(), randn({10}, g3).to_vector());
  // Successive draws do not repeat: the generator moves past the numbers it handed out.
  Generator g(1);
  EXPECT_NE(randn({8}, g).to_vector(), randn({8}, g).to_vector());
  EXPECT_EQ(g.offset(), 16u);
  // Dropout is the identity in eval mode and with p = 0.
  Tensor x = Tensor::ones({4});
  EXPECT_EQ(dropout(x, 0.5f, false, g).to_vector(), x.to_vector());
  EXPECT_EQ(dropout(x, 0.0f, true, g).to_vector(), x.to_vector());
}

}  // namespace
}  // namespace ll
