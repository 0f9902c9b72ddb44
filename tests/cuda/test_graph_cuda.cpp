// test_graph_cuda.cpp: the VAE training step captured as a CUDA graph (engine/cuda_graph.h,
// models::VaeGraphStep, `latentlab train --cuda-graph`) does what the uncaptured step does, bit for
// bit, and a step that cannot be captured is refused with a reason, leaving the engine usable.
//
// On the CPU emulation of CUDA (tests/emu) a capture records the queued work and each launch queues
// it again; the emulator refuses what a GPU refuses inside a capture (host waits, pageable copies,
// events recorded in the capture used outside it), so these tests check the engine's side of the
// contract: per-launch values (Philox offsets, Adam's coefficients), the graph's memory pool, the
// fallback for a batch of another shape.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda_graph.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/vae.h"
#include "tests/cuda/cuda_harness.h"

namespace ll::models {
namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

VaeConfig small_vae(Arch arch, AeKind kind) {
  VaeConfig c;
  c.kind = kind;
  c.arch = arch;
  c.height = 8;
  c.width = 8;
  c.latent_dim = 3;
  c.hidden = 16;
  c.conv_channels = 4;
  return c;
}

// Twin models from one seed: one trained through VaeGraphStep, one through train_step_async, on the
// same batches (a smaller one in the middle, as an epoch's last batch); every loss and, at the end,
// every parameter, Adam moment and generator position must be equal bit for bit.
void graph_equals_uncaptured(Arch arch, AeKind kind) {
  const VaeConfig config = small_vae(arch, kind);
  Generator init_a(7), init_b(7);
  Autoencoder a(config, init_a), b(config, init_b);
  a.to(Device::CUDA);
  b.to(Device::CUDA);
  optim::Adam opt_a(a.parameters(), {.lr = 1e-2}), opt_b(b.parameters(), {.lr = 1e-2});
  Generator noise_a(3), noise_b(3), data(5);
  VaeGraphStep graphed(a, opt_a, noise_a);
  const std::vector<int64_t> batch = {6, 6, 6, 6, 4, 6, 6, 6};
  for (size_t s = 0; s < batch.size(); ++s) {
    if (s == 6) {  // a schedule: the learning rate changes between launches
      opt_a.lr = 5e-3;
      opt_b.lr = 5e-3;
    }
    const Tensor x = rand({batch[s], 1, 8, 8}, data, Device::CUDA);
    const VaeLoss la = graphed.step(x).get();
    const VaeLoss lb = train_step_async(b, opt_b, x, noise_b).get();
    EXPECT_TRUE(same_bits(la.recon_sum, lb.recon_sum)) << "step " << s << ": " << la.recon_sum << " vs " << lb.recon_sum;
    EXPECT_TRUE(same_bits(la.kl_sum, lb.kl_sum)) << "step " << s << ": " << la.kl_sum << " vs " << lb.kl_sum;
    EXPECT_EQ(la.n, batch[s]);
  }
  EXPECT_TRUE(graphed.captured());
  EXPECT_EQ(graphed.launches(), 6);  // steps 2..8 less the batch of 4
  EXPECT_EQ(noise_a.offset(), noise_b.offset());
  EXPECT_EQ(opt_a.steps(), opt_b.steps());
  const std::vector<Tensor> pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(ll::testing::bit_equal(pa[i].to_vector(), pb[i].to_vector())) << "parameter " << i;
  }
  const auto sa = opt_a.state_dict(), sb = opt_b.state_dict();
  for (const auto& [name, t] : sa) {
    EXPECT_TRUE(ll::testing::bit_equal(t.to_vector(), sb.at(name).to_vector())) << "optimizer state " << name;
  }
}

TEST(CudaGraph, MlpVaeStepEqualsUncapturedBitForBit) {
  LL_REQUIRE_GPU();
  graph_equals_uncaptured(Arch::MLP, AeKind::VAE);
}

TEST(CudaGraph, ConvVaeStepEqualsUncapturedBitForBit) {
  LL_REQUIRE_GPU();
  graph_equals_uncaptured(Arch::Conv, AeKind::VAE);
}

TEST(CudaGraph, AutoencoderStepEqualsUncapturedBitForBit) {
  LL_REQUIRE_GPU();
  graph_equals_uncaptured(Arch::MLP, AeKind::AE);
}

