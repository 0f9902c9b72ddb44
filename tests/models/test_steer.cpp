// test_steer.cpp: the image edits of the GAN walks (models/steer.h) against hand-computed cases, the
// walk's codes and gradient, and a learned walk on a tiny generator that beats w = 0 and a random
// direction of the same norm.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/ops.h"
#include "models/gan.h"
#include "models/steer.h"

namespace ll::models {
namespace {

// 3x3: 0.1 0.2 0.3 / 0.4 0.5 0.6 / 0.7 0.8 0.9
std::vector<float> ramp3() { return {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f}; }

void expect_plane(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << what << " at " << i;
}

TEST(SteerEdits, ShiftByWholeAndHalfPixels) {
  const auto in = ramp3();
  std::vector<float> out(9), mask(9);
  // +1 px right: out(y, x) = in(y, x - 1); the left column has no source.
  apply_edit(SteerEdit::ShiftX, in.data(), 1, 3, 3, 1.0, out.data(), mask.data());
  expect_plane(out, {0, 0.1f, 0.2f, 0, 0.4f, 0.5f, 0, 0.7f, 0.8f}, "shift-x +1");
  expect_plane(mask, {0, 1, 1, 0, 1, 1, 0, 1, 1}, "shift-x +1 mask");
  // +0.5 px: the mean of the two neighbours; the left column samples x = -0.5, outside.
  apply_edit(SteerEdit::ShiftX, in.data(), 1, 3, 3, 0.5, out.data(), mask.data());
  expect_plane(out, {0, 0.15f, 0.25f, 0, 0.45f, 0.55f, 0, 0.75f, 0.85f}, "shift-x +0.5");
  expect_plane(mask, {0, 1, 1, 0, 1, 1, 0, 1, 1}, "shift-x +0.5 mask");
  // -1 px up: out(y, x) = in(y + 1, x); the bottom row has no source.
  apply_edit(SteerEdit::ShiftY, in.data(), 1, 3, 3, -1.0, out.data(), mask.data());
  expect_plane(out, {0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 0, 0, 0}, "shift-y -1");
  expect_plane(mask, {1, 1, 1, 1, 1, 1, 0, 0, 0}, "shift-y -1 mask");
  // 0.25 px down: 3/4 of the pixel and 1/4 of the one above.
  apply_edit(SteerEdit::ShiftY, in.data(), 1, 3, 3, 0.25, out.data(), mask.data());
  EXPECT_NEAR(out[4], 0.75 * 0.5 + 0.25 * 0.2, 1e-6);
  EXPECT_EQ(mask[1], 0.0f);
  // a = 0 is the identity.
  apply_edit(SteerEdit::ShiftX, in.data(), 1, 3, 3, 0.0, out.data(), mask.data());
  expect_plane(out, in, "shift 0");
  expect_plane(mask, std::vector<float>(9, 1.0f), "shift 0 mask");
}

TEST(SteerEdits, ZoomAboutTheCentre) {
  const auto in = ramp3();
  std::vector<float> out(9), mask(9);
  apply_edit(SteerEdit::Zoom, in.data(), 1, 3, 3, 0.0, out.data(), mask.data());
  expect_plane(out, in, "zoom x1");
  // x2: out(y, x) = in(1 + (y - 1) / 2, 1 + (x - 1) / 2): corners are the means of 2x2 blocks.
  apply_edit(SteerEdit::Zoom, in.data(), 1, 3, 3, std::log(2.0), out.data(), mask.data());
  expect_plane(out, {0.3f, 0.35f, 0.4f, 0.45f, 0.5f, 0.55f, 0.6f, 0.65f, 0.7f}, "zoom x2");
  expect_plane(mask, std::vector<float>(9, 1.0f), "zoom x2 mask");
  // x0.5 on 5x5 (value = index / 25): out(y, x) = in(2 + 2 (y - 2), 2 + 2 (x - 2)); the border
  // samples outside the image.
  std::vector<float> in5(25), out5(25), mask5(25);
  for (int i = 0; i < 25; ++i) in5[static_cast<size_t>(i)] = static_cast<float>(i) / 25.0f;
  apply_edit(SteerEdit::Zoom, in5.data(), 1, 5, 5, std::log(0.5), out5.data(), mask5.data());
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 5; ++x) {
      const bool inside = y >= 1 && y <= 3 && x >= 1 && x <= 3;
      const size_t u = static_cast<size_t>(y * 5 + x);
      EXPECT_EQ(mask5[u], inside ? 1.0f : 0.0f) << y << "," << x;
      const float want = inside ? static_cast<float>((2 + 2 * (y - 2)) * 5 + (2 + 2 * (x - 2))) / 25.0f : 0.0f;
      EXPECT_NEAR(out5[u], want, 1e-6) << y << "," << x;
    }
  }
}

