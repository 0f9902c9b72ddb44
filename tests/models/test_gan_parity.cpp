// test_gan_parity.cpp: DCGAN-28 against its PyTorch twin (bench/pytorch/dcgan28.py), through the
// committed fixture tests/fixtures/dcgan28_step.safetensors written by
// bench/pytorch/make_gan_fixture.py: identical weights (ngf = ndf = 16, nz = 100), 16 Fashion-MNIST
// test images in [-1, 1] and the noise z; then one whole GAN step of models::gan_train_step's recipe
// (Adam 2e-4, betas 0.5 / 0.999 for both nets). CI needs no PyTorch.
//
// gan_train_step hides its intermediates, so the first tests replay its two phases here, in its
// order, and compare each one where it happens: a difference in D's gradients is then not
// mistaken for one in G's (G's gradients flow through the *updated* D). The last test runs
// gan_train_step itself and compares where it ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/ops/ops.h"
#include "models/gan.h"

namespace ll::models {
namespace {

constexpr int64_t kBatch = 16;
constexpr double kLr = 2e-4;

const std::map<std::string, Tensor>& fixture() {
  static const std::map<std::string, Tensor> f =
      load_tensors(std::string(LATENTLAB_SOURCE_DIR) + "/tests/fixtures/dcgan28_step.safetensors");
  return f;
}

const Tensor& fixture_tensor(const std::string& name) {
  const auto& f = fixture();
  auto it = f.find(name);
  if (it == f.end()) throw std::runtime_error("fixture has no tensor '" + name + "'");
  return it->second;
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<double> as_double(const Tensor& t) { return as_double(t.to_vector()); }

// ||a - b|| / ||b|| over the whole tensor, in float64.
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double max_abs_error(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// after - before, element by element, in float64 (a weight's move, a running statistic's change).
std::vector<double> moves(const std::vector<double>& after, const std::vector<double>& before) {
  std::vector<double> out(after.size());
  for (size_t i = 0; i < after.size(); ++i) out[i] = after[i] - before[i];
  return out;
}

GanConfig parity_config() {
  GanConfig c;
  c.arch = GanArch::DCGAN28;
  c.channels = 1;
  c.nz = 100;
  c.ngf = c.ndf = 16;
  return c;
}

// The fixture's tensors under `prefix` ("G." / "D."), with the prefix stripped, for exactly the
// names of `m`'s state_dict: load_state_dict (strict) then rejects any difference in names or shapes.
std::map<std::string, Tensor> initial_state(const Module& m, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = fixture_tensor(prefix + name);
  return out;
}

struct ParityNets {
  Generator init{0};  // the initial weights are overwritten from the fixture
  GanGenerator g{parity_config(), init};
  GanDiscriminator d{parity_config(), init};
  // pytorch/examples dcgan's optimizers, as `latentlab train dcgan` makes them.
  optim::Adam opt_g{g.parameters(), {.lr = kLr, .beta1 = 0.5, .beta2 = 0.999}};
  optim::Adam opt_d{d.parameters(), {.lr = kLr, .beta1 = 0.5, .beta2 = 0.999}};
  Tensor x = fixture_tensor("x"), z = fixture_tensor("z");

  ParityNets() {
    g.load_state_dict(initial_state(g, "G."));
    d.load_state_dict(initial_state(d, "D."));
  }
};

// BatchNorm buffer names of a module (running_mean, running_var, num_batches_tracked).
std::vector<std::string> buffer_names(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, t] : m.named_buffers()) out.push_back(name);
  return out;
}

// What the replayed step saw, copied out as it happened (parameters change in place later).
struct Replay {
  std::vector<double> logits_real, logits_fake, fake, logits_fake_after;
  double loss_d_real = 0, loss_d_fake = 0, loss_g = 0;
  std::map<std::string, std::vector<double>> grad_d, step_d, bn_d, grad_g, step_g, final_g, final_d;
};

std::map<std::string, std::vector<double>> snapshot(const NamedTensors& named) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, t] : named) out[name] = as_double(t.detach());
  return out;
}

std::map<std::string, std::vector<double>> gradients(const Module& m) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, p] : m.named_parameters()) {
    EXPECT_TRUE(p.grad().defined()) << name << " has no gradient";
    if (p.grad().defined()) out[name] = as_double(p.grad());
  }
  return out;
}

