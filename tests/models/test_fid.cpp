// test_fid.cpp: the Frechet distance (models/fid.h) against scipy (bench/pytorch/make_fid_fixture.py:
// numpy.cov and scipy.linalg.sqrtm on committed feature sets), and its eigendecomposition.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "models/classifier.h"
#include "models/fid.h"

namespace ll::models {
namespace {

TEST(Fid, MatchesScipyOnFixtures) {
  Metadata meta;
  const auto t = load_tensors(std::string(LATENTLAB_SOURCE_DIR) + "/tests/fixtures/fid_cases.safetensors", &meta);
  int cases = 0;
  for (int k = 0; meta.count("case" + std::to_string(k) + ".fid"); ++k, ++cases) {
    const std::string p = "case" + std::to_string(k);
    const double want = std::stod(meta.at(p + ".fid"));
    const double got = frechet_distance(gaussian_stats(t.at(p + ".a")), gaussian_stats(t.at(p + ".b")));
    // scipy's sqrtm (a Schur method) is accurate to ~1e-8 relative on these; identical sets give
    // rounding noise around 0 on both sides.
    EXPECT_NEAR(got, want, 1e-6 * std::max(1.0, std::abs(want))) << p;
  }
  EXPECT_EQ(cases, 4);
}

TEST(Fid, SymmetricEigenReconstructs) {
  std::mt19937 rng(3);
  std::normal_distribution<double> n01;
  const int64_t n = 37;
  std::vector<double> b(static_cast<size_t>(n * n)), a(static_cast<size_t>(n * n), 0.0);
  for (double& x : b) x = n01(rng);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) a[static_cast<size_t>(i * n + j)] = b[static_cast<size_t>(i * n + j)] + b[static_cast<size_t>(j * n + i)];
  }
  std::vector<double> v;
  const std::vector<double> lambda = symmetric_eigen(a, n, &v);
  for (int64_t i = 1; i < n; ++i) EXPECT_LE(lambda[static_cast<size_t>(i - 1)], lambda[static_cast<size_t>(i)]);
  double worst = 0, worst_orth = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0, o = 0;
      for (int64_t k = 0; k < n; ++k) {
        s += v[static_cast<size_t>(i * n + k)] * lambda[static_cast<size_t>(k)] * v[static_cast<size_t>(j * n + k)];
        o += v[static_cast<size_t>(k * n + i)] * v[static_cast<size_t>(k * n + j)];
      }
      worst = std::max(worst, std::abs(s - a[static_cast<size_t>(i * n + j)]));
      worst_orth = std::max(worst_orth, std::abs(o - (i == j ? 1.0 : 0.0)));
    }
  }
  EXPECT_LT(worst, 1e-11);
  EXPECT_LT(worst_orth, 1e-12);
}

TEST(Fid, ShiftOfTheMeanAddsItsSquaredLength) {
  // Same covariance, means 3 apart in one coordinate: FID = 9 exactly.
  std::mt19937 rng(5);
  std::normal_distribution<float> n01;
  std::vector<float> a(2000 * 4), b(2000 * 4);
  for (size_t i = 0; i < a.size(); ++i) a[i] = n01(rng);
  for (size_t i = 0; i < b.size(); ++i) b[i] = a[i] + (i % 4 == 1 ? 3.0f : 0.0f);
  const double fid = frechet_distance(gaussian_stats(Tensor::from_vector(a, {2000, 4})),
                                      gaussian_stats(Tensor::from_vector(b, {2000, 4})));
  EXPECT_NEAR(fid, 9.0, 1e-4);
}

TEST(Fid, RejectsBadInput) {
  EXPECT_THROW(gaussian_stats(Tensor::zeros({1, 3})), std::invalid_argument);
  EXPECT_THROW(frechet_distance(gaussian_stats(Tensor::ones({3, 2})), gaussian_stats(Tensor::ones({3, 3}))),
               std::invalid_argument);
}

// The classifier's configuration, as classifier.safetensors carries it: values of the wrong JSON
// type are refused before conversion (get<int64_t>() of 1e300, or get<float>() of 1e300, converted a
// double out of range: undefined behavior), and the model's size is bounded and exact.
TEST(Fid, ClassifierConfigIsCheckedBeforeUse) {
  ClassifierConfig c;
  c.channels = 3;
  c.size = 12;
  c.features = 6;
  c.num_classes = 3;
  Generator init(0);
  EXPECT_EQ(c.num_parameters(), Classifier(c, init).num_parameters());
  EXPECT_EQ(ClassifierConfig::from_json(c.to_json()).to_json(), c.to_json());

  auto refusal = [](const std::string& json) {
    try {
      ClassifierConfig::from_json(json);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string head = R"({"model":"classifier","num_classes":10,"size":28,)";
  EXPECT_NE(refusal(head + R"("channels":1e300,"features":128,"dropout":0.3})").find("'channels' is not an integer"),
            std::string::npos);
  EXPECT_NE(refusal(head + R"("channels":1,"features":128,"dropout":1e300})").find("dropout must be in [0, 1)"),
            std::string::npos);
  EXPECT_NE(refusal(head + R"("channels":1,"features":128,"dropout":"0.3"})").find("'dropout' is not a number"),
            std::string::npos);
  EXPECT_NE(refusal(head + R"("channels":1,"features":100000000,"dropout":0.3})").find("more than 268435456"),
            std::string::npos);
  EXPECT_EQ(refusal(head + R"("channels":1,"features":128,"dropout":0.3})"), "accepted");
}

}  // namespace
}  // namespace ll::models