TEST(SteerEdits, BrightnessAddsAndClampsEveryChannel) {
  const std::vector<float> in{0.1f, 0.8f, 0.5f, 0.0f};  // 2 channels of 1x2
  std::vector<float> out(4), mask(4);
  apply_edit(SteerEdit::Brightness, in.data(), 2, 1, 2, 0.3, out.data(), mask.data());
  expect_plane(out, {0.4f, 1.0f, 0.8f, 0.3f}, "brightness +0.3");
  expect_plane(mask, {1, 1, 1, 1}, "brightness mask");
  apply_edit(SteerEdit::Brightness, in.data(), 2, 1, 2, -0.3, out.data(), mask.data());
  expect_plane(out, {0.0f, 0.5f, 0.2f, 0.0f}, "brightness -0.3");
}

TEST(SteerEdits, ShiftActsOnEveryChannelAndTheBatch) {
  // Two images of 2 channels of 1x3, shifted by +1 and -1.
  const std::vector<float> in{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 0.2f, 0.4f, 0.6f};
  std::vector<float> out, mask;
  apply_edit_batch(SteerEdit::ShiftX, in, 2, 2, 1, 3, {1.0f, -1.0f}, out, mask);
  expect_plane(out, {0, 0.1f, 0.2f, 0, 0.4f, 0.5f, 0.8f, 0.9f, 0, 0.4f, 0.6f, 0}, "batch shift");
  EXPECT_THROW(apply_edit_batch(SteerEdit::ShiftX, in, 2, 2, 1, 3, {1.0f}, out, mask), std::invalid_argument);
  EXPECT_THROW(parse_steer_edit("rotate"), std::invalid_argument);
  EXPECT_EQ(parse_steer_edit("zoom"), SteerEdit::Zoom);
}

TEST(SteerEdits, StatisticsMeasureTheEdit) {
  // One bright pixel at (1, 2) of 4x4: centroid x 2, y 1; shifted right by 1, x 3.
  std::vector<float> img(16, 0.0f), out(16), mask(16);
  img[1 * 4 + 2] = 1.0f;
  EXPECT_NEAR(edit_statistic(SteerEdit::ShiftX, img.data(), 1, 4, 4), 2.0, 1e-12);
  EXPECT_NEAR(edit_statistic(SteerEdit::ShiftY, img.data(), 1, 4, 4), 1.0, 1e-12);
  apply_edit(SteerEdit::ShiftX, img.data(), 1, 4, 4, 1.0, out.data(), mask.data());
  EXPECT_NEAR(edit_statistic(SteerEdit::ShiftX, out.data(), 1, 4, 4), 3.0, 1e-12);
  EXPECT_NEAR(edit_statistic(SteerEdit::Brightness, img.data(), 1, 4, 4), 1.0 / 16, 1e-12);
  // Two pixels 2 apart: radius of gyration 1 about their midpoint.
  std::vector<float> two(16, 0.0f);
  two[1 * 4 + 0] = 1.0f;
  two[1 * 4 + 2] = 1.0f;
  EXPECT_NEAR(edit_statistic(SteerEdit::Zoom, two.data(), 1, 4, 4), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(edit_statistic(SteerEdit::ShiftX, std::vector<float>(16, 0.0f).data(), 1, 4, 4)));
}