// gan_train_step's body, phase by phase, recording what the fixture holds. Keep it in step with
// models/gan.cpp: the last test checks that gan_train_step itself ends where this replay does.
const Replay& replay() {
  static const Replay r = [] {
    ParityNets s;
    Replay out;
    const Tensor ones = Tensor::ones({kBatch}), zeros = Tensor::zeros({kBatch});
    // (1) D: real (target 1), then G(z).detach() (target 0), two backward passes, D step.
    s.opt_d.zero_grad();
    const Tensor logits_real = s.d.forward(s.x);
    const Tensor loss_real = bce_with_logits(logits_real, ones);
    loss_real.backward();
    const Tensor fake = s.g.forward(s.z);
    const Tensor logits_fake = s.d.forward(fake.detach());
    const Tensor loss_fake = bce_with_logits(logits_fake, zeros);
    loss_fake.backward();
    out.grad_d = gradients(s.d);
    s.opt_d.step();
    out.step_d = snapshot(s.d.named_parameters());
    out.bn_d = snapshot(s.d.named_buffers());
    // (2) G through the updated D (target 1), G step.
    s.opt_g.zero_grad();
    const Tensor logits_after = s.d.forward(fake);
    const Tensor loss_g = bce_with_logits(logits_after, ones);
    loss_g.backward();
    out.grad_g = gradients(s.g);
    s.opt_g.step();
    out.step_g = snapshot(s.g.named_parameters());
    out.final_g = snapshot(s.g.named_buffers());
    out.final_d = snapshot(s.d.named_buffers());

    out.logits_real = as_double(logits_real.detach());
    out.logits_fake = as_double(logits_fake.detach());
    out.fake = as_double(fake.detach());
    out.logits_fake_after = as_double(logits_after.detach());
    out.loss_d_real = loss_real.item();
    out.loss_d_fake = loss_fake.item();
    out.loss_g = loss_g.item();
    return out;
  }();
  return r;
}

// A loss against PyTorch's float32 value: 1e-5 relative.
void expect_loss(double ours, const std::string& name) {
  const double theirs = fixture_tensor(name).item();
  EXPECT_NEAR(ours, theirs, 1e-5 * std::fabs(theirs)) << name;
  std::cout << "  " << name << ": " << ours << " (PyTorch " << theirs << ", relative error "
            << std::fabs(ours - theirs) / std::fabs(theirs) << ")\n";
}

// A forward output (logits, images): relative L2 error <= 1e-5.
void expect_values(const std::vector<double>& ours, const std::string& name) {
  const double rel = relative_error(ours, as_double(fixture_tensor(name)));
  EXPECT_LT(rel, 1e-5) << name;
  std::cout << "  " << name << ": relative error " << rel << "\n";
}

// Gradients: relative L2 error <= 1e-4 per parameter (the bound).
void expect_gradients(const std::map<std::string, std::vector<double>>& ours, const std::string& prefix) {
  double worst = 0;
  for (const auto& [name, g] : ours) {
    const double rel = relative_error(g, as_double(fixture_tensor(prefix + name)));
    EXPECT_LT(rel, 1e-4) << prefix << name;
    worst = std::max(worst, rel);
    std::cout << "  " << prefix << name << ": relative error " << rel << "\n";
  }
  std::cout << "  " << prefix << "*: worst relative error " << worst << "\n";
}

// Weights after one Adam step. A first Adam step moves each weight by lr * g / (|g| + eps), about
// lr * sign(g): comparing the weights themselves would hide any error under the weights' size, so
// the moves (after - initial) are compared, absolutely (1% of lr) and as a whole (relative L2).
void expect_step(const std::map<std::string, std::vector<double>>& ours, const std::string& step_prefix,
                 const std::string& init_prefix) {
  double worst_abs = 0, worst_rel = 0;
  for (const auto& [name, after] : ours) {
    const std::vector<double> before = as_double(fixture_tensor(init_prefix + name));
    const std::vector<double> moved = moves(after, before);
    const std::vector<double> expected = moves(as_double(fixture_tensor(step_prefix + name)), before);
    const double abs_err = max_abs_error(moved, expected), rel = relative_error(moved, expected);
    EXPECT_LT(abs_err, 0.01 * kLr) << step_prefix << name;
    EXPECT_LT(rel, 1e-3) << step_prefix << name;
    worst_abs = std::max(worst_abs, abs_err);
    worst_rel = std::max(worst_rel, rel);
  }
  std::cout << "  " << step_prefix << "*: worst |move error| " << worst_abs << " (lr " << kLr
            << "), worst relative error of the moves " << worst_rel << "\n";
}

