// dbvae.h: the debiasing variational autoencoder (DB-VAE) of Amini, Soleimany, Schwarting, Bhatia
// & Rus, "Uncovering and Mitigating Algorithmic Bias through Learned Latent Structure" (AIES 2019).
//
// One encoder is both a binary classifier and a VAE's encoder: it outputs the class logit and the
// mean and log-variance of a latent code. A decoder rebuilds the image from the code, for positive
// images only (the paper's faces): the latent space learns the structure of the positive class,
// including features nobody labeled (skin tone, lighting, or here a garment's cut). Each epoch the
// positive training images' latent means are histogrammed per unit; images whose codes fall in
// rare bins are drawn more often (debias_weights), so the classifier sees the under-represented
// part of the positive class as often as it needs, without being told which part that is.
//
//   x (N, C, H, W) in [0, 1], flattened to P = C H W
//   fc1 Linear(P, hidden) ReLU, fc2 Linear(hidden, hidden) ReLU
//   fc_logit Linear(hidden, 1)                        the class logit (positive > 0)
//   fc_mu, fc_logvar Linear(hidden, latent_dim)       q(z | x)
//   decoder: fc3 Linear(latent_dim, hidden) ReLU, fc4 Linear(hidden, P)   Bernoulli logits of x
//
// Loss of a batch of N images, n of them positive (the paper's eq. 4, with the reconstruction as
// the VAE's BCE):
//   mean_i BCE(logit_i, y_i)  +  (1 / N) sum_{positive i} (recon_i + KL_i) / P
// The VAE term is divided by P, the pixels of an image, so that it is a per-pixel loss on the scale
// of the classification term; summed over positives and divided by N, it is the paper's
// indicator-weighted mean. With vae = false (`--debias off`) the loss is the classification term
// alone: the same network, trained as a plain classifier.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace ll::models {

struct DbVaeConfig {
  int64_t channels = 1, height = 28, width = 28;
  int64_t hidden = 256;
  int64_t latent_dim = 8;
  void validate() const;  // throws std::invalid_argument
  std::string to_json() const;
  static DbVaeConfig from_json(const std::string& text);  // throws std::invalid_argument
  int64_t pixels() const { return channels * height * width; }
};

struct DbVaeEncoding {
  Tensor logit;   // (N, 1)
  Tensor mu;      // (N, latent_dim)
  Tensor logvar;  // (N, latent_dim)
};

class DbVae : public Module {
 public:
  DbVae(const DbVaeConfig& config, Generator& init);
  DbVaeEncoding encode(const Tensor& x);  // (N, C, H, W) in [0, 1]
  Tensor decode(const Tensor& z);         // (N, latent_dim) -> logits (N, P)
  const DbVaeConfig& config() const { return config_; }

 private:
  DbVaeConfig config_;
  std::shared_ptr<nn::Linear> fc1_, fc2_, fc_logit_, fc_mu_, fc_logvar_, fc3_, fc4_;
};

struct DbVaeStepResult {
  double loss = 0, classification = 0, vae = 0;  // the batch's loss and its two terms
  int64_t correct = 0;                           // (logit > 0) == label
};

// One Adam step on a batch whose first n_positive images are the positive ones (label 1) and the
// rest negative (label 0), as the DB-VAE's sampler (apps/train_dbvae.cpp) lays batches out, so that
// the decoder runs on the positives alone. vae = false leaves out the VAE term (`--debias off`).
DbVaeStepResult dbvae_train_step(DbVae& model, optim::Optimizer& opt, const Tensor& images, int64_t n_positive,
                                 bool vae, Generator& noise);

// The latent means (n x latent_dim, row-major, on the host) and the logits (n) of `images`, in
// batches, without recording a graph; either output may be null.
void dbvae_encode_all(DbVae& model, const Tensor& images, int64_t batch_size, std::vector<float>* mu,
                      std::vector<float>* logits);

// The DB-VAE's sampling weights (the paper's Algorithm 1): mu holds n latent means of latent_dim
// units, row-major. Per unit d, a histogram of bins equal-width bins over [min_d, max_d] gives each
// image the share Q_d of the n images that fall in its bin (the density of the bin as a probability
// mass). The weight of image i is proportional to prod_d 1 / (Q_d(mu_id) + alpha): images in rare
// bins of some units weigh more; alpha smooths (alpha -> infinity: uniform). The product is taken
// in logs; the result sums to 1. A unit whose n values are all equal puts them in one bin (Q = 1).
// Throws std::invalid_argument for bins < 1, alpha < 0 (alpha = 0 is allowed: no bin that holds an
// image is empty), latent_dim < 1 or a size mismatch.
std::vector<double> debias_weights(const std::vector<float>& mu, int64_t n, int64_t latent_dim, int64_t bins, double alpha);

}  // namespace ll::models
