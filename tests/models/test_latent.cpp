// test_latent.cpp: image selectors, encoding in batches, interpolation paths, PCA and AUROC, each
// against values worked out by hand or by an independent route.
#include <cmath>
#include <functional>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/loader.h"
#include "engine/autograd.h"
#include "models/latent.h"

namespace ll::models {
namespace {

// n 1x4x4 images, image i filled with bytes (i * 37 + pixel * 11) % 256, labels i % 3 except that
// class 2 is absent when `skip2` (labels 0, 1, 0, 1, ...).
data::Dataset tiny_dataset(int64_t n, bool with_labels = true, bool skip2 = false) {
  data::Dataset d;
  d.name = "tiny";
  d.n = n, d.channels = 1, d.height = 4, d.width = 4;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < 16; ++p) d.images.push_back(static_cast<uint8_t>((i * 37 + p * 11) % 256));
  if (with_labels)
    for (int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<int32_t>(skip2 ? i % 2 : i % 3));
  return d;
}

std::string thrown_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

// ---- selectors ----

TEST(SelectImages, GoodForms) {
  const data::Dataset d = tiny_dataset(10);
  EXPECT_EQ(select_images(d, "idx:3,7,0"), (std::vector<int64_t>{3, 7, 0}));
  EXPECT_EQ(select_images(d, "idx:9"), (std::vector<int64_t>{9}));
  EXPECT_EQ(select_images(d, "label:1"), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ(select_images(d, "label:0:2"), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(select_images(d, "label:2:3"), (std::vector<int64_t>{2, 5, 8}));
}

TEST(SelectImages, BadFormsSayWhatIsWrong) {
  const data::Dataset d = tiny_dataset(10);
  const data::Dataset no_labels = tiny_dataset(10, false);
  const data::Dataset no_class2 = tiny_dataset(10, true, true);
  const std::vector<std::pair<std::pair<const data::Dataset*, std::string>, std::string>> cases = {
      {{&d, "3,4"}, "no ':'"},
      {{&d, "pick:3"}, "unknown kind 'pick'"},
      {{&d, "idx:"}, "empty index"},
      {{&d, "idx:1,,2"}, "empty index"},
      {{&d, "idx:1,x"}, "'x' is not a whole number"},
      {{&d, "idx:1.5"}, "not a whole number"},
      {{&d, "idx: 1"}, "not a whole number"},
      {{&d, "idx:10"}, "index 10 is outside"},
      {{&d, "idx:-1"}, "index -1 is outside"},
      {{&d, "idx:99999999999999999999"}, "out of range"},
      {{&d, "label:"}, "empty label"},
      {{&d, "label:a"}, "not a whole number"},
      {{&d, "label:1:0"}, "count must be >= 1"},
      {{&d, "label:1:2:3"}, "too many ':'"},
      {{&d, "label:1:9"}, "only 3 images of class 1"},
      {{&d, "label:7"}, "no images of class 7"},
      {{&no_class2, "label:2"}, "no images of class 2"},
      {{&no_labels, "label:1"}, "has no labels"},
  };
  for (const auto& [input, want] : cases) {
    const auto& [dataset, selector] = input;
    const std::string msg = thrown_message([&] { select_images(*dataset, selector); });
    EXPECT_NE(msg.find(want), std::string::npos) << selector << " -> " << msg;
    EXPECT_NE(msg.find("'" + selector + "'"), std::string::npos) << msg;  // names the selector
  }
}

TEST(SelectRows, IndicesIntoAGeneratedBatch) {
  EXPECT_EQ(select_rows("3,17,0", 20), (std::vector<int64_t>{3, 17, 0}));
  EXPECT_EQ(select_rows("idx:19", 20), (std::vector<int64_t>{19}));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "'' is not an index"},          {"idx:", "'' is not an index"},   {"1,,2", "'' is not an index"},
      {"1,x", "'x' is not an index"},      {"-1", "'-1' is not an index"},   {"20", "index 20 is outside the batch (0..19)"},
      {"99999999999999999999", "is not an index"}, {"label:1", "'label:1' is not an index"},
  };
  for (const auto& [spec, want] : cases) {
    const std::string msg = thrown_message([&] { select_rows(spec, 20); });
    EXPECT_NE(msg.find(want), std::string::npos) << spec << " -> " << msg;
    EXPECT_NE(msg.find("'" + spec + "'"), std::string::npos) << msg;  // names the spec
  }
}

TEST(GatherRows, RowsInTheOrderGiven) {
  const Tensor t = Tensor::from_vector({0, 1, 10, 11, 20, 21}, {3, 2});
  EXPECT_EQ(gather_rows(t, {2, 0, 2}).to_vector(), (std::vector<float>{20, 21, 0, 1, 20, 21}));
  EXPECT_EQ(gather_rows(t, {2, 0, 2}).shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_THROW(gather_rows(t, {3}), std::invalid_argument);
  EXPECT_THROW(gather_rows(t, {}), std::invalid_argument);
}

// ---- paths ----

std::vector<float> row(const Tensor& t, int64_t r) {
  const std::vector<float> v = t.to_vector();
  const int64_t d = t.size(1);
  return {v.begin() + r * d, v.begin() + (r + 1) * d};
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

TEST(Interpolate, LerpEndsAreExactAndMidpointIsTheMean) {
  const std::vector<float> a = {0.1f, -2.5f, 3.3f}, b = {1.7f, 0.2f, -0.9f};
  const Tensor path = interpolate(Tensor::from_vector(a, {3}), Tensor::from_vector(b, {3}), 5, PathMode::Lerp);
  ASSERT_EQ(path.shape(), (Shape{5, 3}));
  EXPECT_EQ(row(path, 0), a);
  EXPECT_EQ(row(path, 4), b);
  for (int j = 0; j < 3; ++j) {
    EXPECT_FLOAT_EQ(row(path, 2)[j], (a[j] + b[j]) / 2);
    EXPECT_FLOAT_EQ(row(path, 1)[j], 0.75f * a[j] + 0.25f * b[j]);
  }
  // Two steps: just the ends.
  const Tensor ends = interpolate(Tensor::from_vector(a, {3}), Tensor::from_vector(b, {3}), 2, PathMode::Slerp);
  EXPECT_EQ(row(ends, 0), a);
  EXPECT_EQ(row(ends, 1), b);
}

TEST(Interpolate, SlerpFollowsTheGreatCircle) {
  // a and b of norm 2 at 90 degrees in a plane of R^3: the path stays at norm 2 and its midpoint is
  // the bisector, 2 (a/2 + b/2) / sqrt(2).
  const std::vector<float> a = {2, 0, 0}, b = {0, 0, 2};
  const Tensor path = interpolate(Tensor::from_vector(a, {3}), Tensor::from_vector(b, {3}), 7, PathMode::Slerp);
  EXPECT_EQ(row(path, 0), a);
  EXPECT_EQ(row(path, 6), b);
  for (int s = 0; s < 7; ++s) {
    EXPECT_NEAR(norm(row(path, s)), 2.0, 1e-6) << s;
    // At t = s / 6 the angle from a is t * pi / 2.
    const double angle = s / 6.0 * std::numbers::pi / 2;
    EXPECT_NEAR(row(path, s)[0], 2 * std::cos(angle), 1e-6);
    EXPECT_NEAR(row(path, s)[2], 2 * std::sin(angle), 1e-6);
    EXPECT_NEAR(row(path, s)[1], 0.0, 1e-7);
  }
}

TEST(Interpolate, SlerpMatchesTheClosedFormForAnyAngleAndNorms) {
  const std::vector<float> a = {1.0f, 2.0f, -0.5f, 0.3f}, b = {-0.4f, 1.1f, 2.0f, -1.5f};
  double dot = 0, na = 0, nb = 0;
  for (int j = 0; j < 4; ++j) dot += a[j] * b[j], na += a[j] * a[j], nb += b[j] * b[j];
  const double w = std::acos(dot / std::sqrt(na * nb));
  const Tensor path = interpolate(Tensor::from_vector(a, {4}), Tensor::from_vector(b, {4}), 4, PathMode::Slerp);
  for (int s = 0; s < 4; ++s) {
    const double t = s / 3.0;
    for (int j = 0; j < 4; ++j) {
      const double want = std::sin((1 - t) * w) / std::sin(w) * a[j] + std::sin(t * w) / std::sin(w) * b[j];
      EXPECT_NEAR(row(path, s)[j], want, 1e-6) << s << "," << j;
    }
  }
}

TEST(Interpolate, ParallelOrZeroCodesFallBackToLerp) {
  for (const auto& [a, b] : std::vector<std::pair<std::vector<float>, std::vector<float>>>{
           {{1, 2, 3}, {2, 4, 6}},     // parallel
           {{1, 2, 3}, {-1, -2, -3}},  // antiparallel: no unique great circle
           {{0, 0, 0}, {1, 0, 0}},     // no direction at all
       }) {
    const Tensor ta = Tensor::from_vector(a, {3}), tb = Tensor::from_vector(b, {3});
    const Tensor slerp = interpolate(ta, tb, 5, PathMode::Slerp), lerp = interpolate(ta, tb, 5, PathMode::Lerp);
    EXPECT_EQ(slerp.to_vector(), lerp.to_vector());
    for (float v : slerp.to_vector()) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(Interpolate, RejectsBadArguments) {
  const Tensor a = Tensor::zeros({3}), b = Tensor::zeros({4});
  EXPECT_THROW(interpolate(a, b, 5, PathMode::Lerp), std::invalid_argument);
  EXPECT_THROW(interpolate(a, a, 1, PathMode::Lerp), std::invalid_argument);
  EXPECT_THROW(interpolate(Tensor::zeros({1, 3}), Tensor::zeros({1, 3}), 3, PathMode::Lerp), std::invalid_argument);
}

TEST(MeanCode, AveragesRows) {
  const Tensor codes = Tensor::from_vector({1, 2, 3, 5, 0, -4}, {2, 3});
  EXPECT_EQ(mean_code(codes).to_vector(), (std::vector<float>{3, 1, -0.5f}));
  EXPECT_THROW(mean_code(Tensor::zeros({3})), std::invalid_argument);
}

// ---- PCA ----

TEST(Pca, RecoversAKnownCovariance) {
  // Points x = mean + 3 g1 u1 + 1 g2 u2 + 0.2 g3 u3 with g ~ N(0, 1) and u1, u2, u3 orthonormal in
  // R^3: the covariance has eigenvectors u_i and eigenvalues 9, 1, 0.04 (up to sampling error).
  const double s = 1 / std::sqrt(2.0), r = 1 / std::sqrt(3.0), q = 1 / std::sqrt(6.0);
  const double u[3][3] = {{s, s, 0}, {r, -r, r}, {q, -q, -2 * q}};
  const double sd[3] = {3, 1, 0.2}, mean[3] = {5, -1, 2};
  std::mt19937_64 gen(7);
  std::normal_distribution<double> normal;
  const int n = 20000;
  std::vector<float> x;
  for (int i = 0; i < n; ++i) {
    double g[3];
    for (double& e : g) e = normal(gen);
    for (int j = 0; j < 3; ++j) {
      double v = mean[j];
      for (int c = 0; c < 3; ++c) v += sd[c] * g[c] * u[c][j];
      x.push_back(static_cast<float>(v));
    }
  }
  const Pca p = pca(Tensor::from_vector(x, {n, 3}), 3);
  ASSERT_EQ(p.components.shape(), (Shape{3, 3}));
  ASSERT_EQ(p.projected.shape(), (Shape{n, 3}));
  ASSERT_EQ(p.variances.size(), 3u);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(p.mean.to_vector()[j], mean[j], 0.05);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(p.variances[c], sd[c] * sd[c], 0.04 * sd[c] * sd[c]) << c;
    const std::vector<float> comp = row(p.components, c);
    double dot = 0;
    for (int j = 0; j < 3; ++j) dot += comp[j] * u[c][j];
    EXPECT_NEAR(std::abs(dot), 1.0, 2e-3) << "component " << c;
    EXPECT_NEAR(norm(comp), 1.0, 1e-6);
  }
  // Sign convention: the largest-magnitude entry of each direction is positive.
  for (int c = 0; c < 3; ++c) {
    const std::vector<float> comp = row(p.components, c);
    float big = comp[0];
    for (float e : comp)
      if (std::abs(e) > std::abs(big)) big = e;
    EXPECT_GT(big, 0) << c;
  }
  // The projections are centered, uncorrelated, with the variances found.
  std::vector<double> sum(3, 0), sq(3, 0);
  double cross01 = 0;
  const std::vector<float> proj = p.projected.to_vector();
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) sum[c] += proj[i * 3 + c], sq[c] += proj[i * 3 + c] * proj[i * 3 + c];
    cross01 += proj[i * 3] * proj[i * 3 + 1];
  }
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(sum[c] / n, 0.0, 1e-3);
    EXPECT_NEAR(sq[c] / (n - 1), p.variances[c], 1e-3 * p.variances[c]);
  }
  EXPECT_NEAR(cross01 / n, 0.0, 1e-3);

  // k < D keeps the leading ones.
  const Pca top = pca(Tensor::from_vector(x, {n, 3}), 1);
  ASSERT_EQ(top.components.shape(), (Shape{1, 3}));
  EXPECT_EQ(top.components.to_vector(), row(p.components, 0));
  EXPECT_EQ(top.projected.shape(), (Shape{n, 1}));
}

TEST(Pca, ExactSmallCase) {
  // Rows (a + e, a - e) for a = -3, -1, 1, 3 along the diagonal and e = 1, -1, -1, 1 across it
  // (sum of a e = 0: uncorrelated), so the principal axes are (1, 1)/sqrt2 and (1, -1)/sqrt2.
  const Tensor rows = Tensor::from_vector({-2, -4, -2, 0, 0, 2, 4, 2}, {4, 2});
  // Along u1 = (1, 1)/sqrt2 the coordinates are a sqrt2: a in {-3, -1, 1, 3} -> sum of squares 40
  // -> variance 2 * 20 / 3. Across, e sqrt2 with e = +-1: variance 2 * 4 / 3.
  const Pca p = pca(rows, 2);
  EXPECT_NEAR(p.variances[0], 40.0 / 3, 1e-9);
  EXPECT_NEAR(p.variances[1], 8.0 / 3, 1e-9);
  const std::vector<float> c = p.components.to_vector();
  const float h = static_cast<float>(1 / std::sqrt(2.0));
  EXPECT_NEAR(c[0], h, 1e-6);
  EXPECT_NEAR(c[1], h, 1e-6);
  // Ties in magnitude: the first entry decides the sign.
  EXPECT_NEAR(c[2], h, 1e-6);
  EXPECT_NEAR(c[3], -h, 1e-6);
}

TEST(Pca, OneDimensionAndOneRow) {
  const Pca p = pca(Tensor::from_vector({1, 2, 3, 4}, {4, 1}), 1);
  EXPECT_EQ(p.components.to_vector(), std::vector<float>{1});
  EXPECT_NEAR(p.variances[0], 5.0 / 3, 1e-12);
  EXPECT_EQ(p.projected.to_vector(), (std::vector<float>{-1.5f, -0.5f, 0.5f, 1.5f}));
  // Decreasing data: the direction is still +1 (largest entry positive).
  const Pca down = pca(Tensor::from_vector({4, 3, 2, 1}, {4, 1}), 1);
  EXPECT_EQ(down.components.to_vector(), std::vector<float>{1});

  const Pca one = pca(Tensor::from_vector({1, 2, 3}, {1, 3}), 2);
  EXPECT_EQ(one.variances, (std::vector<double>{0, 0}));
  for (float v : one.projected.to_vector()) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(pca(Tensor::zeros({5, 3}), 4), std::invalid_argument);
  EXPECT_THROW(pca(Tensor::zeros({5, 3}), 0), std::invalid_argument);
}

TEST(Pca, LargerDimensionsDiagonalizeTheCovariance) {
  // D = 64 random correlated data: the components are orthonormal, the variances are decreasing
  // and add up to the total variance (the trace).
  const int64_t n = 300, d = 64;
  std::mt19937_64 gen(3);
  std::normal_distribution<double> normal;
  std::vector<double> mix(static_cast<size_t>(d * d));
  for (double& m : mix) m = normal(gen);
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> g(static_cast<size_t>(d));
    for (double& e : g) e = normal(gen);
    for (int64_t j = 0; j < d; ++j) {
      double v = 0;
      for (int64_t c = 0; c < d; ++c) v += mix[static_cast<size_t>(j * d + c)] * g[static_cast<size_t>(c)] / (1 + c);
      x[static_cast<size_t>(i * d + j)] = static_cast<float>(v);
    }
  }
  const Pca p = pca(Tensor::from_vector(x, {n, d}), d);
  double trace = 0;
  for (int64_t j = 0; j < d; ++j) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) s += x[static_cast<size_t>(i * d + j)], s2 += double(x[static_cast<size_t>(i * d + j)]) * x[static_cast<size_t>(i * d + j)];
    trace += (s2 - s * s / n) / (n - 1);
  }
  double total = 0;
  for (int64_t c = 0; c < d; ++c) {
    total += p.variances[static_cast<size_t>(c)];
    if (c > 0) {
      EXPECT_LE(p.variances[static_cast<size_t>(c)], p.variances[static_cast<size_t>(c - 1)]);
    }
  }
  EXPECT_NEAR(total, trace, 1e-9 * trace);
  const std::vector<float> comp = p.components.to_vector();
  for (int64_t a = 0; a < d; a += 7) {
    for (int64_t b = 0; b < d; b += 5) {
      double dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += double(comp[static_cast<size_t>(a * d + j)]) * comp[static_cast<size_t>(b * d + j)];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-5) << a << "," << b;
    }
  }
}

