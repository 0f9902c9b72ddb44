// pix2pix.h: conditional adversarial image-to-image translation (Isola, Zhu, Zhou & Efros 2017,
// "Image-to-Image Translation with Conditional Adversarial Networks", CVPR), sized for 28 x 28.
//
//   G  a U-Net (Ronneberger et al. 2015): x (N, C, S, S) is zero-padded to P x P, P the power of two
//      >= S (28 -> 32: then every stride-2 step halves exactly down to 1 x 1), and goes through
//      depth = log2(P) encoder blocks and back up through as many decoder blocks; decoder block j
//      sees the previous block's output concatenated (channels) with the encoder output of the
//      same size (the skip connections). With g = ngf and ch(i) = g * min(2^i, 8) (the paper's
//      C64-C128-C256-C512-C512... scaled by g / 64):
//        encoder  i = 0:            Conv(C, g, 4, 2, 1) LReLU(0.2)              (no norm, as the paper)
//                 0 < i < depth-1:  Conv(ch(i-1), ch(i), 4, 2, 1) IN LReLU(0.2)
//                 i = depth-1:      Conv(ch(depth-2), ch(depth-1), 4, 2, 1) ReLU (1 x 1: nothing to
//                                   normalize; the PyTorch reference also has no norm there)
//        decoder  j = 0:            ConvT(ch(depth-1), ch(depth-2), 4, 2, 1) IN [Dropout 0.5] ReLU
//                 0 < j < depth-1:  ConvT(2 ch(depth-1-j), ch(depth-2-j), 4, 2, 1) IN [Dropout 0.5] ReLU
//                 last:             ConvT(2g, C, 4, 2, 1) Tanh, cropped back to S x S
//      Dropout 0.5 in the first min(3, (depth-1)/2) decoder blocks: the paper's first 3 of 7 at
//      256 x 256 (depth 8), the first 2 of 4 at 32 x 32. At depth 5 (28 -> 32) and g = 64 the
//      encoder runs 32 -> 16 -> 8 -> 4 -> 2 -> 1 with 64, 128, 256, 512, 512 channels.
//      IN is InstanceNorm2d with affine parameters: the paper's BatchNorm at batch size 1, with
//      batch statistics at test time, is instance normalization (its sec. 3.3), and IN keeps that
//      meaning at any batch size.
//   D  a PatchGAN conditioned on the input: cat(x, y) along channels (2C, S, S) ->
//        Conv(2C, d, 4, 2, 1) LReLU(0.2) -> Conv(d, 2d, 3, 1, 1) IN LReLU(0.2) -> Conv(2d, 1, 1, 1, 0)
//      = one logit per patch, (N, 1, S/2, S/2). Each logit sees an 8 x 8 patch of the 28 x 28
//      image (receptive field 4, then 4 + 2 * 2): 29% of the side, the fraction of the paper's 70 x 70
//      PatchGAN on 256 x 256 images (27%). No norm on the first layer, as the paper.
//   Loss  G* = arg min_G max_D  L_cGAN(G, D) + lambda L1(G), lambda = 100 (the paper's eq. 4):
//      D minimizes (BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)) / 2 (the paper halves D's objective);
//      G minimizes BCE(D(x, G(x)), 1) (non-saturating) + lambda * mean |y - G(x)|. gan_weight = 0
//      gives the paper's "L1 only" ablation (D is not trained). Adam lr 2e-4, betas (0.5, 0.999).
//   Init  conv weights ~ N(0, 0.02), biases 0; InstanceNorm weights ~ N(1, 0.02), biases 0 (the
//      paper's "Gaussian with mean 0 and standard deviation 0.02"; the PyTorch reference's
//      init_weights). A convolution followed by an InstanceNorm has no bias: the normalization
//      removes any per-channel constant, so that bias's gradient would be zero up to rounding (the
//      PyTorch reference keeps it; Adam then moves it by +-lr on noise, to no effect on the output).
//   Dropout is applied at test time too (the paper: "we apply dropout at test time"); evaluation
//   draws its masks from its own fixed stream (pix2pix_translate), so test figures repeat exactly.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace ll::models {

