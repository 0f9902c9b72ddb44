#include "models/scores.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/ops.h"

namespace ll::models {


double binary_entropy(double t) {
  double h = 0;
  if (t > 0) h -= t * std::log(t);
  if (t < 1) h -= (1 - t) * std::log1p(-t);
  return h;
}

namespace {

std::vector<double> host(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return {v.begin(), v.end()};
}

}  // namespace

std::vector<ImageScores> score_batch(Autoencoder& model, const Tensor& x, int64_t samples, Generator& noise) {
  NoGradGuard no_grad;
  const auto& c = model.config();
  const int64_t B = x.size(0), P = c.channels * c.height * c.width;
  std::vector<ImageScores> out(static_cast<size_t>(B));
  if (c.recon == Recon::BCE) {
    // The input's own entropy: a property of the data, not of the model, summed on the host.
    const std::vector<float> xv = x.to(Device::CPU).to_vector();
    for (int64_t b = 0; b < B; ++b) {
      double h = 0;
      for (int64_t p = 0; p < P; ++p) h += binary_entropy(xv[static_cast<size_t>(b * P + p)]);
      out[static_cast<size_t>(b)].entropy = h;
    }
  }
  // The reconstruction error of each image decoded from the codes z (B, D): the training loss's
  // per-element terms (Reduction::None) summed over each image's pixels, (B).
  const Tensor target = x.reshape({B, P});
  auto recon_rows = [&](const Tensor& z) {
    const Tensor logits = model.decode(z).reshape({B, P});
    return sum(c.recon == Recon::BCE ? bce_with_logits(logits, target, Reduction::None)
                                     : mse_loss(sigmoid(logits), target, Reduction::None),
               1);
  };
  const auto [mu, logvar] = model.encode(x);
  if (!model.variational()) {
    const std::vector<double> rec = host(recon_rows(mu));
    for (int64_t b = 0; b < B; ++b) out[static_cast<size_t>(b)].recon = rec[static_cast<size_t>(b)];
  } else {
    const std::vector<double> kl = host(sum(kl_normal(mu, logvar, 1.0f, Reduction::None), 1));
    // log w_k per image and draw (K, B), for the importance-weighted estimate.
    std::vector<double> logw(static_cast<size_t>(samples * B));
    const Tensor inv_sigma = exp(scale(logvar, -0.5f));
    for (int64_t k = 0; k < samples; ++k) {
      const Tensor z = reparameterize(mu, logvar, noise);
      const std::vector<double> rec = host(recon_rows(z));
      // log N(z; 0, I) - log N(z; mu, sigma^2) = sum_d [-z^2 / 2 + eps^2 / 2 + logvar / 2]
      // (the 2 pi terms cancel), eps = (z - mu) / sigma.
      const Tensor eps = mul(sub(z, mu), inv_sigma);
      const std::vector<double> log_ratio = host(scale(sum(add(sub(mul(eps, eps), mul(z, z)), logvar), 1), 0.5f));
      for (int64_t b = 0; b < B; ++b) {
        const size_t i = static_cast<size_t>(b);
        out[i].recon += rec[i] / static_cast<double>(samples);
        logw[static_cast<size_t>(k * B + b)] = log_ratio[i] - rec[i];
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      ImageScores& r = out[static_cast<size_t>(b)];
      r.kl = kl[static_cast<size_t>(b)];
      r.neg_elbo = r.recon + r.kl;
      // -log mean_k w_k by log-sum-exp around the largest term.
      double top = -INFINITY;
      for (int64_t k = 0; k < samples; ++k) top = std::max(top, logw[static_cast<size_t>(k * B + b)]);
      double s = 0;
      for (int64_t k = 0; k < samples; ++k) s += std::exp(logw[static_cast<size_t>(k * B + b)] - top);
      r.iw_nll = -(top + std::log(s / static_cast<double>(samples)));
    }
  }
  for (ImageScores& r : out) r.excess = r.recon - r.entropy;
  return out;
}

}  // namespace ll::models