TEST(Pca, Dimension512) {
  // The largest size the header promises: 600 rows of N(0, I) in R^512 with dimension 7 stretched
  // 10x. The first direction is e_7 with variance about 100; the variances sum to the trace.
  const int64_t n = 600, d = 512;
  std::mt19937_64 gen(3);
  std::normal_distribution<double> normal;
  std::vector<float> x(static_cast<size_t>(n * d));
  for (float& v : x) v = static_cast<float>(normal(gen));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i * d + 7)] *= 10;
  const Pca p = pca(Tensor::from_vector(x, {n, d}), 3);
  EXPECT_NEAR(p.components.at({0, 7}), 1.0, 1e-2);
  EXPECT_NEAR(p.variances[0], 100.0, 15.0);
  EXPECT_LT(p.variances[1], 5.0);
  EXPECT_GE(p.variances[1], p.variances[2]);
}

// ---- AUROC ----

// Per-dimension KL, mean and variance against the formulas written out for a hand-sized case.
TEST(UnitStats, KlVarianceAndRankingByHand) {
  // 3 codes of 3 dims. Dim 0: mu 1, 2, 3 (variance 2/3), logvar 0; dim 1: mu 0, logvar 0 (KL 0,
  // the prior itself); dim 2: mu 0.5 each (variance 0), logvar -1.
  Encoded e;
  e.mu = Tensor::from_vector({1, 0, 0.5f, 2, 0, 0.5f, 3, 0, 0.5f}, {3, 3});
  e.logvar = Tensor::from_vector({0, 0, -1, 0, 0, -1, 0, 0, -1}, {3, 3});
  const UnitStats s = unit_stats(e);
  // KL_d = mean_x -1/2 (1 + logvar - mu^2 - exp(logvar)).
  EXPECT_NEAR(s.kl[0], (0.5 + 2.0 + 4.5) / 3, 1e-6);
  EXPECT_NEAR(s.kl[1], 0.0, 1e-12);
  EXPECT_NEAR(s.kl[2], -0.5 * (1 - 1 - 0.25 - std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(s.mean[0], 2.0, 1e-6);
  EXPECT_NEAR(s.variance[0], 2.0 / 3, 1e-6);
  EXPECT_NEAR(s.variance[2], 0.0, 1e-12);
  EXPECT_EQ(s.active, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(s.active_units, 1);
  EXPECT_EQ(s.ranking, (std::vector<int64_t>{0, 2, 1}));  // by KL
  // Without logvar (an AE): no KL, ranked by variance; ties keep dimension order.
  Encoded ae;
  ae.mu = Tensor::from_vector({0, 5, 1, 0, 7, 1, 0, 9, 1}, {3, 3});
  const UnitStats a = unit_stats(ae);
  EXPECT_EQ(a.kl, (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(a.ranking, (std::vector<int64_t>{1, 0, 2}));
  EXPECT_THROW(unit_stats(Encoded{}), std::invalid_argument);
}

TEST(Auroc, HandCases) {
  EXPECT_EQ(auroc({3, 4, 5}, {0, 1, 2}), 1.0);
  EXPECT_EQ(auroc({0, 1}, {2, 3, 4}), 0.0);
  EXPECT_EQ(auroc({1, 1, 1}, {1, 1}), 0.5);
  // positives {0.9, 0.4, 0.6}, negatives {0.5, 0.4, 0.1}: of the 9 pairs, 0.9 beats all 3, 0.6 beats
  // 0.5, 0.4, 0.1 (3), 0.4 beats 0.1 and ties 0.4 (1.5): (3 + 3 + 1.5) / 9.
  EXPECT_DOUBLE_EQ(auroc({0.9, 0.4, 0.6}, {0.5, 0.4, 0.1}), 7.5 / 9);
  EXPECT_DOUBLE_EQ(auroc({2}, {1, 2, 3, 2}), (1 + 0.5 + 0 + 0.5) / 4);
}

TEST(Auroc, MatchesPairCountingOnRandomScoresWithTies) {
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> score(0, 20);  // few distinct values: many ties
  std::vector<double> pos(137), neg(89);
  for (double& s : pos) s = score(gen) + 2;
  for (double& s : neg) s = score(gen);
  double pairs = 0;
  for (double p : pos)
    for (double q : neg) pairs += p > q ? 1.0 : p == q ? 0.5 : 0.0;
  EXPECT_NEAR(auroc(pos, neg), pairs / (137.0 * 89.0), 1e-12);
}

TEST(Auroc, RejectsEmptyGroupsAndNaN) {
  EXPECT_THROW(auroc({}, {1}), std::invalid_argument);
  EXPECT_THROW(auroc({1}, {}), std::invalid_argument);
  EXPECT_THROW(auroc({1, std::nan("")}, {0}), std::invalid_argument);
}

// ---- encoding ----

VaeConfig tiny_config(AeKind kind) {
  VaeConfig c;
  c.kind = kind;
  c.arch = Arch::MLP;
  c.channels = 1, c.height = 4, c.width = 4;
  c.latent_dim = 3;
  c.hidden = 8;
  return c;
}

TEST(Encode, MeansMatchTheModelOnTheSameImages) {
  const data::Dataset d = tiny_dataset(11);
  Generator init(5);
  Autoencoder model(tiny_config(AeKind::VAE), init);
  model.eval();
  const std::vector<int64_t> idx = {9, 0, 4, 4, 10, 2, 7};
  // Batches of 3 (3 + 3 + 1) must give what one batch gives through model.encode directly.
  const Tensor mu = encode_means(model, d, idx, 3);
  ASSERT_EQ(mu.shape(), (Shape{7, 3}));
  EXPECT_FALSE(mu.requires_grad());
  Tensor want;
  {
    NoGradGuard guard;
    want = model.encode(data::gather_images(d, idx, data::Scale::Unit)).first;
  }
  const std::vector<float> got = mu.to_vector(), ref = want.to_vector();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-6f) << i;

  const Encoded all = encode_all(model, d, 4);
  ASSERT_EQ(all.mu.shape(), (Shape{11, 3}));
  ASSERT_TRUE(all.logvar.defined());
  ASSERT_EQ(all.logvar.shape(), (Shape{11, 3}));
  std::vector<int64_t> every(11);
  for (int64_t i = 0; i < 11; ++i) every[static_cast<size_t>(i)] = i;
  NoGradGuard guard;
  auto [mu_ref, logvar_ref] = model.encode(data::gather_images(d, every, data::Scale::Unit));
  const std::vector<float> a = all.mu.to_vector(), b = mu_ref.to_vector();
  const std::vector<float> c = all.logvar.to_vector(), e = logvar_ref.to_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], 1e-6f);
    EXPECT_NEAR(c[i], e[i], 1e-6f);
  }
}

TEST(Encode, AutoencoderHasNoLogvarAndShapesAreChecked) {
  const data::Dataset d = tiny_dataset(5);
  Generator init(1);
  Autoencoder ae(tiny_config(AeKind::AE), init);
  const Encoded all = encode_all(ae, d);
  EXPECT_EQ(all.mu.shape(), (Shape{5, 3}));
  EXPECT_FALSE(all.logvar.defined());
  EXPECT_EQ(encode_means(ae, d, {}).shape(), (Shape{0, 3}));

  EXPECT_THROW(encode_means(ae, d, {5}), std::invalid_argument);
  data::Dataset wrong = d;
  wrong.height = 2, wrong.width = 8;
  const std::string msg = thrown_message([&] { encode_means(ae, wrong, {0}); });
  EXPECT_NE(msg.find("1x4x4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1x2x8"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ll::models
