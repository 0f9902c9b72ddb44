// cmd_debias_report.cpp: `latentlab debias-report RUN [RUN...] --out DIR`: what `latentlab train
// dbvae` runs (apps/train_dbvae.h) achieved on their biased task, per subgroup.
//
// For each run: its model, evaluated on the test split of its task (data/biased.h: every test image
// of the task's classes, so that each subgroup has enough images), gives the accuracy overall, on
// the positive side's majority and minority, on the negatives, per source class, and the gap
// majority - minority (the bias the DB-VAE is meant to shrink). Runs are grouped by --debias
// (on/off): each figure's mean and sample standard deviation over the group's runs (seeds), and
// the difference on - off. For the first debias-on run, the sampling weights of its final encoder
// (models::debias_weights with the run's bins and alpha over the latent means of its positive
// training images) give DIR/resampled.png, the --top training images it would draw most, each
// labeled with its weight relative to uniform and its class, and the minority's share of the weight
// mass. Writes DIR/report.json and DIR/report.md, and prints report.json's summary as one JSON line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/run_dir.h"
#include "data/biased.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/plot.h"
#include "engine/checkpoint.h"
#include "models/dbvae.h"

namespace ll::app {

namespace {

namespace fs = std::filesystem;

struct ReportOptions {
  std::vector<std::string> runs;
  std::string out;
  int64_t top = 32;
  DeviceFlags device;
};

struct LoadedDbVae {
  std::unique_ptr<models::DbVae> model;
  Metadata meta;
  models::DbVaeConfig config;
  data::BiasedTask task;
};

LoadedDbVae load_dbvae(const std::string& dir) {
  const std::string path = (fs::path(dir) / "dbvae.safetensors").string();
  if (!fs::exists(path)) throw std::runtime_error(dir + " holds no dbvae.safetensors: train one with `latentlab train dbvae --out " + dir + "`");
  Metadata meta;
  const auto tensors = load_tensors(path, &meta);
  for (const char* key : {"config", "task", "data", "debias", "alpha", "bins", "seed"}) {
    if (meta.count(key) == 0) throw std::runtime_error(path + ": its metadata has no '" + key + "'");
  }
  LoadedDbVae r;
  r.config = models::DbVaeConfig::from_json(meta.at("config"));
  r.task = data::BiasedTask::from_json(meta.at("task"));
  Generator init(0);
  r.model = std::make_unique<models::DbVae>(r.config, init);
  check_holds_parameters(path, tensors, r.model->num_parameters());
  r.model->load_state_dict(tensors);
  r.meta = meta;
  return r;
}

double number(const Metadata& m, const std::string& key, const std::string& dir) {
  try {
    return std::stod(m.at(key));
  } catch (const std::exception&) {
    throw std::runtime_error(dir + ": metadata '" + key + "' is not a number");
  }
}

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, v);
  return text;
}

