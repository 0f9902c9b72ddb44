#include "models/scores.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "kernels/common/formulas.h"

namespace ll::models {


double binary_entropy(double t) {
  double h = 0;
  if (t > 0) h -= t * std::log(t);
  if (t < 1) h -= (1 - t) * std::log1p(-t);
  return h;
}

namespace {

// Per-image reconstruction error of logits against targets, both (B, P) row-major: the training
// loss's formula, summed per row in double.
std::vector<double> recon_per_image(const std::vector<float>& logits, const std::vector<float>& x, int64_t B, int64_t P,
                                    Recon recon) {
  std::vector<double> out(static_cast<size_t>(B), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t p = 0; p < P; ++p) {
      const size_t i = static_cast<size_t>(b * P + p);
      s += recon == Recon::BCE ? f::bce_with_logits(logits[i], x[i]) : f::squared_error(f::sigmoid(logits[i]), x[i]);
    }
    out[static_cast<size_t>(b)] = s;
  }
  return out;
}

}  // namespace

std::vector<ImageScores> score_batch(Autoencoder& model, const Tensor& x, int64_t samples, Generator& noise) {
  NoGradGuard no_grad;
  const auto& c = model.config();
  const int64_t B = x.size(0), P = c.channels * c.height * c.width, D = c.latent_dim;
  const Tensor xc = x.to(Device::CPU);
  const std::vector<float> xv = xc.to_vector();
  const auto [mu, logvar] = model.encode(x);
  std::vector<ImageScores> out(static_cast<size_t>(B));
  if (c.recon == Recon::BCE) {
    for (int64_t b = 0; b < B; ++b) {
      double h = 0;
      for (int64_t p = 0; p < P; ++p) h += binary_entropy(xv[static_cast<size_t>(b * P + p)]);
      out[static_cast<size_t>(b)].entropy = h;
    }
  }
  if (!model.variational()) {
    const std::vector<double> rec = recon_per_image(model.decode(mu).to_vector(), xv, B, P, c.recon);
    for (int64_t b = 0; b < B; ++b) out[static_cast<size_t>(b)].recon = rec[static_cast<size_t>(b)];
  } else {
    const std::vector<float> muv = mu.to_vector(), lvv = logvar.to_vector();
    // log w_k per image and draw (K, B), for the importance-weighted estimate.
    std::vector<double> logw(static_cast<size_t>(samples * B));
    for (int64_t k = 0; k < samples; ++k) {
      const Tensor z = reparameterize(mu, logvar, noise);
      const std::vector<float> zv = z.to_vector();
      const std::vector<double> rec = recon_per_image(model.decode(z).to_vector(), xv, B, P, c.recon);
      for (int64_t b = 0; b < B; ++b) {
        out[static_cast<size_t>(b)].recon += rec[static_cast<size_t>(b)] / static_cast<double>(samples);
        // log N(z; 0, I) - log N(z; mu, sigma^2) = sum_d [-z^2 / 2 + eps^2 / 2 + logvar / 2]
        // (the 2 pi terms cancel), eps = (z - mu) / sigma.
        double lw = -rec[static_cast<size_t>(b)];
        for (int64_t d = 0; d < D; ++d) {
          const size_t i = static_cast<size_t>(b * D + d);
          const double zz = zv[i], lv = lvv[i];
          const double eps = (zz - muv[i]) * std::exp(-0.5 * lv);
          lw += 0.5 * (eps * eps - zz * zz + lv);
        }
        logw[static_cast<size_t>(k * B + b)] = lw;
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      ImageScores& r = out[static_cast<size_t>(b)];
      for (int64_t d = 0; d < D; ++d) {
        const size_t i = static_cast<size_t>(b * D + d);
        r.kl += f::kl_normal(muv[i], lvv[i]);
      }
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
