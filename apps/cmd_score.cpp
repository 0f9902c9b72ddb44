// cmd_score.cpp: `latentlab score DIR` — per-image scores of how badly a trained model explains each
// image, for finding outliers (the study's experiment 7: "inputs the model reconstructs badly or
// finds unlikely"), and how well each score tells a foreign data set from the model's own.
//
// Scores, per image x, in the model's own units (nats for BCE; squared error summed over pixels for
// --recon mse), computed with the same per-element formulas as the training loss
// (kernels/common/formulas.h) but summed per image instead of per batch:
//   recon     reconstruction error: BCE-with-logits (or squared error of sigmoid(logits)) summed over
//             pixels. AE: of decode(mu). VAE: of decode(z), z = mu + sigma * eps drawn from q(z|x)
//             (Kingma & Welling 2014, eq. 10), averaged over --samples K draws: the Monte-Carlo
//             estimate of E_q[-log p(x|z)] that the training loss and `latentlab eval` use.
//   kl        KL(q(z|x) || N(0, I)) in closed form (Kingma & Welling 2014, appendix B). VAE only.
//   neg_elbo  recon + kl: the negative evidence lower bound, -ELBO >= -log p(x) (Kingma & Welling
//             2014, eq. 3). A beta-VAE trains on recon + beta * kl, but the bound on the likelihood
//             is the one with beta = 1, so that is what is reported. VAE only.
//   iw_nll    with K > 1 samples, the importance-weighted estimate of -log p(x) (Burda, Grosse &
//             Salakhutdinov 2016, "Importance Weighted Autoencoders", sec. 3):
//               -log (1/K sum_k w_k),  log w_k = log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x),
//             a tighter bound than neg_elbo that approaches -log p(x) as K grows. VAE only.
//   entropy   sum over pixels of the binary entropy H(x_p) = -x_p log x_p - (1 - x_p) log(1 - x_p):
//             a property of the input alone, the floor of its BCE. Per pixel,
//             BCE(logit, x_p) = H(x_p) + KL(Bern(x_p) || Bern(sigmoid(logit))) >= H(x_p), with
//             equality only for a perfect reconstruction. 0 for squared error, whose floor is 0.
//   excess    recon - entropy: the part of the reconstruction error that the model is responsible
//             for (the summed per-pixel KL above).
// The BCE is a normalized log-likelihood only for binary pixels (Loaiza-Ganem & Cunningham 2019,
// "The continuous Bernoulli"); on gray images its floor H(x) grows with how much mid-gray an image
// has, so recon and neg_elbo mix "the model explains x badly" with "x has many gray pixels". That is
// the input-complexity confound that Serra et al. 2020 ("Input complexity and out-of-distribution
// detection with likelihood-based generative models") correct by subtracting a complexity estimate;
// for a BCE model, the exact floor H(x) is that estimate, and `excess` is the corrected score. The
// AUROC of `entropy` alone is printed as a baseline that uses no model at all.
//
// With --foreign, the test images of a second data set of the same shape are scored too and the
// AUROC of each score for telling them apart (foreign = positive, a higher score = more foreign) is
// printed: the Mann-Whitney U statistic divided by the number of pairs (Hanley & McNeil 1982), 0.5
// for a score that cannot tell, 1 for one that always can. Likelihoods of deep generative models
// are known to fail here in one direction: a model of a complex data set can find simpler foreign
// images *more* likely (Nalisnick et al. 2019, "Do deep generative models know what they don't
// know?", with Fashion-MNIST vs MNIST as their example), which shows as an AUROC below 0.5.
//
// Outputs: --csv (one row per image: index, source, label, recon, kl, neg_elbo, entropy, excess
// [, iw_nll]; index is the image's position in its data set's test split, source "in" or "foreign",
// label -1 for unlabeled data, kl and neg_elbo empty for an AE), --worst (a sheet of the images
// highest by --rank-by, default iw_nll / neg_elbo / recon, each input above its reconstruction
// decode(mu), with its score), and one JSON line with the per-source means and the AUROCs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
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
#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "models/latent.h"
#include "models/scores.h"

