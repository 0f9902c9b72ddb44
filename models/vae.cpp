#include "models/vae.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "models/config_count.h"

namespace ll::models {

using nlohmann::json;

const char* kind_name(AeKind k) { return k == AeKind::AE ? "ae" : "vae"; }
const char* arch_name(Arch a) { return a == Arch::MLP ? "mlp" : "conv"; }
const char* recon_name(Recon r) { return r == Recon::BCE ? "bce" : "mse"; }

// ---- configuration --------------------------------------------------------------------------------

std::string VaeConfig::to_json() const {
  json j{{"model", kind_name(kind)},      {"arch", arch_name(arch)},         {"channels", channels},
         {"height", height},              {"width", width},                  {"latent_dim", latent_dim},
         {"hidden", hidden},              {"conv_channels", conv_channels},  {"beta", beta},
         {"recon", recon_name(recon)}};
  return j.dump();
}

VaeConfig VaeConfig::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("model config is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("model config is not a JSON object");
  auto field = [&](const char* name) -> const json& {
    if (!j.contains(name)) throw std::invalid_argument(std::string("model config has no '") + name + "'");
    return j.at(name);
  };
  auto text_field = [&](const char* name, std::initializer_list<const char*> allowed) {
    const json& v = field(name);
    if (!v.is_string()) throw std::invalid_argument(std::string("model config '") + name + "' is not a string");
    const std::string s = v.get<std::string>();
    for (const char* a : allowed) {
      if (s == a) return s;
    }
    throw std::invalid_argument(std::string("model config '") + name + "' has unknown value '" + s + "'");
  };
  auto int_field = [&](const char* name) {
    const json& v = field(name);
    if (!v.is_number_integer()) throw std::invalid_argument(std::string("model config '") + name + "' is not an integer");
    return v.get<int64_t>();
  };
  VaeConfig c;
  c.kind = text_field("model", {"ae", "vae"}) == "ae" ? AeKind::AE : AeKind::VAE;
  c.arch = text_field("arch", {"mlp", "conv"}) == "mlp" ? Arch::MLP : Arch::Conv;
  c.recon = text_field("recon", {"bce", "mse"}) == "bce" ? Recon::BCE : Recon::MSE;
  c.channels = int_field("channels");
  c.height = int_field("height");
  c.width = int_field("width");
  c.latent_dim = int_field("latent_dim");
  c.hidden = int_field("hidden");
  c.conv_channels = int_field("conv_channels");
  const json& beta = field("beta");
  if (!beta.is_number()) throw std::invalid_argument("model config 'beta' is not a number");
  c.beta = beta.get<double>();
  c.validate();
  return c;
}

void VaeConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
  };
  need(channels == 1 || channels == 3, "channels must be 1 or 3, got " + std::to_string(channels));
  need(height > 0 && width > 0, "image size must be positive");
  need(latent_dim > 0 && latent_dim <= 4096, "latent_dim must be in 1..4096, got " + std::to_string(latent_dim));
  need(hidden > 0, "hidden must be positive");
  need(conv_channels > 0, "conv_channels must be positive");
  need(beta >= 0.0, "beta must be >= 0");
  if (arch == Arch::Conv) {
    need(height % 4 == 0 && width % 4 == 0,
         "the conv architecture needs image sides divisible by 4, got " + std::to_string(height) + "x" +
             std::to_string(width) + " (use --arch mlp)");
  }
  need(num_parameters() <= kMaxParameters,
       "the model would have more than " + std::to_string(kMaxParameters) + " parameters (images " +
           std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width) + ", hidden " +
           std::to_string(hidden) + ", conv_channels " + std::to_string(conv_channels) + ", latent_dim " +
           std::to_string(latent_dim) + ")");
}

