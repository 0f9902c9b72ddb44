#include "models/dbvae.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/ops.h"

namespace ll::models {

void DbVaeConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("dbvae: " + what);
  };
  need(channels >= 1 && channels <= 4 && height >= 1 && width >= 1 && height <= 1024 && width <= 1024,
       "images must have 1..4 channels and sides in 1..1024");
  need(hidden >= 1 && hidden <= 65536, "hidden must be in 1..65536, got " + std::to_string(hidden));
  need(latent_dim >= 1 && latent_dim <= 4096, "latent_dim must be in 1..4096, got " + std::to_string(latent_dim));
}

std::string DbVaeConfig::to_json() const {
  return nlohmann::json{{"model", "dbvae"}, {"channels", channels}, {"height", height}, {"width", width},
                        {"hidden", hidden}, {"latent_dim", latent_dim}}
      .dump();
}

DbVaeConfig DbVaeConfig::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.at("model").get<std::string>() != "dbvae") throw std::invalid_argument("not a dbvae");
    auto integer = [&](const char* name) {
      const auto& v = j.at(name);
      if (!v.is_number_integer()) throw std::invalid_argument(std::string("'") + name + "' is not an integer");
      return v.get<int64_t>();
    };
    DbVaeConfig c;
    c.channels = integer("channels");
    c.height = integer("height");
    c.width = integer("width");
    c.hidden = integer("hidden");
    c.latent_dim = integer("latent_dim");
    c.validate();
    return c;
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("bad dbvae configuration: ") + e.what());
  }
}

DbVae::DbVae(const DbVaeConfig& config, Generator& init) : config_(config) {
  config_.validate();
  const int64_t P = config_.pixels(), H = config_.hidden, D = config_.latent_dim;
  fc1_ = register_module("fc1", std::make_shared<nn::Linear>(P, H, init));
  fc2_ = register_module("fc2", std::make_shared<nn::Linear>(H, H, init));
  fc_logit_ = register_module("fc_logit", std::make_shared<nn::Linear>(H, 1, init));
  fc_mu_ = register_module("fc_mu", std::make_shared<nn::Linear>(H, D, init));
  fc_logvar_ = register_module("fc_logvar", std::make_shared<nn::Linear>(H, D, init));
  fc3_ = register_module("fc3", std::make_shared<nn::Linear>(D, H, init));
  fc4_ = register_module("fc4", std::make_shared<nn::Linear>(H, P, init));
}

DbVaeEncoding DbVae::encode(const Tensor& x) {
  check_arg(x.dim() == 4 && x.size(1) == config_.channels && x.size(2) == config_.height && x.size(3) == config_.width,
            "DbVae", "expects images (N, " + std::to_string(config_.channels) + ", " + std::to_string(config_.height) +
                         ", " + std::to_string(config_.width) + "), got " + x.str());
  const Tensor h = relu(fc2_->forward(relu(fc1_->forward(x.reshape({x.size(0), config_.pixels()})))));
  return {fc_logit_->forward(h), fc_mu_->forward(h), fc_logvar_->forward(h)};
}

Tensor DbVae::decode(const Tensor& z) { return fc4_->forward(relu(fc3_->forward(z))); }

