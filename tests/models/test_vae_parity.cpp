// test_vae_parity.cpp: the MLP VAE against its PyTorch twin (bench/pytorch/vae_mlp.py), through the
// committed fixture tests/fixtures/vae_mlp_step.safetensors written by
// bench/pytorch/make_vae_fixture.py (after llm.c's test_gpt2): identical weights, one batch of 32
// Fashion-MNIST test images and the noise eps; PyTorch's outputs, loss, every parameter's gradient,
// and the weights after one Adam step. CI needs no PyTorch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/ops/ops.h"
#include "models/vae.h"

namespace ll::models {
namespace {

const std::map<std::string, Tensor>& fixture() {
  static const std::map<std::string, Tensor> f =
      load_tensors(std::string(LATENTLAB_SOURCE_DIR) + "/tests/fixtures/vae_mlp_step.safetensors");
  return f;
}

// ||a - b|| / ||b|| over the whole tensor, in float64.
double relative_error(const Tensor& a, const Tensor& b) {
  const auto av = a.to_vector(), bv = b.to_vector();
  EXPECT_EQ(av.size(), bv.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    const double d = static_cast<double>(av[i]) - bv[i];
    num += d * d;
    den += static_cast<double>(bv[i]) * bv[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double max_abs_error(const Tensor& a, const Tensor& b) {
  const auto av = a.to_vector(), bv = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < av.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(av[i]) - bv[i]));
  return m;
}

struct ParityModel {
  std::unique_ptr<Autoencoder> model;
  Tensor x, eps;
};

ParityModel load_model() {
  const auto& f = fixture();
  ParityModel s;
  Generator g(0);
  s.model = std::make_unique<Autoencoder>(VaeConfig{}, g);  // 784-400-20, BCE, beta 1
  std::map<std::string, Tensor> weights;
  for (auto& [name, t] : s.model->state_dict()) weights[name] = f.at(name);
  s.model->load_state_dict(weights);
  s.x = f.at("x").reshape({32, 1, 28, 28});
  s.eps = f.at("eps");
  return s;
}

TEST(VaeParity, ForwardMatchesPyTorch) {
  const auto& f = fixture();
  ParityModel s = load_model();
  NoGradGuard no_grad;
  const VaeOutput out = s.model->forward_with_noise(s.x, s.eps);
  EXPECT_LT(relative_error(out.mu, f.at("out.mu")), 1e-5);
  EXPECT_LT(relative_error(out.logvar, f.at("out.logvar")), 1e-5);
  EXPECT_LT(relative_error(out.logits.reshape({32, 784}), f.at("out.logits")), 1e-5);
  const VaeLoss l = s.model->loss(s.x, out);
  // Against PyTorch's float64 computation from the same float32 inputs.
  const double exact = f.at("f64.out.loss").item();
  EXPECT_NEAR(l.loss.item(), exact, 1e-5 * exact) << "PyTorch float32: " << f.at("out.loss").item();
  EXPECT_NEAR(l.recon_sum, f.at("f64.out.recon").item(), 1e-5 * exact);
  EXPECT_NEAR(l.kl_sum, f.at("f64.out.kl").item(), 1e-4 * f.at("f64.out.kl").item());
}

TEST(VaeParity, EveryGradientMatchesPyTorch) {
  const auto& f = fixture();
  ParityModel s = load_model();
  const VaeLoss l = s.model->loss(s.x, s.model->forward_with_noise(s.x, s.eps));
  l.loss.backward();
  for (auto& [name, p] : s.model->named_parameters()) {
    const double rel = relative_error(p.grad(), f.at("grad." + name));
    EXPECT_LT(rel, 1e-4) << name;
    auto exact = f.find("f64.grad." + name);
    if (exact != f.end()) {
      EXPECT_LT(relative_error(p.grad(), exact->second), 1e-4) << name << " (float64 reference)";
    }
    std::cout << "  grad." << name << ": relative error " << rel << "\n";
  }
}

TEST(VaeParity, OneAdamStepMatchesPyTorch) {
  const auto& f = fixture();
  ParityModel s = load_model();
  optim::Adam adam(s.model->parameters(), {.lr = 1e-3});
  const VaeLoss l = s.model->loss(s.x, s.model->forward_with_noise(s.x, s.eps));
  l.loss.backward();
  adam.step();
  for (auto& [name, p] : s.model->named_parameters()) {
    // The first Adam step moves each weight by about lr * sign(g): compare the moves. Where the
    // gradient is zero up to rounding (a sum that cancels; here below 1e-5 of the tensor's largest
    // gradient, while the gradients agree to 1e-4 relative) its sign, and so the move's, is
    // rounding noise that differs with the BLAS kernels of the machine: there only |move| <= lr is
    // required, and such elements must stay rare (below 0.25% of any tensor's in this fixture).
    const auto ours = sub(p.detach(), f.at(name)).to_vector();
    const auto theirs = sub(f.at("step1." + name), f.at(name)).to_vector();
    const auto g_ref = f.at("grad." + name).to_vector();
    float g_max = 0.0f;
    for (float g : g_ref) g_max = std::max(g_max, std::abs(g));
    const float noise = 1e-5f * g_max;
    std::vector<float> kept_ours, kept_theirs;
    size_t near_zero = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      if (g_ref[i] != 0.0f && std::abs(g_ref[i]) < noise) {  // exact zeros (dead units) are compared
        ++near_zero;
        EXPECT_LE(std::abs(ours[i]), 1.001e-3f) << name << "[" << i << "]";
        continue;
      }
      kept_ours.push_back(ours[i]);
      kept_theirs.push_back(theirs[i]);
    }
    EXPECT_LT(near_zero, ours.size() / 100 + 1) << name << ": too many gradients near zero";
    const int64_t kept = static_cast<int64_t>(kept_ours.size());
    const Tensor moved = Tensor::from_vector(kept_ours, {kept});
    const Tensor expected = Tensor::from_vector(kept_theirs, {kept});
    EXPECT_LT(max_abs_error(moved, expected), 2e-5) << name;  // 2% of lr, for gradients near 0
    EXPECT_LT(relative_error(moved, expected), 1e-3) << name;
    std::cout << "  " << name << ": " << near_zero << " of " << ours.size() << " gradients near zero\n";
  }
}

}  // namespace
}  // namespace ll::models
