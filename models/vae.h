// vae.h: the autoencoder, the VAE and the beta-VAE, as an MLP or a convolutional network.
//
// Architecture (x is (N, C, H, W) in [0, 1]; D = latent_dim):
//
//   MLP (the pytorch/examples VAE, with its parameter names so checkpoints load 1:1):
//     encoder  x -> flatten -> fc1 (C*H*W -> hidden) -> ReLU -> fc21 -> mu      (D)
//                                                      \-> fc22 -> logvar  (D)   [VAE only]
//     decoder  z -> fc3 (D -> hidden) -> ReLU -> fc4 (hidden -> C*H*W) -> logits -> (N, C, H, W)
//
//   Conv (H and W divisible by 4; w = conv_channels):
//     encoder  x -> Conv(C->w, 4x4, s2, p1) -> LeakyReLU(0.2) -> Conv(w->2w, 4x4, s2, p1) -> LeakyReLU(0.2)
//                -> flatten -> fc_mu -> mu, fc_logvar -> logvar                   [VAE only]
//     decoder  z -> fc_dec (D -> 2w*H/4*W/4) -> ReLU -> unflatten
//                -> ConvT(2w->w, 4x4, s2, p1) -> LeakyReLU(0.2) -> ConvT(w->C, 4x4, s2, p1) -> logits
//
// Latent code: the AE uses z = mu (deterministic); the VAE samples z = mu + exp(logvar / 2) * eps
// (Kingma & Welling 2014, the reparameterization trick).
//
// Loss per image = reconstruction summed over pixels + beta * KL(q(z|x) || N(0, I)) (Higgins et al.
// 2017: beta > 1 trades reconstruction for disentanglement; beta = 1 is the VAE; the AE has no KL).
// Reconstruction: BCE on the decoder's logits (the default for images in [0, 1]), or squared error
// of sigmoid(logits). The batch loss that is backpropagated is the sum over the batch, as in
// pytorch/examples (so Adam's lr 1e-3 means the same thing).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "data/dataset.h"
#include "engine/cuda_graph.h"
#include "engine/device_scalars.h"
#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace ll::models {

enum class AeKind { AE, VAE };
enum class Arch { MLP, Conv };
enum class Recon { BCE, MSE };

struct VaeConfig {
  AeKind kind = AeKind::VAE;
  Arch arch = Arch::MLP;
  int64_t channels = 1, height = 28, width = 28;
  int64_t latent_dim = 20;
  int64_t hidden = 400;        // MLP hidden width
  int64_t conv_channels = 32;  // conv base width w
  double beta = 1.0;
  Recon recon = Recon::BCE;

  std::string to_json() const;  // stored in the checkpoint's metadata under "config"
  static VaeConfig from_json(const std::string& json);  // throws std::invalid_argument naming the field
  // Throws std::invalid_argument; among the rules, the model may have at most kMaxParameters
  // parameters, so that a checkpoint's metadata cannot make a loader (which builds the model before
  // comparing it with the file's tensors) multiply sizes past int64 or allocate without bound.
  void validate() const;
  std::string describe() const;                          // "vae mlp 784-400-20 beta=1 bce"
  // The parameter count of the model this configuration builds (Autoencoder::num_parameters()),
  // saturating at INT64_MAX; meaningful for positive sizes.
  int64_t num_parameters() const;
  static constexpr int64_t kMaxParameters = int64_t{1} << 28;  // 268M: 1 GiB of float32 weights
};

const char* kind_name(AeKind k);  // "ae", "vae"
const char* arch_name(Arch a);    // "mlp", "conv"
const char* recon_name(Recon r);  // "bce", "mse"

struct VaeOutput {
  Tensor logits;  // (N, C, H, W): the decoder's output before the sigmoid
  Tensor mu;      // (N, D)
  Tensor logvar;  // (N, D); undefined for the AE
  Tensor z;       // (N, D): the code that was decoded
};

struct VaeLoss {
  Tensor loss;           // summed over the batch: what backward() uses
  double recon_sum = 0;  // summed over the batch
  double kl_sum = 0;     // summed over the batch (unweighted by beta; 0 for the AE)
  int64_t n = 0;         // images in the batch
};

// The loss of a batch with its figures still on the device: nothing has been read on the host.
struct VaeLossTensors {
  Tensor loss;             // summed over the batch: what backward() uses
  Tensor recon;            // () the reconstruction summed over the batch
  Tensor kl;               // () beta * KL (or KL itself when beta = 0); undefined for the AE
  double kl_divisor = 1;   // kl_sum = kl / kl_divisor (beta, or 1)
  int64_t n = 0;
};

// A step's loss on its way to the host (engine/device_scalars.h): the copies are queued behind the
// step, get() waits for them (on the GPU an event; on the CPU nothing) and gives the VaeLoss that
// train_step returns, the same numbers bit for bit.
class PendingVaeLoss {
 public:
  PendingVaeLoss() = default;
  explicit PendingVaeLoss(VaeLossTensors t);
  bool defined() const { return started_; }
  VaeLoss get();

