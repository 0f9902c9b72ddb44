#include "models/gan.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/ops.h"
#include "models/config_count.h"

namespace ll::models {

using nn::BatchNorm2d;
using nn::Conv2d;
using nn::ConvTranspose2d;
using nn::LeakyReLU;
using nn::ReLU;
using nn::Sequential;
using nn::Tanh;

const char* gan_arch_name(GanArch a) {
  switch (a) {
    case GanArch::DCGAN64: return "dcgan64";
    case GanArch::DCGAN28: return "dcgan28";
    case GanArch::CGAN28: return "cgan28";
    case GanArch::GAN128: return "gan128";
  }
  return "?";
}

void GanConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
  };
  need(channels == 1 || channels == 3, "channels must be 1 or 3, got " + std::to_string(channels));
  need(nz > 0 && ngf > 0 && ndf > 0, "nz, ngf and ndf must be positive");
  need(!conditional() || (num_classes >= 2 && num_classes <= 1000), "num_classes must be in 2..1000");
  const std::string sizes = " (nz " + std::to_string(nz) + ", ngf " + std::to_string(ngf) + ", ndf " +
                            std::to_string(ndf) + ")";
  need(generator_parameters() <= kMaxParameters,
       "the generator would have more than " + std::to_string(kMaxParameters) + " parameters" + sizes);
  need(discriminator_parameters() <= kMaxParameters,
       "the discriminator would have more than " + std::to_string(kMaxParameters) + " parameters" + sizes);
}

// The two counts follow the constructors below layer by layer: DCGAN's convolutions have no bias,
// each BatchNorm2d(n) has a weight and a bias of n, gan128's layers have biases.
int64_t GanConfig::generator_parameters() const {
  using config_count::add;
  using config_count::mul;
  const int64_t g = ngf, C = channels;
  const int64_t in = conditional() ? add({nz, num_classes}) : nz;
  const int64_t embedding = conditional() ? mul({num_classes, num_classes}) : 0;
  switch (arch) {
    case GanArch::GAN128:
      return add({mul({in, 128 * 8 * 8}), 128 * 8 * 8,   // Linear(nz, 8192)
                  4 * (128 * 128 * 16 + 128),             // 4 x ConvT(128, 128, 4x4)
                  mul({128, C, 64}), C});                 // Conv(128, C, 8x8)
    case GanArch::DCGAN64:
      return add({mul({in, 8, g, 16}), mul({2, 8, g}),     // ConvT(nz, 8g, 4x4), BN
                  mul({8, g, 4, g, 16}), mul({2, 4, g}),   // ConvT(8g, 4g), BN
                  mul({4, g, 2, g, 16}), mul({2, 2, g}),   // ConvT(4g, 2g), BN
                  mul({2, g, g, 16}), mul({2, g}),         // ConvT(2g, g), BN
                  mul({g, C, 16})});                       // ConvT(g, C)
    case GanArch::DCGAN28:
    case GanArch::CGAN28:
      return add({embedding,                               // label_emb (cgan28)
                  mul({in, 2, g, 49}), mul({2, 2, g}),     // ConvT(nz, 2g, 7x7), BN
                  mul({2, g, g, 16}), mul({2, g}),         // ConvT(2g, g, 4x4), BN
                  mul({g, C, 16})});                       // ConvT(g, C, 4x4)
  }
  return config_count::kSaturated;
}

