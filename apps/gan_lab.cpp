#include "apps/gan_lab.h"
#include "apps/cli_files.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "data/image.h"
#include "data/plot.h"
#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "models/latent.h"

namespace ll::app {

namespace fs = std::filesystem;
using models::GanConfig;

namespace {

std::string generator_path(const std::string& dir) { return (fs::path(dir) / "generator.safetensors").string(); }

// "idx:3,17,42" or "3,17,42" -> indices, each below n.
std::vector<int64_t> parse_indices(const std::string& spec, int64_t n, const char* flag) {
  std::string s = spec.rfind("idx:", 0) == 0 ? spec.substr(4) : spec;
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 0 || v >= n) {
      throw std::invalid_argument(std::string(flag) + " '" + spec + "': '" + item + "' is not an index in 0.." +
                                  std::to_string(n - 1) + " of the generated batch");
    }
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(std::string(flag) + " names no images");
  return out;
}

Tensor rows_of(const Tensor& t, const std::vector<int64_t>& idx) {
  std::vector<Tensor> parts;
  for (int64_t i : idx) parts.push_back(t.slice(i, i + 1));
  return cat(parts, 0);
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);  // (appending: `"," + std::to_string(..)` trips GCC 12's false -Wrestrict)
  }
  return s;
}

}  // namespace

bool is_gan_run(const std::string& dir) { return fs::exists(generator_path(dir)); }

LoadedGan load_gan_run(const std::string& dir) {
  const std::string path = generator_path(dir);
  LoadedGan run;
  const auto tensors = load_tensors(path, &run.metadata);
  auto config = run.metadata.find("config");
  if (config == run.metadata.end()) throw std::runtime_error(path + ": no GAN configuration in the file's metadata");
  GanConfig c;
  try {
    c = GanConfig::from_json(config->second);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": bad GAN configuration in the metadata: " + e.what());
  }
  check_holds_parameters(path, tensors, c.generator_parameters());
  Generator init(0);  // replaced by the checkpoint's values
  run.generator = std::make_unique<models::GanGenerator>(c, init);
  try {
    run.generator->load_state_dict(tensors);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  run.generator->eval();
  return run;
}

Tensor gan_images(models::GanGenerator& g, const Tensor& z, const std::vector<int32_t>& labels) {
  NoGradGuard no_grad;
  return scale(add_scalar(g.forward(z, labels), 1.0f), 0.5f);  // [-1, 1] -> [0, 1]
}

std::vector<int32_t> gan_labels(const GanConfig& c, int64_t n, int64_t label) {
  if (!c.conditional()) {
    if (label >= 0) throw std::invalid_argument("--label is for the conditional GAN (cgan); this run is " +
                                                std::string(models::gan_arch_name(c.arch)));
    return {};
  }
  if (label >= c.num_classes) {
    throw std::invalid_argument("--label " + std::to_string(label) + " is not a class of this GAN (0.." +
                                std::to_string(c.num_classes - 1) + ")");
  }
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = static_cast<int32_t>(label >= 0 ? label : i % c.num_classes);
  return labels;
}

void gan_sample(const std::string& dir, int64_t n, uint64_t seed, int64_t label, const std::string& out, int64_t nrow,
                bool numbered, Device device) {
  LoadedGan run = load_gan_run(dir);
  auto& g = *run.generator;
  g.to(device);
  Generator gen(seed);
  const Tensor z = randn({n, g.config().nz}, gen, device);
  const Tensor images = gan_images(g, z, gan_labels(g.config(), n, label)).to(Device::CPU);
  if (ends_with(out, ".idx") || ends_with(out, ".idx.gz")) {
    data::save_images_idx(out, images);
  } else if (numbered) {
    // Cell (r, c) is image r * nrow + c: rows labeled by their first index, columns by the offset.
    const int64_t rows = (n + nrow - 1) / nrow;
    std::vector<std::string> row_labels, col_labels;
    for (int64_t r = 0; r < rows; ++r) row_labels.push_back(std::to_string(r * nrow) + "+");
    for (int64_t c = 0; c < nrow; ++c) col_labels.push_back(std::to_string(c));
    data::save_png(out, data::with_header(data::labeled_sheet(images, nrow, row_labels, col_labels, "", 2),
                                          "generated batch, seed " + std::to_string(seed),
                                          {"image index = row label + column label (for arithmetic --plus/--minus/--base)"}));
  } else {
    data::save_png(out, data::make_grid(images, nrow, 2, 0, 0.0f, 1.0f, 2));
  }
  std::cerr << "latentlab: wrote " << n << " samples of " << models::gan_arch_name(g.config().arch) << " to " << out << "\n";
}

