// test_pix2pix.cpp: models/pix2pix.h: the U-Net's plan and shapes (28 padded to 32, depth 5,
// the skip connections, dropout blocks), the PatchGAN's patches, the configuration's JSON, the L1
// loss and its gradient, that a few steps fit a fixed batch, and that evaluation's dropout masks
// are fixed and leave the training stream alone.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/pix2pix.h"

namespace ll::models {
namespace {

Pix2PixConfig small(int64_t size = 28) {
  Pix2PixConfig c;
  c.size = size;
  c.ngf = 4;
  c.ndf = 4;
  return c;
}

TEST(Pix2Pix, ConfigPadsToAPowerOfTwo) {
  EXPECT_EQ(small(28).padded_size(), 32);
  EXPECT_EQ(small(28).depth(), 5);
  EXPECT_EQ(small(28).dropout_blocks(), 2);
  EXPECT_EQ(small(32).padded_size(), 32);
  EXPECT_EQ(small(256).depth(), 8);
  EXPECT_EQ(small(256).dropout_blocks(), 3);  // the paper's first 3 of 7 decoder blocks
  const Pix2PixConfig c = small();
  EXPECT_EQ(c.to_json(), R"({"channels":1,"model":"pix2pix","ndf":4,"ngf":4,"size":28})");
  const Pix2PixConfig back = Pix2PixConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_THROW(Pix2PixConfig::from_json(R"({"model":"gan","channels":1,"size":28,"ngf":4,"ndf":4})"), std::invalid_argument);
  EXPECT_THROW(Pix2PixConfig::from_json(R"({"model":"pix2pix","channels":2,"size":28,"ngf":4,"ndf":4})"), std::invalid_argument);
  EXPECT_THROW(Pix2PixConfig::from_json("not json"), std::invalid_argument);
}

TEST(Pix2Pix, UNetShapesAndNames) {
  Generator init(1);
  auto drop = std::make_shared<Generator>(2);
  UNetGenerator g(small(), init, drop);
  const auto names = g.named_parameters();
  // Encoder: down0 (conv only, no norm) .. down4 (the 1 x 1 bottleneck, no norm); decoder up0..up4.
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : names) shapes[name] = t.shape();
  EXPECT_EQ(shapes.at("down0.0.weight"), (Shape{4, 1, 4, 4}));
  EXPECT_EQ(shapes.at("down1.1.weight"), (Shape{8}));  // InstanceNorm2d(8), affine
  EXPECT_EQ(shapes.at("down3.0.weight"), (Shape{32, 16, 4, 4}));
  EXPECT_EQ(shapes.at("down4.0.weight"), (Shape{32, 32, 4, 4}));  // 8 * ngf at most
  EXPECT_EQ(shapes.count("down0.1.weight"), 0u);
  // Biases only where no InstanceNorm follows: the first and the bottleneck convolutions, the last.
  EXPECT_EQ(shapes.count("down0.0.bias"), 1u);
  EXPECT_EQ(shapes.count("down1.0.bias"), 0u);
  EXPECT_EQ(shapes.count("down4.0.bias"), 1u);
  EXPECT_EQ(shapes.count("up1.0.bias"), 0u);
  EXPECT_EQ(shapes.count("up4.0.bias"), 1u);
  EXPECT_EQ(shapes.count("down4.1.weight"), 0u);
  EXPECT_EQ(shapes.at("up0.0.weight"), (Shape{32, 32, 4, 4}));  // ConvT (in, out): from the bottleneck
  EXPECT_EQ(shapes.at("up1.0.weight"), (Shape{64, 16, 4, 4}));  // 32 + 32 skip channels in
  EXPECT_EQ(shapes.at("up3.0.weight"), (Shape{16, 4, 4, 4}));
  EXPECT_EQ(shapes.at("up4.0.weight"), (Shape{8, 1, 4, 4}));  // outermost: 2 * ngf -> the image
  Generator data(3);
  const Tensor x = rand({3, 1, 28, 28}, data);
  const Tensor y = g.forward(x);
  EXPECT_EQ(y.shape(), (Shape{3, 1, 28, 28}));
  for (float v : y.to_vector()) EXPECT_TRUE(v > -1.0f && v < 1.0f);  // tanh
  EXPECT_THROW(g.forward(rand({3, 1, 32, 32}, data)), std::invalid_argument);
  // A size that is already a power of two is not padded; 3 channels work too.
  Pix2PixConfig c16 = small(16);
  c16.channels = 3;
  UNetGenerator g16(c16, init, drop);
  EXPECT_EQ(g16.forward(rand({2, 3, 16, 16}, data)).shape(), (Shape{2, 3, 16, 16}));
}

TEST(Pix2Pix, SkipConnectionsCarryTheInput) {
  // Zeroing the bottleneck's weights leaves the outer decoder blocks fed by the skips alone: the
  // output still depends on the input (a plain encoder-decoder would be constant then).
  Generator init(4);
  UNetGenerator g(small(), init, std::make_shared<Generator>(5));
  for (auto& [name, t] : g.named_parameters()) {
    if (name.rfind("down4.", 0) == 0) t.zero_();
  }
  g.eval();  // no dropout: the difference comes from the inputs alone
  Generator data(6);
  const Tensor a = g.forward(rand({1, 1, 28, 28}, data)), b = g.forward(rand({1, 1, 28, 28}, data));
  EXPECT_NE(a.to_vector(), b.to_vector());
}

TEST(Pix2Pix, PatchDiscriminatorGivesOneLogitPerPatch) {
  Generator init(7), data(8);
  PatchDiscriminator d(small(), init);
  const Tensor x = rand({2, 1, 28, 28}, data), y = rand({2, 1, 28, 28}, data);
  EXPECT_EQ(d.forward(x, y).shape(), (Shape{2, 1, 14, 14}));
  EXPECT_EQ(d.named_parameters().at(0).second.shape(), (Shape{4, 2, 4, 4}));  // sees input and output
  EXPECT_THROW(d.forward(x, rand({2, 1, 14, 14}, data)), std::invalid_argument);
  // Patches are local: changing the output's bottom-right corner moves the bottom-right logit and
  // leaves the top-left one nearly alone (only through the InstanceNorm's plane statistics, as the
  // paper's BatchNorm couples its patches through the batch's).
  std::vector<float> yv = y.to_vector();
  for (int64_t r = 20; r < 28; ++r)
    for (int64_t c = 20; c < 28; ++c) yv[static_cast<size_t>(r * 28 + c)] = 5.0f;
  const std::vector<float> a = d.forward(x, y).to_vector();
  const std::vector<float> b = d.forward(x, Tensor::from_vector(yv, y.shape())).to_vector();
  const double near = std::abs(a[13 * 14 + 13] - b[13 * 14 + 13]), far = std::abs(a[0] - b[0]);
  EXPECT_GT(near, 0.0);
  EXPECT_LT(far, 0.2 * near) << "near " << near << " far " << far;
}

TEST(Pix2Pix, L1LossAndItsGradient) {
  Tensor a = Tensor::from_vector({1.0f, -2.0f, 0.5f, 3.0f}, {4});
  a.set_requires_grad();
  const Tensor b = Tensor::from_vector({0.0f, 1.0f, 0.5f, 1.0f}, {4});
  const Tensor l = l1_loss(a, b);
  EXPECT_FLOAT_EQ(l.item(), (1.0f + 3.0f + 0.0f + 2.0f) / 4.0f);
  l.backward();
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{0.25f, -0.25f, 0.0f, 0.25f}));
}

