// cmd_latent_map.cpp: `latentlab latent-map DIR` — where a trained model puts the test set in its
// latent space, and how much of the prior N(0, I) those codes cover.
//
// The study's experiment 4 (docs/latent_lab.md): on MNIST with a 2-D latent, an autoencoder's
// codes form clusters separated by empty regions, while a VAE's codes overlap and fill the prior, so
// that decoding a draw from N(0, I) gives a plausible image for the VAE and often garbage for the AE.
// This command draws the two pictures of that experiment and puts numbers on the difference:
//
//   FILE.png           the means of q(z|x) (the codes, for an AE) of the test images, colored by
//                      class. With a 2-D latent the axes are z1 and z2 themselves; with D > 2 they are
//                      the first two principal components of the codes (the variance they explain is
//                      printed and put in the title), because any 2-D picture of a D-d cloud is a
//                      projection and PCA is the one that keeps the most spread.
//   FILE_manifold.png  decoded images on a grid x grid lattice over the map (Kingma & Welling 2014,
//                      fig. 4): z = (u, v) for a 2-D latent, z = mean + u pc1 + v pc2 otherwise; u and
//                      v run over the 1st..99th percentile of the codes on each axis, so a few
//                      outlying codes do not stretch the lattice into empty space; or, with
//                      --range R, over [-R, R] on both axes (for a 2-D latent, the prior's bulk at
//                      R = 2..3: what decoding prior draws gives, the same window for AE and VAE).
//
// Coverage of the prior. M points are drawn from N(0, I) (seeded) in the full D-d latent space; for
// each, the Euclidean distance to its nearest encoded test point. Reported:
//   coverage        the fraction of prior draws within --radius r (default 0.25) of some code, and the
//                   same fraction at r = 0.1, 0.25, 0.5, 1 (coverage_at). r = 0.25 is a quarter of
//                   the prior's standard deviation: a draw that close to a code decodes to an image
//                   much like that code's, so the fraction is the share of prior samples that land
//                   where the decoder has seen data. It is meaningful for small D (2..4); in high
//                   dimensions every nearest-neighbour distance grows like sqrt(D) and a fixed radius
//                   catches nothing, which is why the ratio below is printed too.
//   prior_nn_mean   the mean nearest-code distance of the prior draws.
//   code_nn_mean    the mean nearest-other-code distance of M codes (seeded subset, leave-one-out):
//                   the typical spacing of the codes themselves.
//   nn_ratio        prior_nn_mean / code_nn_mean. If the codes were themselves distributed as N(0, I)
//                   (the aggregate posterior matching the prior, which the VAE's KL term pushes
//                   towards) a prior draw would look like one more code, and the ratio would be about
//                   1 in any dimension; it grows when prior draws fall in gaps between clusters or
//                   outside the region the codes occupy (the AE). null when every probed code has
//                   a duplicate (identical images), where the codes' spacing is 0.
//   code_std        the per-dimension standard deviation of the codes, averaged over dimensions (1
//                   for codes spread like the prior), and code_mean_norm, |mean of the codes|.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
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

