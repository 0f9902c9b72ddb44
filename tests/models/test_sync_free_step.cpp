// test_sync_free_step.cpp: the VAE and GAN training steps make no host synchronization inside them
// (engine/device_scalars.h), and their deferred figures equal the synchronous ones bit for bit.
//
// On the CUDA backend (a GPU, or the CPU emulation of tests/emu) the counter of synchronous
// device-to-host waits, ll::host_waits(), must not move while a step is queued: an .item() or
// .to_vector() coming back into a step fails here. Without a CUDA device those cases skip, saying why.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/device_scalars.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/gan.h"
#include "models/vae.h"

namespace ll::models {
namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

VaeConfig small_vae(double beta) {
  VaeConfig c;
  c.height = 8;
  c.width = 8;
  c.latent_dim = 3;
  c.hidden = 16;
  c.beta = beta;
  return c;
}

GanConfig small_gan() {
  GanConfig c;
  c.arch = GanArch::DCGAN28;
  c.nz = 4;
  c.ngf = 4;
  c.ndf = 4;
  return c;
}

#define REQUIRE_CUDA()                                              \
  do {                                                              \
    std::string why_;                                               \
    if (!cuda_available(&why_)) GTEST_SKIP() << "no CUDA device: " << why_; \
  } while (0)

// The deferred step and the synchronous one, on twin models, give the same figures bit for bit.
void vae_deferred_equals_synchronous(Device device, double beta) {
  Generator init_a(7), init_b(7);
  Autoencoder a(small_vae(beta), init_a), b(small_vae(beta), init_b);
  a.to(device);
  b.to(device);
  optim::Adam opt_a(a.parameters(), {.lr = 1e-3}), opt_b(b.parameters(), {.lr = 1e-3});
  Generator noise_a(3), noise_b(3), data(5);
  PendingVaeLoss pending;
  std::vector<VaeLoss> syncs, deferred;
  for (int step = 0; step < 4; ++step) {
    const Tensor x = rand({6, 1, 8, 8}, data, device);
    syncs.push_back(train_step(b, opt_b, x, noise_b));
    PendingVaeLoss next = train_step_async(a, opt_a, x, noise_a);
    if (pending.defined()) deferred.push_back(pending.get());  // the step before, read one step late
    pending = std::move(next);
  }
  deferred.push_back(pending.get());
  ASSERT_EQ(deferred.size(), syncs.size());
  for (size_t i = 0; i < syncs.size(); ++i) {
    EXPECT_TRUE(same_bits(deferred[i].recon_sum, syncs[i].recon_sum)) << "step " << i;
    EXPECT_TRUE(same_bits(deferred[i].kl_sum, syncs[i].kl_sum)) << "step " << i;
    EXPECT_EQ(deferred[i].n, syncs[i].n);
  }
}

TEST(SyncFreeStep, VaeDeferredLossEqualsTrainStepOnCpu) {
  vae_deferred_equals_synchronous(Device::CPU, 1.0);
  vae_deferred_equals_synchronous(Device::CPU, 4.0);
  vae_deferred_equals_synchronous(Device::CPU, 0.0);
}

TEST(SyncFreeStep, VaeDeferredLossEqualsTrainStepOnCuda) {
  REQUIRE_CUDA();
  vae_deferred_equals_synchronous(Device::CUDA, 1.0);
  vae_deferred_equals_synchronous(Device::CUDA, 0.0);
}

TEST(SyncFreeStep, VaeStepMakesNoHostWaitOnCuda) {
  REQUIRE_CUDA();
  Generator init(7);
  Autoencoder m(small_vae(1.0), init);
  m.to(Device::CUDA);
  optim::Adam opt(m.parameters(), {.lr = 1e-3});
  Generator noise(3), data(5);
  for (int step = 0; step < 3; ++step) {
    const Tensor x = rand({6, 1, 8, 8}, data, Device::CUDA);  // uploaded before the step
    const int64_t waits = host_waits(), readbacks = readback_waits();
    PendingVaeLoss p = train_step_async(m, opt, x, noise);
    EXPECT_EQ(host_waits(), waits) << "a synchronous device-to-host read inside the VAE step " << step;
    const VaeLoss l = p.get();
    EXPECT_EQ(host_waits(), waits) << "reading the loss must wait on the event only";
    EXPECT_EQ(readback_waits(), readbacks + 1);
    EXPECT_TRUE(std::isfinite(l.recon_sum) && std::isfinite(l.kl_sum));
  }
}

void gan_deferred_equals_synchronous(Device device) {
  const GanConfig c = small_gan();
  Generator ia(11), ib(11);
  GanGenerator ga(c, ia), gb(c, ib);
  GanDiscriminator da(c, ia), db(c, ib);
  for (Module* m : std::vector<Module*>{&ga, &gb, &da, &db}) m->to(device);
  optim::Adam og_a(ga.parameters(), {.lr = 2e-4}), od_a(da.parameters(), {.lr = 2e-4});
  optim::Adam og_b(gb.parameters(), {.lr = 2e-4}), od_b(db.parameters(), {.lr = 2e-4});
  Generator data(5);
  std::vector<GanStepResult> syncs, deferred;
  PendingGanStep pending;
  for (int step = 0; step < 3; ++step) {
    const Tensor real = sub(scale(rand({4, 1, 28, 28}, data, device), 2.0f), Tensor::ones({4, 1, 28, 28}, device));
    const Tensor z = randn({4, c.nz}, data, device);
    syncs.push_back(gan_train_step(gb, db, og_b, od_b, real, {}, z));
    PendingGanStep next = gan_train_step_async(ga, da, og_a, od_a, real, {}, z);
    if (pending.defined()) deferred.push_back(pending.get());
    pending = std::move(next);
  }
  deferred.push_back(pending.get());
  ASSERT_EQ(deferred.size(), syncs.size());
  for (size_t i = 0; i < syncs.size(); ++i) {
    EXPECT_TRUE(same_bits(deferred[i].loss_d, syncs[i].loss_d)) << "step " << i;
    EXPECT_TRUE(same_bits(deferred[i].loss_g, syncs[i].loss_g)) << "step " << i;
    EXPECT_TRUE(same_bits(deferred[i].d_real, syncs[i].d_real)) << "step " << i;
    EXPECT_TRUE(same_bits(deferred[i].d_fake, syncs[i].d_fake)) << "step " << i;
    EXPECT_TRUE(same_bits(deferred[i].d_fake_after, syncs[i].d_fake_after)) << "step " << i;
    EXPECT_TRUE(same_bits(deferred[i].d_accuracy, syncs[i].d_accuracy)) << "step " << i;
  }
}

TEST(SyncFreeStep, GanDeferredFiguresEqualGanTrainStepOnCpu) { gan_deferred_equals_synchronous(Device::CPU); }

TEST(SyncFreeStep, GanDeferredFiguresEqualGanTrainStepOnCuda) {
  REQUIRE_CUDA();
  gan_deferred_equals_synchronous(Device::CUDA);
}

TEST(SyncFreeStep, GanStepMakesNoHostWaitOnCuda) {
  REQUIRE_CUDA();
  const GanConfig c = small_gan();
  Generator init(11), data(5);
  GanGenerator g(c, init);
  GanDiscriminator d(c, init);
  g.to(Device::CUDA);
  d.to(Device::CUDA);
  optim::Adam og(g.parameters(), {.lr = 2e-4}), od(d.parameters(), {.lr = 2e-4});
  for (int step = 0; step < 3; ++step) {
    const Tensor real = rand({4, 1, 28, 28}, data, Device::CUDA);
    const Tensor z = randn({4, c.nz}, data, Device::CUDA);
    const int64_t waits = host_waits();
    PendingGanStep p = gan_train_step_async(g, d, og, od, real, {}, z);
    EXPECT_EQ(host_waits(), waits) << "a synchronous device-to-host read inside the GAN step " << step;
    const GanStepResult r = p.get();
    EXPECT_EQ(host_waits(), waits);
    EXPECT_TRUE(std::isfinite(r.loss_d) && std::isfinite(r.loss_g));
    EXPECT_GE(r.d_accuracy, 0.0);
    EXPECT_LE(r.d_accuracy, 1.0);
  }
}

TEST(SyncFreeStep, ReadbackOnCpuCopiesAtOnce) {
  Readback rb;
  rb.start({Tensor::scalar(1.5f), Tensor::from_vector({2.0f, 3.0f}, {2})});
  EXPECT_FALSE(rb.pending());
  EXPECT_EQ(rb.values(), (std::vector<float>{1.5f, 2.0f, 3.0f}));
  Readback empty;
  EXPECT_THROW(empty.values(), std::logic_error);
}

}  // namespace
}  // namespace ll::models