TEST(Pix2Pix, StepsFitAFixedBatchAndL1OnlySkipsD) {
  Generator init(9), data(10);
  auto drop = std::make_shared<Generator>(11);
  UNetGenerator g(small(), init, drop);
  PatchDiscriminator d(small(), init);
  optim::Adam opt_g(g.parameters(), {.lr = 2e-3, .beta1 = 0.5});
  optim::Adam opt_d(d.parameters(), {.lr = 2e-4, .beta1 = 0.5});
  const Tensor x = add_scalar(scale(rand({4, 1, 28, 28}, data), 2.0f), -1.0f);
  const Tensor y = neg(x);  // a translation the U-Net can learn: the negative
  const Pix2PixStepResult first = pix2pix_train_step(g, d, opt_g, opt_d, x, y, 100.0f, 1.0f);
  EXPECT_GT(first.loss_d, 0.0);
  EXPECT_GT(first.loss_gan, 0.0);
  EXPECT_GT(first.d_real, 0.0);
  Pix2PixStepResult last = first;
  for (int i = 0; i < 30; ++i) last = pix2pix_train_step(g, d, opt_g, opt_d, x, y, 100.0f, 1.0f);
  EXPECT_LT(last.l1, 0.8 * first.l1) << first.l1 << " -> " << last.l1;
  // gan_weight 0: D is not run, so its parameters and optimizer do not move.
  const std::vector<float> before = d.parameters()[0].to_vector();
  const Pix2PixStepResult r = pix2pix_train_step(g, d, opt_g, opt_d, x, y, 100.0f, 0.0f);
  EXPECT_EQ(r.loss_d, 0.0);
  EXPECT_EQ(r.loss_gan, 0.0);
  EXPECT_GT(r.l1, 0.0);
  EXPECT_EQ(d.parameters()[0].to_vector(), before);
}

TEST(Pix2Pix, TranslateUsesFixedDropoutMasksAndKeepsTheTrainingStream) {
  Generator init(12), data(13);
  auto drop = std::make_shared<Generator>(14);
  UNetGenerator g(small(), init, drop);
  const Tensor x = rand({5, 1, 28, 28}, data);
  drop->set_offset(1000);
  const Tensor a = pix2pix_translate(g, x, 2, 1, Device::CPU);
  EXPECT_EQ(drop->offset(), 1000u);
  drop->set_offset(5000);
  const Tensor b = pix2pix_translate(g, x, 2, 1, Device::CPU);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_EQ(a.shape(), (Shape{5, 1, 28, 28}));
  // Dropout is on at test time (the paper): another seed gives other masks, other outputs.
  EXPECT_NE(pix2pix_translate(g, x, 2, 2, Device::CPU).to_vector(), a.to_vector());
}

}  // namespace
}  // namespace ll::models