// A step that reads a value on the host cannot be captured: refused with the reason, and the engine
// goes on working (the capture ended, its memory pool released).
TEST(CudaGraph, HostWaitInsideCaptureIsRefused) {
  LL_REQUIRE_GPU();
  const Tensor x = Tensor::full({5}, 2.0f, Device::CUDA);
  CudaGraph g;
  try {
    g.capture([&] { (void)sum(mul(x, x)).item(); });
    FAIL() << "a host wait was captured";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("could not be captured as a CUDA graph"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(g.captured());
  EXPECT_FALSE(kernels::cuda::capturing());
  EXPECT_FLOAT_EQ(sum(mul(x, x)).item(), 20.0f);
}

TEST(CudaGraph, HostToDeviceCopyInsideCaptureIsRefused) {
  LL_REQUIRE_GPU();
  CudaGraph g;
  EXPECT_THROW(g.capture([] { (void)Tensor::from_vector({1.0f, 2.0f}, {2}, Device::CUDA); }), std::runtime_error);
  EXPECT_FALSE(kernels::cuda::capturing());
  EXPECT_EQ(Tensor::from_vector({1.0f, 2.0f}, {2}, Device::CUDA).to_vector(), (std::vector<float>{1.0f, 2.0f}));
}

TEST(CudaGraph, SgdInsideCaptureIsRefused) {
  LL_REQUIRE_GPU();
  Tensor w = Tensor::full({4}, 1.0f, Device::CUDA);
  w.set_requires_grad();
  optim::SGD sgd({w}, {.lr = 0.1});
  CudaGraph g;
  EXPECT_THROW(g.capture([&] {
    sgd.zero_grad();
    sum(mul(w, w)).backward();
    sgd.step();
  }), std::runtime_error);
  EXPECT_FALSE(kernels::cuda::capturing());
}

// Memory freed inside a capture stays the graph's: an allocation after the capture must not get it,
// since every launch reads and writes there again. That holds for blocks made inside the capture and
// for blocks made before it whose last reference went inside it. Each launch repeats the work.
TEST(CudaGraph, MemoryOfTheCaptureStaysWithTheGraph) {
  LL_REQUIRE_GPU();
  kernels::cuda::release_cached_device_memory();  // no cached block of this size but the graph's
  Tensor acc = Tensor::zeros({256}, Device::CUDA);
  Tensor before = Tensor::ones({256}, Device::CUDA);
  const float* before_block = before.data();
  std::vector<const float*> freed_inside;
  {
    CudaGraph g;
    g.capture([&] {
      const Tensor one = std::move(before);  // the last reference to a block made before the capture
      Tensor scratch = add(acc, one);        // made and freed inside the capture
      freed_inside.push_back(scratch.data());
      acc.copy_(scratch);
    });
    // New tensors of the same size, written after the capture: none may be one of the graph's blocks.
    const Tensor after1 = Tensor::full({256}, 100.0f, Device::CUDA);
    const Tensor after2 = Tensor::full({256}, 100.0f, Device::CUDA);
    for (const Tensor& t : {after1, after2}) {
      EXPECT_NE(t.data(), freed_inside[0]) << "a block of the graph was handed out while the graph lives";
      EXPECT_NE(t.data(), before_block) << "a block the graph reads was handed out while the graph lives";
    }
    for (int i = 0; i < 3; ++i) g.launch();
    EXPECT_EQ(acc.to_vector(), std::vector<float>(256, 3.0f));
    EXPECT_EQ(g.launches(), 3);
  }
  // Once the graph is gone its blocks serve others again; the values stay what its launches left.
  EXPECT_EQ(acc.to_vector(), std::vector<float>(256, 3.0f));
}

// Random ops in a graph draw new numbers at every launch, the ones the uncaptured ops would draw.
TEST(CudaGraph, RandomOpsAdvanceWithEachLaunch) {
  LL_REQUIRE_GPU();
  Generator ga(11), gb(11);
  Tensor out = Tensor::zeros({37}, Device::CUDA);
  CudaGraph g;
  g.capture([&] { out.copy_(randn({37}, ga, Device::CUDA)); });
  for (int i = 0; i < 3; ++i) {
    g.launch();
    const Tensor expected = randn({37}, gb, Device::CUDA);
    EXPECT_TRUE(ll::testing::bit_equal(out.to_vector(), expected.to_vector())) << "launch " << i;
  }
  EXPECT_EQ(ga.offset(), gb.offset());
}

}  // namespace
}  // namespace ll::models
