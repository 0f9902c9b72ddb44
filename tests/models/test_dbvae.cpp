// test_dbvae.cpp: the DB-VAE's sampling weights against hand-computed cases, and its training step.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/dbvae.h"

namespace ll::models {
namespace {

TEST(DebiasWeights, OneUnitByHand) {
  // Values 0, 0, 0, 1 in 2 bins [0, 0.5), [0.5, 1]: shares 3/4 and 1/4.
  // alpha = 0: weights 4/3, 4/3, 4/3, 4 -> / 8 = 1/6, 1/6, 1/6, 1/2.
  const std::vector<double> w = debias_weights({0, 0, 0, 1}, 4, 1, 2, 0.0);
  ASSERT_EQ(w.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(w[static_cast<size_t>(i)], 1.0 / 6.0, 1e-12);
  EXPECT_NEAR(w[3], 0.5, 1e-12);
  // alpha = 0.25: 1 / (0.75 + 0.25) = 1 and 1 / (0.25 + 0.25) = 2 -> / 5.
  const std::vector<double> s = debias_weights({0, 0, 0, 1}, 4, 1, 2, 0.25);
  EXPECT_NEAR(s[0], 0.2, 1e-12);
  EXPECT_NEAR(s[3], 0.4, 1e-12);
}

TEST(DebiasWeights, TheProductOverUnits) {
  // Two units, 4 images (rows): unit 0 = 0, 0, 0, 1 (shares 3/4, 3/4, 3/4, 1/4);
  // unit 1 = 0, 1, 1, 1 (shares 1/4, 3/4, 3/4, 3/4); 2 bins, alpha 0.
  // Products of 1/share: 16/3, 16/9, 16/9, 16/3 -> sum 128/9 -> 3/8, 1/8, 1/8, 3/8.
  const std::vector<double> w = debias_weights({0, 0, 0, 1, 0, 1, 1, 1}, 4, 2, 2, 0.0);
  EXPECT_NEAR(w[0], 3.0 / 8.0, 1e-12);
  EXPECT_NEAR(w[1], 1.0 / 8.0, 1e-12);
  EXPECT_NEAR(w[2], 1.0 / 8.0, 1e-12);
  EXPECT_NEAR(w[3], 3.0 / 8.0, 1e-12);
  // A constant unit (all in one bin) changes nothing; a large alpha makes the weights uniform.
  const std::vector<double> c = debias_weights({0, 5, 0, 5, 0, 5, 1, 5}, 4, 2, 2, 0.0);
  EXPECT_NEAR(c[3], 0.5, 1e-12);
  const std::vector<double> u = debias_weights({0, 0, 0, 1}, 4, 1, 2, 1e9);
  for (double v : u) EXPECT_NEAR(v, 0.25, 1e-9);
}

TEST(DebiasWeights, BadArgumentsAreRefused) {
  EXPECT_THROW(debias_weights({0, 1}, 2, 1, 0, 0.1), std::invalid_argument);
  EXPECT_THROW(debias_weights({0, 1}, 2, 1, 2, -1.0), std::invalid_argument);
  EXPECT_THROW(debias_weights({0, 1, 2}, 2, 1, 2, 0.1), std::invalid_argument);
}

TEST(DbVae, StepTrainsTheDecoderOnlyOnPositivesAndOnlyWhenAsked) {
  DbVaeConfig c;
  c.height = c.width = 4;
  c.hidden = 8;
  c.latent_dim = 2;
  Generator init(3), noise(3, 1);
  DbVae model(c, init);
  optim::Adam adam(model.parameters(), {.lr = 1e-2});
  Generator data(9);
  const Tensor x = rand({6, 1, 4, 4}, data);
  const DbVaeStepResult off = dbvae_train_step(model, adam, x, 3, false, noise);
  EXPECT_EQ(off.vae, 0.0);
  EXPECT_DOUBLE_EQ(off.loss, off.classification);
  // The decoder had no gradient without the VAE term.
  for (const auto& [name, p] : model.named_parameters()) {
    if (name.rfind("fc3.", 0) == 0 || name.rfind("fc4.", 0) == 0) {
      if (p.grad().defined()) {
        for (float g : p.grad().to_vector()) EXPECT_EQ(g, 0.0f) << name;
      }
    }
  }
  const DbVaeStepResult on = dbvae_train_step(model, adam, x, 3, true, noise);
  EXPECT_GT(on.vae, 0.0);
  EXPECT_NEAR(on.loss, on.classification + on.vae, 1e-5);
  // Loss falls over a few steps on a fixed batch.
  double first = on.loss, last = 0;
  for (int i = 0; i < 30; ++i) last = dbvae_train_step(model, adam, x, 3, true, noise).loss;
  EXPECT_LT(last, first);
  EXPECT_THROW(dbvae_train_step(model, adam, x, 7, true, noise), std::invalid_argument);
}

}  // namespace
}  // namespace ll::models
