// gan.h: generative adversarial networks (Goodfellow et al. 2014) with the DCGAN architecture
// (Radford, Metz & Chintala 2016).
//
//   dcgan64  pytorch/examples dcgan exactly (ngf = ndf = 64, nz = 100), with its parameter names
//            (main.0.weight, ...) so checkpoints load 1:1 into the same model in PyTorch:
//     G  z (N, nz, 1, 1) -> ConvT(nz, 8g, 4, 1, 0) BN ReLU -> ConvT(8g, 4g, 4, 2, 1) BN ReLU
//        -> ConvT(4g, 2g, 4, 2, 1) BN ReLU -> ConvT(2g, g, 4, 2, 1) BN ReLU -> ConvT(g, C, 4, 2, 1) Tanh
//        = (N, C, 64, 64) in [-1, 1]
//     D  x -> Conv(C, d, 4, 2, 1) LReLU(0.2) -> Conv(d, 2d, 4, 2, 1) BN LReLU -> Conv(2d, 4d, 4, 2, 1) BN LReLU
//        -> Conv(4d, 8d, 4, 2, 1) BN LReLU -> Conv(8d, 1, 4, 1, 0) = one logit per image
//   dcgan28  the same design sized for 28 x 28 (Fashion-MNIST):
//     G  z -> ConvT(nz, 2g, 7, 1, 0) BN ReLU -> ConvT(2g, g, 4, 2, 1) BN ReLU -> ConvT(g, C, 4, 2, 1) Tanh
//     D  x -> Conv(C, d, 4, 2, 1) LReLU(0.2) -> Conv(d, 2d, 4, 2, 1) BN LReLU -> Conv(2d, 1, 7, 1, 0)
//   gan128   the 128 x 128 face GAN of the original study (docs/models.md), layer for layer:
//     G  z (N, 100) -> Linear(100, 128*8*8) LReLU(0.2) -> (128, 8, 8)
//        -> 4 x [ConvT(128, 128, 4, 2, "same") LReLU(0.2)] -> (128, 128, 128)
//        -> Conv(128, C, 8, "same") Tanh -> (C, 128, 128)
//     D  x -> Conv(C, 128, 3, "same") LReLU(0.2) -> 4 x [Conv(128, 128, 3, 2, "same") LReLU(0.2)] -> (128, 8, 8)
//        -> flatten -> Dropout(0.4) -> Linear(8192, 1) = one logit
//     Keras's "same" padding is reproduced exactly: symmetric 1 for the 4x4 stride-2 transposed
//     convolutions and the 3x3 stride-1 convolution; for the 8x8 convolution 3 before and 4 after,
//     and for the 3x3 stride-2 convolutions 0 before and 1 after (ZeroPad2d then an unpadded
//     convolution). No BatchNorm; the layers have biases (Keras's default) and PyTorch's default
//     initialization (the study's Keras used Glorot uniform). Adam 2e-4, beta1 0.5.
//   cgan28   a conditional dcgan28 (Mirza & Osindero 2014): G sees z concatenated with a learned
//            embedding of the class (label_emb, num_classes x num_classes); D sees the image with one more
//            channel, a learned embedding of the class shaped as an image (label_emb, num_classes x H*W).
//
// Convolutions have no bias (BatchNorm follows them), as in pytorch/examples. Initialization is
// DCGAN's: conv weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02) and biases 0.
// D ends in a logit, not a sigmoid: the loss is BCE-with-logits, the stable form of the paper's
// BCE(sigmoid(.)) (its value and gradients are the same).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device_scalars.h"
#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace ll::models {

enum class GanArch { DCGAN64, DCGAN28, CGAN28, GAN128 };
const char* gan_arch_name(GanArch a);  // "dcgan64", "dcgan28", "cgan28", "gan128"

struct GanConfig {
  GanArch arch = GanArch::DCGAN28;
  int64_t channels = 1;
  int64_t nz = 100;
  int64_t ngf = 64, ndf = 64;
  int64_t num_classes = 10;  // cgan28 only
  int64_t image_size() const { return arch == GanArch::DCGAN64 ? 64 : arch == GanArch::GAN128 ? 128 : 28; }
  bool conditional() const { return arch == GanArch::CGAN28; }
  // Class labels for n generated images: all `label` when it is >= 0, else 0, 1, 2, ... cycling over
  // the classes; empty for an unconditional model. Throws std::invalid_argument (naming --label)
  // when `label` is not a class of this model, or is given (>= 0) to an unconditional one.
  std::vector<int32_t> labels(int64_t n, int64_t label) const;
  // Throws std::invalid_argument; among the rules, each network may have at most kMaxParameters
  // parameters, so that a checkpoint's metadata cannot make a loader (which builds the generator
  // before comparing it with the file's tensors) multiply sizes past int64 or allocate without bound.
  void validate() const;
  // The parameter counts of the two networks this configuration builds (GanGenerator /
  // GanDiscriminator::num_parameters()), saturating at INT64_MAX; meaningful for positive sizes.
  int64_t generator_parameters() const;
  int64_t discriminator_parameters() const;
  static constexpr int64_t kMaxParameters = int64_t{1} << 28;  // 268M: 1 GiB of float32 weights

