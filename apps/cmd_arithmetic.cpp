// cmd_arithmetic.cpp: `latentlab arithmetic DIR` — concept vectors in the latent space.
//
// The study's experiment 3. With an encoder, a concept is the difference of two group means of
// encoded images, v = mean(mu(plus)) - mean(mu(minus)) (the attribute vectors of Larsen et al. 2016
// and, for GANs, of Radford et al. 2016's "smiling woman - neutral woman + neutral man"); adding
// s * v to the code of an image and decoding should add the concept to that image. Two forms:
//
//   --concept "label:7-label:5" --to label:2     v from the two selectors, added to each --to image
//   --plus SEL --minus SEL --base SEL            the study's three groups: v added to mean(base)
//                                                (its first row) and to every base image
//
// Codes are the means of q(z|x) (the codes themselves for the AE): averaging means, not samples,
// keeps the vector free of the encoder's sampling noise. The sheet shows, per base image, the
// original, its plain decoding (scale 0: what the model can express of it at all, so that the edit
// is judged against the decoding and not against the original), then the decodings of z + s * v.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/cli_files.h"
#include "apps/cli_text.h"
#include "apps/commands.h"
#include "apps/run_dir.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/plot.h"
#include "engine/ops/ops.h"
#include "models/latent.h"

namespace ll::app {

namespace {

struct ArithmeticOptions {
  std::string dir;
  std::string concept_spec;  // "PLUS-MINUS"
  std::string plus, minus, base, to;
  std::string scales = "0,0.5,1,1.5,2";
  std::string out, out_idx;
  double idx_scale = 1.0;
  int64_t rows = 8;
  std::string data;
  int64_t upscale = 0;
  // GAN runs: the groups are indices into a batch generated from --seed.
  int64_t batch = 100;
  uint64_t seed = 0;
  int64_t label = -1;
};

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

std::vector<double> parse_scales(const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(v)) {
      throw std::invalid_argument("--scale must be a comma-separated list of numbers such as 0,0.5,1, got '" + text + "'");
    }
    out.push_back(v);
  }
  if (out.empty() || out.size() > 16) throw std::invalid_argument("--scale must list 1 to 16 numbers, got '" + text + "'");
  return out;
}

std::vector<int64_t> select(const data::Dataset& test, const std::string& selector, const char* flag) {
  std::vector<int64_t> idx;
  try {
    idx = models::select_images(test, selector);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string(flag) + ": " + e.what());
  }
  if (idx.empty()) throw std::invalid_argument(std::string(flag) + " '" + selector + "' selects no images of " + test.name);
  return idx;
}

std::string class_name(const data::Dataset& d, int64_t index) {
  if (d.labels.empty()) return "";
  const int32_t k = d.labels[static_cast<size_t>(index)];
  if (k >= 0 && k < static_cast<int32_t>(d.class_names.size())) return d.class_names[static_cast<size_t>(k)];
  return "class " + std::to_string(k);
}

