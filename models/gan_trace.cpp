#include "models/gan_trace.h"

#include <stdexcept>
#include <vector>

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"

namespace ll::models {

namespace {

void check_spec(const GanTraceSpec& s, int64_t train_n) {
  if (s.steps < 1 || s.batch_size < 2 || s.eval_samples < 1) {
    throw std::invalid_argument("gan trace: steps >= 1, batch size >= 2 and eval samples >= 1 are needed");
  }
  if (train_n < s.batch_size) {
    throw std::invalid_argument("gan trace: " + std::to_string(train_n) + " training images are fewer than one batch of " +
                                std::to_string(s.batch_size));
  }
  if (s.config.conditional()) throw std::invalid_argument("gan trace: unconditional GANs only");
}

const Tensor& input(const TensorMap& inputs, const std::string& name) {
  auto it = inputs.find(name);
  if (it == inputs.end()) throw std::invalid_argument("gan trace: the inputs have no tensor '" + name + "'");
  return it->second;
}

// The prefixed entries of `m` ("G.main.0.weight" -> "main.0.weight").
TensorMap with_prefix_removed(const TensorMap& m, const std::string& prefix) {
  TensorMap out;
  for (const auto& [name, t] : m) {
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t;
  }
  return out;
}

void add_with_prefix(TensorMap& out, const std::string& prefix, const std::map<std::string, Tensor>& m) {
  for (const auto& [name, t] : m) out[prefix + name] = t.clone();
}

}  // namespace

TensorMap make_gan_trace_inputs(const GanTraceSpec& spec, int64_t train_n) {
  check_spec(spec, train_n);
  const GanConfig& c = spec.config;
  TensorMap in;
  // train_gan.cpp: G then D from the init stream; the fixed codes; the noise stream, one draw per step.
  Generator init(spec.seed, kGanInitStream);
  GanGenerator g(c, init);
  GanDiscriminator d(c, init);
  add_with_prefix(in, "G.", g.state_dict());
  add_with_prefix(in, "D.", d.state_dict());
  Generator fixed(spec.seed, kGanFixedNoiseStream);
  in["fixed_z"] = randn({spec.eval_samples, c.nz}, fixed);

  Generator noise(spec.seed, kGanNoiseStream);
  std::vector<float> indices;
  std::vector<Tensor> zs;
  const int64_t per_epoch = train_n / spec.batch_size;  // drop_last, as train_gan's loader
  std::vector<int64_t> order;
  for (int64_t step = 0; step < spec.steps; ++step) {
    const int64_t epoch = step / per_epoch, k = step % per_epoch;
    if (k == 0) order = data::shuffled_indices(train_n, spec.seed, epoch);
    for (int64_t i = 0; i < spec.batch_size; ++i) indices.push_back(static_cast<float>(order[static_cast<size_t>(k * spec.batch_size + i)]));
    zs.push_back(randn({spec.batch_size, c.nz}, noise));
  }
  in["indices"] = Tensor::from_vector(indices, {spec.steps, spec.batch_size});  // exact: n < 2^24
  in["noise"] = cat(zs, 0).reshape({spec.steps, spec.batch_size, c.nz});
  return in;
}

TensorMap run_gan_trace(const GanTraceSpec& spec, const TensorMap& inputs, const data::Dataset& train) {
  check_spec(spec, train.n);
  if (train.n >= (int64_t{1} << 24)) throw std::invalid_argument("gan trace: indices are stored as float32 (< 2^24 images)");
  const GanConfig& c = spec.config;
  Generator unused(0);
  GanGenerator g(c, unused);
  GanDiscriminator d(c, unused);
  g.load_state_dict(with_prefix_removed(inputs, "G."));
  d.load_state_dict(with_prefix_removed(inputs, "D."));
  optim::Adam opt_g(g.parameters(), {.lr = spec.lr, .beta1 = spec.beta1, .beta2 = 0.999});
  optim::Adam opt_d(d.parameters(), {.lr = spec.lr, .beta1 = spec.beta1, .beta2 = 0.999});

  const Tensor& indices = input(inputs, "indices");
  const Tensor& noise = input(inputs, "noise");
  if (indices.shape() != Shape{spec.steps, spec.batch_size} || noise.shape() != Shape{spec.steps, spec.batch_size, c.nz}) {
    throw std::invalid_argument("gan trace: indices " + indices.str() + " / noise " + noise.str() +
                                " do not match the spec's steps and batch size");
  }
  const std::vector<float> idx = indices.to_vector();

  const char* scalar_names[] = {"loss_d", "loss_g", "d_real", "d_fake", "d_fake_after", "d_accuracy"};
  std::map<std::string, std::vector<float>> scalars, bn;
  for (int64_t s = 0; s < spec.steps; ++s) {
    std::vector<int64_t> batch(static_cast<size_t>(spec.batch_size));
    for (int64_t i = 0; i < spec.batch_size; ++i) batch[static_cast<size_t>(i)] = static_cast<int64_t>(idx[static_cast<size_t>(s * spec.batch_size + i)]);
    const Tensor real = data::gather_images(train, batch, data::Scale::Symmetric);
    const Tensor z = noise.slice(s, s + 1).reshape({spec.batch_size, c.nz}).clone();
    const GanStepResult r = gan_train_step(g, d, opt_g, opt_d, real, {}, z);
    const double values[] = {r.loss_d, r.loss_g, r.d_real, r.d_fake, r.d_fake_after, r.d_accuracy};
    for (size_t k = 0; k < 6; ++k) scalars[scalar_names[k]].push_back(static_cast<float>(values[k]));
    for (const auto& [prefix, m] : {std::pair<std::string, const Module*>{"bn.G.", &g}, {"bn.D.", &d}}) {
      for (const auto& [name, t] : m->named_buffers()) {
        if (name.find("num_batches_tracked") != std::string::npos) continue;
        const std::vector<float> v = t.to_vector();
        auto& out = bn[prefix + name];
        out.insert(out.end(), v.begin(), v.end());
      }
    }
  }
  TensorMap rec;
  for (const auto& [name, v] : scalars) rec[name] = Tensor::from_vector(v, {spec.steps});
  for (const auto& [name, v] : bn) {
    rec[name] = Tensor::from_vector(v, {spec.steps, static_cast<int64_t>(v.size()) / spec.steps});
  }
  add_with_prefix(rec, "final.G.", g.state_dict());
  add_with_prefix(rec, "final.D.", d.state_dict());
  NoGradGuard no_grad;
  g.eval();
  rec["eval_fake"] = g.forward(input(inputs, "fixed_z")).clone();
  return rec;
}

}  // namespace ll::models