// Mean and sample standard deviation (0 for one value).
std::pair<double, double> mean_sd(const std::vector<double>& v) {
  if (v.empty()) return {0, 0};
  const double m = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

// The sheet of the most resampled training images of a debias-on run; returns its figures.
nlohmann::json resampled_sheet(LoadedDbVae& run, const std::string& dir, int64_t top, Device device, const std::string& png) {
  data::Dataset source = data::load_dataset(run.meta.at("data"), data::Split::Train);
  if (run.meta.count("limit")) source.keep_first(static_cast<int64_t>(number(run.meta, "limit", dir)));
  const data::BiasedData train = data::make_biased_binary(source, run.task, true);
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < train.data.n; ++i) {
    if (train.data.labels[static_cast<size_t>(i)] == 1) pos.push_back(i);
  }
  const Tensor x = data::gather_images(train.data, pos, data::Scale::Unit).to(device);
  std::vector<float> mu;
  models::dbvae_encode_all(*run.model, x, 1000, &mu, nullptr);
  const int64_t n = static_cast<int64_t>(pos.size());
  const std::vector<double> w = models::debias_weights(mu, n, run.config.latent_dim,
                                                       static_cast<int64_t>(number(run.meta, "bins", dir)), number(run.meta, "alpha", dir));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return w[static_cast<size_t>(a)] > w[static_cast<size_t>(b)]; });
  const int64_t k = std::min(top, n);
  double minority_mass = 0;
  int64_t minority_n = 0, minority_top = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (train.group[static_cast<size_t>(pos[static_cast<size_t>(i)])] == data::kMinority) {
      minority_mass += w[static_cast<size_t>(i)];
      ++minority_n;
    }
  }
  // Cells: the image (upscaled 2x), its weight relative to uniform (n w), its class (minority in red).
  const std::vector<std::string>& names = source.class_names;
  const int64_t cols = 8, up = 2, ih = train.data.height * up, iw = train.data.width * up, th = data::text_height(1);
  const int64_t cell_w = std::max<int64_t>(iw, 60) + 8, cell_h = ih + 2 * (th + 3) + 8, rows = (k + cols - 1) / cols;
  const std::string title = "the " + std::to_string(k) + " most resampled of " + std::to_string(n) + " positive training images";
  const std::string sub = "weight x uniform; class (red: the rare subgroup, " + std::to_string(minority_n) + " images, " +
                          fixed(100.0 * minority_mass, 1) + "% of the weight)";
  const int64_t width = std::max({cols * cell_w + 20, data::text_width(title, 2) + 20, data::text_width(sub, 1) + 20});
  const int64_t head = 10 + data::text_height(2) + 6 + th + 10;
  data::Image sheet = data::blank_rgb(width, head + rows * cell_h + 6, {255, 255, 255});
  data::draw_text(sheet, 10, 10, title, {0, 0, 0}, 2);
  data::draw_text(sheet, 10, 10 + data::text_height(2) + 6, sub, {90, 90, 90}, 1);
  nlohmann::json images = nlohmann::json::array();
  for (int64_t j = 0; j < k; ++j) {
    const int64_t i = order[static_cast<size_t>(j)], t = pos[static_cast<size_t>(i)];
    const bool minor = train.group[static_cast<size_t>(t)] == data::kMinority;
    minority_top += minor;
    const int32_t cls = train.source[static_cast<size_t>(t)];
    std::string label = cls >= 0 && cls < static_cast<int32_t>(names.size()) ? names[static_cast<size_t>(cls)] : "class " + std::to_string(cls);
    const int64_t cx = 10 + j % cols * cell_w, cy = head + j / cols * cell_h;
    data::paste(sheet, data::make_grid(data::gather_images(train.data, {t}, data::Scale::Unit), 1, 0, 0, 0.0f, 1.0f, up), cx, cy);
    data::draw_text(sheet, cx, cy + ih + 4, "x" + fixed(w[static_cast<size_t>(i)] * static_cast<double>(n), 1), {0, 0, 0}, 1);
    while (label.size() > 1 && data::text_width(label, 1) > cell_w - 4) label.pop_back();
    data::draw_text(sheet, cx, cy + ih + 4 + th + 3, label, minor ? data::Color{214, 39, 40} : data::Color{31, 119, 180}, 1);
    images.push_back({{"source_index", train.source_index[static_cast<size_t>(t)]}, {"class", cls}, {"minority", minor},
                      {"weight_x_uniform", w[static_cast<size_t>(i)] * static_cast<double>(n)}});
  }
  data::save_png(png, sheet);
  return {{"run", dir},
          {"positives", n},
          {"minority_images", minority_n},
          {"minority_share_of_images", static_cast<double>(minority_n) / static_cast<double>(std::max<int64_t>(n, 1))},
          {"minority_share_of_weight", minority_mass},
          {"minority_in_top", minority_top},
          {"top", k},
          {"sheet", png},
          {"images", images}};
}