// The study's experiment 3 on a GAN, which has no encoder: a batch of `batch` images from noise of
// --seed; the plus, minus and base groups are index lists into it (models::select_rows); the vector
// v = mean(plus) - mean(minus) of their noise vectors is added to mean(base) and to each base
// image's noise. Rows: each group's images then its mean's image; last: mean(base) + v, then each
// base image + v.
void run_gan_arithmetic(const ArithmeticOptions& o, GenerativeRun& run) {
  if (!o.concept_spec.empty()) throw std::invalid_argument("on a GAN, give --plus, --minus and --base (indices of a generated batch), not --concept");
  if (o.batch < 1 || o.batch > 10000) throw std::invalid_argument("--batch must be in 1..10000");
  const std::string base = o.base.empty() ? o.to : o.base;
  if (o.plus.empty() || o.minus.empty() || base.empty()) {
    throw std::invalid_argument("on a GAN, arithmetic takes --plus, --minus and --base: index lists into the batch "
                                "that `latentlab sample DIR --n " + std::to_string(o.batch) + " --seed " + std::to_string(o.seed) +
                                " --numbered --out batch.png` shows");
  }
  if (o.out.empty()) throw std::invalid_argument("--out FILE.png is required");
  if (!o.out_idx.empty()) throw std::invalid_argument("--out-idx is for autoencoder and VAE runs");
  const int64_t nz = run.latent_dim();
  const std::vector<int32_t> labels = run.labels(o.batch, o.label);
  auto rows = [&](const std::string& spec, const char* flag) {
    try {
      return models::select_rows(spec, o.batch);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(flag) + " " + e.what());
    }
  };
  const std::vector<int64_t> ip = rows(o.plus, "--plus"), im = rows(o.minus, "--minus"), ib = rows(base, "--base");
  NoGradGuard no_grad;
  Generator gen(o.seed);
  const Tensor z = randn({o.batch, nz}, gen);
  const Tensor zp = models::mean_code(models::gather_rows(z, ip)), zm = models::mean_code(models::gather_rows(z, im));
  const Tensor zb = models::mean_code(models::gather_rows(z, ib));
  const Tensor v = sub(zp, zm);
  const int64_t cols = static_cast<int64_t>(std::max({ip.size(), im.size(), ib.size()})) + 1;
  // One image from one code (D); image i's class for a conditional GAN.
  auto image = [&](const Tensor& code, int64_t i) {
    return run.decode(code.reshape({1, nz}), labels.empty() ? std::vector<int32_t>{} : std::vector<int32_t>{labels[static_cast<size_t>(i)]});
  };
  std::vector<Tensor> cells;
  Tensor blank;
  auto add_row = [&](const std::vector<int64_t>& idx, const Tensor& shift, const Tensor& first) {
    // Mean first when `first` is given (the last row); else the group's images then their mean.
    if (first.defined()) cells.push_back(image(first, idx[0]));
    for (int64_t k = 0; k < cols - 1; ++k) {
      if (k < static_cast<int64_t>(idx.size())) {
        const int64_t i = idx[static_cast<size_t>(k)];
        const Tensor code = z.slice(i, i + 1).reshape({nz});
        cells.push_back(image(shift.defined() ? add(code, shift) : code, i));
        if (!blank.defined()) blank = Tensor::ones(cells.back().shape());
      } else {
        cells.push_back(blank);
      }
    }
  };
  auto group_row = [&](const std::vector<int64_t>& idx, const Tensor& mean) {
    add_row(idx, Tensor(), Tensor());
    cells.push_back(image(mean, idx[0]));
  };
  group_row(ip, zp);
  group_row(im, zm);
  group_row(ib, zb);
  add_row(ib, v, add(zb, v));
  std::vector<std::string> col_labels;
  for (int64_t k = 0; k < cols - 1; ++k) col_labels.push_back("image " + std::to_string(k + 1));
  col_labels.push_back("mean");
  const std::vector<std::string> row_labels{"plus", "minus", "base", "base + v"};
  const data::Image sheet = data::labeled_sheet(cat(cells, 0), cols, row_labels, col_labels, "", 2);
  const double norm_v = norm(v.to_vector());
  auto join = [](const std::vector<int64_t>& idx) {
    std::string s;
    for (size_t i = 0; i < idx.size(); ++i) {
      if (i) s += ',';
      s += std::to_string(idx[i]);
    }
    return s;
  };
  data::save_png(o.out, data::with_header(sheet, "GAN noise-space arithmetic: mean(plus) - mean(minus) + base",
                                          {"plus " + join(ip) + ", minus " + join(im) + ", base " + join(ib) + " of a batch of " +
                                               std::to_string(o.batch) + " (seed " + std::to_string(o.seed) + ")",
                                           "last row: first mean(base) + v, then each base image + v; |v| = " + fixed(norm_v, 3)}));
  std::cout << nlohmann::json{{"model", run.describe()}, {"form", "groups"}, {"batch", o.batch}, {"seed", o.seed},
                              {"plus", ip}, {"minus", im}, {"base", ib}, {"vector_norm", round_to(norm_v, 4)}, {"out", o.out}}
                   .dump()
            << "\n";
}

