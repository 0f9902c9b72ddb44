// cmd_interpolate.cpp: `latentlab interpolate DIR` — decodes the path between two latent codes.
//
// The study's experiment 2 (two random prior points, 6 evenly spaced steps including both ends,
// decoded as a strip) and experiment 6 (the halfway point: --steps 3 puts t = 0.5 in the middle).
// An end is either `random` (a draw from the prior N(0, I), seeded by --seed) or a test image, which
// is encoded to the mean of q(z|x) (the code itself for the AE): the mean, not a sample, so that the
// strip shows what the model thinks the image is rather than one noisy guess.
//
// Lerp vs slerp: in D dimensions a prior draw has norm close to sqrt(D) (the chi distribution
// concentrates), so the straight line between two draws passes through codes of much smaller norm,
// which the decoder has rarely seen: the middle of a lerp strip tends to be blurry and washed out.
// Slerp (Shoemake 1985, "Animating rotation with quaternion curves"; proposed for generative models
// by White 2016, "Sampling generative networks") walks the great circle instead and keeps the norm.
// The JSON line reports the norm of every point of the path so the difference can be seen in numbers.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/cli_files.h"
#include "apps/cli_text.h"
#include "apps/commands.h"
#include "apps/run_dir.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/plot.h"
#include "engine/ops/ops.h"
#include "models/latent.h"