  // The configuration as JSON, as a GAN run's checkpoints carry it in their metadata ("config"):
  // {"model":"gan","arch":"dcgan28","channels":1,"nz":100,"ngf":64,"ndf":64,"num_classes":10}.
  std::string to_json() const;
  // Reads what to_json writes ("model" may be left out); every key's JSON type is checked before
  // its value is used. Throws std::invalid_argument naming the field, or from validate().
  static GanConfig from_json(const std::string& text);
};

class GanGenerator : public Module {  // (ll::Generator is the random-number generator)
 public:
  GanGenerator(const GanConfig& config, Generator& init);
  // z (N, nz) -> images (N, C, S, S) in [-1, 1]; labels (N) for the conditional model, else empty.
  Tensor forward(const Tensor& z, const std::vector<int32_t>& labels = {});
  // The same images mapped to [0, 1] ((x + 1) / 2), as pictures and FID take them; no graph recorded.
  Tensor images(const Tensor& z, const std::vector<int32_t>& labels = {});
  const GanConfig& config() const { return config_; }

 private:
  GanConfig config_;
  std::shared_ptr<nn::Embedding> label_emb_;
  std::shared_ptr<nn::Sequential> main_;
};

class GanDiscriminator : public Module {
 public:
  GanDiscriminator(const GanConfig& config, Generator& init);
  // images (N, C, S, S) -> logits (N); labels (N) for the conditional model, else empty.
  Tensor forward(const Tensor& x, const std::vector<int32_t>& labels = {});
  const GanConfig& config() const { return config_; }
  // gan128's dropout: the generator its masks come from (its offset is saved with a checkpoint, and
  // a data-parallel step places each part's masks where the whole batch's would be), and the
  // numbers one forward draws per image (0 and nullptr for the models without dropout).
  Generator* dropout_generator() const { return dropout_gen_.get(); }
  int64_t dropout_numbers_per_image() const { return dropout_gen_ != nullptr ? kGan128DropoutFeatures : 0; }
  static constexpr int64_t kGan128DropoutFeatures = 128 * 8 * 8;  // the flattened (128, 8, 8) features

 private:
  GanConfig config_;
  std::shared_ptr<nn::Embedding> label_emb_;
  std::shared_ptr<nn::Sequential> main_;
  std::shared_ptr<Generator> dropout_gen_;  // gan128's dropout masks
};

// DCGAN's weight initialization over every Conv2d, ConvTranspose2d and BatchNorm inside `m`.
void dcgan_init(Module& m, Generator& gen);

struct GanStepResult {
  double loss_d = 0, loss_g = 0;  // per image (the BCE means)
  double d_real = 0;              // mean D(x) = sigmoid(logit) on real images, before the D step
  double d_fake = 0;              // mean D(G(z)) before the D step
  double d_fake_after = 0;        // mean D(G(z)) during the G step (after D's update)
  double d_accuracy = 0;          // fraction of real and fake images D classifies right (logit > 0 for real)
};

// A step's figures on their way to the host (engine/device_scalars.h): the three losses and the
// three batches of logits are copied behind the step; get() waits for the copies (on the GPU an
// event; on the CPU nothing) and computes the GanStepResult on the host from the copied floats,
// exactly as the synchronous step did, so the numbers are the same bit for bit.
class PendingGanStep {
 public:
  PendingGanStep() = default;
  PendingGanStep(const Tensor& loss_real, const Tensor& loss_fake, const Tensor& loss_g, const Tensor& out_real,
                 const Tensor& out_fake, const Tensor& out);
  bool defined() const { return readback_ != nullptr; }
  GanStepResult get();

 private:
  int64_t n_ = 0;
  std::shared_ptr<Readback> readback_;
};

// D's figures of a batch's logits, as GanStepResult reports them: the sum of sigmoid(logit) (D's
// probabilities that the images are real, in double), and how many logits are > 0 (positive) or
// <= 0 (!positive).
double sigmoid_sum(const float* logits, int64_t n);
int64_t count_positive(const float* logits, int64_t n, bool positive);

// One step of the pytorch/examples recipe: D on real (target 1) and on G(z).detach() (target 0),
// two backward passes accumulated, D's optimizer steps; then G through the updated D (target 1,
// the non-saturating loss of Goodfellow et al. 2014), G's optimizer steps. `real` is in [-1, 1].
GanStepResult gan_train_step(GanGenerator& g, GanDiscriminator& d, optim::Optimizer& opt_g, optim::Optimizer& opt_d,
                             const Tensor& real, const std::vector<int32_t>& labels, const Tensor& z);
// The same step with no host synchronization inside it; gan_train_step = gan_train_step_async(...).get().
PendingGanStep gan_train_step_async(GanGenerator& g, GanDiscriminator& d, optim::Optimizer& opt_g,
                                    optim::Optimizer& opt_d, const Tensor& real, const std::vector<int32_t>& labels,
                                    const Tensor& z);

}  // namespace ll::models