void run_arithmetic(const ArithmeticOptions& o) {
  GenerativeRun run = GenerativeRun::open(o.dir);
  if (run.is_gan()) {
    run_gan_arithmetic(o, run);
    return;
  }
  if (o.label >= 0) throw std::invalid_argument("--label is for the conditional GAN (cgan); this run is " + run.describe());
  // Which form: --concept PLUS-MINUS, or --plus and --minus; the images to edit from --to or --base.
  const bool concept_form = !o.concept_spec.empty();
  if (concept_form && (!o.plus.empty() || !o.minus.empty())) {
    throw std::invalid_argument("give either --concept PLUS-MINUS or --plus and --minus, not both");
  }
  if (!o.to.empty() && !o.base.empty()) throw std::invalid_argument("--to and --base name the same thing: give one");
  std::string plus = o.plus, minus = o.minus;
  if (concept_form) {
    // Selectors hold no '-' (indices and labels are non-negative), so the one '-' splits the two.
    const size_t dash = o.concept_spec.find('-');
    if (dash == std::string::npos || o.concept_spec.find('-', dash + 1) != std::string::npos || dash == 0 ||
        dash + 1 == o.concept_spec.size()) {
      throw std::invalid_argument("--concept must be PLUS-MINUS with two selectors, e.g. label:7-label:5, got '" + o.concept_spec + "'");
    }
    plus = o.concept_spec.substr(0, dash);
    minus = o.concept_spec.substr(dash + 1);
  } else if (plus.empty() || minus.empty()) {
    throw std::invalid_argument("give a concept: --concept PLUS-MINUS, or --plus SEL --minus SEL (with --base SEL)");
  }
  const std::string base = o.to.empty() ? o.base : o.to;
  if (base.empty()) throw std::invalid_argument(concept_form ? "--to SELECTOR is required: the images to add the concept to" : "--base SELECTOR is required: the images to add the concept to");
  const std::vector<double> scales = parse_scales(o.scales);
  if (o.rows < 1 || o.rows > 64) throw std::invalid_argument("--rows must be in 1..64");
  if (!std::isfinite(o.idx_scale)) throw std::invalid_argument("--idx-scale must be a finite number");
  if (o.upscale < 0 || o.upscale > 16) throw std::invalid_argument("--upscale must be in 0..16 (0 = automatic)");

  models::Autoencoder& model = run.autoencoder("arithmetic on test images");
  const auto& c = model.config();
  const int64_t D = c.latent_dim;
  const std::string data_name = o.data.empty() ? run.data_name() : o.data;
  const data::Dataset test = load_test_set(data_name, c);
  NoGradGuard no_grad;

  const char* plus_flag = concept_form ? "--concept (left)" : "--plus";
  const char* minus_flag = concept_form ? "--concept (right)" : "--minus";
  const char* base_flag = o.to.empty() ? "--base" : "--to";
  const std::vector<int64_t> plus_idx = select(test, plus, plus_flag);
  const std::vector<int64_t> minus_idx = select(test, minus, minus_flag);
  const std::vector<int64_t> base_idx = select(test, base, base_flag);

  // v = mean(plus) - mean(minus), (D).
  const Tensor v = models::mean_code(models::encode_means(model, test, plus_idx)) -
                   models::mean_code(models::encode_means(model, test, minus_idx));
  const std::vector<float> vv = v.to_vector();
  const Tensor Z = models::encode_means(model, test, base_idx);  // (n, D)
  const int64_t n = Z.size(0);
  const Tensor vrow = v.reshape({1, D});
  // (n, D) copies of s * v, added to the codes of the base images.
  auto shift = [&](const Tensor& codes, double s) { return codes + cat(std::vector<Tensor>(static_cast<size_t>(codes.size(0)), vrow), 0) * static_cast<float>(s); };

  // The edit is a translation of the code: subtracting what was added returns the code (up to
  // float rounding). Reported so that a user (and the tests) can see the arithmetic is exact; the
  // decoder, not the vector, is where an edit can fail.
  double roundtrip = 0, base_norm = 0;
  {
    const std::vector<float> z = Z.to_vector();
    for (double s : scales) {
      const std::vector<float> back = (shift(Z, s) - shift(Tensor::zeros({n, D}), s)).to_vector();
      for (size_t i = 0; i < z.size(); ++i) roundtrip = std::max(roundtrip, std::abs(static_cast<double>(back[i]) - z[i]));
    }
    for (int64_t i = 0; i < n; ++i) base_norm += norm(std::vector<float>(z.begin() + i * D, z.begin() + (i + 1) * D));
    base_norm /= static_cast<double>(n);
  }

  const int64_t shown = std::min<int64_t>(n, o.rows);
  if (!o.out.empty()) {
    // Rows: [mean of the base group (three-group form)], then the first `shown` base images.
    // Columns: the original, then the decodings of z + s * v in the order of --scale; s = 0 is the
    // plain decoding, labeled "decoded", and is put first when --scale does not list it, so every
    // row shows what the model makes of the image before the edit.
    std::vector<double> columns = scales;
    if (std::find(columns.begin(), columns.end(), 0.0) == columns.end()) columns.insert(columns.begin(), 0.0);
    std::vector<Tensor> cells;
    std::vector<std::string> row_labels;
    auto add_row = [&](const Tensor& original, const Tensor& code, const std::string& label) {
      std::vector<Tensor> codes;
      for (double s : columns) codes.push_back(shift(code, s));
      cells.push_back(original);
      cells.push_back(model.generate(cat(codes, 0)));
      row_labels.push_back(label);
    };
    if (!concept_form) {
      // The study's form: the vector added to the base group's mean code; its "original" is the
      // pixel mean of the group's images.
      const Tensor all = data::gather_images(test, base_idx, data::Scale::Unit);
      add_row(mean(all, 0, true), models::mean_code(Z).reshape({1, D}), "mean of " + std::to_string(n));
    }
    const std::vector<int64_t> first(base_idx.begin(), base_idx.begin() + shown);
    const Tensor originals = data::gather_images(test, first, data::Scale::Unit);
    for (int64_t i = 0; i < shown; ++i) {
      const std::string name = class_name(test, first[static_cast<size_t>(i)]);
      add_row(originals.slice(i, i + 1), Z.slice(i, i + 1), "#" + std::to_string(first[static_cast<size_t>(i)]) + (name.empty() ? "" : " " + name));
    }
    std::vector<std::string> col_labels{"original"};
    for (double s : columns) col_labels.push_back(s == 0.0 ? "decoded" : std::string("z") + (s < 0 ? "-" : "+") + format_number("%g", std::abs(s)) + "v");
    const int64_t up = o.upscale > 0 ? o.upscale : auto_upscale(c.height);
    const data::Image sheet = data::labeled_sheet(cat(cells, 0), static_cast<int64_t>(col_labels.size()), row_labels, col_labels, "", up);

    // "label:9 (Ankle boot, 1000 images)": the class name when the selector names a class.
    auto describe = [&](const std::string& sel, size_t count, const std::vector<int64_t>& idx) {
      const std::string what = sel.rfind("label:", 0) == 0 ? class_name(test, idx[0]) : "";
      return sel + " (" + (what.empty() ? "" : what + ", ") + std::to_string(count) + (count == 1 ? " image)" : " images)");
    };
    std::vector<std::string> lines{
        "v = mean code of " + describe(plus, plus_idx.size(), plus_idx) + " - mean code of " + describe(minus, minus_idx.size(), minus_idx) + ",  |v| = " +
            format_number("%g", round_to(norm(vv), 3)) + "  (mean |z| of the rows: " + format_number("%g", round_to(base_norm, 3)) + ")",
        std::string("rows: ") + (concept_form ? "" : "the mean code of the base group, then ") + "images of " +
            describe(base, base_idx.size(), base_idx) + (shown < n ? ", the first " + std::to_string(shown) + " shown" : ""),
        "columns: the test image, then its code z + s*v decoded for s = " + o.scales + (columns.size() > scales.size() ? " (and 0: decoded)" : "")};
    data::save_png(o.out, data::with_header(sheet, "latent arithmetic: " + plus + " - " + minus + " added to " + base, lines));
  }
  if (!o.out_idx.empty()) {
    // Every base image (not only the rows shown), edited at --idx-scale, in chunks to bound memory.
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < n; i += 1000) parts.push_back(model.generate(shift(Z.slice(i, std::min(n, i + 1000)), o.idx_scale)));
    data::save_images_idx(o.out_idx, cat(parts, 0));
  }

  nlohmann::json line{{"form", concept_form ? "concept" : "groups"},
                      {"plus", {{"selector", plus}, {"images", plus_idx.size()}}},
                      {"minus", {{"selector", minus}, {"images", minus_idx.size()}}},
                      {"base", {{"selector", base}, {"images", n}}},
                      {"latent_dim", D},
                      {"vector_norm", round_to(norm(vv), 4)},
                      {"base_code_norm_mean", round_to(base_norm, 4)},
                      {"scales", scales},
                      {"roundtrip_max_abs", roundtrip},
                      {"rows_shown", o.out.empty() ? 0 : shown + (concept_form ? 0 : 1)}};
  if (!o.out.empty()) line["out"] = o.out;
  if (!o.out_idx.empty()) {
    line["out_idx"] = o.out_idx;
    line["idx_scale"] = o.idx_scale;
  }
  std::cout << line.dump() << "\n";
}

}  // namespace

