#include "models/pix2pix.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/ops.h"

namespace ll::models {

using nn::Conv2d;
using nn::ConvTranspose2d;
using nn::Sequential;

// ---- configuration --------------------------------------------------------------------------

int64_t Pix2PixConfig::padded_size() const {
  int64_t p = 1;
  while (p < size) p *= 2;
  return p;
}

int64_t Pix2PixConfig::depth() const {
  int64_t d = 0;
  for (int64_t p = padded_size(); p > 1; p /= 2) ++d;
  return d;
}

void Pix2PixConfig::validate() const {
  if (channels != 1 && channels != 3) throw std::invalid_argument("pix2pix: channels must be 1 or 3, got " + std::to_string(channels));
  // At least 4 x 4 after padding (depth 2): the first decoder block's InstanceNorm then sees 2 x 2
  // planes, the smallest with more than one value.
  if (size < 3 || size > 256) throw std::invalid_argument("pix2pix: image size must be in [3, 256], got " + std::to_string(size));
  if (ngf < 1 || ngf > 512) throw std::invalid_argument("--ngf must be in [1, 512], got " + std::to_string(ngf));
  if (ndf < 1 || ndf > 512) throw std::invalid_argument("--ndf must be in [1, 512], got " + std::to_string(ndf));
}

std::string Pix2PixConfig::to_json() const {
  return nlohmann::json{{"model", "pix2pix"}, {"channels", channels}, {"size", size}, {"ngf", ngf}, {"ndf", ndf}}.dump();
}

Pix2PixConfig Pix2PixConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("pix2pix config is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("pix2pix config is not a JSON object");
  if (!(j.contains("model") && j.at("model").is_string() && j.at("model").get<std::string>() == "pix2pix")) {
    throw std::invalid_argument("pix2pix config: 'model' is not \"pix2pix\"");
  }
  auto integer = [&](const char* name) {
    if (!j.contains(name) || !j.at(name).is_number_integer()) {
      throw std::invalid_argument(std::string("pix2pix config: '") + name + "' is missing or not an integer");
    }
    return j.at(name).get<int64_t>();
  };
  Pix2PixConfig c;
  c.channels = integer("channels");
  c.size = integer("size");
  c.ngf = integer("ngf");
  c.ndf = integer("ndf");
  c.validate();
  return c;
}

// ---- networks -------------------------------------------------------------------------------

UNetGenerator::UNetGenerator(const Pix2PixConfig& config, Generator& init, std::shared_ptr<Generator> dropout_gen)
    : config_(config), dropout_gen_(std::move(dropout_gen)) {
  config_.validate();
  const int64_t depth = config_.depth(), g = config_.ngf, C = config_.channels;
  auto ch = [g](int64_t i) { return g * std::min<int64_t>(int64_t{1} << std::min<int64_t>(i, 3), 8); };
  const Pair k4{4, 4}, s2{2, 2}, p1{1, 1};
  for (int64_t i = 0; i < depth; ++i) {
    auto block = std::make_shared<Sequential>();
    const int64_t in = i == 0 ? C : ch(i - 1);
    // No bias where an InstanceNorm follows: it removes any per-channel constant, so such a bias
    // would get a zero gradient (up to rounding, which Adam's first steps blow up to +-lr).
    const bool normed = i > 0 && i < depth - 1;
    block->push_back(std::make_shared<Conv2d>(in, ch(i), k4, init, s2, p1, !normed));
    if (i == depth - 1) {
      block->push_back(std::make_shared<nn::ReLU>());  // the 1 x 1 bottleneck: no norm
    } else {
      if (i > 0) block->push_back(std::make_shared<nn::InstanceNorm2d>(ch(i), 1e-5f, true));
      block->push_back(std::make_shared<nn::LeakyReLU>(0.2f));
    }
    down_.push_back(register_module("down" + std::to_string(i), block));
  }
  for (int64_t j = 0; j < depth; ++j) {
    auto block = std::make_shared<Sequential>();
    if (j == depth - 1) {  // outermost: back to the image's channels
      block->push_back(std::make_shared<ConvTranspose2d>(2 * ch(0), C, k4, init, s2, p1));
      block->push_back(std::make_shared<nn::Tanh>());
    } else {
      const int64_t in = j == 0 ? ch(depth - 1) : 2 * ch(depth - 1 - j);
      const int64_t out = ch(depth - 2 - j);
      block->push_back(std::make_shared<ConvTranspose2d>(in, out, k4, init, s2, p1, Pair{0, 0}, false));
      block->push_back(std::make_shared<nn::InstanceNorm2d>(out, 1e-5f, true));
      if (j < config_.dropout_blocks()) block->push_back(std::make_shared<nn::Dropout>(0.5f, dropout_gen_));
      block->push_back(std::make_shared<nn::ReLU>());
    }
    up_.push_back(register_module("up" + std::to_string(j), block));
  }
  pix2pix_init(*this, init);
}

Tensor UNetGenerator::forward(const Tensor& x) {
  const int64_t S = config_.size, P = config_.padded_size();
  check_arg(x.dim() == 4 && x.size(1) == config_.channels && x.size(2) == S && x.size(3) == S, "UNetGenerator",
            "expects (N, " + std::to_string(config_.channels) + ", " + std::to_string(S) + ", " + std::to_string(S) +
                ") input, got " + x.str());
  const int64_t before = (P - S) / 2, after = P - S - before;
  Tensor h = P > S ? pad2d(x, {before, after, before, after}) : x;
  std::vector<Tensor> skips;
  for (auto& block : down_) {
    h = block->forward(h);
    skips.push_back(h);
  }
  const int64_t depth = static_cast<int64_t>(down_.size());
  h = up_[0]->forward(skips.back());
  for (int64_t j = 1; j < depth; ++j) h = up_[j]->forward(cat({h, skips[depth - 1 - j]}, 1));
  if (P > S) h = narrow(narrow(h, 2, before, S), 3, before, S);
  return h;
}

PatchDiscriminator::PatchDiscriminator(const Pix2PixConfig& config, Generator& init) : config_(config) {
  config_.validate();
  const int64_t d = config_.ndf;
  main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
      std::make_shared<Conv2d>(2 * config_.channels, d, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}),
      std::make_shared<nn::LeakyReLU>(0.2f),
      std::make_shared<Conv2d>(d, 2 * d, Pair{3, 3}, init, Pair{1, 1}, Pair{1, 1}, false),  // InstanceNorm follows
      std::make_shared<nn::InstanceNorm2d>(2 * d, 1e-5f, true),
      std::make_shared<nn::LeakyReLU>(0.2f),
      std::make_shared<Conv2d>(2 * d, 1, Pair{1, 1}, init),
  }));
  pix2pix_init(*this, init);
}