int64_t GanConfig::discriminator_parameters() const {
  using config_count::add;
  using config_count::mul;
  const int64_t d = ndf, S = image_size();
  const int64_t C = conditional() ? channels + 1 : channels;
  const int64_t embedding = conditional() ? mul({num_classes, S, S}) : 0;
  switch (arch) {
    case GanArch::GAN128:
      return add({mul({C, 128, 9}), 128,              // Conv(C, 128, 3x3)
                  4 * (128 * 128 * 9 + 128),          // 4 x Conv(128, 128, 3x3, stride 2)
                  128 * 8 * 8 + 1});                  // Linear(8192, 1)
    case GanArch::DCGAN64:
      return add({mul({C, d, 16}),                            // Conv(C, d, 4x4)
                  mul({d, 2, d, 16}), mul({2, 2, d}),         // Conv(d, 2d), BN
                  mul({2, d, 4, d, 16}), mul({2, 4, d}),      // Conv(2d, 4d), BN
                  mul({4, d, 8, d, 16}), mul({2, 8, d}),      // Conv(4d, 8d), BN
                  mul({8, d, 16})});                          // Conv(8d, 1, 4x4)
    case GanArch::DCGAN28:
    case GanArch::CGAN28:
      return add({embedding,                                  // label_emb (cgan28)
                  mul({C, d, 16}),                            // Conv(C, d, 4x4)
                  mul({d, 2, d, 16}), mul({2, 2, d}),         // Conv(d, 2d), BN
                  mul({2, d, 49})});                          // Conv(2d, 1, 7x7)
  }
  return config_count::kSaturated;
}

std::vector<int32_t> GanConfig::labels(int64_t n, int64_t label) const {
  if (!conditional()) {
    if (label >= 0) throw std::invalid_argument(std::string("--label is for the conditional GAN (cgan); this run is ") + gan_arch_name(arch));
    return {};
  }
  if (label >= num_classes) {
    throw std::invalid_argument("--label " + std::to_string(label) + " is not a class of this GAN (0.." +
                                std::to_string(num_classes - 1) + ")");
  }
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<int32_t>(label >= 0 ? label : i % num_classes);
  return out;
}

std::string GanConfig::to_json() const {
  return nlohmann::json{{"model", "gan"}, {"arch", gan_arch_name(arch)}, {"channels", channels}, {"nz", nz},
                        {"ngf", ngf},     {"ndf", ndf},                  {"num_classes", num_classes}}
      .dump();
}

GanConfig GanConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("GAN config is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("GAN config is not a JSON object");
  auto field = [&](const char* name) -> const nlohmann::json& {
    if (!j.contains(name)) throw std::invalid_argument(std::string("GAN config has no '") + name + "'");
    return j.at(name);
  };
  auto integer = [&](const char* name) {
    const nlohmann::json& v = field(name);
    if (!v.is_number_integer()) throw std::invalid_argument(std::string("GAN config '") + name + "' is not an integer");
    return v.get<int64_t>();
  };
  if (j.contains("model") && !(j.at("model").is_string() && j.at("model").get<std::string>() == "gan")) {
    throw std::invalid_argument("GAN config: 'model' is " + j.at("model").dump() + ", not \"gan\"");
  }
  const nlohmann::json& arch = field("arch");
  if (!arch.is_string()) throw std::invalid_argument("GAN config 'arch' is not a string");
  const std::string name = arch.get<std::string>();
  GanConfig c;
  if (name == "dcgan64") c.arch = GanArch::DCGAN64;
  else if (name == "dcgan28") c.arch = GanArch::DCGAN28;
  else if (name == "cgan28") c.arch = GanArch::CGAN28;
  else if (name == "gan128") c.arch = GanArch::GAN128;
  else throw std::invalid_argument("unknown GAN architecture '" + name + "'");
  c.channels = integer("channels");
  c.nz = integer("nz");
  c.ngf = integer("ngf");
  c.ndf = integer("ndf");
  c.num_classes = integer("num_classes");
  c.validate();
  return c;
}

namespace {
// Layers without bias (BatchNorm follows each convolution), as in pytorch/examples dcgan.
std::shared_ptr<Layer> convt(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, Generator& init) {
  return std::make_shared<ConvTranspose2d>(in, out, Pair{k, k}, init, Pair{s, s}, Pair{p, p}, Pair{0, 0}, false);
}
std::shared_ptr<Layer> conv(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, Generator& init) {
  return std::make_shared<Conv2d>(in, out, Pair{k, k}, init, Pair{s, s}, Pair{p, p}, false);
}
std::shared_ptr<Layer> lrelu() { return std::make_shared<LeakyReLU>(0.2f); }
}  // namespace

// ---- generator --------------------------------------------------------------------------------

