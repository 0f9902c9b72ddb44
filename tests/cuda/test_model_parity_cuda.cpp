// test_model_parity_cuda.cpp: whole models on CUDA against the same models on the CPU.
//
// One training step of the MLP-VAE (784-400-20, the pytorch/examples plan), of the conv VAE and of
// DCGAN-28 and of pix2pix (models/vae.h, models/gan.h, models/pix2pix.h), built from the same seed on both devices (made on the
// CPU, moved with Module::to), fed the same batch and the same Philox noise:
//   - the loss (and its parts) within 1e-4 relative;
//   - every parameter's gradient within 1e-4 in relative L2 norm, ||cuda - cpu|| / ||cpu||: sums in
//     another order (cuBLAS, the CUDA reductions) move single elements near zero by more than their
//     own size, never the whole tensor;
//   - Adam's moments within 1e-4 in relative L2 (1e-3 for the GAN, whose step is less well
//     conditioned), and the parameters' moves (after - before) element by element within 1e-3 lr +
//     1e-3 |move|, except a few elements per tensor: Adam's first step is lr * g / |g|, whose sign
//     flips where a gradient element is zero up to rounding (expect_moves_close);
//   - the same step run twice on the GPU gives the same bits (no atomics, fixed reduction trees).
// Then the Philox stream bit for bit (raw integers) and within a few ulps or 2e-5 (normals: cuRAND's
// __sincosf, kernels/cuda/random.cu), and cuDNN
// against the native convolutions (the same loss within 1e-4). Every test begins with
// LL_REQUIRE_GPU(): it skips, saying why, where no GPU is usable.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "kernels/random.h"
#include "models/gan.h"
#include "models/pix2pix.h"
#include "models/vae.h"
#include "tests/cuda/cuda_harness.h"

namespace ll::models {
namespace {

constexpr Device kCuda = Device::CUDA;
constexpr Device kCpu = Device::CPU;

std::vector<double> as_double(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return {v.begin(), v.end()};
}

// ||a - b|| / ||b|| in float64 (0 when both are zero).
double relative_l2(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  if (num == 0.0) return 0.0;
  return std::sqrt(num / std::max(den, 1e-300));
}

double relative(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-30); }

using Snapshot = std::map<std::string, std::vector<double>>;

Snapshot snapshot(const Module& m) {
  Snapshot s;
  for (auto& [name, t] : m.state_dict()) s[name] = as_double(t);
  return s;
}

Snapshot gradients(const Module& m) {
  Snapshot s;
  for (auto& [name, p] : m.named_parameters()) {
    EXPECT_TRUE(p.grad().defined()) << name << " has no gradient";
    if (p.grad().defined()) s[name] = as_double(p.grad());
  }
  return s;
}

void expect_close(const Snapshot& gpu, const Snapshot& cpu, double tol, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  for (auto& [name, c] : cpu) {
    const double e = relative_l2(gpu.at(name), c);
    EXPECT_LE(e, tol) << what << " " << name << ": relative L2 error " << e;
  }
}

// after - before per parameter.
Snapshot moves(const Snapshot& after, const Snapshot& before, const Module& m) {
  Snapshot out;
  for (auto& [name, p] : m.named_parameters()) {
    const auto& a = after.at(name);
    const auto& b = before.at(name);
    std::vector<double> d(a.size());
    for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
    out[name] = d;
  }
  return out;
}

// Adam's first step moves an element by lr * g / (|g| + eps): about +-lr wherever |g| >> eps, so an
// element whose gradient is zero up to rounding may move the other way on the other device. Such
// elements are allowed, at most max(8, n / 1000) per tensor and each within Adam's bound of 2 lr;
// every other element's move agrees within 1e-3 lr + 1e-3 |move|. (Measured on the CPU with inputs
// and weights perturbed by 1e-6 relative, a few times the GPU's rounding: at most 13 such elements
// per tensor in these models.)
void expect_moves_close(const Snapshot& gpu, const Snapshot& cpu, double lr, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  for (auto& [name, c] : cpu) {
    const std::vector<double>& g = gpu.at(name);
    ASSERT_EQ(g.size(), c.size()) << what << " " << name;
    int64_t flipped = 0;
    double worst = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      const double d = std::fabs(g[i] - c[i]);
      if (d > 1e-3 * lr + 1e-3 * std::fabs(c[i])) {
        ++flipped;
        worst = std::max(worst, d);
      }
    }
    const int64_t allowed = std::max<int64_t>(8, static_cast<int64_t>(c.size()) / 1000);
    EXPECT_LE(flipped, allowed) << what << " " << name << ": " << flipped << " of " << c.size()
                                << " elements moved differently";
    EXPECT_LE(worst, 2.0 * lr * (1.0 + 1e-3)) << what << " " << name << ": a move differs by " << worst;
  }
}