namespace ll::app {

namespace {

namespace fs = std::filesystem;

struct LatentMapOptions {
  std::string dir;
  std::string data;          // default: the data the run was trained on
  int64_t n = 0;             // test images to encode; 0 = all
  int64_t grid = 15;         // manifold lattice is grid x grid
  std::string out;           // default: DIR/latent_map.png
  std::string manifold_out;  // default: FILE_manifold.png next to --out
  double radius = 0.25;
  double range = 0;          // > 0: the lattice spans [-range, range] on both axes instead
  int64_t prior_samples = 2000;
  int64_t size = 640;        // scatter plot side in pixels
  uint64_t seed = 0;
};

// Philox subsequences of the command's seed (engine/rng.h), one per use, so that changing --n does
// not change which prior points are drawn.
enum Stream : uint64_t { kTestSubset = 0, kPrior = 1, kCodeSubset = 2 };

// A lattice coordinate for a sheet label, 3 significant digits; a value that is zero up to rounding
// of the lattice steps prints as "0" rather than "7.12e-05".
std::string tick_label(double v, double range) {
  if (std::fabs(v) < 1e-6 * range) v = 0;
  return format_number("%.3g", v);
}

// Linear-interpolation quantile (numpy's default) of values, q in [0, 1].
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// For each query row (m, D), the Euclidean distance to the nearest row of points (n, D); `skip[i]`
// (when given) is a row of points that query i must not match (itself, for leave-one-out).
// Brute force in double: m * n * D is at most a few 1e8 here, well under a second.
std::vector<double> nearest_distances(const std::vector<float>& queries, int64_t m, const std::vector<float>& points,
                                      int64_t n, int64_t D, const std::vector<int64_t>* skip = nullptr) {
  std::vector<double> out(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    const float* q = &queries[static_cast<size_t>(i * D)];
    double best = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      if (skip && (*skip)[static_cast<size_t>(i)] == j) continue;
      const float* p = &points[static_cast<size_t>(j * D)];
      double d2 = 0;
      for (int64_t k = 0; k < D && d2 < best; ++k) {  // stop early once farther than the best so far
        const double d = static_cast<double>(q[k]) - static_cast<double>(p[k]);
        d2 += d * d;
      }
      best = std::min(best, d2);
    }
    out[static_cast<size_t>(i)] = std::sqrt(best);
  }
  return out;
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double fraction_within(const std::vector<double>& dist, double r) {
  const auto k = std::count_if(dist.begin(), dist.end(), [r](double d) { return d <= r; });
  return dist.empty() ? 0.0 : static_cast<double>(k) / static_cast<double>(dist.size());
}

// Population variance of column `col` of a row-major (n, D) array, in double.
double column_variance(const std::vector<float>& rows, int64_t n, int64_t D, int64_t col) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += rows[static_cast<size_t>(i * D + col)];
  mean /= static_cast<double>(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = rows[static_cast<size_t>(i * D + col)] - mean;
    var += d * d;
  }
  return var / static_cast<double>(n);
}

void run_latent_map(const LatentMapOptions& o) {
  // Flags first, so that a typo fails before minutes of encoding.
  if (o.n < 0) throw std::invalid_argument("--n must be >= 0 (0: the whole test set), got " + std::to_string(o.n));
  if (o.grid < 2 || o.grid > 40) throw std::invalid_argument("--grid must be in 2..40, got " + std::to_string(o.grid));
  if (!(o.radius > 0) || !std::isfinite(o.radius)) throw std::invalid_argument("--radius must be a positive number");
  if (!(o.range >= 0) || !std::isfinite(o.range)) throw std::invalid_argument("--range must be a positive number (or 0: the codes' range)");
  if (o.prior_samples < 1 || o.prior_samples > 100000) throw std::invalid_argument("--prior-samples must be in 1..100000");
  if (o.size < 200 || o.size > 4096) throw std::invalid_argument("--size must be in 200..4096 pixels");
  const std::string out = o.out.empty() ? (fs::path(o.dir) / "latent_map.png").string() : o.out;
  if (!ends_with(out, ".png")) throw std::invalid_argument("--out must name a .png file, got '" + out + "'");
  const std::string manifold_out = o.manifold_out.empty() ? out.substr(0, out.size() - 4) + "_manifold.png" : o.manifold_out;
  if (!ends_with(manifold_out, ".png")) throw std::invalid_argument("--manifold-out must name a .png file, got '" + manifold_out + "'");

  LoadedRun run = load_run(o.dir);
  auto& model = *run.model;
  const auto& c = model.config();
  const int64_t D = c.latent_dim;
  if (D < 2) throw std::invalid_argument("latent-map needs a latent of at least 2 dimensions; " + o.dir + " has " + std::to_string(D));
  const std::string data_name = o.data.empty() ? run.metadata["data"] : o.data;
  const data::Dataset test = load_test_set(data_name, c);
  if (test.n < 2) throw std::invalid_argument(data_name + " has " + std::to_string(test.n) + " test images; latent-map needs at least 2");
  model.eval();

  // ---- encode: the means of q(z|x), the point each image is mapped to ------------------------------
  const std::vector<int64_t> indices = data::random_subset(test.n, o.n, o.seed, kTestSubset);
  const int64_t n = static_cast<int64_t>(indices.size());
  const Tensor codes_t = models::encode_means(model, test, indices);  // (n, D)
  const std::vector<float> codes = codes_t.to_vector();

  std::vector<int32_t> classes(static_cast<size_t>(n), 0);
  std::vector<std::string> class_names{"images"};
  if (!test.labels.empty()) {
    int32_t max_label = 0;
    for (size_t i = 0; i < indices.size(); ++i) {
      classes[i] = test.labels[static_cast<size_t>(indices[i])];
      max_label = std::max(max_label, classes[i]);
    }
    class_names.clear();
    for (int32_t k = 0; k <= max_label; ++k) {
      class_names.push_back(static_cast<size_t>(k) < test.class_names.size() ? test.class_names[static_cast<size_t>(k)]
                                                                             : std::to_string(k));
    }
  }

  // ---- the 2-D picture: the latent itself, or its first two principal components ----------------
  std::vector<float> px(static_cast<size_t>(n)), py(static_cast<size_t>(n));
  std::vector<double> explained;  // PCA only: variance fraction of PC1, PC2
  models::Pca p;
  const bool use_pca = D > 2;
  if (!use_pca) {
    for (int64_t i = 0; i < n; ++i) {
      px[static_cast<size_t>(i)] = codes[static_cast<size_t>(i * 2)];
      py[static_cast<size_t>(i)] = codes[static_cast<size_t>(i * 2 + 1)];
    }
  } else {
    p = models::pca(codes_t, 2);
    const std::vector<float> proj = p.projected.to_vector();  // (n, 2)
    for (int64_t i = 0; i < n; ++i) {
      px[static_cast<size_t>(i)] = proj[static_cast<size_t>(i * 2)];
      py[static_cast<size_t>(i)] = proj[static_cast<size_t>(i * 2 + 1)];
    }
    // Explained fraction = variance along the component / total variance (trace of the covariance),
    // both computed here with the same (population) normalization from the same codes.
    double total = 0;
    for (int64_t k = 0; k < D; ++k) total += column_variance(codes, n, D, k);
    for (int64_t k = 0; k < 2; ++k) explained.push_back(total > 0 ? column_variance(proj, n, 2, k) / total : 0.0);
  }
  const std::string kind = models::kind_name(c.kind);
  const std::string title =
      use_pca ? kind + " " + std::to_string(D) + "-d latent, PCA: PC1 " + format_number("%.0f", 100 * explained[0]) + "%, PC2 " +
                    format_number("%.0f", 100 * explained[1]) + "% of variance"
              : kind + " 2-d latent: " + (model.variational() ? "means of q(z|x), " : "codes of ") + std::to_string(n) + " test images";
  data::save_png(out, data::scatter_plot(px, py, classes, class_names, title, o.size));

  // ---- the manifold: decoded images on a lattice over the map ------------------------------------
  std::vector<double> xs(px.begin(), px.end()), ys(py.begin(), py.end());
  double u_lo = quantile(xs, 0.01), u_hi = quantile(xs, 0.99);
  double v_lo = quantile(ys, 0.01), v_hi = quantile(ys, 0.99);
  if (!(u_hi > u_lo)) u_lo -= 1, u_hi += 1;  // all codes at one point: show its neighbourhood
  if (!(v_hi > v_lo)) v_lo -= 1, v_hi += 1;
  if (o.range > 0) {  // a fixed window, e.g. the prior's bulk, the same for every model
    u_lo = v_lo = -o.range;
    u_hi = v_hi = o.range;
  }
  const int64_t g = o.grid;
  std::vector<float> lattice(static_cast<size_t>(g * g * D));
  std::vector<float> mean_v, pc_v;
  if (use_pca) {
    mean_v = p.mean.to_vector();
    pc_v = p.components.to_vector();  // (2, D)
  }
  std::vector<std::string> row_labels, col_labels;
  for (int64_t r = 0; r < g; ++r) {
    // Row 0 at the top holds the largest v, so the sheet is oriented like the scatter plot.
    const double v = v_hi - (v_hi - v_lo) * static_cast<double>(r) / static_cast<double>(g - 1);
    row_labels.push_back(tick_label(v, v_hi - v_lo));
    for (int64_t col = 0; col < g; ++col) {
      const double u = u_lo + (u_hi - u_lo) * static_cast<double>(col) / static_cast<double>(g - 1);
      if (r == 0) col_labels.push_back(tick_label(u, u_hi - u_lo));
      float* z = &lattice[static_cast<size_t>((r * g + col) * D)];
      if (!use_pca) {
        z[0] = static_cast<float>(u);
        z[1] = static_cast<float>(v);
      } else {
        for (int64_t k = 0; k < D; ++k) {
          z[k] = static_cast<float>(mean_v[static_cast<size_t>(k)] + u * pc_v[static_cast<size_t>(k)] +
                                    v * pc_v[static_cast<size_t>(D + k)]);
        }
      }
    }
  }
  const Tensor decoded = model.generate(Tensor::from_vector(lattice, {g * g, D}));
  // Upscale small images so that a cell is at least ~40 pixels: a 15 x 15 sheet of 28-pixel digits
  // becomes 840 pixels wide.
  const int64_t upscale = std::clamp<int64_t>((40 + c.width - 1) / c.width, 1, 4);
  const std::string manifold_title =
      use_pca ? kind + ": decode(mean + u pc1 + v pc2), u right, v up" : kind + ": decode(z1, z2), z1 right, z2 up";
  data::save_png(manifold_out, data::labeled_sheet(decoded, g, row_labels, col_labels, manifold_title, upscale));

  // ---- coverage of the prior -------------------------------------------------------------------
  const int64_t m = o.prior_samples;
  Generator prior_gen(o.seed, kPrior);
  const std::vector<float> prior = randn({m, D}, prior_gen).to_vector();
  const std::vector<double> prior_nn = nearest_distances(prior, m, codes, n, D);
  // The codes' own spacing: M codes (a seeded subset when there are more), each against all others.
  const std::vector<int64_t> probe = data::random_subset(n, std::min(m, n), o.seed, kCodeSubset);
  std::vector<float> probe_rows;
  for (int64_t i : probe) {
    probe_rows.insert(probe_rows.end(), codes.begin() + i * D, codes.begin() + (i + 1) * D);
  }
  const std::vector<double> code_nn = nearest_distances(probe_rows, static_cast<int64_t>(probe.size()), codes, n, D, &probe);
  const double prior_nn_mean = mean_of(prior_nn), code_nn_mean = mean_of(code_nn);

  double code_std = 0, mean_norm2 = 0;
  for (int64_t k = 0; k < D; ++k) {
    code_std += std::sqrt(column_variance(codes, n, D, k));
    double mk = 0;
    for (int64_t i = 0; i < n; ++i) mk += codes[static_cast<size_t>(i * D + k)];
    mk /= static_cast<double>(n);
    mean_norm2 += mk * mk;
  }
  code_std /= static_cast<double>(D);

  nlohmann::json coverage_at = nlohmann::json::object();
  for (double r : {0.1, 0.25, 0.5, 1.0}) coverage_at[format_number("%g", r)] = fraction_within(prior_nn, r);
  nlohmann::json line{{"model", c.describe()},
                      {"data", data_name},
                      {"images", n},
                      {"latent_dim", D},
                      {"projection", use_pca ? "pca" : "latent"},
                      {"radius", o.radius},
                      {"coverage", fraction_within(prior_nn, o.radius)},
                      {"coverage_at", coverage_at},
                      {"prior_samples", m},
                      {"prior_nn_mean", prior_nn_mean},
                      {"code_nn_mean", code_nn_mean},
                      {"nn_ratio", code_nn_mean > 0 ? nlohmann::json(prior_nn_mean / code_nn_mean) : nlohmann::json(nullptr)},
                      {"code_std", code_std},
                      {"code_mean_norm", std::sqrt(mean_norm2)},
                      {"grid", g},
                      {"grid_range", {{u_lo, u_hi}, {v_lo, v_hi}}},
                      {"out", out},
                      {"manifold_out", manifold_out},
                      {"seed", o.seed}};
  if (use_pca) line["variance_explained"] = explained;
  std::cerr << "latentlab: wrote the latent map of " << n << " " << data_name << " test images to " << out << " ("
            << (use_pca ? "axes PC1, PC2 of the " + std::to_string(D) + "-d codes: " + format_number("%.1f", 100 * explained[0]) +
                              "% + " + format_number("%.1f", 100 * explained[1]) + "% of their variance"
                        : std::string("axes z1, z2: the latent itself"))
            << ") and its " << g << "x" << g << " manifold to " << manifold_out << "\n";
  std::cout << line.dump() << "\n";
}

}  // namespace