GanGenerator::GanGenerator(const GanConfig& config, Generator& init) : config_(config) {
  config_.validate();
  const int64_t g = config_.ngf, C = config_.channels;
  int64_t in = config_.nz;
  if (config_.conditional()) {
    label_emb_ = register_module("label_emb", std::make_shared<nn::Embedding>(config_.num_classes, config_.num_classes, init));
    in += config_.num_classes;
  }
  if (config_.arch == GanArch::GAN128) {
    // The study's generator; "same" padding as Keras computes it (see gan.h).
    auto up = [&] { return std::make_shared<ConvTranspose2d>(128, 128, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}); };
    main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        std::make_shared<nn::Linear>(in, 128 * 8 * 8, init), lrelu(), std::make_shared<nn::Unflatten>(Shape{128, 8, 8}),
        up(), lrelu(), up(), lrelu(), up(), lrelu(), up(), lrelu(),                     // (128, 128, 128)
        std::make_shared<nn::ZeroPad2d>(std::array<int64_t, 4>{3, 4, 3, 4}),
        std::make_shared<Conv2d>(128, C, Pair{8, 8}, init), std::make_shared<Tanh>()}));  // (C, 128, 128)
    return;  // PyTorch's default initialization, not DCGAN's
  }
  if (config_.arch == GanArch::DCGAN64) {
    main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        convt(in, 8 * g, 4, 1, 0, init), BatchNorm2d(8 * g), std::make_shared<ReLU>(),      // (8g, 4, 4)
        convt(8 * g, 4 * g, 4, 2, 1, init), BatchNorm2d(4 * g), std::make_shared<ReLU>(),   // (4g, 8, 8)
        convt(4 * g, 2 * g, 4, 2, 1, init), BatchNorm2d(2 * g), std::make_shared<ReLU>(),   // (2g, 16, 16)
        convt(2 * g, g, 4, 2, 1, init), BatchNorm2d(g), std::make_shared<ReLU>(),           // (g, 32, 32)
        convt(g, C, 4, 2, 1, init), std::make_shared<Tanh>()}));                           // (C, 64, 64)
  } else {
    main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        convt(in, 2 * g, 7, 1, 0, init), BatchNorm2d(2 * g), std::make_shared<ReLU>(),      // (2g, 7, 7)
        convt(2 * g, g, 4, 2, 1, init), BatchNorm2d(g), std::make_shared<ReLU>(),           // (g, 14, 14)
        convt(g, C, 4, 2, 1, init), std::make_shared<Tanh>()}));                           // (C, 28, 28)
  }
  dcgan_init(*this, init);
}

Tensor GanGenerator::forward(const Tensor& z, const std::vector<int32_t>& labels) {
  check_arg(z.dim() == 2 && z.size(1) == config_.nz, "GanGenerator",
            "expects noise (N, " + std::to_string(config_.nz) + "), got " + z.str());
  Tensor h = z;
  if (config_.conditional()) {
    check_arg(static_cast<int64_t>(labels.size()) == z.size(0), "GanGenerator",
              std::to_string(labels.size()) + " labels for " + std::to_string(z.size(0)) + " codes");
    h = cat({z, label_emb_->forward(labels)}, 1);
  } else {
    check_arg(labels.empty(), "GanGenerator", "labels given to an unconditional generator");
  }
  if (config_.arch == GanArch::GAN128) return main_->forward(h);  // starts with a Linear
  return main_->forward(h.reshape({h.size(0), h.size(1), 1, 1}));
}

Tensor GanGenerator::images(const Tensor& z, const std::vector<int32_t>& labels) {
  NoGradGuard no_grad;
  return scale(add_scalar(forward(z, labels), 1.0f), 0.5f);  // [-1, 1] -> [0, 1]
}

// ---- discriminator ----------------------------------------------------------------------------