void expect_bitwise(const Module& a, const Module& b, const std::string& what) {
  const auto sa = a.state_dict(), sb = b.state_dict();
  for (auto& [name, t] : sa) {
    const std::vector<float> x = t.to_vector(), y = sb.at(name).to_vector();
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0) << what << ": " << name << " differs";
  }
}

void expect_buffers_close(const Module& gpu, const Module& cpu, const std::string& what) {
  const auto bg = gpu.named_buffers(), bc = cpu.named_buffers();
  ASSERT_EQ(bg.size(), bc.size());
  for (size_t i = 0; i < bc.size(); ++i) {
    const double e = relative_l2(as_double(bg[i].second), as_double(bc[i].second));
    EXPECT_LE(e, 1e-4) << what << " buffer " << bc[i].first << ": relative L2 error " << e;
  }
}

// Adam's state of both devices, by name ("0.exp_avg", ...).
void expect_optimizer_close(const optim::Optimizer& gpu, const optim::Optimizer& cpu, double tol, const std::string& what) {
  const auto sg = gpu.state_dict(), sc = cpu.state_dict();
  ASSERT_EQ(sg.size(), sc.size());
  for (auto& [name, t] : sc) {
    const double e = relative_l2(as_double(sg.at(name)), as_double(t));
    EXPECT_LE(e, tol) << what << " optimizer state " << name << ": relative L2 error " << e;
  }
}

// Images in (0, 1] from a seed, on the CPU.
Tensor images(int64_t n, int64_t c, int64_t s, uint64_t seed) {
  Generator g(seed, 77);
  return rand({n, c, s, s}, g);
}

// Restores the native convolutions (and FP32 GEMMs) when a test that switched them ends.
struct CudaOptionsGuard {
  ~CudaOptionsGuard() { set_cuda_options("native", false); }
};

// ---- VAEs -----------------------------------------------------------------------------------------

struct VaeStep {
  VaeLoss loss;
  Snapshot grads;
};

// zero_grad, forward with noise from `noise`, loss, backward; the gradients are taken before the
// optimizer steps.
VaeStep vae_step(Autoencoder& model, optim::Adam& opt, const Tensor& x, Generator& noise) {
  opt.zero_grad();
  const VaeOutput out = model.forward(x, noise);
  VaeStep s;
  s.loss = model.loss(x, out);
  s.loss.loss.backward();
  s.grads = gradients(model);
  opt.step();
  return s;
}

void expect_vae_step_parity(const VaeConfig& config, int64_t batch) {
  Generator init_cpu(1), init_gpu(1);
  Autoencoder cpu(config, init_cpu), gpu(config, init_gpu);
  gpu.to(kCuda);
  const Snapshot before = snapshot(cpu);
  expect_close(snapshot(gpu), before, 0.0, "initial parameters");

  const Tensor x = images(batch, config.channels, config.height, 2);
  optim::Adam opt_cpu(cpu.parameters(), {.lr = 1e-3}), opt_gpu(gpu.parameters(), {.lr = 1e-3});
  Generator noise_cpu(3, 1), noise_gpu(3, 1);
  const VaeStep c = vae_step(cpu, opt_cpu, x, noise_cpu);
  const VaeStep g = vae_step(gpu, opt_gpu, x.to(kCuda), noise_gpu);

  EXPECT_EQ(g.loss.loss.device(), kCuda);
  EXPECT_LE(relative(g.loss.loss.item(), c.loss.loss.item()), 1e-4)
      << "loss: cuda " << g.loss.loss.item() << ", cpu " << c.loss.loss.item();
  EXPECT_LE(relative(g.loss.recon_sum, c.loss.recon_sum), 1e-4);
  if (config.kind == AeKind::VAE) {
    EXPECT_LE(relative(g.loss.kl_sum, c.loss.kl_sum), 1e-4);
  }
  EXPECT_EQ(noise_cpu.offset(), noise_gpu.offset());
  expect_close(g.grads, c.grads, 1e-4, "gradient");
  expect_optimizer_close(opt_gpu, opt_cpu, 1e-4, "Adam");
  expect_moves_close(moves(snapshot(gpu), before, gpu), moves(snapshot(cpu), before, cpu), 1e-3, "parameter move");

  // A second step from there: the loss still agrees.
  const VaeStep c2 = vae_step(cpu, opt_cpu, x, noise_cpu);
  const VaeStep g2 = vae_step(gpu, opt_gpu, x.to(kCuda), noise_gpu);
  EXPECT_LE(relative(g2.loss.loss.item(), c2.loss.loss.item()), 1e-3);

  // The same step on the GPU again, from the same start: the same bits.
  Generator init_again(1), noise_again(3, 1);
  Autoencoder again(config, init_again);
  again.to(kCuda);
  optim::Adam opt_again(again.parameters(), {.lr = 1e-3});
  (void)vae_step(again, opt_again, x.to(kCuda), noise_again);
  (void)vae_step(again, opt_again, x.to(kCuda), noise_again);
  expect_bitwise(again, gpu, "a repeated run");
}

