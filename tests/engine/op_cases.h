// op_cases.h: the table of engine op cases, one row per op or module configuration (after ggml's
// test-backend-ops). Two harnesses run it:
//   tests/engine/test_gradcheck.cpp     autograd against finite differences, on the CPU;
//   tests/cuda/test_engine_cuda.cpp     the same rows on CPU and CUDA from the same inputs: outputs
//                                       and input gradients compared within the row's `parity`.
// Adding an op means adding a row here. Each row builds its inputs on a given device from fixed
// seeds (the same values on every device); constants made inside a row's function follow the
// device of its first input.
#pragma once
#include <cstring>
#include <functional>
#include <ostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "tests/common/compare.h"
#include "tests/engine/gradcheck.h"

namespace ll::test {

// A leaf on `device` with values uniform in [lo, hi) (the same values on every device).
inline Tensor leaf(Device device, const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(gen);
  return Tensor::from_vector(v, shape, device).set_requires_grad();
}

// A leaf with |values| in [0.1, 1): no value within h of a ReLU kink at 0.
inline Tensor leaf_off_zero(Device device, const Shape& shape, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = sign(gen) ? mag(gen) : -mag(gen);
  return Tensor::from_vector(v, shape, device).set_requires_grad();
}

// A tensor that is not differentiated by, on `device`.
inline Tensor constant(Device device, const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return leaf(device, shape, seed, lo, hi).set_requires_grad(false);
}

struct CaseSetup {
  std::vector<Tensor> inputs;  // the leaves differentiated by
  std::function<Tensor()> f;
};

struct GradCase {
  std::string name;
  // Builds the inputs on a device (the same values on every device) and the function of them.
  std::function<CaseSetup(Device)> setup;
  GradCheckOptions options{};
  // CPU/CUDA parity (tests/cuda/test_engine_cuda.cpp): outputs and input gradients agree within
  // |cuda - cpu| <= atol max|cpu| + rtol |cpu| (atol relative to the tensor's largest value). The default covers sums in another order (GEMM, reductions,
  // convolutions); rows whose backward cancels (batch norm) or goes through several layers widen it.
  Tolerance parity{1e-5, 1e-4};
};

// gtest prints a failing parameter; print its name rather than its bytes.
inline void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

// Cases built from a plain function of the inputs.
inline GradCase op_case(std::string name, std::function<std::vector<Tensor>(Device)> make,
                        std::function<Tensor(const std::vector<Tensor>&)> f, GradCheckOptions opt = {},
                        Tolerance parity = {1e-5, 1e-4}) {
  return {std::move(name),
          [make, f](Device d) {
            auto in = make(d);
            return CaseSetup{in, [in, f] { return f(in); }};
          },
          opt, parity};
}

// Cases of a module: the input x and every parameter are differentiated. The module is made on
// the CPU (its initialization drawn there) and moved to the device.
template <typename M>
GradCase module_case(std::string name, std::function<std::shared_ptr<M>(Generator&)> make_module, Shape x_shape,
                     bool train = true, Tolerance parity = {1e-5, 1e-4}) {
  return {std::move(name),
          [make_module, x_shape, train](Device d) {
            Generator gen(7);
            std::shared_ptr<M> m = make_module(gen);
            m->to(d);
            m->train(train);
            Tensor x = leaf(d, x_shape, 99);
            std::vector<Tensor> in{x};
            for (auto& p : m->parameters()) in.push_back(p);
            return CaseSetup{in, [m, x] { return m->forward(x); }};
          },
          {}, parity};
}

inline Tensor bn_train(const std::vector<Tensor>& in) {
  // running statistics are updated on every call; in training mode the output does not read them.
  const Device d = in[0].device();
  Tensor rm = Tensor::zeros({in[0].size(1)}, d), rv = Tensor::ones({in[0].size(1)}, d);
  return batch_norm(in[0], in[1], in[2], rm, rv, true);
}

// Synchronized batch norm over a group of one process (its all_gather a copy): the op's own arithmetic
// (the exchange of several processes is tests/engine/test_sync_batch_norm.cpp's).
inline std::shared_ptr<const BatchNormGroup> one_process_group() {
  auto g = std::make_shared<BatchNormGroup>();
  g->all_gather = [](const void* mine, void* all, size_t bytes) { std::memcpy(all, mine, bytes); };
  return g;
}
inline Tensor sync_bn_train(const std::vector<Tensor>& in) {
  const Device d = in[0].device();
  Tensor rm = Tensor::zeros({in[0].size(1)}, d), rv = Tensor::ones({in[0].size(1)}, d);
  return sync_batch_norm(in[0], in.size() > 1 ? in[1] : Tensor(), in.size() > 2 ? in[2] : Tensor(), rm, rv,
                         one_process_group());
}

// Every differentiable op and module, small enough for finite differences.
inline std::vector<GradCase> all_op_cases() {
  using V = std::vector<Tensor>;
  std::vector<GradCase> c;
  // Batch norm divides by a batch standard deviation and its backward subtracts nearly equal sums.
  const Tolerance bn_tol{1e-4, 1e-3};

  // ---- elementwise, reductions, views ----
  c.push_back(op_case("add", [](Device d) { return V{leaf(d, {3, 5}, 1), leaf(d, {3, 5}, 2)}; }, [](const V& a) { return add(a[0], a[1]); }));
  c.push_back(op_case("add_same_tensor", [](Device d) { return V{leaf(d, {4}, 1)}; }, [](const V& a) { return add(a[0], a[0]); }));
  c.push_back(op_case("sub", [](Device d) { return V{leaf(d, {3, 5}, 1), leaf(d, {3, 5}, 2)}; }, [](const V& a) { return sub(a[0], a[1]); }));
  c.push_back(op_case("mul", [](Device d) { return V{leaf(d, {2, 3, 4}, 1), leaf(d, {2, 3, 4}, 2)}; }, [](const V& a) { return mul(a[0], a[1]); }));
  c.push_back(op_case("mul_self", [](Device d) { return V{leaf(d, {7}, 3)}; }, [](const V& a) { return mul(a[0], a[0]); }));
  c.push_back(op_case("scale", [](Device d) { return V{leaf(d, {6}, 1)}; }, [](const V& a) { return scale(a[0], -2.5f); }));
  c.push_back(op_case("add_scalar", [](Device d) { return V{leaf(d, {6}, 1)}; }, [](const V& a) { return add_scalar(a[0], 3.0f); }));
  c.push_back(op_case("neg", [](Device d) { return V{leaf(d, {5}, 1)}; }, [](const V& a) { return neg(a[0]); }));
  c.push_back(op_case("exp", [](Device d) { return V{leaf(d, {9}, 1)}; }, [](const V& a) { return exp(a[0]); }));
  c.push_back(op_case("sum_all", [](Device d) { return V{leaf(d, {3, 4}, 1)}; }, [](const V& a) { return sum(a[0]); }));
  c.push_back(op_case("mean_all", [](Device d) { return V{leaf(d, {3, 4}, 1)}; }, [](const V& a) { return mean(a[0]); }));
  c.push_back(op_case("sum_dim0", [](Device d) { return V{leaf(d, {3, 4, 2}, 1)}; }, [](const V& a) { return sum(a[0], 0); }));
  c.push_back(op_case("sum_dim1_keepdim", [](Device d) { return V{leaf(d, {3, 4, 2}, 1)}; }, [](const V& a) { return sum(a[0], 1, true); }));
  c.push_back(op_case("sum_dim_last", [](Device d) { return V{leaf(d, {3, 5}, 1)}; }, [](const V& a) { return sum(a[0], -1); }));
  c.push_back(op_case("mean_dim1", [](Device d) { return V{leaf(d, {2, 5, 3}, 1)}; }, [](const V& a) { return mean(a[0], 1); }));
  c.push_back(op_case("cat_dim1", [](Device d) { return V{leaf(d, {2, 3, 2}, 1), leaf(d, {2, 1, 2}, 2), leaf(d, {2, 4, 2}, 3)}; },
                      [](const V& a) { return cat(a, 1); }));
  c.push_back(op_case("cat_dim0", [](Device d) { return V{leaf(d, {2, 3}, 1), leaf(d, {1, 3}, 2)}; }, [](const V& a) { return cat(a, 0); }));
  c.push_back(op_case("narrow_dim1", [](Device d) { return V{leaf(d, {3, 7}, 1)}; }, [](const V& a) { return narrow(a[0], 1, 2, 4); }));
  c.push_back(op_case("narrow_dim0", [](Device d) { return V{leaf(d, {5, 2}, 1)}; }, [](const V& a) { return narrow(a[0], 0, 1, 3); }));
  c.push_back(op_case("reshape", [](Device d) { return V{leaf(d, {2, 6}, 1)}; },
                      [](const V& a) { return mul(a[0].reshape({3, -1}), constant(a[0].device(), {3, 4}, 5)); }));
  c.push_back(op_case("flatten", [](Device d) { return V{leaf(d, {2, 3, 2, 2}, 1)}; },
                      [](const V& a) { return mul(a[0].flatten(), constant(a[0].device(), {2, 12}, 5)); }));
  c.push_back(op_case("slice", [](Device d) { return V{leaf(d, {5, 3}, 1)}; }, [](const V& a) { return mul(a[0].slice(1, 4), a[0].slice(2, 5)); }));

  // ---- linear algebra ----
  c.push_back(op_case("matmul", [](Device d) { return V{leaf(d, {3, 5}, 1), leaf(d, {5, 4}, 2)}; }, [](const V& a) { return matmul(a[0], a[1]); }));
  c.push_back(op_case("linear", [](Device d) { return V{leaf(d, {4, 7}, 1), leaf(d, {3, 7}, 2), leaf(d, {3}, 3)}; },
                      [](const V& a) { return linear(a[0], a[1], a[2]); }));
  c.push_back(op_case("linear_no_bias_batch1", [](Device d) { return V{leaf(d, {1, 5}, 1), leaf(d, {2, 5}, 2)}; },
                      [](const V& a) { return linear(a[0], a[1]); }));

  // ---- convolutions ----
  auto conv = [](std::string name, Shape x, Shape w, Pair stride, Pair pad, bool bias) {
    return op_case(
        std::move(name),
        [x, w, bias](Device d) {
          V in{leaf(d, x, 1), leaf(d, w, 2, -0.5f, 0.5f)};
          if (bias) in.push_back(leaf(d, {w[0]}, 3));
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
        [x, w, bias](Device d) {
          V in{leaf(d, x, 1), leaf(d, w, 2, -0.5f, 0.5f)};
          if (bias) in.push_back(leaf(d, {w[1]}, 3));
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

  c.push_back(op_case("pad2d_0_1_0_1", [](Device d) { return V{leaf(d, {2, 3, 4, 5}, 1)}; },
                      [](const V& a) { return pad2d(a[0], {0, 1, 0, 1}); }));
  c.push_back(op_case("pad2d_3_4_2_0", [](Device d) { return V{leaf(d, {1, 2, 3, 3}, 1)}; },
                      [](const V& a) { return mul(pad2d(a[0], {3, 4, 2, 0}), constant(a[0].device(), {1, 2, 10, 5}, 7)); }));

  // ---- activations ----
  c.push_back(op_case("relu", [](Device d) { return V{leaf_off_zero(d, {4, 6}, 1)}; }, [](const V& a) { return relu(a[0]); }));
  c.push_back(op_case("leaky_relu_0.2", [](Device d) { return V{leaf_off_zero(d, {4, 6}, 1)}; }, [](const V& a) { return leaky_relu(a[0], 0.2f); }));
  c.push_back(op_case("tanh", [](Device d) { return V{leaf(d, {4, 6}, 1, -2.0f, 2.0f)}; }, [](const V& a) { return tanh(a[0]); }));
  c.push_back(op_case("sigmoid", [](Device d) { return V{leaf(d, {4, 6}, 1, -4.0f, 4.0f)}; }, [](const V& a) { return sigmoid(a[0]); }));

  // ---- batch norm ----
  c.push_back(op_case("batch_norm_1d_train", [](Device d) { return V{leaf(d, {6, 3}, 1), leaf(d, {3}, 2), leaf(d, {3}, 3)}; }, bn_train, {}, bn_tol));
  c.push_back(op_case("batch_norm_1d_NCL_train", [](Device d) { return V{leaf(d, {3, 2, 4}, 1), leaf(d, {2}, 2), leaf(d, {2}, 3)}; }, bn_train, {}, bn_tol));
  c.push_back(op_case("batch_norm_2d_train", [](Device d) { return V{leaf(d, {2, 3, 3, 4}, 1), leaf(d, {3}, 2), leaf(d, {3}, 3)}; }, bn_train, {}, bn_tol));
  c.push_back(op_case("batch_norm_2d_train_batch1", [](Device d) { return V{leaf(d, {1, 2, 3, 3}, 1), leaf(d, {2}, 2), leaf(d, {2}, 3)}; }, bn_train, {}, bn_tol));
  c.push_back(op_case("batch_norm_2d_train_no_affine", [](Device d) { return V{leaf(d, {3, 2, 2, 2}, 1)}; }, [](const V& a) {
    Tensor rm = Tensor::zeros({2}, a[0].device()), rv = Tensor::ones({2}, a[0].device());
    return batch_norm(a[0], Tensor(), Tensor(), rm, rv, true);
  }, {}, bn_tol));
  c.push_back(op_case("sync_batch_norm_1d", [](Device d) { return V{leaf(d, {6, 3}, 1), leaf(d, {3}, 2), leaf(d, {3}, 3)}; }, sync_bn_train, {}, bn_tol));
  c.push_back(op_case("sync_batch_norm_2d", [](Device d) { return V{leaf(d, {2, 3, 3, 4}, 1), leaf(d, {3}, 2), leaf(d, {3}, 3)}; }, sync_bn_train, {}, bn_tol));
  c.push_back(op_case("sync_batch_norm_2d_planes", [](Device d) { return V{leaf(d, {2, 2, 6, 6}, 1), leaf(d, {2}, 2), leaf(d, {2}, 3)}; }, sync_bn_train, {}, bn_tol));
  c.push_back(op_case("sync_batch_norm_2d_no_affine", [](Device d) { return V{leaf(d, {3, 2, 2, 2}, 1)}; }, sync_bn_train, {}, bn_tol));
  c.push_back(op_case("batch_norm_2d_eval", [](Device d) { return V{leaf(d, {2, 3, 2, 2}, 1), leaf(d, {3}, 2), leaf(d, {3}, 3)}; }, [](const V& a) {
    Tensor rm = constant(a[0].device(), {3}, 4), rv = constant(a[0].device(), {3}, 5, 0.5f, 2.0f);
    return batch_norm(a[0], a[1], a[2], rm, rv, false);
  }, {}, bn_tol));

  // ---- instance norm: per-sample statistics, so the batch-of-one case is the pix2pix one ----
  c.push_back(op_case("instance_norm_2d_affine", [](Device d) { return V{leaf(d, {2, 3, 3, 4}, 1), leaf(d, {3}, 2), leaf(d, {3}, 3)}; },
                      [](const V& a) { return instance_norm(a[0], a[1], a[2]); }, {}, bn_tol));
  c.push_back(op_case("instance_norm_2d_batch1", [](Device d) { return V{leaf(d, {1, 2, 4, 4}, 1), leaf(d, {2}, 2), leaf(d, {2}, 3)}; },
                      [](const V& a) { return instance_norm(a[0], a[1], a[2]); }, {}, bn_tol));
  c.push_back(op_case("instance_norm_1d_NCL_no_affine", [](Device d) { return V{leaf(d, {3, 2, 5}, 1)}; },
                      [](const V& a) { return instance_norm(a[0], Tensor(), Tensor()); }, {}, bn_tol));

  // ---- random ops: the noise is regenerated from the same stream on every evaluation ----
  c.push_back(op_case("dropout_p0.4", [](Device d) { return V{leaf(d, {5, 8}, 1)}; }, [](const V& a) {
    Generator gen(42);
    return dropout(a[0], 0.4f, true, gen);
  }));
  c.push_back(op_case("reparameterize", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; }, [](const V& a) {
    Generator gen(42);
    return reparameterize(a[0], a[1], gen);
  }, {}, {1e-4, 1e-4}));  // CUDA's normals: about 1e-5 absolute (kernels/cuda/random.cu)

  // ---- losses ----
  c.push_back(op_case("bce_with_logits_sum", [](Device d) { return V{leaf(d, {3, 5}, 1, -3.0f, 3.0f)}; },
                      [](const V& a) { return bce_with_logits(a[0], constant(a[0].device(), {3, 5}, 9, 0.0f, 1.0f), Reduction::Sum); }));
  c.push_back(op_case("bce_with_logits_mean", [](Device d) { return V{leaf(d, {3, 5}, 1, -3.0f, 3.0f)}; },
                      [](const V& a) { return bce_with_logits(a[0], constant(a[0].device(), {3, 5}, 9, 0.0f, 1.0f), Reduction::Mean); }));
  c.push_back(op_case("mse_sum", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; },
                      [](const V& a) { return mse_loss(a[0], a[1], Reduction::Sum); }));
  c.push_back(op_case("mse_mean", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; },
                      [](const V& a) { return mse_loss(a[0], a[1], Reduction::Mean); }));
  c.push_back(op_case("cross_entropy_mean", [](Device d) { return V{leaf(d, {4, 5}, 1, -2.0f, 2.0f)}; },
                      [](const V& a) { return cross_entropy(a[0], {0, 4, 2, 2}, Reduction::Mean); }));
  c.push_back(op_case("cross_entropy_sum", [](Device d) { return V{leaf(d, {3, 2}, 1, -2.0f, 2.0f)}; },
                      [](const V& a) { return cross_entropy(a[0], {1, 0, 1}, Reduction::Sum); }));
  c.push_back(op_case("kl_normal_sum", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 1.0f, Reduction::Sum); }));
  c.push_back(op_case("kl_normal_mean_beta4", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 4.0f, Reduction::Mean); }));
  c.push_back(op_case("kl_normal_times_3", [](Device d) { return V{leaf(d, {2, 3}, 1), leaf(d, {2, 3}, 2)}; },
                      [](const V& a) { return scale(kl_normal(a[0], a[1]), 3.0f); }));
  // Reduction::None: per-element losses, differentiated through each element (and, summed per row,
  // the per-image scores of models/scores.h).
  c.push_back(op_case("bce_with_logits_none", [](Device d) { return V{leaf(d, {3, 5}, 1, -3.0f, 3.0f)}; },
                      [](const V& a) { return bce_with_logits(a[0], constant(a[0].device(), {3, 5}, 9, 0.0f, 1.0f), Reduction::None); }));
  c.push_back(op_case("bce_with_logits_none_row_sums", [](Device d) { return V{leaf(d, {4, 6}, 3, -3.0f, 3.0f)}; },
                      [](const V& a) { return sum(bce_with_logits(a[0], constant(a[0].device(), {4, 6}, 10, 0.0f, 1.0f), Reduction::None), 1); }));
  c.push_back(op_case("mse_none", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; },
                      [](const V& a) { return mse_loss(a[0], a[1], Reduction::None); }));
  c.push_back(op_case("kl_normal_none_beta2", [](Device d) { return V{leaf(d, {4, 3}, 1), leaf(d, {4, 3}, 2)}; },
                      [](const V& a) { return kl_normal(a[0], a[1], 2.0f, Reduction::None); }));
  c.push_back(op_case("embedding", [](Device d) { return V{leaf(d, {5, 3}, 1)}; },
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
  c.push_back(module_case<BatchNorm>("module_BatchNorm1d", [](Generator&) { return BatchNorm1d(4); }, {5, 4}, true, bn_tol));
  c.push_back(module_case<BatchNorm>("module_BatchNorm2d", [](Generator&) { return BatchNorm2d(3); }, {2, 3, 2, 3}, true, bn_tol));
  c.push_back(module_case<InstanceNorm2d>("module_InstanceNorm2d_affine", [](Generator&) {
    return std::make_shared<InstanceNorm2d>(3, 1e-5f, true);
  }, {2, 3, 3, 3}, true, bn_tol));
  c.push_back(module_case<BatchNorm>("module_BatchNorm2d_eval", [](Generator&) { return BatchNorm2d(3); }, {2, 3, 2, 2}, false, bn_tol));
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
  }, {2, 1, 4, 4}, true, bn_tol));
  c.push_back({"module_Embedding", [](Device d) {
                 Generator gen(3);
                 auto m = std::make_shared<nn::Embedding>(6, 4, gen);
                 m->to(d);
                 return CaseSetup{{m->weight}, [m] { return m->forward({5, 1, 1, 0, 3}); }};
               }});
  c.push_back({"module_Dropout", [](Device d) {
                 auto gen = std::make_shared<Generator>(11);
                 auto m = std::make_shared<nn::Dropout>(0.3f, gen);
                 Tensor x = leaf(d, {4, 6}, 1);
                 // Each forward draws a fresh mask: rewind the generator so every evaluation of
                 // the harness sees the same one.
                 return CaseSetup{{x}, [m, gen, x] {
                                gen->set_offset(0);
                                return m->forward(x);
                              }};
               }});
  return c;
}

}  // namespace ll::test