// A random generator has no linear walk to find: the direction that brightens G(z) differs from z
// to z, the gradients of the objective cancel over a batch, and Adam's w goes nowhere. This one has
// one: besides DCGAN's small random weights (texture that varies with every z_i), z_0 feeds a
// channel that every later layer spreads over the whole image, so that z_0 sets the brightness.
void brightness_generator(GanGenerator& g) {
  NoGradGuard no_grad;
  auto sd = g.state_dict();
  auto set = [&](const std::string& name, const std::vector<int64_t>& index, float value) {
    Tensor t = sd.at(name);
    std::vector<float> v = t.to_vector();
    int64_t flat = 0;
    for (size_t k = 0; k < index.size(); ++k) flat = flat * t.size(static_cast<int64_t>(k)) + index[k];
    v[static_cast<size_t>(flat)] = value;
    t.copy_(Tensor::from_vector(v, t.shape()));
  };
  // Channel 0 carries z_0 + 3 and channel 1 the constant 3 (both above ReLU's kink); the last layer
  // takes their difference, so the image is (tanh(z_0 / 2 + texture) + 1) / 2.
  for (int64_t y = 0; y < 7; ++y) {
    for (int64_t x = 0; x < 7; ++x) {
      for (int64_t i = 0; i < 8; ++i) set("main.0.weight", {i, 1, y, x}, 0.0f);
      set("main.0.weight", {0, 0, y, x}, 1.0f);
    }
  }
  set("main.1.bias", {0}, 3.0f);  // BatchNorm's shift
  set("main.1.bias", {1}, 3.0f);
  for (int64_t y = 0; y < 4; ++y) {
    for (int64_t x = 0; x < 4; ++x) {
      set("main.3.weight", {0, 0, y, x}, 0.25f);  // 4 taps of each pixel: the value carried over
      set("main.3.weight", {1, 1, y, x}, 0.25f);
      set("main.6.weight", {0, 0, y, x}, 0.125f);
      set("main.6.weight", {1, 0, y, x}, -0.125f);
    }
  }
}

GanConfig tiny_config() {
  GanConfig c;  // dcgan28
  c.nz = 8;
  c.ngf = 8;
  c.ndf = 8;
  return c;
}

TEST(SteerWalk, CodesAndGradientReachOnlyW) {
  Generator init(1);
  GanGenerator g(tiny_config(), init);
  brightness_generator(g);
  g.eval();
  Generator noise(2);
  const Tensor z = randn({3, 8}, noise);
  Tensor w = randn({1, 8}, noise);
  w.set_requires_grad(true);
  const std::vector<float> a{0.5f, -1.0f, 2.0f};
  const Tensor zw = walk_codes(z, a, w);
  const auto zv = z.to_vector(), wv = w.to_vector(), out = zw.to_vector();
  for (int n = 0; n < 3; ++n)
    for (int d = 0; d < 8; ++d) EXPECT_NEAR(out[n * 8 + d], zv[n * 8 + d] + a[n] * wv[d], 1e-6);
  for (Tensor p : g.parameters()) p.set_requires_grad(false);
  steer_loss(g, SteerEdit::ShiftX, z, a, w, {}).backward();
  ASSERT_TRUE(w.grad().defined());  // through the generator's input gradients
  double norm = 0;
  for (float v : w.grad().to_vector()) norm += std::fabs(v);
  EXPECT_GT(norm, 0.0);
  for (Tensor p : g.parameters()) EXPECT_FALSE(p.grad().defined());
  // The gradient is the loss's: central differences along the gradient itself (eval-mode BatchNorm
  // must be differentiated with its running statistics as constants).
  {
    const std::vector<float> gv = w.grad().to_vector();
    double analytic = 0;
    for (float v : gv) analytic += static_cast<double>(v) * v;
    const float h = 1e-2f / static_cast<float>(std::sqrt(analytic));
    std::vector<float> plus = wv, minus = wv;
    for (size_t i = 0; i < wv.size(); ++i) plus[i] += h * gv[i], minus[i] -= h * gv[i];
    NoGradGuard no_grad;
    const double lp = steer_loss(g, SteerEdit::ShiftX, z, a, Tensor::from_vector(plus, {1, 8}), {}).item();
    const double lm = steer_loss(g, SteerEdit::ShiftX, z, a, Tensor::from_vector(minus, {1, 8}), {}).item();
    const double numeric = (lp - lm) / (2 * h);
    EXPECT_NEAR(numeric, analytic, 0.02 * analytic + 1e-6);
  }
  // At w = 0 the loss is that of no walk: the edit's own change, > 0 for a != 0.
  const Tensor w0 = Tensor::zeros({1, 8});
  EXPECT_GT(steer_loss(g, SteerEdit::Brightness, z, {0.3f, 0.3f, 0.3f}, w0, {}).item(), 0.0f);
  EXPECT_NEAR(steer_loss(g, SteerEdit::Brightness, z, {0.0f, 0.0f, 0.0f}, w0, {}).item(), 0.0f, 1e-12);
}