TEST(ModelParityCuda, MlpVaeTrainingStep) {
  LL_REQUIRE_GPU();
  expect_vae_step_parity(VaeConfig{}, 64);  // 784-400-20 VAE, BCE
}

TEST(ModelParityCuda, MlpBetaVaeWithMseTrainingStep) {
  LL_REQUIRE_GPU();
  VaeConfig c;
  c.beta = 4.0;
  c.recon = Recon::MSE;
  expect_vae_step_parity(c, 33);  // an odd batch
}

TEST(ModelParityCuda, ConvVaeTrainingStep) {
  LL_REQUIRE_GPU();
  VaeConfig c;
  c.arch = Arch::Conv;  // 28x28, w = 32, 20 latent dimensions
  expect_vae_step_parity(c, 32);
}

TEST(ModelParityCuda, TrainStepOfTheModelLayerMatches) {
  LL_REQUIRE_GPU();
  // models::train_step itself, as the training loop calls it.
  VaeConfig c;
  Generator i1(5), i2(5);
  Autoencoder cpu(c, i1), gpu(c, i2);
  gpu.to(kCuda);
  optim::Adam oc(cpu.parameters()), og(gpu.parameters());
  Generator n1(6), n2(6);
  const Tensor x = images(16, 1, 28, 7);
  const VaeLoss lc = train_step(cpu, oc, x, n1);
  const VaeLoss lg = train_step(gpu, og, x.to(kCuda), n2);
  EXPECT_LE(relative(lg.loss.item(), lc.loss.item()), 1e-4);
  // Evaluation (no graph, eval mode) agrees too.
  Generator e1(8), e2(8);
  const VaeLoss ec = eval_batch(cpu, x, e1);
  const VaeLoss eg = eval_batch(gpu, x.to(kCuda), e2);
  EXPECT_LE(relative(eg.recon_sum, ec.recon_sum), 1e-4);
  EXPECT_LE(relative(eg.kl_sum, ec.kl_sum), 1e-4);
}

// ---- DCGAN-28 -----------------------------------------------------------------------------------

struct Gan {
  std::unique_ptr<GanGenerator> g;
  std::unique_ptr<GanDiscriminator> d;
  std::unique_ptr<optim::Adam> opt_g, opt_d;
};

Gan make_gan(const GanConfig& c, Device device) {
  Generator init(11);
  Gan gan;
  gan.g = std::make_unique<GanGenerator>(c, init);
  gan.d = std::make_unique<GanDiscriminator>(c, init);
  gan.g->to(device);
  gan.d->to(device);
  const optim::AdamOptions o{.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999};
  gan.opt_g = std::make_unique<optim::Adam>(gan.g->parameters(), o);
  gan.opt_d = std::make_unique<optim::Adam>(gan.d->parameters(), o);
  return gan;
}

GanConfig dcgan28(int64_t width) {
  GanConfig c;
  c.arch = GanArch::DCGAN28;
  c.ngf = c.ndf = width;
  return c;
}

