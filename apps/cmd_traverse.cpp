// cmd_traverse.cpp: `latentlab traverse DIR` — latent traversals, one row per latent dimension.
//
// The study's experiment 5: vary one dimension of the code over a range while the others stay at a
// base code (the prior mean 0, or a test image's mean code) and decode. With a beta-VAE (Higgins et
// al. 2017) single dimensions tend to control single factors.
//
// Which dimensions are worth looking at: a VAE switches many dimensions off (posterior collapse: q
// equals the prior for every x, and the decoder ignores them), and their rows are flat. Two numbers
// per dimension d, over the test set:
//   KL_d     = mean_x KL(q(z_d|x) || N(0, 1)) = mean_x -1/2 (1 + logvar_d - mu_d^2 - exp(logvar_d)),
//              the nats the dimension carries (the VAE's KL term split by dimension; they sum to it);
//   Var_d    = Cov_x(E_q[z_d]) = variance over x of mu_d(x); a dimension is "active" when Var_d > 0.01
//              (the active units of Burda, Grosse & Salakhutdinov 2016, "Importance weighted
//              autoencoders", section 5.2).
// An AE has no posterior variance and no prior, so it has no KL: its dimensions are ranked by the
// variance of their codes (and the 0.01 threshold, which assumes the prior's unit scale, only tells
// dead dimensions from live ones).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
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
#include "engine/ops/ops.h"
#include "models/latent.h"

namespace ll::app {

namespace {

struct TraverseOptions {
  std::string dir;
  std::string dims;  // default: the first min(D, 10), or with --sort the 10 of highest KL
  std::string range = "-3:3";
  int64_t steps = 9;
  std::string base = "zero";
  std::string out;
  bool sort = false;
  std::string data;
  int64_t upscale = 0;
};

// Burda et al. 2016's threshold on Cov_x(E_q[z_d]) (models::unit_stats).
constexpr double kActiveThreshold = models::UnitStats::kActiveThreshold;
constexpr int64_t kDefaultRows = 10;

int64_t parse_int(const std::string& s, const std::string& what) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size()) throw std::invalid_argument(what);
  return v;
}

// "0-9", "0,3,5", "0-3,7": dimensions in the order given, each in [0, D), none twice.
std::vector<int64_t> parse_dims(const std::string& text, int64_t D) {
  const std::string bad = "--dims must list dimensions like 0-9 or 0,3,5 (the model has " + std::to_string(D) +
                          ": 0.." + std::to_string(D - 1) + "), got '" + text + "'";
  std::vector<int64_t> dims;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t dash = item.find('-', 1);
    int64_t lo = 0, hi = 0;
    if (dash == std::string::npos) {
      lo = hi = parse_int(item, bad);
    } else {
      lo = parse_int(item.substr(0, dash), bad);
      hi = parse_int(item.substr(dash + 1), bad);
    }
    if (lo < 0 || hi >= D || lo > hi) throw std::invalid_argument(bad);
    for (int64_t d = lo; d <= hi; ++d) {
      if (std::find(dims.begin(), dims.end(), d) != dims.end()) {
        throw std::invalid_argument("--dims lists dimension " + std::to_string(d) + " twice: '" + text + "'");
      }
      dims.push_back(d);
    }
  }
  if (dims.empty()) throw std::invalid_argument(bad);
  if (dims.size() > 64) throw std::invalid_argument("--dims: at most 64 rows, got " + std::to_string(dims.size()));
  return dims;
}

std::pair<double, double> parse_range(const std::string& text) {
  const auto r = parse_number_pair(text);
  if (!r || r->first == r->second) {
    throw std::invalid_argument("--range must be LO:HI with two different finite numbers, e.g. -3:3, got '" + text + "'");
  }
  return *r;
}