namespace ll::app {

namespace {

struct InterpolateOptions {
  std::string dir;
  std::string from = "random", to = "random";
  int64_t steps = 6;
  std::string mode = "lerp";
  uint64_t seed = 0;
  std::string out;
  std::string data;     // default: the data set the run was trained on
  int64_t upscale = 0;  // 0: chosen from the image size
  int64_t label = -1;   // conditional GAN: the class of every image on the path
};

// One end of the path: its code (D) and, when it comes from test images, the image to show beside
// the strip (the pixel mean when a selector names several images).
struct Endpoint {
  std::string spec;    // as given
  std::string name;    // its column label: "test#17", "mean of 1000"; "random"
  std::string title;   // in the title: "test#17 (Sneaker)", "label:3 (Dress)", "random"
  Tensor code;         // (D)
  Tensor image;        // (1, C, H, W) in [0, 1], or undefined for a prior draw
  int64_t n_images = 0;
  int64_t index = -1;  // the test index when a single image
};

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

void run_interpolate(const InterpolateOptions& o) {
  if (o.steps < 2 || o.steps > 64) throw std::invalid_argument("--steps must be in 2..64 (both ends are included), got " + std::to_string(o.steps));
  std::vector<models::PathMode> modes;
  if (o.mode == "lerp") modes = {models::PathMode::Lerp};
  else if (o.mode == "slerp") modes = {models::PathMode::Slerp};
  else if (o.mode == "both") modes = {models::PathMode::Lerp, models::PathMode::Slerp};
  else throw std::invalid_argument("--mode must be lerp, slerp or both, got '" + o.mode + "'");
  if (o.upscale < 0 || o.upscale > 16) throw std::invalid_argument("--upscale must be in 0..16 (0 = automatic)");

  GenerativeRun run = GenerativeRun::open(o.dir);
  const std::vector<int32_t> labels = run.labels(o.steps, o.label);
  const int64_t D = run.latent_dim();
  NoGradGuard no_grad;

  // Both prior draws come from one (2, D) draw: row 0 for --from, row 1 for --to, so `random` at
  // both ends gives two different codes, and each end's code does not depend on the other's kind.
  Generator gen(o.seed);
  const Tensor prior = randn({2, D}, gen);

  // The test set is read only when an end names test images (random-to-random needs no data).
  const std::string data_name = o.data.empty() ? run.data_name() : o.data;
  std::unique_ptr<data::Dataset> test;
  auto make_end = [&](const std::string& spec, int64_t prior_row, const char* flag) {
    Endpoint e;
    e.spec = spec;
    if (spec == "random") {
      e.code = prior.slice(prior_row, prior_row + 1).reshape({D}).clone();
      e.name = e.title = "random";
      return e;
    }
    // A bare number is a test index; anything else is a selector of models/latent.h, whose codes
    // are averaged (e.g. `label:3` interpolates from the mean code of class 3).
    const std::string selector = is_digits(spec) ? "idx:" + spec : spec;
    if (selector.rfind("idx:", 0) != 0 && selector.rfind("label:", 0) != 0) {
      throw std::invalid_argument(std::string(flag) + " must be a test index, a selector (idx:N, label:K, label:K:N) or 'random', got '" + spec + "'");
    }
    models::Autoencoder& model = run.autoencoder(std::string(flag) + " '" + spec + "' (test images, encoded)");
    if (!test) test = std::make_unique<data::Dataset>(load_test_set(data_name, model.config()));
    std::vector<int64_t> idx;
    try {
      idx = models::select_images(*test, selector);
    } catch (const std::exception& ex) {
      throw std::invalid_argument(std::string(flag) + ": " + ex.what());
    }
    if (idx.empty()) throw std::invalid_argument(std::string(flag) + " '" + spec + "' selects no images of " + data_name);
    e.n_images = static_cast<int64_t>(idx.size());
    e.code = models::mean_code(models::encode_means(model, *test, idx));
    const Tensor originals = data::gather_images(*test, idx, data::Scale::Unit);
    e.image = mean(originals, 0, true);  // (1, C, H, W): the image itself when there is one
    // The class name when every selected image has the same label (always so for label:K).
    std::string what;
    if (!test->labels.empty() && !test->class_names.empty()) {
      const int32_t k = test->labels[static_cast<size_t>(idx[0])];
      const bool same = std::all_of(idx.begin(), idx.end(), [&](int64_t i) { return test->labels[static_cast<size_t>(i)] == k; });
      if (same && k >= 0 && k < static_cast<int32_t>(test->class_names.size())) what = " (" + test->class_names[static_cast<size_t>(k)] + ")";
    }
    if (idx.size() == 1) {
      e.index = idx[0];
      e.name = "test#" + std::to_string(idx[0]);
      e.title = e.name + what;
    } else {
      e.name = "mean of " + std::to_string(idx.size());
      e.title = spec + what;
    }
    return e;
  };
  const Endpoint a = make_end(o.from, 0, "--from");
  const Endpoint b = make_end(o.to, 1, "--to");

  // The geometry of the two ends: norms, distance, and the angle that slerp turns through.
  const std::vector<float> va = a.code.to_vector(), vb = b.code.to_vector();
  const double na = std::sqrt(dot(va, va)), nb = std::sqrt(dot(vb, vb));
  double dist2 = 0;
  for (int64_t i = 0; i < D; ++i) dist2 += (static_cast<double>(va[i]) - vb[i]) * (static_cast<double>(va[i]) - vb[i]);
  const double cosine = (na > 0 && nb > 0) ? std::clamp(dot(va, vb) / (na * nb), -1.0, 1.0) : 1.0;
  const double angle_deg = std::acos(cosine) * 180.0 / std::numbers::pi;

  // One row per mode: [original a] path(t = 0 .. 1) [original b].
  std::vector<Tensor> cells;
  std::vector<std::string> row_labels;
  nlohmann::json path_norms = nlohmann::json::object();
  for (const models::PathMode m : modes) {
    const char* mname = m == models::PathMode::Lerp ? "lerp" : "slerp";
    const Tensor path = models::interpolate(a.code, b.code, o.steps, m);  // (steps, D)
    const std::vector<float> pv = path.to_vector();
    nlohmann::json norms = nlohmann::json::array();
    for (int64_t s = 0; s < o.steps; ++s) {
      const std::vector<float> row(pv.begin() + s * D, pv.begin() + (s + 1) * D);
      norms.push_back(round_to(std::sqrt(dot(row, row)), 4));
    }
    path_norms[mname] = norms;
    if (a.image.defined()) cells.push_back(a.image);
    cells.push_back(run.decode(path, labels));
    if (b.image.defined()) cells.push_back(b.image);
    row_labels.push_back(modes.size() > 1 ? mname : "");
  }
  const Tensor images = cat(cells, 0);

  std::vector<std::string> col_labels;
  if (a.image.defined()) col_labels.push_back(a.name);
  for (int64_t s = 0; s < o.steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(o.steps - 1);
    col_labels.push_back("t=" + fixed(t, 2));
  }
  if (b.image.defined()) col_labels.push_back(b.name);
  if (modes.size() == 1) row_labels.clear();

  const std::string title = (modes.size() == 1 ? o.mode : std::string("lerp vs slerp")) + ": " + a.title + " -> " + b.title;
  std::vector<std::string> lines{std::to_string(o.steps) + " points from t=0 (a) to t=1 (b), both ends included",
                                 "|a| = " + fixed(na, 2) + ", |b| = " + fixed(nb, 2) + ", |a-b| = " + fixed(std::sqrt(dist2), 2) + ", angle " +
                                     fixed(angle_deg, 1) + " deg"};
  if (a.name == "random" || b.name == "random") lines.push_back("'random': a draw from the prior N(0, I), seed " + std::to_string(o.seed));
  if (a.n_images > 0 || b.n_images > 0) lines.push_back("test images: the means of q(z|x) (several: their average); outer columns: the inputs");
  const int64_t up = o.upscale > 0 ? o.upscale : auto_upscale(run.image_height());
  const data::Image sheet = data::labeled_sheet(images, static_cast<int64_t>(col_labels.size()), row_labels, col_labels, "", up);
  data::save_png(o.out, data::with_header(sheet, title, lines));

  auto end_json = [&](const Endpoint& e, double norm) {
    nlohmann::json j{{"spec", e.spec}, {"norm", round_to(norm, 4)}};
    if (e.index >= 0) {
      j["index"] = e.index;
      if (test && !test->labels.empty()) j["label"] = test->labels[static_cast<size_t>(e.index)];
    }
    if (e.n_images > 1) j["images"] = e.n_images;
    return j;
  };
  nlohmann::json line{{"from", end_json(a, na)},
                      {"to", end_json(b, nb)},
                      {"mode", o.mode},
                      {"steps", o.steps},
                      {"seed", o.seed},
                      {"latent_dim", D},
                      {"distance", round_to(std::sqrt(dist2), 4)},
                      {"angle_deg", round_to(angle_deg, 2)},
                      {"path_norms", path_norms},
                      {"out", o.out}};
  if (o.steps % 2 == 1) line["halfway_column"] = o.steps / 2;  // decode(mu_a + (mu_b - mu_a) / 2) for lerp
  std::cout << line.dump() << "\n";
}

}  // namespace

void add_interpolate_command(CLI::App& app) {
  auto o = std::make_shared<InterpolateOptions>();
  CLI::App* cmd = app.add_subcommand("interpolate", "decode the path between two latent codes (test images or prior draws) as a strip");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--from", o->from, "start: a test index, a selector (idx:N, label:K[:N]; several images give their mean code) or 'random'")
      ->capture_default_str();
  cmd->add_option("--to", o->to, "end: as --from")->capture_default_str();
  cmd->add_option("--steps", o->steps, "points on the path, both ends included (3 gives the halfway point)")->capture_default_str();
  cmd->add_option("--mode", o->mode, "lerp (straight line), slerp (great circle, White 2016) or both (one row each)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the prior draws for 'random' ends")->capture_default_str();
  cmd->add_option("--out", o->out, "output FILE.png")->check(png_file())->required();
  cmd->add_option("--data", o->data, "data set of the test images (default: the one the run was trained on)");
  cmd->add_option("--upscale", o->upscale, "pixel repeat of each image (0: automatic)")->capture_default_str();
  cmd->add_option("--label", o->label, "conditional GAN: the class of the images on the path");
  cmd->callback([o] { run_interpolate(*o); });
}

}  // namespace ll::app