GanDiscriminator::GanDiscriminator(const GanConfig& config, Generator& init) : config_(config) {
  config_.validate();
  const int64_t d = config_.ndf, S = config_.image_size();
  int64_t C = config_.channels;
  if (config_.conditional()) {
    label_emb_ = register_module("label_emb", std::make_shared<nn::Embedding>(config_.num_classes, S * S, init));
    C += 1;  // the label as one more image channel
  }
  if (config_.arch == GanArch::GAN128) {
    // The study's discriminator; stride-2 "same" = 0 before, 1 after (see gan.h). The dropout
    // masks come from their own stream of the init generator's seed.
    dropout_gen_ = std::make_shared<Generator>(init.seed(), init.subsequence() + 1000);
    auto down = [&] {
      return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
          std::make_shared<nn::ZeroPad2d>(std::array<int64_t, 4>{0, 1, 0, 1}),
          std::make_shared<Conv2d>(128, 128, Pair{3, 3}, init, Pair{2, 2}), lrelu()});
    };
    main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        std::make_shared<Conv2d>(C, 128, Pair{3, 3}, init, Pair{1, 1}, Pair{1, 1}), lrelu(),  // (128, 128, 128)
        down(), down(), down(), down(),                                                       // (128, 8, 8)
        std::make_shared<nn::Flatten>(), std::make_shared<nn::Dropout>(0.4f, dropout_gen_),
        std::make_shared<nn::Linear>(kGan128DropoutFeatures, 1, init)}));
    return;
  }
  if (config_.arch == GanArch::DCGAN64) {
    main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        conv(C, d, 4, 2, 1, init), lrelu(),                                   // (d, 32, 32)
        conv(d, 2 * d, 4, 2, 1, init), BatchNorm2d(2 * d), lrelu(),           // (2d, 16, 16)
        conv(2 * d, 4 * d, 4, 2, 1, init), BatchNorm2d(4 * d), lrelu(),       // (4d, 8, 8)
        conv(4 * d, 8 * d, 4, 2, 1, init), BatchNorm2d(8 * d), lrelu(),       // (8d, 4, 4)
        conv(8 * d, 1, 4, 1, 0, init)}));                                     // (1, 1, 1): the logit
  } else {
    main_ = register_module("main", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        conv(C, d, 4, 2, 1, init), lrelu(),                                   // (d, 14, 14)
        conv(d, 2 * d, 4, 2, 1, init), BatchNorm2d(2 * d), lrelu(),           // (2d, 7, 7)
        conv(2 * d, 1, 7, 1, 0, init)}));                                     // (1, 1, 1)
  }
  dcgan_init(*this, init);
}

Tensor GanDiscriminator::forward(const Tensor& x, const std::vector<int32_t>& labels) {
  const int64_t S = config_.image_size();
  check_arg(x.dim() == 4 && x.size(1) == config_.channels && x.size(2) == S && x.size(3) == S, "GanDiscriminator",
            "expects images (N, " + std::to_string(config_.channels) + ", " + std::to_string(S) + ", " +
                std::to_string(S) + "), got " + x.str());
  Tensor h = x;
  if (config_.conditional()) {
    check_arg(static_cast<int64_t>(labels.size()) == x.size(0), "GanDiscriminator",
              std::to_string(labels.size()) + " labels for " + std::to_string(x.size(0)) + " images");
    h = cat({x, label_emb_->forward(labels).reshape({x.size(0), 1, S, S})}, 1);
  } else {
    check_arg(labels.empty(), "GanDiscriminator", "labels given to an unconditional discriminator");
  }
  return main_->forward(h).reshape({x.size(0)});
}

// ---- initialization and training step -----------------------------------------------------------

void dcgan_init(Module& m, Generator& gen) {
  // pytorch/examples dcgan weights_init: Conv* weights ~ N(0, 0.02); BatchNorm weights ~ N(1, 0.02),
  // biases 0. Embeddings keep their N(0, 1).
  for (auto& [name, child] : m.children()) {
    if (auto* c = dynamic_cast<Conv2d*>(child.get())) {
      init::normal_(c->weight, 0.0f, 0.02f, gen);
    } else if (auto* t = dynamic_cast<ConvTranspose2d*>(child.get())) {
      init::normal_(t->weight, 0.0f, 0.02f, gen);
    } else if (auto* b = dynamic_cast<nn::BatchNorm*>(child.get())) {
      if (b->weight.defined()) {
        init::normal_(b->weight, 1.0f, 0.02f, gen);
        b->bias.zero_();
      }
    }
    dcgan_init(*child, gen);
  }
}