void run_report(const ReportOptions& o) {
  if (o.top < 1 || o.top > 1024) throw std::invalid_argument("--top must be in 1..1024, got " + std::to_string(o.top));
  const Device device = apply_device_flags(o.device);
  std::vector<LoadedDbVae> runs;
  for (const std::string& dir : o.runs) runs.push_back(load_dbvae(dir));
  fs::create_directories(o.out);
  // Per run: evaluate on the test split of its task (loaded once per data set and task).
  std::map<std::string, data::BiasedData> tests;
  std::map<std::string, std::vector<double>> train_mix;  // the training split's share of each subgroup
  nlohmann::json per_run = nlohmann::json::array();
  std::map<std::string, std::map<std::string, std::vector<double>>> figures;  // mode -> figure -> values
  for (size_t r = 0; r < runs.size(); ++r) {
    LoadedDbVae& run = runs[r];
    const std::string key = run.meta.at("data") + " " + run.task.to_json();
    if (!tests.count(key)) {
      const data::Dataset src = data::load_dataset(run.meta.at("data"), data::Split::Test, run.config.height);
      tests.emplace(key, data::make_biased_binary(src, run.task, false));
    }
    const std::string train_key = key + " limit " + (run.meta.count("limit") ? run.meta.at("limit") : "0");
    if (!train_mix.count(train_key)) {
      data::Dataset src = data::load_dataset(run.meta.at("data"), data::Split::Train);
      if (run.meta.count("limit")) src.keep_first(static_cast<int64_t>(number(run.meta, "limit", o.runs[r])));
      const data::BiasedData train = data::make_biased_binary(src, run.task, true);
      std::vector<double> mix(3);
      for (uint8_t g = 0; g < 3; ++g) mix[g] = static_cast<double>(train.count(g)) / static_cast<double>(train.data.n);
      train_mix.emplace(train_key, mix);
    }
    const std::vector<double>& mix = train_mix.at(train_key);
    const data::BiasedData& test = tests.at(key);
    if (test.data.channels != run.config.channels || test.data.height != run.config.height || test.data.width != run.config.width) {
      throw std::invalid_argument(o.runs[r] + ": its test images are not the model's size");
    }
    run.model->to(device);
    std::vector<int64_t> every(static_cast<size_t>(test.data.n));
    std::iota(every.begin(), every.end(), int64_t{0});
    std::vector<float> logits;
    models::dbvae_encode_all(*run.model, data::gather_images(test.data, every, data::Scale::Unit).to(device), 1000, nullptr, &logits);
    std::map<int32_t, std::pair<int64_t, int64_t>> by_class;  // hits, count
    int64_t hits[3] = {0, 0, 0}, count[3] = {0, 0, 0};
    for (int64_t i = 0; i < test.data.n; ++i) {
      const bool ok = (logits[static_cast<size_t>(i)] > 0.0f) == (test.data.labels[static_cast<size_t>(i)] == 1);
      const uint8_t g = test.group[static_cast<size_t>(i)];
      hits[g] += ok;
      ++count[g];
      auto& c = by_class[test.source[static_cast<size_t>(i)]];
      c.first += ok;
      ++c.second;
    }
    auto share = [](int64_t h, int64_t c) { return c > 0 ? static_cast<double>(h) / static_cast<double>(c) : 0.0; };
    const double majority = share(hits[data::kMajority], count[data::kMajority]), minority = share(hits[data::kMinority], count[data::kMinority]);
    nlohmann::json j{{"run", o.runs[r]},
                     {"debias", run.meta.at("debias")},
                     {"seed", run.meta.at("seed")},
                     {"epochs", run.meta.count("epoch") ? run.meta.at("epoch") : "?"},
                     {"accuracy", share(hits[0] + hits[1] + hits[2], count[0] + count[1] + count[2])},
                     {"accuracy_majority", majority},
                     {"accuracy_minority", minority},
                     {"accuracy_negative", share(hits[data::kNegative], count[data::kNegative])},
                     {"gap", majority - minority},
                     // The subgroups weighted as the training split mixes them: what the rare
                     // subgroup's gain costs on the data the model was trained for.
                     {"accuracy_train_mix", mix[data::kMajority] * majority + mix[data::kMinority] * minority +
                                                mix[data::kNegative] * share(hits[data::kNegative], count[data::kNegative])},
                     {"test_images", {{"majority", count[data::kMajority]}, {"minority", count[data::kMinority]}, {"negative", count[data::kNegative]}}}};
    nlohmann::json classes = nlohmann::json::object();
    for (const auto& [c, hc] : by_class) classes[std::to_string(c)] = share(hc.first, hc.second);
    j["accuracy_per_class"] = classes;
    for (const char* f : {"accuracy", "accuracy_train_mix", "accuracy_majority", "accuracy_minority", "accuracy_negative", "gap"}) {
      figures[run.meta.at("debias")][f].push_back(j[f].get<double>());
    }
    per_run.push_back(j);
  }
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [mode, fs_] : figures) {
    nlohmann::json g{{"runs", fs_.begin()->second.size()}};
    for (const auto& [f, v] : fs_) {
      const auto [m, sd] = mean_sd(v);
      g[f] = {{"mean", m}, {"sd", sd}};
    }
    groups[mode] = g;
  }
  nlohmann::json summary{{"groups", groups}};
  if (groups.contains("on") && groups.contains("off")) {
    nlohmann::json d;
    for (const char* f : {"accuracy", "accuracy_train_mix", "accuracy_majority", "accuracy_minority", "accuracy_negative", "gap"}) {
      d[f] = groups["on"][f]["mean"].get<double>() - groups["off"][f]["mean"].get<double>();
    }
    summary["on_minus_off"] = d;
  }
  nlohmann::json resampled;
  for (size_t r = 0; r < runs.size(); ++r) {
    if (runs[r].meta.at("debias") == "on") {
      resampled = resampled_sheet(runs[r], o.runs[r], o.top, device, (fs::path(o.out) / "resampled.png").string());
      summary["resampled"] = {{"run", o.runs[r]}, {"minority_share_of_images", resampled["minority_share_of_images"]},
                              {"minority_share_of_weight", resampled["minority_share_of_weight"]},
                              {"minority_in_top", resampled["minority_in_top"]}, {"top", resampled["top"]}};
      break;
    }
  }
  const nlohmann::json report{{"summary", summary}, {"runs", per_run}, {"resampled", resampled}};
  write_file_atomic((fs::path(o.out) / "report.json").string(), report.dump(2) + "\n");

  // The markdown: one row per run, then mean +- sd per mode, in percent.
  auto pct = [](double v) { return fixed(100.0 * v, 2); };
  std::ostringstream md;
  md << "# DB-VAE debiasing report\n\nTest accuracy (%) on the task's test split (every test image of its classes); "
        "train mix: the subgroups' accuracies weighted as the training split mixes them; the gap is majority - minority.\n\n";
  md << "| run | debias | seed | overall | train mix | majority | minority | negative | gap |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& j : per_run) {
    md << "| " << j["run"].get<std::string>() << " | " << j["debias"].get<std::string>() << " | " << j["seed"].get<std::string>() << " | "
       << pct(j["accuracy"]) << " | " << pct(j["accuracy_train_mix"]) << " | " << pct(j["accuracy_majority"]) << " | " << pct(j["accuracy_minority"]) << " | "
       << pct(j["accuracy_negative"]) << " | " << pct(j["gap"]) << " |\n";
  }
  md << "\n| debias | runs | overall | train mix | majority | minority | negative | gap |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& [mode, g] : groups.items()) {
    md << "| " << mode << " | " << g["runs"].get<int64_t>();
    for (const char* f : {"accuracy", "accuracy_train_mix", "accuracy_majority", "accuracy_minority", "accuracy_negative", "gap"}) {
      md << " | " << pct(g[f]["mean"]) << " +- " << pct(g[f]["sd"]);
    }
    md << " |\n";
  }
  if (!resampled.is_null()) {
    md << "\nResampling (" << resampled["run"].get<std::string>() << "): the minority is "
       << pct(resampled["minority_share_of_images"]) << "% of the positive training images and holds "
       << pct(resampled["minority_share_of_weight"]) << "% of the sampling weight; " << resampled["minority_in_top"].get<int64_t>()
       << " of the " << resampled["top"].get<int64_t>() << " most resampled images are minority (resampled.png).\n";
  }
  write_file_atomic((fs::path(o.out) / "report.md").string(), md.str());
  std::cout << summary.dump() << "\n";
}

}  // namespace

void add_debias_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("debias-report", "accuracy per subgroup of `train dbvae` runs, mean and spread over seeds");
  cmd->add_option("runs", o->runs, "run directories written by `latentlab train dbvae` (--debias on and off, several seeds)")->required();
  cmd->add_option("--out", o->out, "folder for report.json, report.md and resampled.png")->required();
  cmd->add_option("--top", o->top, "images in the sheet of the most resampled training images")->capture_default_str();
  add_device_flags(cmd, o->device);
  cmd->callback([o] { run_report(*o); });
}

}  // namespace ll::app
