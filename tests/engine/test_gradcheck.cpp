// test_gradcheck.cpp: finite-difference gradient checks of every differentiable op and module, from
// one table (tests/engine/op_cases.h, after ggml's test-backend-ops). Adding an op means adding a
// row there. ctest lists each row by name: GradCheck/OpGrad.MatchesFiniteDifferences/<row>.
#include <cctype>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "tests/engine/gradcheck.h"
#include "tests/engine/op_cases.h"

namespace ll::test {
namespace {

class OpGrad : public ::testing::TestWithParam<GradCase> {};

TEST_P(OpGrad, MatchesFiniteDifferences) {
  const GradCase& gc = GetParam();
  CaseSetup s = gc.setup(Device::CPU);
  const auto result = check_gradients(s.inputs, s.f, gc.options);
  EXPECT_TRUE(result);
  if (result) std::cout << "  " << gc.name << ": " << result.message() << "\n";
}

INSTANTIATE_TEST_SUITE_P(GradCheck, OpGrad, ::testing::ValuesIn(all_op_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) {
                           std::string n = info.param.name;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

// ---- the harness must be able to fail -------------------------------------------------------

// A leaky ReLU whose backward uses a wrong slope (0.1 instead of 0.2) for negative inputs: the
// kind of bug a gradient check exists to catch.
Tensor broken_leaky_relu(const Tensor& x) {
  Tensor y = leaky_relu(x.detach(), 0.2f);
  return record(y, "broken_leaky_relu", {x}, [x = x.detach()](const Tensor& g) {
    std::vector<float> gx = g.to_vector(), xv = x.to_vector();
    for (size_t i = 0; i < gx.size(); ++i) gx[i] *= xv[i] > 0 ? 1.0f : 0.1f;
    return std::vector<Tensor>{Tensor::from_vector(gx, x.shape())};
  });
}

// Off by a constant factor everywhere: a forgotten 1/N, say.
Tensor broken_scale(const Tensor& x) {
  Tensor y = scale(x.detach(), 2.0f);
  return record(y, "broken_scale", {x}, [](const Tensor& g) { return std::vector<Tensor>{scale(g, 2.02f)}; });
}

TEST(GradCheckHarness, CatchesAWrongSlope) {
  Tensor x = leaf_off_zero(Device::CPU, {4, 5}, 3);
  const auto r = check_gradients({x}, [x] { return broken_leaky_relu(x); });
  EXPECT_FALSE(r) << "a backward with a wrong slope passed the gradient check";
}

TEST(GradCheckHarness, CatchesAOnePercentScaleError) {
  Tensor x = leaf(Device::CPU, {3, 3}, 4, 1.0f, 2.0f);
  const auto r = check_gradients({x}, [x] { return broken_scale(x); });
  EXPECT_FALSE(r) << "a backward off by 1% passed the gradient check";
}

TEST(GradCheckHarness, CatchesAMissingGradient) {
  Tensor x = leaf(Device::CPU, {3}, 5), y = leaf(Device::CPU, {3}, 6);
  // y is used but the op forgets to pass its gradient.
  auto f = [x, y] {
    Tensor out = add(x.detach(), y.detach());
    return record(out, "forgets_y", {x, y}, [](const Tensor& g) { return std::vector<Tensor>{g, Tensor()}; });
  };
  EXPECT_FALSE(check_gradients({x, y}, f));
}

TEST(GradCheckHarness, PassesTheCorrectVersions) {
  Tensor x = leaf_off_zero(Device::CPU, {4, 5}, 3);
  EXPECT_TRUE(check_gradients({x}, [x] { return leaky_relu(x, 0.2f); }));
  Tensor z = leaf(Device::CPU, {3, 3}, 4, 1.0f, 2.0f);
  EXPECT_TRUE(check_gradients({z}, [z] { return scale(z, 2.0f); }));
}

}  // namespace
}  // namespace ll::test