void gan_interpolate(const std::string& dir, int64_t steps, const std::vector<std::string>& modes, uint64_t seed,
                     int64_t label, const std::string& out) {
  LoadedGan run = load_gan_run(dir);
  auto& g = *run.generator;
  const int64_t nz = g.config().nz;
  Generator gen(seed);
  const Tensor ends = randn({2, nz}, gen);
  const Tensor a = ends.slice(0, 1).reshape({nz}).clone(), b = ends.slice(1, 2).reshape({nz}).clone();
  std::vector<Tensor> rows;
  std::vector<std::string> row_labels, col_labels;
  for (const std::string& m : modes) {
    const Tensor path = models::interpolate(a, b, steps, m == "slerp" ? models::PathMode::Slerp : models::PathMode::Lerp);
    rows.push_back(gan_images(g, path, gan_labels(g.config(), steps, label)));
    row_labels.push_back(m);
  }
  for (int64_t i = 0; i < steps; ++i) {
    char t[16];
    std::snprintf(t, sizeof(t), "t=%.2f", static_cast<double>(i) / static_cast<double>(steps - 1));
    col_labels.push_back(t);
  }
  const data::Image sheet = data::labeled_sheet(cat(rows, 0), steps, row_labels, col_labels, "", 2);
  data::save_png(out, data::with_header(sheet, "GAN interpolation between two noise vectors",
                                        {std::to_string(steps) + " points from z_a (t=0) to z_b (t=1), seed " + std::to_string(seed)}));
  const double na = std::sqrt(static_cast<double>(sum(mul(a, a)).item()));
  const double nb = std::sqrt(static_cast<double>(sum(mul(b, b)).item()));
  const double dist = std::sqrt(static_cast<double>(sum(mul(sub(a, b), sub(a, b))).item()));
  std::cout << nlohmann::json{{"model", models::gan_arch_name(g.config().arch)}, {"steps", steps}, {"modes", modes},
                              {"seed", seed}, {"from_norm", na}, {"to_norm", nb}, {"distance", dist}, {"out", out}}
                   .dump()
            << "\n";
}

void gan_arithmetic(const std::string& dir, int64_t batch, uint64_t seed, int64_t label, const std::string& plus,
                    const std::string& minus, const std::string& base, const std::string& out) {
  if (plus.empty() || minus.empty() || base.empty()) {
    throw std::invalid_argument("on a GAN, arithmetic takes --plus, --minus and --base: index lists into the batch "
                                "that `latentlab sample DIR --n " + std::to_string(batch) + " --seed " + std::to_string(seed) +
                                " --numbered --out batch.png` shows");
  }
  if (out.empty()) throw std::invalid_argument("--out FILE.png is required");
  LoadedGan run = load_gan_run(dir);
  auto& g = *run.generator;
  const GanConfig& c = g.config();
  Generator gen(seed);
  const Tensor z = randn({batch, c.nz}, gen);
  const std::vector<int32_t> labels = gan_labels(c, batch, label);
  const auto ip = parse_indices(plus, batch, "--plus"), im = parse_indices(minus, batch, "--minus"),
             ib = parse_indices(base, batch, "--base");
  // The study's experiment 3: average each group's noise vectors; v = mean(plus) - mean(minus);
  // decode mean(base) + v, and each base image's z + v.
  const Tensor zp = models::mean_code(rows_of(z, ip)), zm = models::mean_code(rows_of(z, im));
  const Tensor zb = models::mean_code(rows_of(z, ib));
  const Tensor v = sub(zp, zm);
  const int64_t cols = static_cast<int64_t>(std::max({ip.size(), im.size(), ib.size()})) + 1;
  auto label_of = [&](int64_t i) { return labels.empty() ? std::vector<int32_t>{} : std::vector<int32_t>{labels[static_cast<size_t>(i)]}; };
  // Rows: each group's images then its mean's decoding; the last row: mean(base) + v, then each base image + v.
  std::vector<Tensor> cells;
  const Tensor blank = Tensor::ones({1, c.channels, c.image_size(), c.image_size()});
  auto add_row = [&](const std::vector<int64_t>& idx, const Tensor& mean) {
    for (int64_t k = 0; k < cols - 1; ++k) {
      cells.push_back(k < static_cast<int64_t>(idx.size()) ? gan_images(g, z.slice(idx[static_cast<size_t>(k)], idx[static_cast<size_t>(k)] + 1),
                                                                        label_of(idx[static_cast<size_t>(k)]))
                                                            : blank);
    }
    cells.push_back(gan_images(g, mean.reshape({1, c.nz}), label_of(idx[0])));
  };
  add_row(ip, zp);
  add_row(im, zm);
  add_row(ib, zb);
  cells.push_back(gan_images(g, add(zb, v).reshape({1, c.nz}), label_of(ib[0])));
  for (int64_t k = 0; k < cols - 1; ++k) {
    cells.push_back(k < static_cast<int64_t>(ib.size())
                        ? gan_images(g, add(z.slice(ib[static_cast<size_t>(k)], ib[static_cast<size_t>(k)] + 1).reshape({c.nz}), v).reshape({1, c.nz}),
                                     label_of(ib[static_cast<size_t>(k)]))
                        : blank);
  }
  std::vector<std::string> col_labels;
  for (int64_t k = 0; k < cols - 1; ++k) col_labels.push_back("image " + std::to_string(k + 1));
  col_labels.push_back("mean");
  const std::vector<std::string> row_labels{"plus", "minus", "base", "base + v"};
  const data::Image sheet = data::labeled_sheet(cat(cells, 0), cols, row_labels, col_labels, "", 2);
  const double norm = std::sqrt(static_cast<double>(sum(mul(v, v)).item()));
  data::save_png(out, data::with_header(sheet, "GAN noise-space arithmetic: mean(plus) - mean(minus) + base",
                                        {"plus " + join(ip) + ", minus " + join(im) + ", base " + join(ib) +
                                             " of a batch of " + std::to_string(batch) + " (seed " + std::to_string(seed) + ")",
                                         "last row: first mean(base) + v, then each base image + v; |v| = " + std::to_string(norm)}));
  std::cout << nlohmann::json{{"model", models::gan_arch_name(c.arch)}, {"form", "groups"}, {"batch", batch},
                              {"seed", seed}, {"plus", ip}, {"minus", im}, {"base", ib}, {"vector_norm", norm},
                              {"out", out}}
                   .dump()
            << "\n";
}

}  // namespace ll::app