void run_traverse(const TraverseOptions& o) {
  if (o.steps < 2 || o.steps > 32) throw std::invalid_argument("--steps must be in 2..32, got " + std::to_string(o.steps));
  const auto [lo, hi] = parse_range(o.range);
  if (o.upscale < 0 || o.upscale > 16) throw std::invalid_argument("--upscale must be in 0..16 (0 = automatic)");
  std::string base_selector;
  if (o.base != "zero" && o.base != "mean") {
    base_selector = is_digits(o.base) ? "idx:" + o.base : o.base;
    if (base_selector.rfind("idx:", 0) != 0 || base_selector.find(',') != std::string::npos) {
      throw std::invalid_argument("--base must be 'zero', 'mean' or one test image, idx:N, got '" + o.base + "'");
    }
  }

  LoadedRun run = load_run(o.dir);
  auto& model = *run.model;
  model.eval();
  const auto& c = model.config();
  const int64_t D = c.latent_dim;
  const bool vae = model.variational();
  // Checked before the test set is encoded, so a typo costs no time.
  std::vector<int64_t> dims = o.dims.empty() ? std::vector<int64_t>{} : parse_dims(o.dims, D);

  const std::string data_name = o.data.empty() ? run.metadata["data"] : o.data;
  const data::Dataset test = load_test_set(data_name, c);
  if (test.n < 2) throw std::invalid_argument(data_name + ": need at least 2 test images to measure the dimensions' variance");
  NoGradGuard no_grad;

  // Per-dimension statistics over the test set (models/latent.h): KL, mean and variance of the
  // codes, the active units, and the ranking (by KL; by code variance for an AE).
  const models::Encoded enc = models::encode_all(model, test);
  const models::UnitStats stats = models::unit_stats(enc);
  const std::vector<float> mu = enc.mu.to_vector();
  const int64_t N = enc.mu.size(0);
  const std::vector<double>&kl = stats.kl, &mean = stats.mean, &var = stats.variance;
  const std::vector<bool>& active = stats.active;
  const std::vector<int64_t>& ranking = stats.ranking;
  const int64_t active_units = stats.active_units;
  const std::vector<double>& key = vae ? kl : var;
  auto by_key = [&](int64_t a, int64_t b) { return key[static_cast<size_t>(a)] > key[static_cast<size_t>(b)]; };

  if (dims.empty()) {
    // Without --dims: the first 10 dimensions, or with --sort the 10 that carry the most.
    const int64_t k = std::min(D, kDefaultRows);
    if (o.sort) dims.assign(ranking.begin(), ranking.begin() + k);
    else for (int64_t d = 0; d < k; ++d) dims.push_back(d);
  } else if (o.sort) {
    std::stable_sort(dims.begin(), dims.end(), by_key);
  }

  // The base code: zero (the prior's mean), the mean code of the test set (the centre of the data,
  // which for an AE, having no prior, is a better centre than 0), or a test image's mean code.
  std::vector<float> base(static_cast<size_t>(D), 0.0f);
  int64_t base_index = -1;
  if (o.base == "mean") {
    for (int64_t d = 0; d < D; ++d) base[static_cast<size_t>(d)] = static_cast<float>(mean[static_cast<size_t>(d)]);
  }
  if (!base_selector.empty()) {
    std::vector<int64_t> idx;
    try {
      idx = models::select_images(test, base_selector);
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("--base: ") + e.what());
    }
    if (idx.size() != 1) throw std::invalid_argument("--base must name exactly one test image, got '" + o.base + "'");
    base_index = idx[0];
    std::copy(mu.begin() + base_index * D, mu.begin() + (base_index + 1) * D, base.begin());
  }

  std::vector<double> values(static_cast<size_t>(o.steps));
  for (int64_t s = 0; s < o.steps; ++s) values[static_cast<size_t>(s)] = lo + (hi - lo) * static_cast<double>(s) / static_cast<double>(o.steps - 1);

  if (!o.out.empty()) {
    // Codes (rows * steps, D): row r is the base with dimension dims[r] set to each value. The
    // value replaces the base's coordinate (not added to it), so every row spans the same range
    // of the prior whatever the base.
    const int64_t rows = static_cast<int64_t>(dims.size());
    std::vector<float> codes;
    codes.reserve(static_cast<size_t>(rows * o.steps * D));
    for (int64_t d : dims) {
      for (double v : values) {
        std::vector<float> z = base;
        z[static_cast<size_t>(d)] = static_cast<float>(v);
        codes.insert(codes.end(), z.begin(), z.end());
      }
    }
    Tensor images = model.generate(Tensor::from_vector(codes, {rows * o.steps, D}));
    std::vector<std::string> row_labels, col_labels;
    for (int64_t d : dims) {
      const size_t u = static_cast<size_t>(d);
      std::string label = "z" + std::to_string(d) + "  ";
      label += vae ? "KL " + format_number("%.2f", kl[u]) : "var " + format_number("%.3g", var[u]);
      label += active[u] ? "  active" : "  inactive";
      row_labels.push_back(label);
    }
    for (double v : values) col_labels.push_back(format_number("%.3g", v));
    int64_t cols = o.steps;
    if (base_index >= 0) {
      // A last column with the base image itself, so the traversal can be read against it.
      std::vector<Tensor> cells;
      const Tensor original = data::gather_images(test, {base_index}, data::Scale::Unit);
      for (int64_t r = 0; r < rows; ++r) {
        cells.push_back(images.slice(r * o.steps, (r + 1) * o.steps));
        cells.push_back(original);
      }
      images = cat(cells, 0);
      col_labels.push_back("test#" + std::to_string(base_index));
      cols += 1;
    }
    const std::string title = "latent traversal: " + std::to_string(rows) + " of " + std::to_string(D) + " dims around " +
                              (base_index >= 0 ? "test#" + std::to_string(base_index) : o.base == "mean" ? std::string("the mean code") : std::string("z = 0"));
    std::vector<std::string> lines;
    lines.push_back("row: z_d set to each column's value, the other dims at the base" +
                    std::string(base_index >= 0      ? " (the test image's mean code; the image is the last column)"
                                : o.base == "mean" ? " (the mean of the test set's codes)"
                                : vae              ? " (the prior's mean)"
                                                   : " (z = 0)") +
                    (o.sort ? "; rows by " + std::string(vae ? "KL" : "code variance") + ", largest first" : ""));
    if (vae) {
      lines.push_back("KL: mean over " + std::to_string(N) + " test images of KL(q(z_d|x) || N(0,1)); total " +
                      format_number("%.2f", std::accumulate(kl.begin(), kl.end(), 0.0)) + " nats");
      lines.push_back("active: Var_x(E[z_d|x]) > 0.01 (Burda et al. 2016): " + std::to_string(active_units) + " of " + std::to_string(D) + " dims");
    } else {
      lines.push_back("autoencoder: no KL; var = variance of the code over " + std::to_string(N) + " test images");
      lines.push_back("active: var > 0.01: " + std::to_string(active_units) + " of " + std::to_string(D) + " dims");
    }
    const int64_t up = o.upscale > 0 ? o.upscale : auto_upscale(c.height);
    data::save_png(o.out, data::with_header(data::labeled_sheet(images, cols, row_labels, col_labels, "", up), title, lines));
  }

  nlohmann::json per_dim = nlohmann::json::array();
  double total_kl = 0;
  for (int64_t d = 0; d < D; ++d) {
    const size_t u = static_cast<size_t>(d);
    nlohmann::json j{{"dim", d}, {"variance", round_to(var[u], 5)}, {"active", static_cast<bool>(active[u])}};
    j["kl"] = vae ? nlohmann::json(round_to(kl[u], 5)) : nlohmann::json(nullptr);
    total_kl += kl[u];
    per_dim.push_back(j);
  }
  nlohmann::json line{{"model", c.describe()},
                      {"data", data_name},
                      {"images", N},
                      {"latent_dim", D},
                      {"ranked_by", vae ? "kl" : "variance"},
                      {"active_threshold", kActiveThreshold},
                      {"active_units", active_units},
                      {"rows", dims},
                      {"ranking", ranking},
                      {"values", values},
                      {"base", base_index >= 0 ? nlohmann::json(base_index) : nlohmann::json(o.base)},
                      {"dims", per_dim}};
  if (vae) line["total_kl"] = round_to(total_kl, 4);
  if (!o.out.empty()) line["out"] = o.out;
  std::cout << line.dump() << "\n";
  if (!vae) {
    std::cerr << "latentlab: note: an autoencoder has no KL; dimensions are ranked by the variance of their codes, and "
                 "its codes have no unit scale: choose --range from the variances, and --base mean or idx:N\n";
  }
}

}  // namespace

void add_traverse_command(CLI::App& app) {
  auto o = std::make_shared<TraverseOptions>();
  CLI::App* cmd = app.add_subcommand("traverse", "vary one latent dimension at a time around a base code; rank dimensions by KL");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--dims", o->dims, "dimensions, one row each: 0-9, 0,3,5 (default: the first 10; with --sort the 10 of highest KL)");
  cmd->add_option("--range", o->range, "LO:HI, the values each dimension takes")->capture_default_str();
  cmd->add_option("--steps", o->steps, "values per row, both ends included")->capture_default_str();
  cmd->add_option("--base", o->base, "the code the others stay at: zero (the prior mean), mean (the test set's mean code) or idx:N (a test image's mean code)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "output FILE.png (without it only the JSON line is printed)")->check(png_file());
  cmd->add_flag("--sort", o->sort, "order rows by KL (code variance for an AE), largest first");
  cmd->add_option("--data", o->data, "data set to measure the dimensions on (default: the one the run was trained on)");
  cmd->add_option("--upscale", o->upscale, "pixel repeat of each image (0: automatic)")->capture_default_str();
  cmd->callback([o] { run_traverse(*o); });
}

}  // namespace ll::app