namespace ll::app {

namespace {

struct ScoreOptions {
  std::string dir;
  std::string data;     // default: the data the run was trained on
  std::string foreign;  // optional second data set
  int64_t n = 0;        // images of each source; 0 = all
  int64_t samples = 1;  // VAE: draws of z per image
  std::string csv;
  std::string worst;
  int64_t worst_n = 16;
  int64_t batch_size = 128;
  std::string rank_by;  // the score that orders the --worst sheet; default: the model's likelihood bound
  uint64_t seed = 0;
};

// Philox subsequences of the command's seed: the encoder's noise is the training's test-noise stream
// (kVaeTestNoise, as in `latentlab eval`, so that with K = 1, the whole test set and the run's seed
// the mean scores equal eval's and metrics.jsonl's), the subsets others.
enum Stream : uint64_t { kNoise = kVaeTestNoise, kSubsetIn = 1, kSubsetForeign = 2 };

// One scored image.
struct Row : models::ImageScores {
  int source = 0;  // 0: in-distribution (--data), 1: foreign
  int64_t index = 0;
  int32_t label = -1;
};

// Scores the images `indices` of `ds` (models/scores.h) and appends them to `rows`.
void score_images(models::Autoencoder& model, const data::Dataset& ds, const std::vector<int64_t>& indices, int source,
                  int64_t batch_size, int64_t samples, Generator& noise, std::vector<Row>& rows) {
  for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(indices.size(), start + static_cast<size_t>(batch_size));
    const std::vector<int64_t> idx(indices.begin() + static_cast<std::ptrdiff_t>(start), indices.begin() + static_cast<std::ptrdiff_t>(end));
    const std::vector<models::ImageScores> scores =
        models::score_batch(model, data::gather_images(ds, idx, data::Scale::Unit), samples, noise);
    for (size_t b = 0; b < idx.size(); ++b) {
      Row r;
      static_cast<models::ImageScores&>(r) = scores[b];
      r.source = source;
      r.index = idx[b];
      r.label = ds.labels.empty() ? -1 : ds.labels[static_cast<size_t>(r.index)];
      rows.push_back(r);
    }
  }
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// The scores a model has, in CSV column order.
std::vector<std::string> score_names(bool variational, int64_t samples) {
  std::vector<std::string> s{"recon"};
  if (variational) {
    s.push_back("kl");
    s.push_back("neg_elbo");
  }
  s.push_back("entropy");
  s.push_back("excess");
  if (variational && samples > 1) s.push_back("iw_nll");
  return s;
}

double score_of(const Row& r, const std::string& name) {
  if (name == "recon") return r.recon;
  if (name == "kl") return r.kl;
  if (name == "neg_elbo") return r.neg_elbo;
  if (name == "entropy") return r.entropy;
  if (name == "excess") return r.excess;
  return r.iw_nll;
}

void write_csv(const std::string& path, const std::vector<Row>& rows, bool variational, int64_t samples) {
  std::ostringstream s;
  s << "index,source,label,recon,kl,neg_elbo,entropy,excess";
  if (variational && samples > 1) s << ",iw_nll";
  s << "\n";
  for (const Row& r : rows) {
    s << r.index << "," << (r.source == 0 ? "in" : "foreign") << "," << r.label << "," << num(r.recon) << ",";
    // The AE has no KL term and no ELBO: empty fields (NaN to pandas), not zeros.
    if (variational) s << num(r.kl) << "," << num(r.neg_elbo);
    else s << ",";
    s << "," << num(r.entropy) << "," << num(r.excess);
    if (variational && samples > 1) s << "," << num(r.iw_nll);
    s << "\n";
  }
  write_file_atomic(path, s.str());
}

// A sheet of the worst-scored images: one cell per image, the input above its reconstruction
// decode(mu), then the score and "source:label" in the source's color; a title on top.
void write_worst_sheet(const std::string& path, models::Autoencoder& model, const data::Dataset& in_ds,
                       const data::Dataset* foreign_ds, const std::vector<Row>& worst, const std::string& score,
                       int64_t total) {
  const auto& c = model.config();
  const int64_t up = std::clamp<int64_t>((56 + c.height - 1) / c.height, 1, 4);  // cells about 56 px tall
  const int64_t iw = c.width * up, ih = c.height * up;
  const int64_t cols = std::min<int64_t>(static_cast<int64_t>(worst.size()), 8);
  const int64_t rows = (static_cast<int64_t>(worst.size()) + cols - 1) / cols;
  const int64_t th = data::text_height(1);
  // "source:class" per cell, the class by name when the data set has names.
  std::vector<std::string> tags;
  for (const Row& r : worst) {
    const data::Dataset& ds = r.source == 0 ? in_ds : *foreign_ds;
    std::string text = std::string(r.source == 0 ? "in:" : "foreign:");
    if (r.label < 0) {
      text += "-";
    } else if (static_cast<size_t>(r.label) < ds.class_names.size()) {
      text += ds.class_names[static_cast<size_t>(r.label)];
    } else {
      text += std::to_string(r.label);
    }
    tags.push_back(text);
  }
  // Cells as wide as the widest tag, up to 18 characters (longer ones are cut).
  int64_t tag_w = 0;
  for (const std::string& t : tags) tag_w = std::max(tag_w, data::text_width(t.substr(0, 18), 1));
  const int64_t cell_w = std::max(iw, tag_w) + 10;
  const int64_t cell_h = 2 * ih + 2 + 2 * (th + 3) + 8;
  const std::string title = std::to_string(worst.size()) + " highest " + score + " of " + std::to_string(total) + " images";
  const std::string subtitle = "top: input, below: reconstruction decode(mu); score, source:label";
  const int64_t width = std::max({cols * cell_w + 10, data::text_width(title, 2) + 20, data::text_width(subtitle, 1) + 20});
  const int64_t head = 10 + data::text_height(2) + 6 + th + 10;
  data::Image sheet = data::blank_rgb(width, head + rows * cell_h + 6, {255, 255, 255});
  data::draw_text(sheet, 10, 10, title, {0, 0, 0}, 2);
  data::draw_text(sheet, 10, 10 + data::text_height(2) + 6, subtitle, {90, 90, 90}, 1);

  NoGradGuard no_grad;
  for (size_t i = 0; i < worst.size(); ++i) {
    const Row& r = worst[i];
    const data::Dataset& ds = r.source == 0 ? in_ds : *foreign_ds;
    const Tensor x = data::gather_images(ds, {r.index}, data::Scale::Unit);
    const Tensor rec = model.generate(model.encode(x).first);
    const int64_t cx = 10 + static_cast<int64_t>(i) % cols * cell_w, cy = head + static_cast<int64_t>(i) / cols * cell_h;
    data::paste(sheet, data::make_grid(x, 1, 0, 0, 0.0f, 1.0f, up), cx, cy);
    data::paste(sheet, data::make_grid(rec, 1, 0, 0, 0.0f, 1.0f, up), cx, cy + ih + 2);
    // in-distribution in tab10 blue, foreign in tab10 red
    const data::Color color = data::class_color(r.source == 0 ? 0 : 3);
    data::draw_text(sheet, cx, cy + 2 * ih + 5, fixed(score_of(r, score), 1), {0, 0, 0}, 1);
    std::string text = tags[i];
    while (text.size() > 1 && data::text_width(text, 1) > cell_w - 4) text.pop_back();
    data::draw_text(sheet, cx, cy + 2 * ih + 5 + th + 3, text, color, 1);
  }
  data::save_png(path, sheet);
}

data::Dataset load_matching(const std::string& name, const models::VaeConfig& c, const std::string& flag) {
  data::Dataset d = load_test_set(name, c, flag);
  if (d.n < 1) throw std::invalid_argument(flag + " " + name + " has no test images");
  return d;
}

void run_score(const ScoreOptions& o) {
  if (o.n < 0) throw std::invalid_argument("--n must be >= 0 (0: every test image), got " + std::to_string(o.n));
  if (o.samples < 1 || o.samples > 1000) throw std::invalid_argument("--samples must be in 1..1000, got " + std::to_string(o.samples));
  if (o.worst_n < 1 || o.worst_n > 256) throw std::invalid_argument("--worst-n must be in 1..256, got " + std::to_string(o.worst_n));
  if (o.batch_size < 1) throw std::invalid_argument("--batch-size must be positive");
  if (!o.csv.empty() && !ends_with(o.csv, ".csv")) throw std::invalid_argument("--csv must name a .csv file, got '" + o.csv + "'");
  if (!o.worst.empty() && !ends_with(o.worst, ".png")) throw std::invalid_argument("--worst must name a .png file, got '" + o.worst + "'");

  LoadedRun run = load_run(o.dir);
  auto& model = *run.model;
  const auto& c = model.config();
  const std::string data_name = o.data.empty() ? run.metadata["data"] : o.data;
  const data::Dataset in_ds = load_matching(data_name, c, "--data");
  std::unique_ptr<data::Dataset> foreign_ds;
  if (!o.foreign.empty()) foreign_ds = std::make_unique<data::Dataset>(load_matching(o.foreign, c, "--foreign"));
  model.eval();
  const std::vector<std::string> names = score_names(model.variational(), o.samples);
  std::string primary = model.variational() ? (o.samples > 1 ? "iw_nll" : "neg_elbo") : "recon";
  if (!o.rank_by.empty()) {
    if (std::find(names.begin(), names.end(), o.rank_by) == names.end()) {
      std::string have;
      for (const std::string& n : names) have += (have.empty() ? "" : ", ") + n;
      throw std::invalid_argument("--rank-by " + o.rank_by + " is not a score of this model (" + have + ")");
    }
    primary = o.rank_by;
  }

  std::vector<Row> rows;
  Generator noise(o.seed, kNoise);
  score_images(model, in_ds, data::random_subset(in_ds.n, o.n, o.seed, kSubsetIn), 0, o.batch_size, o.samples, noise, rows);
  if (foreign_ds) {
    score_images(model, *foreign_ds, data::random_subset(foreign_ds->n, o.n, o.seed, kSubsetForeign), 1, o.batch_size, o.samples,
                 noise, rows);
  }

  // Means per source, and the AUROC of each score for foreign vs in-distribution.
  nlohmann::json means = nlohmann::json::object(), aurocs = nlohmann::json::object();
  int64_t counts[2] = {0, 0};
  for (const Row& r : rows) ++counts[r.source];
  for (int s = 0; s < (foreign_ds ? 2 : 1); ++s) {
    nlohmann::json m = nlohmann::json::object();
    for (const std::string& name : names) {
      double sum = 0;
      for (const Row& r : rows) {
        if (r.source == s) sum += score_of(r, name);
      }
      m[name] = sum / static_cast<double>(counts[s]);
    }
    means[s == 0 ? "in" : "foreign"] = m;
  }
  if (foreign_ds) {
    for (const std::string& name : names) {
      std::vector<double> pos, neg;
      for (const Row& r : rows) (r.source == 1 ? pos : neg).push_back(score_of(r, name));
      aurocs[name] = models::auroc(pos, neg);
    }
  }

  if (!o.csv.empty()) write_csv(o.csv, rows, model.variational(), o.samples);
  if (!o.worst.empty()) {
    std::vector<Row> worst = rows;
    // Highest first; ties keep file order (in-distribution before foreign), so the sheet is stable.
    std::stable_sort(worst.begin(), worst.end(),
                     [&](const Row& a, const Row& b) { return score_of(a, primary) > score_of(b, primary); });
    worst.resize(std::min<size_t>(worst.size(), static_cast<size_t>(o.worst_n)));
    write_worst_sheet(o.worst, model, in_ds, foreign_ds.get(), worst, primary, static_cast<int64_t>(rows.size()));
  }

  nlohmann::json line{{"model", c.describe()}, {"data", data_name},     {"images", rows.size()},
                      {"n_in", counts[0]},     {"samples", o.samples},  {"score", primary},
                      {"mean", means},         {"seed", o.seed}};
  if (foreign_ds) {
    line["foreign"] = o.foreign;
    line["n_foreign"] = counts[1];
    line["auroc"] = aurocs;
  }
  if (!o.csv.empty()) line["csv"] = o.csv;
  if (!o.worst.empty()) line["worst"] = o.worst;
  std::cout << line.dump() << "\n";
}

}  // namespace

void add_score_command(CLI::App& app) {
  auto o = std::make_shared<ScoreOptions>();
  CLI::App* cmd = app.add_subcommand(
      "score", "per-image reconstruction error, KL and negative ELBO (outlier scores), and their AUROC against a foreign data set");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--data", o->data, "data set to score (default: the one the run was trained on); its test split is used");
  cmd->add_option("--foreign", o->foreign, "a second data set of the same image shape, mixed in as source=foreign");
  cmd->add_option("--n", o->n, "images of each data set, a seeded random subset (0: all)")->capture_default_str();
  cmd->add_option("--samples", o->samples, "VAE: draws of z per image (K > 1 adds the importance-weighted iw_nll)")
      ->capture_default_str();
  cmd->add_option("--csv", o->csv, "write one row per image to FILE.csv");
  cmd->add_option("--worst", o->worst, "write a sheet of the worst-scored images to FILE.png");
  cmd->add_option("--worst-n", o->worst_n, "images on the --worst sheet")->capture_default_str();
  cmd->add_option("--rank-by", o->rank_by, "score that orders the --worst sheet (default: iw_nll, neg_elbo or recon)");
  cmd->add_option("--batch-size", o->batch_size, "images per batch")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the subsets and the sampled codes")->capture_default_str();
  cmd->callback([o] { run_score(*o); });
}

}  // namespace ll::app