namespace {
double mean_sigmoid(const float* logits, int64_t n) { return sigmoid_sum(logits, n) / static_cast<double>(n); }
}  // namespace

double sigmoid_sum(const float* logits, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
  return s;
}

int64_t count_positive(const float* logits, int64_t n, bool positive) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) k += (logits[i] > 0.0f) == positive;
  return k;
}

PendingGanStep::PendingGanStep(const Tensor& loss_real, const Tensor& loss_fake, const Tensor& loss_g,
                               const Tensor& out_real, const Tensor& out_fake, const Tensor& out)
    : n_(out_real.numel()), readback_(std::make_shared<Readback>()) {
  check_arg(out_fake.numel() == n_ && out.numel() == n_, "PendingGanStep", "logits of different batch sizes");
  readback_->start({loss_real, loss_fake, loss_g, out_real, out_fake, out});
}

GanStepResult PendingGanStep::get() {
  if (!readback_) throw std::logic_error("PendingGanStep::get on an empty result");
  const std::vector<float>& v = readback_->values();
  const float* out_real = v.data() + 3;
  const float* out_fake = out_real + n_;
  const float* out = out_fake + n_;
  GanStepResult r;
  r.loss_d = static_cast<double>(v[0]) + v[1];
  r.loss_g = v[2];
  r.d_real = mean_sigmoid(out_real, n_);
  r.d_fake = mean_sigmoid(out_fake, n_);
  r.d_fake_after = mean_sigmoid(out, n_);
  r.d_accuracy = static_cast<double>(count_positive(out_real, n_, true) + count_positive(out_fake, n_, false)) /
                 static_cast<double>(2 * n_);
  return r;
}

GanStepResult gan_train_step(GanGenerator& g, GanDiscriminator& d, optim::Optimizer& opt_g, optim::Optimizer& opt_d,
                             const Tensor& real, const std::vector<int32_t>& labels, const Tensor& z) {
  return gan_train_step_async(g, d, opt_g, opt_d, real, labels, z).get();
}

PendingGanStep gan_train_step_async(GanGenerator& g, GanDiscriminator& d, optim::Optimizer& opt_g,
                                    optim::Optimizer& opt_d, const Tensor& real, const std::vector<int32_t>& labels,
                                    const Tensor& z) {
  const int64_t n = real.size(0);
  const Tensor ones = Tensor::ones({n}, real.device()), zeros = Tensor::zeros({n}, real.device());

  // (1) D: maximize log D(x) + log(1 - D(G(z))), as two backward passes into the same gradients.
  opt_d.zero_grad();
  const Tensor out_real = d.forward(real, labels);
  const Tensor loss_real = bce_with_logits(out_real, ones);
  loss_real.backward();
  const Tensor fake = g.forward(z, labels);
  const Tensor out_fake = d.forward(fake.detach(), labels);  // no gradient reaches G here
  const Tensor loss_fake = bce_with_logits(out_fake, zeros);
  loss_fake.backward();
  opt_d.step();

  // (2) G: maximize log D(G(z)) through the updated D. D's parameters are frozen for this pass: the
  // gradient still flows through D to G, but D's own gradients, which the next step's zero_grad()
  // would discard, are not computed (pytorch/examples computes and discards them).
  opt_g.zero_grad();
  Tensor out, loss_g;
  {
    const FrozenParameters frozen_d(d.parameters());
    out = d.forward(fake, labels);
    loss_g = bce_with_logits(out, ones);
    loss_g.backward();
  }
  opt_g.step();

  // The figures are copied to the host behind the step and read by get(): no wait inside the step.
  return PendingGanStep(loss_real, loss_fake, loss_g, out_real, out_fake, out);
}

}  // namespace ll::models
