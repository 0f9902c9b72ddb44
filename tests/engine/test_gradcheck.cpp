// test_gradcheck.cpp: finite-difference gradient checks of every differentiable op and module, from
// one table (after ggml's test-backend-ops). Adding an op means adding a row. ctest lists each row
// by name: GradCheck/OpGrad.MatchesFiniteDifferences/<row>.
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

namespace ll::test {
namespace {

// A leaf with values uniform in [lo, hi).
Tensor leaf(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(gen);
  return Tensor::from_vector(v, shape).set_requires_grad();
}

// A leaf with |values| in [0.1, 1): no value within h of a ReLU kink at 0.
Tensor leaf_off_zero(const Shape& shape, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = sign(gen) ? mag(gen) : -mag(gen);
  return Tensor::from_vector(v, shape).set_requires_grad();
}

Tensor constant(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return leaf(shape, seed, lo, hi).set_requires_grad(false);
}

struct CaseSetup {
  std::vector<Tensor> inputs;  // the leaves differentiated by
  std::function<Tensor()> f;
};

struct GradCase {
  std::string name;
  std::function<CaseSetup()> setup;
  GradCheckOptions options{};
};

// Cases built from a plain function of the inputs.
GradCase op_case(std::string name, std::function<std::vector<Tensor>()> make,
                 std::function<Tensor(const std::vector<Tensor>&)> f, GradCheckOptions opt = {}) {
  return {std::move(name),
          [make, f] {
            auto in = make();
            return CaseSetup{in, [in, f] { return f(in); }};
          },
          opt};
}

// Cases of a module: the input x and every parameter are differentiated.
template <typename M>
GradCase module_case(std::string name, std::function<std::shared_ptr<M>(Generator&)> make_module, Shape x_shape,
                     bool train = true) {
  return {std::move(name), [make_module, x_shape, train] {
            Generator gen(7);
            std::shared_ptr<M> m = make_module(gen);
            m->train(train);
            Tensor x = leaf(x_shape, 99);
            std::vector<Tensor> in{x};
            for (auto& p : m->parameters()) in.push_back(p);
            return CaseSetup{in, [m, x] { return m->forward(x); }};
          }};
}

Tensor bn_train(const std::vector<Tensor>& in) {
  // running statistics are updated on every call; in training mode the output does not read them.
  Tensor rm = Tensor::zeros({in[0].size(1)}), rv = Tensor::ones({in[0].size(1)});
  return batch_norm(in[0], in[1], in[2], rm, rv, true);
}

std::vector<GradCase> all_cases() {
  using V = std::vector<Tensor>;
  std::vector<GradCase> c;

  // ---- elementwise, reductions, views ----
  c.push_back(op_case("add", [] { return V{leaf({3, 5}, 1), leaf({3, 5}, 2)}; }, [](const V& a) { return add(a[0], a[1]); }));
  c.push_back(op_case("add_same_tensor", [] { return V{leaf({4}, 1)}; }, [](const V& a) { return add(a[0], a[0]); }));
  c.push_back(op_case("sub", [] { return V{leaf({3, 5}, 1), leaf({3, 5}, 2)}; }, [](const V& a) { return sub(a[0], a[1]); }));
  c.push_back(op_case("mul", [] { return V{leaf({2, 3, 4}, 1), leaf({2, 3, 4}, 2)}; }, [](const V& a) { return mul(a[0], a[1]); }));
  c.push_back(op_case("mul_self", [] { return V{leaf({7}, 3)}; }, [](const V& a) { return mul(a[0], a[0]); }));
  c.push_back(op_case("scale", [] { return V{leaf({6}, 1)}; }, [](const V& a) { return scale(a[0], -2.5f); }));
  c.push_back(op_case("add_scalar", [] { return V{leaf({6}, 1)}; }, [](const V& a) { return add_scalar(a[0], 3.0f); }));
  c.push_back(op_case("neg", [] { return V{leaf({5}, 1)}; }, [](const V& a) { return neg(a[0]); }));
  c.push_back(op_case("exp", [] { return V{leaf({9}, 1)}; }, [](const V& a) { return exp(a[0]); }));
  c.push_back(op_case("sum_all", [] { return V{leaf({3, 4}, 1)}; }, [](const V& a) { return sum(a[0]); }));
  c.push_back(op_case("mean_all", [] { return V{leaf({3, 4}, 1)}; }, [](const V& a) { return mean(a[0]); }));
  c.push_back(op_case("sum_dim0", [] { return V{leaf({3, 4, 2}, 1)}; }, [](const V& a) { return sum(a[0], 0); }));
  c.push_back(op_case("sum_dim1_keepdim", [] { return V{leaf({3, 4, 2}, 1)}; }, [](const V& a) { return sum(a[0], 1, true); }));
  c.push_back(op_case("sum_dim_last", [] { return V{leaf({3, 5}, 1)}; }, [](const V& a) { return sum(a[0], -1); }));
  c.push_back(op_case("mean_dim1", [] { return V{leaf({2, 5, 3}, 1)}; }, [](const V& a) { return mean(a[0], 1); }));
  c.push_back(op_case("cat_dim1", [] { return V{leaf({2, 3, 2}, 1), leaf({2, 1, 2}, 2), leaf({2, 4, 2}, 3)}; },
                      [](const V& a) { return cat(a, 1); }));
  c.push_back(op_case("cat_dim0", [] { return V{leaf({2, 3}, 1), leaf({1, 3}, 2)}; }, [](const V& a) { return cat(a, 0); }));
  c.push_back(op_case("narrow_dim1", [] { return V{leaf({3, 7}, 1)}; }, [](const V& a) { return narrow(a[0], 1, 2, 4); }));
  c.push_back(op_case("narrow_dim0", [] { return V{leaf({5, 2}, 1)}; }, [](const V& a) { return narrow(a[0], 0, 1, 3); }));
  c.push_back(op_case("reshape", [] { return V{leaf({2, 6}, 1)}; },
                      [](const V& a) { return mul(a[0].reshape({3, -1}), constant({3, 4}, 5)); }));
  c.push_back(op_case("flatten", [] { return V{leaf({2, 3, 2, 2}, 1)}; },
                      [](const V& a) { return mul(a[0].flatten(), constant({2, 12}, 5)); }));
  c.push_back(op_case("slice", [] { return V{leaf({5, 3}, 1)}; }, [](const V& a) { return mul(a[0].slice(1, 4), a[0].slice(2, 5)); }));

  // ---- linear algebra ----
  c.push_back(op_case("matmul", [] { return V{leaf({3, 5}, 1), leaf({5, 4}, 2)}; }, [](const V& a) { return matmul(a[0], a[1]); }));
  c.push_back(op_case("linear", [] { return V{leaf({4, 7}, 1), leaf({3, 7}, 2), leaf({3}, 3)}; },
                      [](const V& a) { return linear(a[0], a[1], a[2]); }));
  c.push_back(op_case("linear_no_bias_batch1", [] { return V{leaf({1, 5}, 1), leaf({2, 5}, 2)}; },
                      [](const V& a) { return linear(a[0], a[1]); }));

  // ---- convolutions ----
  auto conv = [](std::string name, Shape x, Shape w, Pair stride, Pair pad, bool bias) {
    return op_case(
        std::move(name),
        [x, w, bias] {
          V in{leaf(x, 1), leaf(w, 2, -0.5f, 0.5f)};
          if (bias) in.push_back(leaf({w[0]}, 3));
          return in;
        },
        [stride, pad, bias](const V& a) { return conv2d(a[0], a[1], bias ? a[2] : Tensor(), stride, pad); });
  };
  c.push_back(conv("conv2d_3x3_s1_p0", {2, 3, 6, 5}, {4, 3, 3, 3}, {1, 1}, {0, 0}, true));
  c.push_back(conv("conv2d_4x4_s2_p1", {2, 2, 8, 8}, {3, 2, 4, 4}, {2, 2}, {1, 1}, true));
  c.push_back(conv("conv2d_5x3_s3x2_p2x1", {1, 2, 9, 7}, {2, 2, 5, 3}, {3, 2}, {2, 1}, true));
  c.push_back(conv("conv2d_1x1_no_bias", {3, 4, 3, 3}, {2, 4, 1, 1}, {1, 1}, {0, 0}, false));
  auto convt = [](std::string name, Shape x, Shape w, Pair stride, Pair pad, Pair outpad, bool bias) {
    return op_case(
        std::move(name),
        [x, w, bias] {
          V in{leaf(x, 1), leaf(w, 2, -0.5f, 0.5f)};
          if (bias) in.push_back(leaf({w[1]}, 3));
          return in;
        },
        [stride, pad, outpad, bias](const V& a) {
          return conv_transpose2d(a[0], a[1], bias ? a[2] : Tensor(), stride, pad, outpad);
        });
  };
  c.push_back(convt("conv_transpose2d_4x4_s2_p1", {2, 3, 4, 4}, {3, 2, 4, 4}, {2, 2}, {1, 1}, {0, 0}, true));
  c.push_back(convt("conv_transpose2d_3x3_s2_p1_op1", {1, 2, 3, 5}, {2, 3, 3, 3}, {2, 2}, {1, 1}, {1, 1}, true));
  c.push_back(convt("conv_transpose2d_3x3_s1_p0", {2, 2, 3, 3}, {2, 2, 3, 3}, {1, 1}, {0, 0}, {0, 0}, true));
  c.push_back(convt("conv_transpose2d_5x3_s3x2_p2x1_no_bias", {1, 2, 3, 4}, {2, 3, 5, 3}, {3, 2}, {2, 1}, {2, 1}, false));

  c.push_back(op_case("pad2d_0_1_0_1", [] { return V{leaf({2, 3, 4, 5}, 1)}; },
                      [](const V& a) { return pad2d(a[0], {0, 1, 0, 1}); }));
  c.push_back(op_case("pad2d_3_4_2_0", [] { return V{leaf({1, 2, 3, 3}, 1)}; },
                      [](const V& a) { return mul(pad2d(a[0], {3, 4, 2, 0}), constant({1, 2, 10, 5}, 7)); }));

  // ---- activations ----
  c.push_back(op_case("relu", [] { return V{leaf_off_zero({4, 6}, 1)}; }, [](const V& a) { return relu(a[0]); }));
  c.push_back(op_case("leaky_relu_0.2", [] { return V{leaf_off_zero({4, 6}, 1)}; }, [](const V& a) { return leaky_relu(a[0], 0.2f); }));
  c.push_back(op_case("tanh", [] { return V{leaf({4, 6}, 1, -2.0f, 2.0f)}; }, [](const V& a) { return tanh(a[0]); }));
  c.push_back(op_case("sigmoid", [] { return V{leaf({4, 6}, 1, -4.0f, 4.0f)}; }, [](const V& a) { return sigmoid(a[0]); }));

  // ---- batch norm ----
  c.push_back(op_case("batch_norm_1d_train", [] { return V{leaf({6, 3}, 1), leaf({3}, 2), leaf({3}, 3)}; }, bn_train));
  c.push_back(op_case("batch_norm_1d_NCL_train", [] { return V{leaf({3, 2, 4}, 1), leaf({2}, 2), leaf({2}, 3)}; }, bn_train));
  c.push_back(op_case("batch_norm_2d_train", [] { return V{leaf({2, 3, 3, 4}, 1), leaf({3}, 2), leaf({3}, 3)}; }, bn_train));
  c.push_back(op_case("batch_norm_2d_train_batch1", [] { return V{leaf({1, 2, 3, 3}, 1), leaf({2}, 2), leaf({2}, 3)}; }, bn_train));
  c.push_back(op_case("batch_norm_2d_train_no_affine", [] { return V{leaf({3, 2, 2, 2}, 1)}; }, [](const V& a) {
    Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
    return batch_norm(a[0], Tensor(), Tensor(), rm, rv, true);
  }));
  c.push_back(op_case("batch_norm_2d_eval", [] { return V{leaf({2, 3, 2, 2}, 1), leaf({3}, 2), leaf({3}, 3)}; }, [](const V& a) {
    Tensor rm = constant({3}, 4), rv = constant({3}, 5, 0.5f, 2.0f);
    return batch_norm(a[0], a[1], a[2], rm, rv, false);
  }));

  // ---- random ops: the noise is regenerated from the same stream on every evaluation ----
  c.push_back(op_case("dropout_p0.4", [] { return V{leaf({5, 8}, 1)}; }, [](const V& a) {
    Generator gen(42);
    return dropout(a[0], 0.4f, true, gen);
  }));
  c.push_back(op_case("reparameterize", [] { return V{leaf({4, 3}, 1), leaf({4, 3}, 2)}; }, [](const V& a) {
    Generator gen(42);
    return reparameterize(a[0], a[1], gen);
  }));

  // ---- losses ----
  c.push_back(op_case("bce_with_logits_sum", [] { return V{leaf({3, 5}, 1, -3.0f, 3.0f)}; },
                      [](const V& a) { return bce_with_logits(a[0], constant({3, 5}, 9, 0.0f, 1.0f), Reduction::Sum); }));
  c.push_back(op_case("bce_with_logits_mean", [] { return V{leaf({3, 5}, 1, -3.0f, 3.0f)}; },
                      [](const V& a) { return bce_with_logits(a[0], constant({3, 5}, 9, 0.0f, 1.0f), Reduction::Mean); }));
  c.push_back(op_case("mse_sum", [] { return V{leaf({4, 3}, 1), leaf({4, 3}, 2)}; },
                      [](const V& a) { return mse_loss(a[0], a[1], Reduction::Sum); }));
  c.push_back(op_case("mse_mean", [] { return V{leaf({4, 3}, 1), leaf({4, 3}, 2)}; },
                      [](const V& a) { return mse_loss(a[0], a[1], Reduction::Mean); }));
  c.push_back(op_case("cross_entropy_mean", [] { return V{leaf({4, 5}, 1, -2.0f, 2.0f)}; },
                      [](const V& a) { return cross_entropy(a[0], {0, 4, 2, 2}, Reduction::Mean); }));
  c.push_back(op_case("cross_entropy_sum", [] { return V{leaf({3, 2}, 1, -2.0f, 2.0f)}; },
                      [](const V& a) { return cross_entropy(a[0], {1, 0, 1}, Reduction::Sum); }));
  c.push_back(op_case("kl_normal_sum", [] { return V{leaf({4, 3}, 1), leaf({4, 3}, 2)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 1.0f, Reduction::Sum); }));
  c.push_back(op_case("kl_normal_mean_beta4", [] { return V{leaf({4, 3}, 1), leaf({4, 3}, 2)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 4.0f, Reduction::Mean); }));
  c.push_back(op_case("kl_normal_times_3", [] { return V{leaf({2, 3}, 1), leaf({2, 3}, 2)}; },
                      [](const V& a) { return scale(kl_normal(a[0], a[1]), 3.0f); }));
  c.push_back(op_case("embedding", [] { return V{leaf({5, 3}, 1)}; },
                      [](const V& a) { return embedding(a[0], {4, 0, 4, 2}); }));

  // ---- modules: input and every parameter ----
  using namespace nn;
  c.push_back(module_case<Linear>("module_Linear", [](Generator& g) { return std::make_shared<Linear>(5, 3, g); }, {4, 5}));
  c.push_back(module_case<Conv2d>("module_Conv2d", [](Generator& g) {
    return std::make_shared<Conv2d>(2, 3, Pair{3, 3}, g, Pair{2, 2}, Pair{1, 1});
  }, {2, 2, 5, 5}));
  c.push_back(module_case<ConvTranspose2d>("module_ConvTranspose2d", [](Generator& g) {
    return std::make_shared<ConvTranspose2d>(3, 2, Pair{4, 4}, g, Pair{2, 2}, Pair{1, 1});
  }, {2, 3, 3, 3}));
  c.push_back(module_case<BatchNorm>("module_BatchNorm1d", [](Generator&) { return BatchNorm1d(4); }, {5, 4}));
  c.push_back(module_case<BatchNorm>("module_BatchNorm2d", [](Generator&) { return BatchNorm2d(3); }, {2, 3, 2, 3}));
  c.push_back(module_case<BatchNorm>("module_BatchNorm2d_eval", [](Generator&) { return BatchNorm2d(3); }, {2, 3, 2, 2}, false));
  c.push_back(module_case<Sequential>("module_Sequential_mlp", [](Generator& g) {
    return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        std::make_shared<Linear>(6, 5, g), std::make_shared<Tanh>(), std::make_shared<Linear>(5, 4, g),
        std::make_shared<Sigmoid>()});
  }, {3, 6}));
  c.push_back(module_case<Sequential>("module_Sequential_conv_bn_tanh_linear", [](Generator& g) {
    return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        std::make_shared<Conv2d>(1, 2, Pair{3, 3}, g, Pair{1, 1}, Pair{1, 1}), BatchNorm2d(2), std::make_shared<Tanh>(),
        std::make_shared<Flatten>(), std::make_shared<Linear>(2 * 4 * 4, 3, g),
        std::make_shared<Unflatten>(Shape{3, 1})});
  }, {2, 1, 4, 4}));
  c.push_back({"module_Embedding", [] {
                 Generator gen(3);
                 auto m = std::make_shared<nn::Embedding>(6, 4, gen);
                 return CaseSetup{{m->weight}, [m] { return m->forward({5, 1, 1, 0, 3}); }};
               }});
  c.push_back({"module_Dropout", [] {
                 auto gen = std::make_shared<Generator>(11);
                 auto m = std::make_shared<nn::Dropout>(0.3f, gen);
                 Tensor x = leaf({4, 6}, 1);
                 // Each forward draws a fresh mask: rewind the generator so every evaluation of
                 // the harness sees the same one.
                 return CaseSetup{{x}, [m, gen, x] {
                                gen->set_offset(0);
                                return m->forward(x);
                              }};
               }});
  return c;
}