struct Pix2PixConfig {
  int64_t channels = 1;
  int64_t size = 28;  // image side (S)
  int64_t ngf = 64, ndf = 64;
  int64_t padded_size() const;  // P: the power of two >= size
  int64_t depth() const;        // log2(P): encoder blocks down to 1 x 1
  int64_t dropout_blocks() const { return std::min<int64_t>(3, (depth() - 1) / 2); }
  // std::invalid_argument naming the field: channels in {1, 3}, 2 <= size <= 256, 1 <= ngf, ndf <= 512.
  void validate() const;
  // {"model":"pix2pix","channels":1,"size":28,"ngf":64,"ndf":64}
  std::string to_json() const;
  static Pix2PixConfig from_json(const std::string& text);
};

class UNetGenerator : public Module {
 public:
  // dropout_gen: the generator of the dropout masks, shared with the caller (training draws from
  // it; pix2pix_translate swaps in a fixed stream).
  UNetGenerator(const Pix2PixConfig& config, Generator& init, std::shared_ptr<Generator> dropout_gen);
  // x (N, C, S, S) in [-1, 1] -> (N, C, S, S) in [-1, 1].
  Tensor forward(const Tensor& x);
  const Pix2PixConfig& config() const { return config_; }
  Generator& dropout_generator() { return *dropout_gen_; }

 private:
  Pix2PixConfig config_;
  std::shared_ptr<Generator> dropout_gen_;
  std::vector<std::shared_ptr<nn::Sequential>> down_, up_;
};

class PatchDiscriminator : public Module {
 public:
  PatchDiscriminator(const Pix2PixConfig& config, Generator& init);
  // x, y (N, C, S, S) -> logits (N, 1, S/2, S/2), one per patch.
  Tensor forward(const Tensor& x, const Tensor& y);
  const Pix2PixConfig& config() const { return config_; }

 private:
  Pix2PixConfig config_;
  std::shared_ptr<nn::Sequential> main_;
};

// The initialization above, over every Conv2d, ConvTranspose2d and InstanceNorm2d inside m.
void pix2pix_init(Module& m, Generator& gen);

// mean |a - b| with its gradient (the L1 loss; its subgradient at a == b is 0, as PyTorch's).
Tensor l1_loss(const Tensor& a, const Tensor& b);

struct Pix2PixStepResult {
  double loss_d = 0;    // (BCE real + BCE fake) / 2, before D's update (0 without a GAN term)
  double loss_gan = 0;  // G's adversarial BCE
  double l1 = 0;        // mean |y - G(x)| in [-1, 1] units
  double d_real = 0, d_fake = 0;  // mean D probabilities over the patches, before D's update
};

// One step: D on (x, y) -> 1 and (x, G(x).detach()) -> 0, D's optimizer steps; then G on
// gan_weight * BCE(D(x, G(x)), 1) + lambda * L1, G's optimizer steps. With gan_weight == 0 the
// discriminator is neither run nor updated (L1 only). x, y in [-1, 1].
Pix2PixStepResult pix2pix_train_step(UNetGenerator& g, PatchDiscriminator& d, optim::Optimizer& opt_g,
                                     optim::Optimizer& opt_d, const Tensor& x, const Tensor& y, float lambda_l1,
                                     float gan_weight);

// G(x) for evaluation, in batches of `batch` on the model's device, without recording a graph; the
// dropout masks come from the fixed stream (seed, subsequence 0x7e57) and the training stream is
// left where it was. x (N, C, S, S) in [-1, 1] (any device); returns (N, C, S, S) in [-1, 1] on the CPU.
Tensor pix2pix_translate(UNetGenerator& g, const Tensor& x, int64_t batch, uint64_t seed, Device device);

}  // namespace ll::models