TEST(ModelParityCuda, Dcgan28TrainingStep) {
  LL_REQUIRE_GPU();
  const GanConfig c = dcgan28(64);
  const int64_t n = 32;
  Gan cpu = make_gan(c, kCpu), gpu = make_gan(c, kCuda);
  const Snapshot g_before = snapshot(*cpu.g), d_before = snapshot(*cpu.d);
  // Real images in [-1, 1] and one batch of noise, the same on both devices.
  const Tensor real = add_scalar(scale(images(n, 1, 28, 12), 2.0f), -1.0f);
  Generator zg(13);
  const Tensor z = randn({n, c.nz}, zg);

  const GanStepResult rc = gan_train_step(*cpu.g, *cpu.d, *cpu.opt_g, *cpu.opt_d, real, {}, z);
  const GanStepResult rg = gan_train_step(*gpu.g, *gpu.d, *gpu.opt_g, *gpu.opt_d, real.to(kCuda), {}, z.to(kCuda));
  EXPECT_LE(relative(rg.loss_d, rc.loss_d), 1e-4) << "loss_d: cuda " << rg.loss_d << ", cpu " << rc.loss_d;
  EXPECT_LE(relative(rg.loss_g, rc.loss_g), 1e-4) << "loss_g: cuda " << rg.loss_g << ", cpu " << rc.loss_g;
  EXPECT_LE(relative(rg.d_real, rc.d_real), 1e-4);
  EXPECT_LE(relative(rg.d_fake, rc.d_fake), 1e-4);
  EXPECT_LE(relative(rg.d_fake_after, rc.d_fake_after), 1e-4);
  EXPECT_NEAR(rg.d_accuracy, rc.d_accuracy, 1.0 / static_cast<double>(n));  // a logit at 0 may flip
  // A GAN step is less well conditioned than a VAE's: D's gradients on G(z) and G's through the
  // updated D carry the sign flips of D's step (perturbing the weights by 1e-6 moved the moments
  // by 2e-3 on the CPU). 1e-3 relative L2 for the moments.
  expect_optimizer_close(*gpu.opt_d, *cpu.opt_d, 1e-3, "D's Adam");
  expect_optimizer_close(*gpu.opt_g, *cpu.opt_g, 1e-3, "G's Adam");
  expect_moves_close(moves(snapshot(*gpu.d), d_before, *gpu.d), moves(snapshot(*cpu.d), d_before, *cpu.d), 2e-4, "D move");
  expect_moves_close(moves(snapshot(*gpu.g), g_before, *gpu.g), moves(snapshot(*cpu.g), g_before, *cpu.g), 2e-4, "G move");
  // BatchNorm's running statistics (buffers) moved alike.
  expect_buffers_close(*gpu.d, *cpu.d, "D");
  expect_buffers_close(*gpu.g, *cpu.g, "G");

  // Run again on the GPU from the same start: the same bits.
  Gan again = make_gan(c, kCuda);
  (void)gan_train_step(*again.g, *again.d, *again.opt_g, *again.opt_d, real.to(kCuda), {}, z.to(kCuda));
  expect_bitwise(*again.g, *gpu.g, "G of a repeated step");
  expect_bitwise(*again.d, *gpu.d, "D of a repeated step");
}

// ---- pix2pix (models/pix2pix.h): U-Net with skips (cat, pad, narrow), InstanceNorm, dropout ----

struct P2P {
  std::shared_ptr<Generator> dropout = std::make_shared<Generator>(5, 1);
  std::unique_ptr<UNetGenerator> g;
  std::unique_ptr<PatchDiscriminator> d;
  std::unique_ptr<optim::Adam> opt_g, opt_d;
};

P2P make_p2p(Device device) {
  Pix2PixConfig c;
  c.ngf = c.ndf = 8;
  Generator init(11);
  P2P p;
  p.g = std::make_unique<UNetGenerator>(c, init, p.dropout);
  p.d = std::make_unique<PatchDiscriminator>(c, init);
  p.g->to(device);
  p.d->to(device);
  const optim::AdamOptions o{.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999};
  p.opt_g = std::make_unique<optim::Adam>(p.g->parameters(), o);
  p.opt_d = std::make_unique<optim::Adam>(p.d->parameters(), o);
  return p;
}