DbVaeStepResult dbvae_train_step(DbVae& model, optim::Optimizer& opt, const Tensor& images, int64_t n_positive, bool vae,
                                 Generator& noise) {
  const int64_t N = images.size(0), P = model.config().pixels();
  check_arg(n_positive >= 0 && n_positive <= N, "dbvae_train_step",
            "n_positive " + std::to_string(n_positive) + " outside 0.." + std::to_string(N));
  opt.zero_grad();
  const DbVaeEncoding e = model.encode(images);
  std::vector<float> y(static_cast<size_t>(N), 0.0f);
  std::fill(y.begin(), y.begin() + n_positive, 1.0f);
  const Tensor target = Tensor::from_vector(y, {N, 1}, images.device());
  const Tensor classification = bce_with_logits(e.logit, target, Reduction::Mean);
  Tensor loss = classification;
  DbVaeStepResult r;
  if (vae && n_positive > 0) {
    // The positives are rows 0..n_positive-1: the decoder sees only them (the paper's indicator).
    const Tensor mu = narrow(e.mu, 0, 0, n_positive), logvar = narrow(e.logvar, 0, 0, n_positive);
    const Tensor x = narrow(images.reshape({N, P}), 0, 0, n_positive);
    const Tensor recon = bce_with_logits(model.decode(reparameterize(mu, logvar, noise)), x, Reduction::Sum);
    const Tensor kl = kl_normal(mu, logvar, 1.0f, Reduction::Sum);
    const Tensor vae_term = (recon + kl) * static_cast<float>(1.0 / (static_cast<double>(P) * static_cast<double>(N)));
    loss = loss + vae_term;
    r.vae = vae_term.item();
  }
  loss.backward();
  opt.step();
  r.loss = loss.item();
  r.classification = classification.item();
  const std::vector<float> logits = e.logit.to_vector();
  for (int64_t i = 0; i < N; ++i) r.correct += (logits[static_cast<size_t>(i)] > 0.0f) == (i < n_positive);
  return r;
}

void dbvae_encode_all(DbVae& model, const Tensor& images, int64_t batch_size, std::vector<float>* mu,
                      std::vector<float>* logits) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  if (mu) mu->clear();
  if (logits) logits->clear();
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += batch_size) {
    const DbVaeEncoding e = model.encode(images.slice(b, std::min(n, b + batch_size)));
    if (mu) {
      const std::vector<float> m = e.mu.to_vector();
      mu->insert(mu->end(), m.begin(), m.end());
    }
    if (logits) {
      const std::vector<float> l = e.logit.to_vector();
      logits->insert(logits->end(), l.begin(), l.end());
    }
  }
  model.train(was_training);
}

std::vector<double> debias_weights(const std::vector<float>& mu, int64_t n, int64_t latent_dim, int64_t bins, double alpha) {
  if (bins < 1) throw std::invalid_argument("debias_weights: bins must be >= 1, got " + std::to_string(bins));
  if (!(alpha >= 0.0) || !std::isfinite(alpha)) throw std::invalid_argument("debias_weights: alpha must be a finite number >= 0");
  if (latent_dim < 1 || n < 0 || static_cast<int64_t>(mu.size()) != n * latent_dim) {
    throw std::invalid_argument("debias_weights: mu holds " + std::to_string(mu.size()) + " values, not " +
                                std::to_string(n) + " x " + std::to_string(latent_dim));
  }
  std::vector<double> log_w(static_cast<size_t>(n), 0.0);
  std::vector<int64_t> bin_of(static_cast<size_t>(n)), count(static_cast<size_t>(bins));
  for (int64_t d = 0; d < latent_dim; ++d) {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, static_cast<double>(mu[static_cast<size_t>(i * latent_dim + d)]));
      hi = std::max(hi, static_cast<double>(mu[static_cast<size_t>(i * latent_dim + d)]));
    }
    const double width = (hi - lo) / static_cast<double>(bins);
    std::fill(count.begin(), count.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
      const double v = mu[static_cast<size_t>(i * latent_dim + d)];
      // numpy.histogram's bins: [lo, lo + w), ..., [hi - w, hi] (the last one closed).
      int64_t b = width > 0.0 ? static_cast<int64_t>(std::floor((v - lo) / width)) : 0;
      b = std::clamp<int64_t>(b, 0, bins - 1);
      bin_of[static_cast<size_t>(i)] = b;
      ++count[static_cast<size_t>(b)];
    }
    for (int64_t i = 0; i < n; ++i) {
      const double q = static_cast<double>(count[static_cast<size_t>(bin_of[static_cast<size_t>(i)])]) / static_cast<double>(n);
      log_w[static_cast<size_t>(i)] -= std::log(q + alpha);
    }
  }
  std::vector<double> w(static_cast<size_t>(n));
  if (n == 0) return w;
  const double top = *std::max_element(log_w.begin(), log_w.end());
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += w[static_cast<size_t>(i)] = std::exp(log_w[static_cast<size_t>(i)] - top);
  for (double& v : w) v /= total;
  return w;
}

}  // namespace ll::models