// gtest prints a failing parameter; print its name rather than its bytes.
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

class OpGrad : public ::testing::TestWithParam<GradCase> {};

TEST_P(OpGrad, MatchesFiniteDifferences) {
  const GradCase& gc = GetParam();
  CaseSetup s = gc.setup();
  const auto result = check_gradients(s.inputs, s.f, gc.options);
  EXPECT_TRUE(result);
  if (result) std::cout << "  " << gc.name << ": " << result.message() << "\n";
}

INSTANTIATE_TEST_SUITE_P(GradCheck, OpGrad, ::testing::ValuesIn(all_cases()),
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
  Tensor x = leaf_off_zero({4, 5}, 3);
  const auto r = check_gradients({x}, [x] { return broken_leaky_relu(x); });
  EXPECT_FALSE(r) << "a backward with a wrong slope passed the gradient check";
}

TEST(GradCheckHarness, CatchesAOnePercentScaleError) {
  Tensor x = leaf({3, 3}, 4, 1.0f, 2.0f);
  const auto r = check_gradients({x}, [x] { return broken_scale(x); });
  EXPECT_FALSE(r) << "a backward off by 1% passed the gradient check";
}

TEST(GradCheckHarness, CatchesAMissingGradient) {
  Tensor x = leaf({3}, 5), y = leaf({3}, 6);
  // y is used but the op forgets to pass its gradient.
  auto f = [x, y] {
    Tensor out = add(x.detach(), y.detach());
    return record(out, "forgets_y", {x, y}, [](const Tensor& g) { return std::vector<Tensor>{g, Tensor()}; });
  };
  EXPECT_FALSE(check_gradients({x, y}, f));
}

TEST(GradCheckHarness, PassesTheCorrectVersions) {
  Tensor x = leaf_off_zero({4, 5}, 3);
  EXPECT_TRUE(check_gradients({x}, [x] { return leaky_relu(x, 0.2f); }));
  Tensor z = leaf({3, 3}, 4, 1.0f, 2.0f);
  EXPECT_TRUE(check_gradients({z}, [z] { return scale(z, 2.0f); }));
}

}  // namespace
}  // namespace ll::test