// One pix2pix step (D, then G on cGAN + 100 L1) on both devices from the same weights, batch and
// dropout stream (Philox: the same masks); tolerances as the GAN's above.
TEST(ModelParityCuda, Pix2PixTrainingStep) {
  LL_REQUIRE_GPU();
  const int64_t n = 4;
  P2P cpu = make_p2p(kCpu), gpu = make_p2p(kCuda);
  const Snapshot g_before = snapshot(*cpu.g), d_before = snapshot(*cpu.d);
  const Tensor y = add_scalar(scale(images(n, 1, 28, 21), 2.0f), -1.0f);
  const Tensor x = add_scalar(scale(images(n, 1, 28, 22), 2.0f), -1.0f);
  const Pix2PixStepResult rc = pix2pix_train_step(*cpu.g, *cpu.d, *cpu.opt_g, *cpu.opt_d, x, y, 100.0f, 1.0f);
  const Pix2PixStepResult rg =
      pix2pix_train_step(*gpu.g, *gpu.d, *gpu.opt_g, *gpu.opt_d, x.to(kCuda), y.to(kCuda), 100.0f, 1.0f);
  EXPECT_LE(relative(rg.loss_d, rc.loss_d), 1e-4) << "loss_d: cuda " << rg.loss_d << ", cpu " << rc.loss_d;
  EXPECT_LE(relative(rg.loss_gan, rc.loss_gan), 1e-4) << "loss_gan: cuda " << rg.loss_gan << ", cpu " << rc.loss_gan;
  EXPECT_LE(relative(rg.l1, rc.l1), 1e-4) << "l1: cuda " << rg.l1 << ", cpu " << rc.l1;
  EXPECT_LE(relative(rg.d_real, rc.d_real), 1e-4);
  expect_optimizer_close(*gpu.opt_d, *cpu.opt_d, 1e-3, "D's Adam");
  expect_optimizer_close(*gpu.opt_g, *cpu.opt_g, 1e-3, "G's Adam");
  expect_moves_close(moves(snapshot(*gpu.d), d_before, *gpu.d), moves(snapshot(*cpu.d), d_before, *cpu.d), 2e-4, "D move");
  expect_moves_close(moves(snapshot(*gpu.g), g_before, *gpu.g), moves(snapshot(*cpu.g), g_before, *cpu.g), 2e-4, "G move");
  // Evaluation (dropout on, from the fixed evaluation stream) agrees too.
  const Tensor tc = pix2pix_translate(*cpu.g, x, n, 1, kCpu), tg = pix2pix_translate(*gpu.g, x, n, 1, kCuda);
  EXPECT_LE(relative_l2(as_double(tg), as_double(tc)), 1e-4);

  P2P again = make_p2p(kCuda);
  (void)pix2pix_train_step(*again.g, *again.d, *again.opt_g, *again.opt_d, x.to(kCuda), y.to(kCuda), 100.0f, 1.0f);
  expect_bitwise(*again.g, *gpu.g, "G of a repeated step");
  expect_bitwise(*again.d, *gpu.d, "D of a repeated step");
}

TEST(ModelParityCuda, ConditionalGanStepUsesDeviceLabels) {
  LL_REQUIRE_GPU();
  GanConfig c = dcgan28(16);
  c.arch = GanArch::CGAN28;
  const int64_t n = 20;
  Gan cpu = make_gan(c, kCpu), gpu = make_gan(c, kCuda);
  const Tensor real = add_scalar(scale(images(n, 1, 28, 14), 2.0f), -1.0f);
  Generator zg(15);
  const Tensor z = randn({n, c.nz}, zg);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>((i * 3) % 10);
  const GanStepResult rc = gan_train_step(*cpu.g, *cpu.d, *cpu.opt_g, *cpu.opt_d, real, labels, z);
  const GanStepResult rg = gan_train_step(*gpu.g, *gpu.d, *gpu.opt_g, *gpu.opt_d, real.to(kCuda), labels, z.to(kCuda));
  EXPECT_LE(relative(rg.loss_d, rc.loss_d), 1e-4);
  EXPECT_LE(relative(rg.loss_g, rc.loss_g), 1e-4);
  expect_optimizer_close(*gpu.opt_g, *cpu.opt_g, 1e-3, "G's Adam (with the label embedding)");
}

// ---- the Philox stream ------------------------------------------------------------------------------

TEST(ModelParityCuda, PhiloxIntegersBitForBitAndNormalsWithinUlps) {
  LL_REQUIRE_GPU();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{4097}, int64_t{100003}}) {
    for (uint64_t offset : {uint64_t{0}, uint64_t{4}, uint64_t{1} << 33}) {
      const PhiloxStream s{123456789ULL, 42, offset};
      std::vector<uint32_t> want(static_cast<size_t>(n));
      kernels::cpu::philox_raw(want.data(), n, s);
      testing::DeviceBuffer<uint32_t> got(static_cast<size_t>(n));
      got.poison();
      kernels::cuda::philox_raw(got.get(), n, s, testing::stream());
      EXPECT_EQ(got.download(), want) << "n " << n << ", offset " << offset;
    }
  }
  // Through the engine: the noise of a VAE's reparameterization and a GAN's z.
  Generator a(99, 1), b(99, 1);
  const std::vector<float> zc = randn({128, 100}, a).to_vector();
  const std::vector<float> zg = randn({128, 100}, b, kCuda).to_vector();
  int64_t worst = 0;
  for (size_t i = 0; i < zc.size(); ++i) {
    int32_t x, y;
    std::memcpy(&x, &zc[i], 4);
    std::memcpy(&y, &zg[i], 4);
    const int64_t ulps = (x < 0) == (y < 0) ? std::llabs(static_cast<int64_t>(x) - y) : (zc[i] == zg[i] ? 0 : 1 << 30);
    // cuRAND's normals use __sincosf: within a few ulps, or about 1e-5 absolute (kernels/cuda/random.cu).
    if (std::fabs(zc[i] - zg[i]) > 2e-5f) worst = std::max(worst, ulps);
  }
  EXPECT_LE(worst, 8) << "normals differ by " << worst << " ulps (and more than 2e-5)";
  EXPECT_EQ(a.offset(), b.offset());
}