void add_latent_map_command(CLI::App& app) {
  auto o = std::make_shared<LatentMapOptions>();
  CLI::App* cmd = app.add_subcommand(
      "latent-map", "scatter plot of the test set's codes by class, the decoded manifold, and how much of the prior N(0, I) the codes cover");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--data", o->data, "data set to encode (default: the one the run was trained on); its test split is used");
  cmd->add_option("--n", o->n, "test images to encode, a seeded random subset (0: all)")->capture_default_str();
  cmd->add_option("--grid", o->grid, "the manifold picture decodes a grid x grid lattice")->capture_default_str();
  cmd->add_option("--out", o->out, "scatter plot FILE.png (default: DIR/latent_map.png)");
  cmd->add_option("--manifold-out", o->manifold_out, "manifold picture (default: FILE_manifold.png beside --out)");
  cmd->add_option("--radius", o->radius, "coverage radius r (latent units; the prior's sd is 1): a prior draw is covered when a code lies within r")
      ->capture_default_str();
  cmd->add_option("--range", o->range, "manifold lattice over [-R, R] on both axes (default 0: the codes' 1st..99th percentiles)")
      ->capture_default_str();
  cmd->add_option("--prior-samples", o->prior_samples, "draws from N(0, I) for the coverage numbers")->capture_default_str();
  cmd->add_option("--size", o->size, "scatter plot side in pixels")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the subset and the prior draws")->capture_default_str();
  cmd->callback([o] { run_latent_map(*o); });
}

}  // namespace ll::app
