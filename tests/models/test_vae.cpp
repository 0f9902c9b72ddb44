// test_vae.cpp: the autoencoder and VAE models: shapes, names, configuration, losses, gradients,
// and a short training run whose loss falls.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops/ops.h"
#include "models/vae.h"
#include "tests/engine/gradcheck.h"

namespace ll::models {
namespace {

VaeConfig small(AeKind kind, Arch arch) {
  VaeConfig c;
  c.kind = kind;
  c.arch = arch;
  c.height = 8;
  c.width = 8;
  c.latent_dim = 3;
  c.hidden = 16;
  c.conv_channels = 4;
  return c;
}

Tensor random_images(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  Generator g(seed);
  return rand({n, c, h, w}, g);  // in (0, 1]
}

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (auto& [n, t] : m.named_parameters()) out.push_back(n);
  return out;
}

TEST(Vae, MlpHasThePytorchExamplesNamesAndShapes) {
  Generator g(0);
  Autoencoder vae(VaeConfig{}, g);  // the defaults: 784-400-20 VAE
  EXPECT_EQ(names(vae), (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc21.weight", "fc21.bias", "fc22.weight",
                                                  "fc22.bias", "fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias"}));
  EXPECT_EQ(vae.state_dict().at("fc1.weight").shape(), (Shape{400, 784}));
  EXPECT_EQ(vae.state_dict().at("fc4.weight").shape(), (Shape{784, 400}));
  EXPECT_EQ(vae.num_parameters(), 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784);
  VaeConfig ae_config;
  ae_config.kind = AeKind::AE;
  Autoencoder ae(ae_config, g);
  EXPECT_EQ(ae.state_dict().count("fc22.weight"), 0u);
}

TEST(Vae, OutputShapesForEveryVariant) {
  for (AeKind kind : {AeKind::AE, AeKind::VAE}) {
    for (Arch arch : {Arch::MLP, Arch::Conv}) {
      for (int64_t channels : {1, 3}) {
        VaeConfig c = small(kind, arch);
        c.channels = channels;
        Generator g(1), noise(2);
        Autoencoder m(c, g);
        const Tensor x = random_images(5, channels, 8, 8, 3);
        const VaeOutput out = m.forward(x, noise);
        const std::string what = c.describe();
        EXPECT_EQ(out.logits.shape(), x.shape()) << what;
        EXPECT_EQ(out.mu.shape(), (Shape{5, 3})) << what;
        EXPECT_EQ(out.z.shape(), (Shape{5, 3})) << what;
        EXPECT_EQ(out.logvar.defined(), kind == AeKind::VAE) << what;
        const Tensor gen = m.generate(Tensor::zeros({2, 3}));
        EXPECT_EQ(gen.shape(), (Shape{2, channels, 8, 8})) << what;
        for (float v : gen.to_vector()) ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << what;
      }
    }
  }
}

TEST(Vae, ConfigRoundTripsAndRejectsBadValues) {
  VaeConfig c = small(AeKind::VAE, Arch::Conv);
  c.beta = 4.0;
  c.recon = Recon::MSE;
  const VaeConfig back = VaeConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.describe(), "vae conv 1x8x8 w4 -> 3 beta=4 mse");
  EXPECT_THROW(VaeConfig::from_json("{"), std::invalid_argument);
  EXPECT_THROW(VaeConfig::from_json("{\"model\": \"gan\"}"), std::invalid_argument);
  std::string bad = c.to_json();
  bad.replace(bad.find("\"latent_dim\":3"), 14, "\"latent_dim\":0");
  EXPECT_THROW(VaeConfig::from_json(bad), std::invalid_argument);
  VaeConfig odd = small(AeKind::VAE, Arch::Conv);
  odd.height = 10;
  try {
    odd.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("divisible by 4"), std::string::npos);
  }
  Generator g(0);
  Autoencoder m(small(AeKind::VAE, Arch::MLP), g);
  EXPECT_THROW(m.forward(random_images(2, 1, 9, 8, 1), g), std::invalid_argument);
}

TEST(Vae, LossIsReconstructionPlusBetaKl) {
  VaeConfig c = small(AeKind::VAE, Arch::MLP);
  c.beta = 3.0;
  Generator g(4);
  Autoencoder m(c, g);
  const Tensor x = random_images(6, 1, 8, 8, 5);
  const Tensor eps = Tensor::zeros({6, 3});
  const VaeOutput out = m.forward_with_noise(x, eps);
  const VaeLoss l = m.loss(x, out);
  // By hand: BCE summed over pixels and images; KL summed over dimensions and images.
  const std::vector<float> logits = out.logits.to_vector(), xv = x.to_vector(), mu = out.mu.to_vector(),
                           lv = out.logvar.to_vector();
  double recon = 0, kl = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    recon -= xv[i] * std::log(s) + (1 - xv[i]) * std::log(1 - s);
  }
  for (size_t i = 0; i < mu.size(); ++i) kl += -0.5 * (1 + lv[i] - mu[i] * mu[i] - std::exp(static_cast<double>(lv[i])));
  EXPECT_NEAR(l.recon_sum, recon, 1e-4 * recon);
  EXPECT_NEAR(l.kl_sum, kl, 1e-4 * std::fabs(kl) + 1e-6);
  EXPECT_NEAR(l.loss.item(), recon + 3.0 * kl, 1e-4 * recon);
  EXPECT_EQ(l.n, 6);
  // With eps = 0 the code is the mean.
  EXPECT_EQ(out.z.to_vector(), out.mu.to_vector());
}