// ---- cuDNN against the native convolutions ------------------------------------------------------

TEST(ModelParityCuda, CudnnConvolutionsGiveTheSameLossAsNative) {
  LL_REQUIRE_GPU();
#ifndef LATENTLAB_HAS_CUDNN
  GTEST_SKIP() << "this build has no cuDNN";
#else
  CudaOptionsGuard restore;
  // The conv VAE: the loss of a first step (forward through both backends' convolutions), then of a
  // second one (after an update from both backends' gradients; Adam's sign flips at zero gradients
  // make that one looser).
  VaeConfig vc;
  vc.arch = Arch::Conv;
  const Tensor x = images(32, 1, 28, 21).to(kCuda);
  double first[2], second[2];
  for (int k = 0; k < 2; ++k) {
    set_cuda_options(k == 0 ? "native" : "cudnn", false);
    Generator init(1), noise(3, 1);
    Autoencoder m(vc, init);
    m.to(kCuda);
    optim::Adam opt(m.parameters());
    first[k] = train_step(m, opt, x, noise).loss.item();
    second[k] = train_step(m, opt, x, noise).loss.item();
  }
  EXPECT_LE(relative(first[1], first[0]), 1e-4) << "conv VAE: cudnn " << first[1] << ", native " << first[0];
  EXPECT_LE(relative(second[1], second[0]), 1e-3) << "conv VAE, second step: cudnn " << second[1] << ", native " << second[0];

  // DCGAN-28's step (convolutions and transposed convolutions, forward and both backwards): loss_d
  // before any update, loss_g through D after its update.
  const GanConfig c = dcgan28(32);
  const Tensor real = add_scalar(scale(images(16, 1, 28, 22), 2.0f), -1.0f).to(kCuda);
  Generator zg(23);
  const Tensor z = randn({16, c.nz}, zg, kCuda);
  GanStepResult r[2];
  for (int k = 0; k < 2; ++k) {
    set_cuda_options(k == 0 ? "native" : "cudnn", false);
    Gan gan = make_gan(c, kCuda);
    r[k] = gan_train_step(*gan.g, *gan.d, *gan.opt_g, *gan.opt_d, real, {}, z);
  }
  EXPECT_LE(relative(r[1].loss_d, r[0].loss_d), 1e-4) << "DCGAN loss_d: cudnn " << r[1].loss_d << ", native " << r[0].loss_d;
  EXPECT_LE(relative(r[1].loss_g, r[0].loss_g), 1e-4) << "DCGAN loss_g: cudnn " << r[1].loss_g << ", native " << r[0].loss_g;
#endif
}

TEST(ModelParityCuda, Tf32StaysCloseToFp32) {
  LL_REQUIRE_GPU();
  // TF32 rounds GEMM inputs to 10 mantissa bits (about 1e-3 relative); the loss of a step moves by
  // far less than that relative to its size. A loose bound: TF32 must not be used by default, and
  // allowing it must not break anything.
  CudaOptionsGuard restore;
  const Tensor x = images(64, 1, 28, 31).to(kCuda);
  double loss[2];
  for (int k = 0; k < 2; ++k) {
    set_cuda_options("native", k == 1);
    Generator init(1), noise(3, 1);
    Autoencoder m(VaeConfig{}, init);
    m.to(kCuda);
    optim::Adam opt(m.parameters());
    loss[k] = train_step(m, opt, x, noise).loss.item();
  }
  EXPECT_LE(relative(loss[1], loss[0]), 1e-2) << "tf32 " << loss[1] << ", fp32 " << loss[0];
}

}  // namespace
}  // namespace ll::models