Tensor PatchDiscriminator::forward(const Tensor& x, const Tensor& y) {
  check_arg(x.dim() == 4 && x.shape() == y.shape() && x.size(1) == config_.channels, "PatchDiscriminator",
            "input " + x.str() + " and output " + y.str() + " must both be (N, " + std::to_string(config_.channels) +
                ", H, W)");
  return main_->forward(cat({x, y}, 1));
}

void pix2pix_init(Module& m, Generator& gen) {
  for (auto& [name, child] : m.children()) {
    if (auto* c = dynamic_cast<Conv2d*>(child.get())) {
      init::normal_(c->weight, 0.0f, 0.02f, gen);
      if (c->bias.defined()) c->bias.zero_();
    } else if (auto* t = dynamic_cast<ConvTranspose2d*>(child.get())) {
      init::normal_(t->weight, 0.0f, 0.02f, gen);
      if (t->bias.defined()) t->bias.zero_();
    } else if (auto* n = dynamic_cast<nn::InstanceNorm2d*>(child.get())) {
      if (n->weight.defined()) {
        init::normal_(n->weight, 1.0f, 0.02f, gen);
        n->bias.zero_();
      }
    }
    pix2pix_init(*child, gen);
  }
}

// ---- loss and step --------------------------------------------------------------------------

Tensor l1_loss(const Tensor& a, const Tensor& b) {
  // |d| = relu(d) + relu(-d): two existing ops instead of a new one; the gradient is sign(d), and
  // 0 where d == 0 (both ReLUs' subgradient there is 0).
  const Tensor d = sub(a, b);
  return mean(add(relu(d), relu(neg(d))));
}

namespace {
double mean_probability(const Tensor& logits) {
  const std::vector<float> v = logits.detach().to(Device::CPU).to_vector();
  double s = 0;
  for (float l : v) s += 1.0 / (1.0 + std::exp(-static_cast<double>(l)));
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}
}  // namespace

Pix2PixStepResult pix2pix_train_step(UNetGenerator& g, PatchDiscriminator& d, optim::Optimizer& opt_g,
                                     optim::Optimizer& opt_d, const Tensor& x, const Tensor& y, float lambda_l1,
                                     float gan_weight) {
  Pix2PixStepResult r;
  const Tensor fake = g.forward(x);
  const bool gan = gan_weight != 0.0f;
  if (gan) {
    // (1) D: real pairs -> 1, generated pairs -> 0, the sum halved (the paper: "we divide the
    // objective by 2 while optimizing D, which slows down the rate at which D learns").
    opt_d.zero_grad();
    const Tensor out_real = d.forward(x, y);
    const Tensor out_fake = d.forward(x, fake.detach());  // no gradient reaches G here
    const Tensor loss_d = scale(add(bce_with_logits(out_real, Tensor::ones(out_real.shape(), x.device())),
                                    bce_with_logits(out_fake, Tensor::zeros(out_fake.shape(), x.device()))),
                                0.5f);
    loss_d.backward();
    opt_d.step();
    r.loss_d = loss_d.item();
    r.d_real = mean_probability(out_real);
    r.d_fake = mean_probability(out_fake);
  }
  // (2) G: fool the updated D and stay near the target in L1.
  opt_g.zero_grad();
  const Tensor l1 = l1_loss(fake, y);
  Tensor loss_g = scale(l1, lambda_l1);
  if (gan) {
    const Tensor out = d.forward(x, fake);
    const Tensor loss_gan = bce_with_logits(out, Tensor::ones(out.shape(), x.device()));
    loss_g = add(loss_g, scale(loss_gan, gan_weight));
    r.loss_gan = loss_gan.item();
  }
  loss_g.backward();
  opt_g.step();
  r.l1 = l1.item();
  return r;
}

Tensor pix2pix_translate(UNetGenerator& g, const Tensor& x, int64_t batch, uint64_t seed, Device device) {
  NoGradGuard no_grad;
  Generator& drop = g.dropout_generator();
  const Generator saved = drop;
  drop = Generator(seed, 0x7e57);
  const int64_t n = x.size(0);
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t b = std::min(batch, n - i);
    parts.push_back(g.forward(narrow(x, 0, i, b).to(device)).to(Device::CPU));
  }
  drop = saved;
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

}  // namespace ll::models