int64_t VaeConfig::num_parameters() const {
  using config_count::add;
  using config_count::mul;
  const int64_t D = latent_dim, heads = kind == AeKind::VAE ? 2 : 1;  // mu, and logvar for the VAE
  if (arch == Arch::MLP) {
    const int64_t P = mul({channels, height, width}), h = hidden;
    return add({mul({P, h}), h,                    // fc1
                mul({heads, add({mul({h, D}), D})}),  // fc21, fc22
                mul({D, h}), h,                    // fc3
                mul({h, P}), P});                  // fc4
  }
  const int64_t w = conv_channels, C = channels;
  const int64_t F = mul({2, w, height / 4, width / 4});  // the flattened encoder features
  return add({mul({C, w, 16}), w,                   // encoder.0: Conv(C, w, 4x4)
              mul({w, 2, w, 16}), mul({2, w}),      // encoder.2: Conv(w, 2w, 4x4)
              mul({heads, add({mul({F, D}), D})}),  // fc_mu, fc_logvar
              mul({D, F}), F,                       // fc_dec
              mul({2, w, w, 16}), w,                // decoder.2: ConvT(2w, w, 4x4)
              mul({w, C, 16}), C});                 // decoder.4: ConvT(w, C, 4x4)
}

std::string VaeConfig::describe() const {
  std::ostringstream s;
  s << kind_name(kind) << " " << arch_name(arch) << " ";
  if (arch == Arch::MLP) {
    s << channels * height * width << "-" << hidden << "-" << latent_dim;
  } else {
    s << channels << "x" << height << "x" << width << " w" << conv_channels << " -> " << latent_dim;
  }
  if (kind == AeKind::VAE) s << " beta=" << beta;
  s << " " << recon_name(recon);
  return s.str();
}

// ---- the network ----------------------------------------------------------------------------------

Autoencoder::Autoencoder(const VaeConfig& config, Generator& init) : config_(config) {
  config_.validate();
  const int64_t pixels = config_.channels * config_.height * config_.width;
  const int64_t D = config_.latent_dim;
  if (config_.arch == Arch::MLP) {
    const int64_t h = config_.hidden;
    // Registration order = PyTorch's attribute order in pytorch/examples' VAE.
    fc1_ = register_module("fc1", std::make_shared<nn::Linear>(pixels, h, init));
    fc21_ = register_module("fc21", std::make_shared<nn::Linear>(h, D, init));
    if (variational()) fc22_ = register_module("fc22", std::make_shared<nn::Linear>(h, D, init));
    fc3_ = register_module("fc3", std::make_shared<nn::Linear>(D, h, init));
    fc4_ = register_module("fc4", std::make_shared<nn::Linear>(h, pixels, init));
    return;
  }
  const int64_t w = config_.conv_channels, H4 = config_.height / 4, W4 = config_.width / 4;
  const int64_t features = 2 * w * H4 * W4;
  // Pair is (height, width), engine/ops/conv.h.
  encoder_ = register_module("encoder", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
      std::make_shared<nn::Conv2d>(config_.channels, w, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}),
      std::make_shared<nn::LeakyReLU>(0.2f),
      std::make_shared<nn::Conv2d>(w, 2 * w, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}),
      std::make_shared<nn::LeakyReLU>(0.2f), std::make_shared<nn::Flatten>()}));
  fc_mu_ = register_module("fc_mu", std::make_shared<nn::Linear>(features, D, init));
  if (variational()) fc_logvar_ = register_module("fc_logvar", std::make_shared<nn::Linear>(features, D, init));
  fc_dec_ = register_module("fc_dec", std::make_shared<nn::Linear>(D, features, init));
  decoder_ = register_module("decoder", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Unflatten>(Shape{2 * w, H4, W4}),
      std::make_shared<nn::ConvTranspose2d>(2 * w, w, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}),
      std::make_shared<nn::LeakyReLU>(0.2f),
      std::make_shared<nn::ConvTranspose2d>(w, config_.channels, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1})}));
}