// BatchNorm running statistics. Their changes are small next to their values (running_var starts
// at 1 and a conv output's batch variance here is ~1e-3), so, as for the weights, the changes from
// the initial buffers are compared (relative L2 <= 1e-4), plus the values to 1e-6 absolute; the
// counters exactly.
void expect_buffers(const std::map<std::string, std::vector<double>>& ours, const std::string& prefix,
                    const std::string& init_prefix) {
  double worst = 0;
  for (const auto& [name, after] : ours) {
    const std::vector<double> theirs = as_double(fixture_tensor(prefix + name));
    if (name.ends_with("num_batches_tracked")) {
      EXPECT_EQ(after, theirs) << prefix << name;
      continue;
    }
    const std::vector<double> before = as_double(fixture_tensor(init_prefix + name));
    const double rel = relative_error(moves(after, before), moves(theirs, before));
    EXPECT_LT(rel, 1e-4) << prefix << name;
    EXPECT_LT(max_abs_error(after, theirs), 1e-6) << prefix << name;
    worst = std::max(worst, rel);
    std::cout << "  " << prefix << name << ": relative error of the change " << rel << "\n";
  }
  std::cout << "  " << prefix << "*: worst " << worst << "\n";
}

TEST(GanParity, CheckpointNamesMatchPyTorch) {
  // Every name and shape of both state_dicts is in the fixture (load_state_dict is strict), and
  // the fixture holds no tensor of the nets that ours lacks.
  ParityNets s;
  size_t g_count = 0, d_count = 0;
  for (const auto& [name, t] : fixture()) {
    g_count += name.starts_with("G.");
    d_count += name.starts_with("D.");
  }
  EXPECT_EQ(s.g.state_dict().size(), g_count);
  EXPECT_EQ(s.d.state_dict().size(), d_count);
  EXPECT_EQ(buffer_names(s.d), (std::vector<std::string>{"main.3.running_mean", "main.3.running_var",
                                                         "main.3.num_batches_tracked"}));
}

TEST(GanParity, DiscriminatorPhaseMatchesPyTorch) {
  const Replay& r = replay();
  expect_values(r.logits_real, "logits_real");
  expect_values(r.fake, "fake");
  expect_values(r.logits_fake, "logits_fake");
  expect_loss(r.loss_d_real, "loss_d_real");
  expect_loss(r.loss_d_fake, "loss_d_fake");
  expect_gradients(r.grad_d, "gradD.");
  expect_step(r.step_d, "stepD.", "D.");
  expect_buffers(r.bn_d, "bnD.", "D.");  // two training-mode runs: real, then fake
}

TEST(GanParity, GeneratorPhaseMatchesPyTorch) {
  const Replay& r = replay();
  expect_values(r.logits_fake_after, "logits_fake_after");
  expect_loss(r.loss_g, "loss_g");
  expect_gradients(r.grad_g, "gradG.");
  expect_step(r.step_g, "stepG.", "G.");
  expect_buffers(r.final_g, "final.G.", "G.");  // one run
  expect_buffers(r.final_d, "final.D.", "D.");  // three runs: real, fake, fake again in the G phase
}

TEST(GanParity, GanTrainStepEndsWhereThePhasesDo) {
  // models::gan_train_step itself, from the same start: its losses and where both nets end.
  ParityNets s;
  const GanStepResult r = gan_train_step(s.g, s.d, s.opt_g, s.opt_d, s.x, {}, s.z);
  const double loss_d = static_cast<double>(fixture_tensor("loss_d_real").item()) + fixture_tensor("loss_d_fake").item();
  EXPECT_NEAR(r.loss_d, loss_d, 1e-5 * loss_d);
  EXPECT_NEAR(r.loss_g, fixture_tensor("loss_g").item(), 1e-5 * fixture_tensor("loss_g").item());
  expect_step(snapshot(s.d.named_parameters()), "stepD.", "D.");
  expect_step(snapshot(s.g.named_parameters()), "stepG.", "G.");
  expect_buffers(snapshot(s.g.named_buffers()), "final.G.", "G.");
  expect_buffers(snapshot(s.d.named_buffers()), "final.D.", "D.");
  // The replay is gan_train_step's body: the same arithmetic, so the same bits.
  const Replay& replayed = replay();
  for (const auto& [name, p] : s.g.named_parameters()) EXPECT_EQ(as_double(p.detach()), replayed.step_g.at(name)) << name;
  for (const auto& [name, p] : s.d.named_parameters()) EXPECT_EQ(as_double(p.detach()), replayed.step_d.at(name)) << name;
}

}  // namespace
}  // namespace ll::models