 private:
  Tensor loss_;
  double kl_divisor_ = 1;
  bool has_kl_ = false, started_ = false;
  int64_t n_ = 0;
  std::shared_ptr<Readback> readback_;
};

class Autoencoder : public Module {
 public:
  Autoencoder(const VaeConfig& config, Generator& init);

  const VaeConfig& config() const { return config_; }
  bool variational() const { return config_.kind == AeKind::VAE; }

  // x (N, C, H, W) -> (mu, logvar); logvar undefined for the AE.
  std::pair<Tensor, Tensor> encode(const Tensor& x);
  // z (N, D) -> logits (N, C, H, W)
  Tensor decode(const Tensor& z);
  // Encodes, draws z (VAE: one sample from q(z|x) using `noise`; AE: z = mu) and decodes.
  VaeOutput forward(const Tensor& x, Generator& noise);
  // The same with the VAE's noise eps (N, D) given: for parity tests against another implementation.
  VaeOutput forward_with_noise(const Tensor& x, const Tensor& eps);
  // Reconstruction + beta * KL, summed over the batch.
  VaeLoss loss(const Tensor& x, const VaeOutput& out) const;
  // The same without reading anything on the host (no synchronization with the GPU).
  VaeLossTensors loss_tensors(const Tensor& x, const VaeOutput& out) const;
  // Images in [0, 1] from codes: sigmoid(decode(z)), without recording a graph.
  Tensor generate(const Tensor& z);

 private:
  Tensor encoder_features(const Tensor& x);  // the shared trunk before mu / logvar
  VaeConfig config_;
  // MLP
  std::shared_ptr<nn::Linear> fc1_, fc21_, fc22_, fc3_, fc4_;
  // Conv
  std::shared_ptr<nn::Sequential> encoder_, decoder_;
  std::shared_ptr<nn::Linear> fc_mu_, fc_logvar_, fc_dec_;
};

// One optimization step on a batch: zero_grad, forward, loss, backward, step. Returns the loss.
VaeLoss train_step(Autoencoder& model, optim::Optimizer& opt, const Tensor& x, Generator& noise);
// The same step without a host synchronization in it: the loss is read when get() is called (after
// the next step has been queued, in `latentlab train vae`). train_step = train_step_async(...).get().
PendingVaeLoss train_step_async(Autoencoder& model, optim::Optimizer& opt, const Tensor& x, Generator& noise);

// train_step_async with the step captured as a CUDA graph (engine/cuda_graph.h), for
// `latentlab train --cuda-graph`: the first call runs uncaptured (it is step 1, and it sets up the
// allocator's blocks and cuBLAS before the capture); the second is captured and launched, and every
// later batch of the captured shape is copied into the graph's input and launched, one call instead
// of some 40 kernel launches. A batch of another shape (the epoch's smaller last batch), or one on
// the CPU, runs uncaptured. The numbers are train_step_async's bit for bit
// (tests/cuda/test_graph_cuda.cpp). model, opt and noise must outlive it.
class VaeGraphStep {
 public:
  VaeGraphStep(Autoencoder& model, optim::Optimizer& opt, Generator& noise);
  PendingVaeLoss step(const Tensor& x);
  bool captured() const { return graph_.captured(); }
  int64_t launches() const { return graph_.launches(); }

 private:
  Autoencoder& model_;
  optim::Optimizer& opt_;
  Generator& noise_;
  int64_t uncaptured_ = 0;
  Tensor input_;             // the captured step's batch
  VaeLossTensors captured_;  // its figures, rewritten by each launch
  CudaGraph graph_;
};

// The loss of a batch without gradients (eval mode is the caller's choice).
VaeLoss eval_batch(Autoencoder& model, const Tensor& x, Generator& noise);

// The loss of a model over a whole data set, in file order, without gradients, in eval mode (the
// model's mode is restored afterwards), in batches of `batch_size` on `device`. The VAE draws one z
// per image from `noise`.
struct DatasetLoss {
  double recon = 0, kl = 0;  // sums over the images
  int64_t n = 0;
  double recon_per_image() const { return recon / static_cast<double>(n); }
  double kl_per_image() const { return kl / static_cast<double>(n); }
  double loss_per_image(double beta) const { return (recon + beta * kl) / static_cast<double>(n); }
};
// With parts > 1, only the batches k with k % parts == part are evaluated (a data-parallel run's
// ranks share the test pass, then add their sums); the VAE's noise stream still moves past the
// skipped batches' draws, so every batch sees the codes the whole pass would draw for it.
DatasetLoss evaluate_dataset(Autoencoder& model, const data::Dataset& dataset, int64_t batch_size, Generator& noise,
                             Device device = Device::CPU, int64_t part = 0, int64_t parts = 1);

}  // namespace ll::models
