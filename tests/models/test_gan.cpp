// test_gan.cpp: the DCGAN generator and discriminator: PyTorch names and shapes, DCGAN's
// initialization, the conditional model, and a training step that moves the discriminator.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/ops.h"
#include "models/gan.h"

namespace ll::models {
namespace {

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (auto& [n, t] : m.state_dict()) out.push_back(n);
  return out;
}

double stddev(const Tensor& t, double mean) {
  double s = 0;
  const auto v = t.to_vector();
  for (float x : v) s += (x - mean) * (x - mean);
  return std::sqrt(s / static_cast<double>(v.size()));
}

TEST(Gan, Dcgan64MatchesPytorchExamples) {
  GanConfig c;
  c.arch = GanArch::DCGAN64;
  c.channels = 3;
  Generator init(0);
  GanGenerator g(c, init);
  GanDiscriminator d(c, init);
  const auto sd = g.state_dict();
  // pytorch/examples dcgan: netG.main.{0,3,6,9,12} ConvTranspose2d without bias, BatchNorm at 1,4,7,10.
  EXPECT_EQ(sd.at("main.0.weight").shape(), (Shape{100, 512, 4, 4}));
  EXPECT_EQ(sd.at("main.1.running_var").shape(), (Shape{512}));
  EXPECT_EQ(sd.at("main.12.weight").shape(), (Shape{64, 3, 4, 4}));
  EXPECT_EQ(sd.count("main.0.bias"), 0u);
  EXPECT_EQ(g.num_parameters(), 3576704);  // pytorch/examples' netG with nc = 3
  const auto dd = d.state_dict();
  EXPECT_EQ(dd.at("main.0.weight").shape(), (Shape{64, 3, 4, 4}));
  EXPECT_EQ(dd.at("main.2.weight").shape(), (Shape{128, 64, 4, 4}));
  EXPECT_EQ(dd.at("main.11.weight").shape(), (Shape{1, 512, 4, 4}));
  EXPECT_EQ(d.num_parameters(), 2765568);  // pytorch/examples' netD with nc = 3
  (void)names;

  Generator noise(1);
  NoGradGuard no_grad;
  const Tensor img = g.forward(randn({2, 100}, noise));
  EXPECT_EQ(img.shape(), (Shape{2, 3, 64, 64}));
  for (float v : img.to_vector()) ASSERT_TRUE(v >= -1.0f && v <= 1.0f);
  EXPECT_EQ(d.forward(img).shape(), (Shape{2}));
}

TEST(Gan, DcganInitialization) {
  GanConfig c;  // dcgan28
  Generator init(3);
  GanGenerator g(c, init);
  const auto sd = g.state_dict();
  EXPECT_NEAR(stddev(sd.at("main.0.weight"), 0.0), 0.02, 0.001);
  EXPECT_NEAR(stddev(sd.at("main.1.weight"), 1.0), 0.02, 0.005);  // BatchNorm weight ~ N(1, 0.02)
  for (float v : sd.at("main.1.bias").to_vector()) EXPECT_EQ(v, 0.0f);
}

TEST(Gan, Dcgan28AndConditionalShapes) {
  for (GanArch arch : {GanArch::DCGAN28, GanArch::CGAN28}) {
    GanConfig c;
    c.arch = arch;
    c.ngf = c.ndf = 8;
    Generator init(4), noise(5);
    GanGenerator g(c, init);
    GanDiscriminator d(c, init);
    const std::vector<int32_t> labels = c.conditional() ? std::vector<int32_t>{0, 3, 9} : std::vector<int32_t>{};
    const Tensor img = g.forward(randn({3, 100}, noise), labels);
    EXPECT_EQ(img.shape(), (Shape{3, 1, 28, 28})) << gan_arch_name(arch);
    EXPECT_EQ(d.forward(img, labels).shape(), (Shape{3})) << gan_arch_name(arch);
    if (c.conditional()) {
      EXPECT_EQ(g.state_dict().at("label_emb.weight").shape(), (Shape{10, 10}));
      EXPECT_EQ(d.state_dict().at("label_emb.weight").shape(), (Shape{10, 28 * 28}));
      EXPECT_THROW(g.forward(randn({3, 100}, noise)), std::invalid_argument);  // labels missing
      // The label changes the image: the same z with two classes.
      NoGradGuard no_grad;
      const Tensor z = randn({1, 100}, noise);
      EXPECT_NE(g.forward(z, {1}).to_vector(), g.forward(z, {2}).to_vector());
    } else {
      EXPECT_THROW(g.forward(randn({3, 100}, noise), {1, 2, 3}), std::invalid_argument);
    }
  }
}

TEST(Gan, Gan128IsTheStudysArchitecture) {
  GanConfig c;
  c.arch = GanArch::GAN128;
  c.channels = 3;
  Generator init(9), noise(10);
  GanGenerator g(c, init);
  GanDiscriminator d(c, init);
  // G: Linear 100 -> 8192, 4 x ConvT 128 -> 128 (4x4), Conv 128 -> 3 (8x8), all with biases.
  EXPECT_EQ(g.num_parameters(), (100 * 8192 + 8192) + 4 * (128 * 128 * 16 + 128) + (128 * 3 * 64 + 3));
  // D: Conv 3 -> 128 (3x3), 4 x Conv 128 -> 128 (3x3, stride 2), Linear 8192 -> 1.
  EXPECT_EQ(d.num_parameters(), (3 * 128 * 9 + 128) + 4 * (128 * 128 * 9 + 128) + (8192 + 1));
  EXPECT_EQ(d.state_dict().at("main.2.1.weight").shape(), (Shape{128, 128, 3, 3}));  // pad, conv, lrelu
  // One image (about 5 GMAC through G): the shapes through the asymmetric padding; the training
  // step itself is the same code as dcgan28's (TrainingStepMovesTheDiscriminator).
  NoGradGuard no_grad;
  const Tensor img = g.forward(randn({1, 100}, noise));
  EXPECT_EQ(img.shape(), (Shape{1, 3, 128, 128}));
  d.eval();
  EXPECT_EQ(d.forward(img).shape(), (Shape{1}));
}

// The discriminator learns to tell a fixed family of real images from the generator's early
// output: its accuracy moves off 50% within a few steps, and the D step does not move G.
TEST(Gan, TrainingStepMovesTheDiscriminator) {
  GanConfig c;
  c.ngf = c.ndf = 8;
  Generator init(6), noise(7), data(8);
  GanGenerator g(c, init);
  GanDiscriminator d(c, init);
  optim::Adam opt_g(g.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  // A faster D than DCGAN's 2e-4, so that a few steps show it learning.
  optim::Adam opt_d(d.parameters(), {.lr = 2e-3, .beta1 = 0.5, .beta2 = 0.999});
  // Real images: bright horizontal bars on a dark background, in [-1, 1].
  std::vector<float> v(16 * 28 * 28, -1.0f);
  for (int n = 0; n < 16; ++n)
    for (int y = 10 + n % 8; y < 14 + n % 8; ++y)
      for (int x = 2; x < 26; ++x) v[static_cast<size_t>(n * 784 + y * 28 + x)] = 1.0f;
  const Tensor real = Tensor::from_vector(v, {16, 1, 28, 28});
  GanStepResult first, last;
  for (int step = 0; step < 10; ++step) {
    const GanStepResult r = gan_train_step(g, d, opt_g, opt_d, real, {}, randn({16, 100}, noise));
    if (step == 0) first = r;
    last = r;
    ASSERT_TRUE(std::isfinite(r.loss_d) && std::isfinite(r.loss_g));
  }
  EXPECT_GT(last.d_accuracy, 0.8) << "first step accuracy " << first.d_accuracy;
  EXPECT_GT(last.d_real, last.d_fake);
}

// The configuration a GAN run's checkpoints carry: JSON round trips, exact parameter counts, and
// refusals. Its values' JSON types are checked before conversion (get<int64_t>() of 1e300 converts a
// double out of range, undefined behavior), and validate() bounds the networks' sizes, which a
// loader allocates before it compares them with the file's tensors.
TEST(Gan, ConfigJsonAndParameterCounts) {
  for (GanArch arch : {GanArch::DCGAN28, GanArch::CGAN28, GanArch::DCGAN64, GanArch::GAN128}) {
    GanConfig c;
    c.arch = arch;
    c.channels = 3;
    c.nz = 5;
    c.ngf = 3;
    c.ndf = 2;
    c.num_classes = 4;
    Generator init(0);
    EXPECT_EQ(c.generator_parameters(), GanGenerator(c, init).num_parameters()) << gan_arch_name(arch);
    EXPECT_EQ(c.discriminator_parameters(), GanDiscriminator(c, init).num_parameters()) << gan_arch_name(arch);
    const GanConfig back = GanConfig::from_json(c.to_json());
    EXPECT_EQ(back.to_json(), c.to_json());
    EXPECT_EQ(back.arch, arch);
  }
  EXPECT_EQ(GanConfig().to_json(),
            R"({"arch":"dcgan28","channels":1,"model":"gan","ndf":64,"ngf":64,"num_classes":10,"nz":100})");  // as apps/train_gan.cpp writes it

  auto refusal = [](const std::string& json) {
    try {
      GanConfig::from_json(json);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string base = R"({"arch":"dcgan28","channels":1,"ndf":64,"ngf":64,"nz":)";
  EXPECT_NE(refusal(base + R"(1e300,"num_classes":10})").find("'nz' is not an integer"), std::string::npos);
  EXPECT_NE(refusal(base + R"(2.5,"num_classes":10})").find("'nz' is not an integer"), std::string::npos);
  EXPECT_NE(refusal(base + R"(100})").find("has no 'num_classes'"), std::string::npos);
  EXPECT_NE(refusal(R"({"arch":"dcgan28","channels":1,"ndf":64,"ngf":1000000,"nz":100,"num_classes":10})")
                .find("the generator would have more than 268435456 parameters"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"arch":"dcgan64","channels":1,"ndf":4611686018427387904,"ngf":64,"nz":100,"num_classes":10})")
                .find("the discriminator would have more than 268435456 parameters"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"model":"vae","arch":"dcgan28"})").find("not \"gan\""), std::string::npos);
  EXPECT_NE(refusal(R"({"arch":"dcgan32","channels":1,"ndf":64,"ngf":64,"nz":100,"num_classes":10})")
                .find("unknown GAN architecture 'dcgan32'"),
            std::string::npos);
  EXPECT_NE(refusal("[1]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(refusal("{").find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace ll::models

namespace ll::models {
namespace {

TEST(Gan, LabelsForGeneratedImages) {
  GanConfig c;
  c.arch = GanArch::CGAN28;
  c.num_classes = 3;
  EXPECT_EQ(c.labels(5, -1), (std::vector<int32_t>{0, 1, 2, 0, 1}));
  EXPECT_EQ(c.labels(3, 2), (std::vector<int32_t>{2, 2, 2}));
  try {
    c.labels(2, 3);
    ADD_FAILURE() << "label 3 of 3 classes accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--label 3 is not a class of this GAN (0..2)"), std::string::npos) << e.what();
  }
  GanConfig u;  // dcgan28: unconditional
  EXPECT_TRUE(u.labels(4, -1).empty());
  EXPECT_THROW(u.labels(4, 0), std::invalid_argument);
}

TEST(Gan, ImagesAreTheGeneratorsOutputMappedToUnitRange) {
  GanConfig c;
  c.nz = 8;
  c.ngf = 4;
  c.ndf = 4;
  Generator init(3);
  GanGenerator g(c, init);
  g.eval();
  Generator noise(5);
  const Tensor z = randn({2, c.nz}, noise);
  const std::vector<float> raw = g.forward(z).to_vector(), img = g.images(z).to_vector();
  ASSERT_EQ(raw.size(), img.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_FLOAT_EQ(img[i], (raw[i] + 1.0f) * 0.5f);
    EXPECT_GE(img[i], 0.0f);
    EXPECT_LE(img[i], 1.0f);
  }
}

}  // namespace
}  // namespace ll::models