void add_arithmetic_command(CLI::App& app) {
  auto o = std::make_shared<ArithmeticOptions>();
  CLI::App* cmd = app.add_subcommand("arithmetic", "concept vectors: mean code of some images minus that of others, added to codes and decoded");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--concept", o->concept_spec, "PLUS-MINUS: two selectors (idx:3,17 label:7 label:7:20), e.g. label:7-label:5");
  cmd->add_option("--to", o->to, "selector of the test images to add the concept to");
  cmd->add_option("--plus", o->plus, "three-group form: images with the attribute");
  cmd->add_option("--minus", o->minus, "three-group form: images without it");
  cmd->add_option("--base", o->base, "three-group form: images to add it to (their mean is the first row)");
  cmd->add_option("--scale", o->scales, "comma-separated multiples of the vector, one column each")->capture_default_str();
  cmd->add_option("--rows", o->rows, "base images shown in the sheet (the first ones selected)")->capture_default_str();
  cmd->add_option("--out", o->out, "output FILE.png: the labeled sheet")->check(png_file());
  cmd->add_option("--out-idx", o->out_idx, "output FILE.idx: every base image edited at --idx-scale, uint8, for scoring");
  cmd->add_option("--idx-scale", o->idx_scale, "the scale of the edits written to --out-idx")->capture_default_str();
  cmd->add_option("--data", o->data, "data set of the images (default: the one the run was trained on)");
  cmd->add_option("--upscale", o->upscale, "pixel repeat of each image (0: automatic)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "GAN runs: size of the generated batch the indices refer to")->capture_default_str();
  cmd->add_option("--seed", o->seed, "GAN runs: seed of the generated batch")->capture_default_str();
  cmd->add_option("--label", o->label, "conditional GAN runs: the class of the generated batch");
  cmd->callback([o] { run_arithmetic(*o); });
}

}  // namespace ll::app
