// scores.h: per-image scores of an autoencoder or VAE: how badly it explains each image. They are
// engine ops on the model's device: the training loss's per-element terms (Reduction::None of
// bce_with_logits / mse_loss / kl_normal, engine/ops/loss.h) summed over each image's pixels or
// latent dimensions (float64 inside the sum, kernels/reduce.h); only the log-sum-exp over the K
// draws (K x N numbers) and the inputs' entropy are added on the host. `latentlab score` (apps/cmd_score.cpp, where each score's meaning and sources are
// written out) prints them and their AUROCs.
//   recon     reconstruction error summed over pixels: AE of decode(mu); VAE of decode(z), z drawn
//             from q(z|x), averaged over K draws (Kingma & Welling 2014, eq. 10)
//   kl        KL(q(z|x) || N(0, I)) in closed form (VAE)
//   neg_elbo  recon + kl (VAE)
//   iw_nll    -log (1/K sum_k w_k), log w_k = log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x), the
//             importance-weighted estimate of -log p(x) (Burda et al. 2016; VAE, meaningful for K > 1)
//   entropy   sum of the binary entropy of the input's pixels, the floor of its BCE (0 for --recon mse)
//   excess    recon - entropy
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "models/vae.h"

namespace ll::models {

struct ImageScores {
  double recon = 0, kl = 0, neg_elbo = 0, iw_nll = 0, entropy = 0, excess = 0;
};

// The scores of a batch of images x (N, C, H, W) in [0, 1], without gradients; a VAE draws K =
// `samples` codes per image from `noise` (in the order: draw k for the whole batch, then k + 1).
std::vector<ImageScores> score_batch(Autoencoder& model, const Tensor& x, int64_t samples, Generator& noise);

// Binary entropy H(t) = -t log t - (1 - t) log(1 - t) in nats, with 0 log 0 = 0.
double binary_entropy(double t);

}  // namespace ll::models