Tensor Autoencoder::encoder_features(const Tensor& x) {
  const Shape want{config_.channels, config_.height, config_.width};
  check_arg(x.dim() == 4 && Shape(x.shape().begin() + 1, x.shape().end()) == want, "Autoencoder",
            "expects images (N, " + std::to_string(want[0]) + ", " + std::to_string(want[1]) + ", " +
                std::to_string(want[2]) + "), got " + x.str());
  if (config_.arch == Arch::MLP) return relu(fc1_->forward(x.flatten(1)));
  return encoder_->forward(x);
}

std::pair<Tensor, Tensor> Autoencoder::encode(const Tensor& x) {
  const Tensor h = encoder_features(x);
  if (config_.arch == Arch::MLP) return {fc21_->forward(h), variational() ? fc22_->forward(h) : Tensor()};
  return {fc_mu_->forward(h), variational() ? fc_logvar_->forward(h) : Tensor()};
}

Tensor Autoencoder::decode(const Tensor& z) {
  check_arg(z.dim() == 2 && z.size(1) == config_.latent_dim, "Autoencoder::decode",
            "expects codes (N, " + std::to_string(config_.latent_dim) + "), got " + z.str());
  Tensor logits = config_.arch == Arch::MLP ? fc4_->forward(relu(fc3_->forward(z)))
                                            : decoder_->forward(fc_dec_->forward(z));
  return logits.reshape({z.size(0), config_.channels, config_.height, config_.width});
}

VaeOutput Autoencoder::forward(const Tensor& x, Generator& noise) {
  VaeOutput out;
  std::tie(out.mu, out.logvar) = encode(x);
  out.z = variational() ? reparameterize(out.mu, out.logvar, noise) : out.mu;
  out.logits = decode(out.z);
  return out;
}

VaeOutput Autoencoder::forward_with_noise(const Tensor& x, const Tensor& eps) {
  VaeOutput out;
  std::tie(out.mu, out.logvar) = encode(x);
  if (variational()) {
    check_arg(eps.shape() == out.mu.shape(), "Autoencoder::forward_with_noise",
              "eps " + eps.str() + " does not match the codes " + out.mu.str());
    // z = mu + exp(logvar / 2) * eps, composed of differentiable ops.
    out.z = add(out.mu, mul(exp(scale(out.logvar, 0.5f)), eps));
  } else {
    out.z = out.mu;
  }
  out.logits = decode(out.z);
  return out;
}

VaeLossTensors Autoencoder::loss_tensors(const Tensor& x, const VaeOutput& out) const {
  VaeLossTensors l;
  l.n = x.size(0);
  l.recon = config_.recon == Recon::BCE ? bce_with_logits(out.logits, x, Reduction::Sum)
                                        : mse_loss(sigmoid(out.logits), x, Reduction::Sum);
  if (variational()) {
    // One fused kernel gives beta * KL and its gradients; KL itself is reported unweighted.
    const Tensor kl = kl_normal(out.mu, out.logvar, static_cast<float>(config_.beta), Reduction::Sum);
    l.loss = add(l.recon, kl);
    if (config_.beta != 0.0) {
      l.kl = kl;
      l.kl_divisor = config_.beta;
    } else {
      NoGradGuard no_grad;
      l.kl = kl_normal(out.mu, out.logvar, 1.0f, Reduction::Sum);
      l.kl_divisor = 1.0;
    }
  } else {
    l.loss = l.recon;
  }
  return l;
}

VaeLoss Autoencoder::loss(const Tensor& x, const VaeOutput& out) const {
  return PendingVaeLoss(loss_tensors(x, out)).get();
}

PendingVaeLoss::PendingVaeLoss(VaeLossTensors t)
    : loss_(t.loss), kl_divisor_(t.kl_divisor), has_kl_(t.kl.defined()), started_(true), n_(t.n),
      readback_(std::make_shared<Readback>()) {
  std::vector<Tensor> figures{t.recon};
  if (has_kl_) figures.push_back(t.kl);
  readback_->start(figures);
}