TEST(Vae, AutoencoderHasNoKlAndIsDeterministic) {
  Generator g(5), n1(1), n2(2);
  Autoencoder ae(small(AeKind::AE, Arch::Conv), g);
  const Tensor x = random_images(3, 1, 8, 8, 6);
  const VaeOutput a = ae.forward(x, n1), b = ae.forward(x, n2);
  EXPECT_EQ(a.logits.to_vector(), b.logits.to_vector());
  EXPECT_EQ(ae.loss(x, a).kl_sum, 0.0);
}

// The whole model through the gradient check: every parameter of the MLP and conv VAEs.
TEST(Vae, WholeModelGradientsMatchFiniteDifferences) {
  for (Arch arch : {Arch::MLP, Arch::Conv}) {
    VaeConfig c = small(AeKind::VAE, arch);
    c.height = 4;
    c.width = 4;
    c.hidden = 6;
    c.conv_channels = 2;
    c.latent_dim = 2;
    Generator g(7);
    auto m = std::make_shared<Autoencoder>(c, g);
    const Tensor x = random_images(2, 1, 4, 4, 8);
    Generator eg(9);
    const Tensor eps = randn({2, 2}, eg);
    std::vector<Tensor> params = m->parameters();
    auto f = [m, x, eps] { return m->loss(x, m->forward_with_noise(x, eps)).loss; };
    // Summed BCE makes the loss larger; the relative tolerance does the work.
    test::GradCheckOptions opt;
    opt.atol = 1e-3;
    EXPECT_TRUE(test::check_gradients(params, f, opt)) << arch_name(arch);
  }
}

TEST(Vae, ShortTrainingRunLossFalls) {
  // 64 images of a bright bar at one of 4 heights: a VAE learns them in a few dozen steps.
  std::vector<float> v(64 * 64, 0.05f);
  for (int n = 0; n < 64; ++n) {
    const int row = 2 * (n % 4);
    for (int x = 0; x < 8; ++x) v[static_cast<size_t>(n * 64 + row * 8 + x)] = 0.95f;
  }
  const Tensor x = Tensor::from_vector(v, {64, 1, 8, 8});
  for (Arch arch : {Arch::MLP, Arch::Conv}) {
    Generator g(10), noise(11);
    Autoencoder m(small(AeKind::VAE, arch), g);
    optim::Adam adam(m.parameters(), {.lr = 3e-3});
    double first = 0, last = 0;
    for (int step = 0; step < 80; ++step) {
      const VaeLoss l = train_step(m, adam, x, noise);
      const double per_image = (l.recon_sum + l.kl_sum) / static_cast<double>(l.n);
      if (step == 0) first = per_image;
      last = per_image;
    }
    // Pixels of 0.05 and 0.95 cannot be reconstructed below their entropy: 64 * H(0.05) nats per
    // image. Half of the loss above that floor must be gone.
    const double floor = -64.0 * (0.05 * std::log(0.05) + 0.95 * std::log(0.95));
    EXPECT_LT(last - floor, 0.5 * (first - floor)) << arch_name(arch) << ": loss per image " << first << " -> " << last
                                                   << " (floor " << floor << ")";
  }
}

// The configuration in a checkpoint's metadata is built into a model before the file's tensors are
// compared with it, so validate() bounds the model's size: num_parameters() is exact, and a
// configuration whose sizes multiply past int64 (signed overflow in the constructor) or past 2^28
// parameters (an allocation without bound, from a few bytes of JSON) is refused while parsing.
TEST(Vae, ConfigParameterCountIsExactAndBounded) {
  for (AeKind kind : {AeKind::AE, AeKind::VAE}) {
    for (Arch arch : {Arch::MLP, Arch::Conv}) {
      VaeConfig c = small(kind, arch);
      c.channels = 3;
      c.width = 12;
      Generator g(0);
      EXPECT_EQ(c.num_parameters(), Autoencoder(c, g).num_parameters()) << c.describe();
    }
  }
  EXPECT_EQ(VaeConfig().num_parameters(), 652824);  // pytorch/examples' VAE, 784-400-20

  const std::string ok = VaeConfig().to_json();
  auto with = [&](const std::string& key, const std::string& value) {
    const std::string from = "\"" + key + "\":" + std::to_string(key == "hidden" ? 400 : 28);
    std::string s = ok;
    s.replace(s.find(from), from.size(), "\"" + key + "\":" + value);
    return s;
  };
  for (const std::string& bad : {with("hidden", "1000000000000"), with("height", "4294967296"),
                                 with("height", "9223372036854775807")}) {
    try {
      VaeConfig::from_json(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("more than 268435456 parameters"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(VaeConfig::from_json(with("hidden", "4000")).hidden, 4000);
}

}  // namespace
}  // namespace ll::models