TEST(SteerWalk, LearnedWalkBeatsNoWalkAndARandomDirection) {
  Generator init(4);
  GanGenerator g(tiny_config(), init);
  brightness_generator(g);
  SteerTrainOptions o;
  o.edit = SteerEdit::Brightness;
  o.lo = -0.2;
  o.hi = 0.2;
  o.steps = 100;
  o.batch = 8;
  o.lr = 0.1;
  o.seed = 7;
  o.log_every = 20;
  const SteerTrainResult r = train_linear_walk(g, o);
  EXPECT_TRUE(g.is_training());  // restored
  for (Tensor p : g.parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
  ASSERT_EQ(r.loss.size(), 5u);
  EXPECT_LT(r.loss.back(), 0.5 * r.loss.front());
  const auto wv = r.w.to_vector();
  double n2 = 0;
  for (float v : wv) n2 += static_cast<double>(v) * v;
  // Measured on other codes, at the training range's ends, against a random direction of |w|.
  Generator rg(9), eg(10);
  std::vector<float> rv = randn({1, 8}, rg).to_vector();
  double r2 = 0;
  for (float v : rv) r2 += static_cast<double>(v) * v;
  for (float& v : rv) v = static_cast<float>(v * std::sqrt(n2 / r2));
  const Tensor z = randn({32, 8}, eg);
  const auto pts = measure_walk(g, o.edit, z, r.w, Tensor::from_vector(rv, {1, 8}), {o.lo, 0.0, o.hi}, 16);
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_NEAR(pts[1].mse_learned, 0.0, 1e-12);
  for (size_t i : {size_t{0}, size_t{2}}) {
    EXPECT_LT(pts[i].mse_learned, 0.5 * pts[i].mse_identity) << "a " << pts[i].a;
    EXPECT_LT(pts[i].mse_learned, 0.5 * pts[i].mse_random) << "a " << pts[i].a;
    // Most of the edit's change of the mean intensity (pts[1]: a = 0, G(z) itself).
    const double done = (pts[i].achieved - pts[1].achieved) / (pts[i].target - pts[1].achieved);
    EXPECT_GT(done, 0.7) << "a " << pts[i].a << ": " << pts[i].achieved << " for " << pts[i].target;
    EXPECT_LT(done, 1.3) << "a " << pts[i].a << ": " << pts[i].achieved << " for " << pts[i].target;
  }
}

TEST(SteerWalk, NonlinearWalkStartsAtTheIdentityAndLearnsTheEdit) {
  Generator init(4), finit(6);
  GanGenerator g(tiny_config(), init);
  brightness_generator(g);
  NonlinearWalk f(8, 16, 0.05, -0.05, finit);
  EXPECT_EQ(f.steps_for(0.2), 4);
  EXPECT_EQ(f.steps_for(-0.1), -2);
  EXPECT_EQ(f.steps_for(0.01), 0);
  Generator eg(10);
  const Tensor z = randn({32, 8}, eg);
  {
    NoGradGuard no_grad;
    EXPECT_EQ(f.walk(z, 3).to_vector(), z.to_vector());  // the last layers start at 0
  }
  SteerTrainOptions o;
  o.edit = SteerEdit::Brightness;
  o.lo = -0.2;
  o.hi = 0.2;
  o.steps = 100;
  o.batch = 8;
  o.lr = 0.003;
  o.seed = 7;
  o.log_every = 20;
  const SteerTrainResult r = train_nonlinear_walk(g, f, o);
  ASSERT_EQ(r.loss.size(), 5u);
  EXPECT_LT(r.loss.back(), 0.5 * r.loss.front());
  const WalkFn walked = [&f](const Tensor& zb, double a) { return f.walk(zb, f.steps_for(a)); };
  const WalkFn still = [](const Tensor& zb, double) { return zb; };
  const auto pts = measure_walk(g, o.edit, z, walked, still, {-0.2, 0.0, 0.2}, 16);
  for (size_t i : {size_t{0}, size_t{2}}) {
    EXPECT_LT(pts[i].mse_learned, 0.5 * pts[i].mse_identity) << "a " << pts[i].a;
    EXPECT_NEAR(pts[i].mse_random, pts[i].mse_identity, 1e-9);  // "still" is no walk
  }
}

}  // namespace
}  // namespace ll::models