VaeLoss PendingVaeLoss::get() {
  if (!started_) throw std::logic_error("PendingVaeLoss::get on an empty result");
  const std::vector<float>& v = readback_->values();
  VaeLoss l;
  l.loss = loss_;
  l.n = n_;
  // As float .item() values turned into doubles, so the figures equal the synchronous ones bit for bit.
  l.recon_sum = v[0];
  l.kl_sum = has_kl_ ? static_cast<double>(v[1]) / kl_divisor_ : 0.0;
  return l;
}

Tensor Autoencoder::generate(const Tensor& z) {
  NoGradGuard no_grad;
  return sigmoid(decode(z));
}

namespace {
// zero_grad, forward, loss, backward, step: queued, nothing read on the host.
VaeLossTensors queue_step(Autoencoder& model, optim::Optimizer& opt, const Tensor& x, Generator& noise) {
  opt.zero_grad();
  const VaeOutput out = model.forward(x, noise);
  VaeLossTensors l = model.loss_tensors(x, out);
  l.loss.backward();
  opt.step();
  return l;
}
}  // namespace

PendingVaeLoss train_step_async(Autoencoder& model, optim::Optimizer& opt, const Tensor& x, Generator& noise) {
  return PendingVaeLoss(queue_step(model, opt, x, noise));  // the copies queue behind the optimizer's update
}

VaeGraphStep::VaeGraphStep(Autoencoder& model, optim::Optimizer& opt, Generator& noise)
    : model_(model), opt_(opt), noise_(noise) {}

PendingVaeLoss VaeGraphStep::step(const Tensor& x) {
  if (graph_.captured() && x.shape() == input_.shape()) {
    input_.copy_(x);
    graph_.launch();
    return PendingVaeLoss(captured_);
  }
  if (graph_.captured() || uncaptured_ == 0 || x.device() != Device::CUDA) {
    ++uncaptured_;
    return train_step_async(model_, opt_, x, noise_);
  }
  input_ = Tensor::empty(x.shape(), x.device());  // before the capture: outside the graph's pool
  input_.copy_(x);
  graph_.capture([&] { captured_ = queue_step(model_, opt_, input_, noise_); });
  graph_.launch();
  return PendingVaeLoss(captured_);
}

VaeLoss train_step(Autoencoder& model, optim::Optimizer& opt, const Tensor& x, Generator& noise) {
  return train_step_async(model, opt, x, noise).get();
}

VaeLoss eval_batch(Autoencoder& model, const Tensor& x, Generator& noise) {
  NoGradGuard no_grad;
  return model.loss(x, model.forward(x, noise));
}

DatasetLoss evaluate_dataset(Autoencoder& model, const data::Dataset& dataset, int64_t batch_size, Generator& noise,
                             Device device, int64_t part, int64_t parts) {
  if (parts < 1 || part < 0 || part >= parts) throw std::invalid_argument("evaluate_dataset: part " + std::to_string(part) + " of " + std::to_string(parts));
  data::DataLoader loader(dataset, {.batch_size = batch_size, .shuffle = false, .drop_last = false,
                                    .scale = data::Scale::Unit, .seed = 0});
  const bool was_training = model.is_training();
  model.eval();
  DatasetLoss t;
  loader.start_epoch(0);
  for (int64_t k = 0; auto batch = loader.next(); ++k) {
    if (k % parts != part) {
      // What the forward pass would draw: one normal per latent value of the batch (VAE only).
      if (model.variational()) noise.next(batch->images.size(0) * model.config().latent_dim);
      continue;
    }
    const VaeLoss l = eval_batch(model, batch->images.to(device), noise);
    t.recon += l.recon_sum;
    t.kl += l.kl_sum;
    t.n += l.n;
  }
  model.train(was_training);
  return t;
}

}  // namespace ll::models
