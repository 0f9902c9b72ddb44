// cmd_steer.cpp: `latentlab steer DIR --edit shift-x|shift-y|zoom|brightness --out OUT` — learns a
// walk in a GAN's noise space that performs an image edit (Jahanian, Chai & Isola 2020, "On the
// 'Steerability' of Generative Adversarial Networks"; models/steer.h has the objective and the edits).
//
// The linear walk: one direction w with G(z + a w) ~ edit(G(z), a), learned with Adam from w = 0 on
// fresh codes z and a ~ U(lo, hi) each step, the generator frozen. --walk nonlinear: the paper's
// non-linear walk, a small MLP's step f(z) = z + MLP(z) taken n times for a = n eps
// (models::NonlinearWalk), compared with a random line of the same speed. Then it is measured on a fixed set
// of codes at a's from 2 lo to 2 hi (twice the training range, to see where the walk stops
// following the edit): the masked per-pixel MSE to the edited image for the learned walk, for a
// random direction of the same norm, and for no walk at all (G(z) itself, the error of leaving the
// image as it is); and what the walk achieves (the centroid's displacement for a shift, the
// radius ratio for a zoom, the mean intensity for brightness) against what the edit does.
//
// OUT/walk.png      rows: a few codes, each as the walk G(z + a w) above the edit's target
//                   edit(G(z), a); columns: a over the training range (and a little beyond)
// OUT/w.safetensors the direction, "w" (1, nz), with the settings in its metadata
//                   (--walk nonlinear: OUT/walk.safetensors, the two MLPs pos.* and neg.*)
// OUT/report.json   the training losses, the measurements per a, the reach of the walk
// OUT/report.md     the same as tables
// One JSON line (the summary) goes to stdout.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/cli_text.h"
#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/run_dir.h"
#include "data/image.h"
#include "data/plot.h"
#include "engine/checkpoint.h"
#include "engine/ops/ops.h"
#include "models/steer.h"

namespace ll::app {

namespace {

namespace fs = std::filesystem;

struct SteerOptions {
  std::string dir;
  std::string edit;
  std::string out;
  std::string range;  // default: models::default_steer_range
  int64_t steps = 400;
  int64_t batch = 32;
  double lr = 1e-2;
  uint64_t seed = 0;
  int64_t eval_n = 256;
  int64_t rows = 6;
  int64_t cols = 7;
  double sheet_extent = 1.5;
  std::string walk = "linear";
  int64_t hidden = 64;
  int64_t upscale = 0;
  DeviceFlags device;
};

// The random streams of a steer run (Generator(seed, stream)); training uses 0 (codes) and 1 (a).
enum SteerStream : uint64_t { kRandomDirection = 2, kEvalCodes = 3, kWalkInit = 4 };

std::pair<double, double> parse_range(const std::string& text) {
  const auto r = parse_number_pair(text);
  if (!r || !(r->first < 0 && 0 < r->second)) {
    throw std::invalid_argument("--range must be LO:HI with LO < 0 < HI (a = 0 is the unedited image), e.g. -5:5, got '" + text + "'");
  }
  return *r;
}

// How a column's a reads: pixels for shifts, the factor exp(a) for zoom, the offset for brightness.
std::string a_label(models::SteerEdit e, double a) {
  switch (e) {
    case models::SteerEdit::ShiftX:
    case models::SteerEdit::ShiftY: return format_number("%+.1fpx", a);
    case models::SteerEdit::Zoom: return "x" + format_number("%.2f", std::exp(a));
    case models::SteerEdit::Brightness: return format_number("%+.2f", a);
  }
  return format_number("%g", a);
}

const char* achieved_name(models::SteerEdit e) {
  switch (e) {
    case models::SteerEdit::ShiftX: return "centroid x displacement (px)";
    case models::SteerEdit::ShiftY: return "centroid y displacement (px)";
    case models::SteerEdit::Zoom: return "radius-of-gyration ratio";
    case models::SteerEdit::Brightness: return "mean intensity";
  }
  return "";
}

// The a's of the measurement: 0 and k/4 of each end of the training range, k = 1..8 (to twice it).
std::vector<double> measurement_grid(double lo, double hi) {
  std::vector<double> as;
  for (int k = 8; k >= 1; --k) as.push_back(lo * k / 4.0);
  as.push_back(0.0);
  for (int k = 1; k <= 8; ++k) as.push_back(hi * k / 4.0);
  return as;
}

// How far the walk goes, on one side of 0: the largest |a| of the grid at which the walk's error is
// below no walk's, i.e. following the walk is still closer to the edit than leaving the image alone
// (0 when it is nowhere). The points in between are in the table: a non-linear walk's first step
// can be worse than no walk while later ones are better.
double reach(const std::vector<models::WalkPoint>& pts, bool positive) {
  double best = 0;
  const int64_t mid = static_cast<int64_t>(pts.size()) / 2;
  for (int64_t i = mid + (positive ? 1 : -1); i >= 0 && i < static_cast<int64_t>(pts.size()); i += positive ? 1 : -1) {
    const auto& p = pts[static_cast<size_t>(i)];
    if (p.mse_learned < p.mse_identity) best = p.a;
  }
  return best;
}

void run_steer(const SteerOptions& o) {
  const models::SteerEdit edit = models::parse_steer_edit(o.edit);
  if (o.walk != "linear" && o.walk != "nonlinear") throw std::invalid_argument("--walk must be linear or nonlinear, got '" + o.walk + "'");
  if (o.hidden < 1 || o.hidden > 4096) throw std::invalid_argument("--hidden must be in 1..4096");
  if (o.steps < 1 || o.steps > 1000000) throw std::invalid_argument("--steps must be in 1..1000000");
  if (o.batch < 1 || o.batch > 4096) throw std::invalid_argument("--batch must be in 1..4096");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw std::invalid_argument("--lr must be a positive number");
  if (o.eval_n < 1 || o.eval_n > 100000) throw std::invalid_argument("--eval-n must be in 1..100000");
  if (o.rows < 1 || o.rows > 32) throw std::invalid_argument("--rows must be in 1..32");
  if (o.cols < 2 || o.cols > 32) throw std::invalid_argument("--cols must be in 2..32");
  if (!(o.sheet_extent >= 1 && o.sheet_extent <= 4)) throw std::invalid_argument("--sheet-extent must be in 1..4");
  if (o.upscale < 0 || o.upscale > 16) throw std::invalid_argument("--upscale must be in 0..16 (0 = automatic)");
  const Device device = apply_device_flags(o.device);
  GenerativeRun run = GenerativeRun::open(o.dir);
  models::GanGenerator& g = run.generator("steer");
  const int64_t size = run.image_height();
  const auto [lo, hi] = o.range.empty() ? models::default_steer_range(edit, size) : parse_range(o.range);
  run.to(device);
  const int64_t nz = g.config().nz;

  models::SteerTrainOptions t;
  t.edit = edit;
  t.lo = lo;
  t.hi = hi;
  t.steps = o.steps;
  t.batch = o.batch;
  t.lr = o.lr;
  t.seed = o.seed;
  t.log_every = std::max<int64_t>(1, o.steps / 20);
  Generator egen(o.seed, kEvalCodes);
  const Tensor z_eval = randn({o.eval_n, nz}, egen, device);

  // The walk: a line z + a w, or the paper's non-linear walk (steps of a small MLP, eps = a fourth
  // of each end of the range, so that the measurement grid's a are whole numbers of steps).
  const bool nonlinear = o.walk == "nonlinear";
  models::SteerTrainResult trained;
  std::unique_ptr<models::NonlinearWalk> f;
  models::WalkFn walked;
  double speed = 0;  // |dz/da|: |w| for the line, the mean |f(z) - z| / eps over the codes for the MLP
  if (nonlinear) {
    Generator finit(o.seed, kWalkInit);
    f = std::make_unique<models::NonlinearWalk>(nz, o.hidden, hi / 4, lo / 4, finit);
    trained = models::train_nonlinear_walk(g, *f, t);
    walked = [&f](const Tensor& z, double a) { return f->walk(z, f->steps_for(a)); };
    NoGradGuard no_grad;
    const std::vector<float> step = sub(f->walk(z_eval, 1), z_eval).to_vector();
    for (int64_t i = 0; i < o.eval_n; ++i) {
      double n2 = 0;
      for (int64_t d = 0; d < nz; ++d) n2 += static_cast<double>(step[static_cast<size_t>(i * nz + d)]) * step[static_cast<size_t>(i * nz + d)];
      speed += std::sqrt(n2);
    }
    speed /= static_cast<double>(o.eval_n) * f->eps_pos;
  } else {
    trained = models::train_linear_walk(g, t);
    const Tensor w = trained.w;
    walked = [w](const Tensor& z, double a) {
      return models::walk_codes(z, std::vector<float>(static_cast<size_t>(z.size(0)), static_cast<float>(a)), w);
    };
    double norm2 = 0;
    for (float v : w.to_vector()) norm2 += static_cast<double>(v) * v;
    speed = std::sqrt(norm2);
  }

  // A random direction of the same speed: the baseline that says how much of the walk's effect is
  // just moving in noise space at all.
  Generator rgen(o.seed, kRandomDirection);
  std::vector<float> rv = randn({1, nz}, rgen).to_vector();
  double r2 = 0;
  for (float v : rv) r2 += static_cast<double>(v) * v;
  for (float& v : rv) v = static_cast<float>(v * speed / std::sqrt(std::max(r2, 1e-30)));
  const Tensor random_dir = Tensor::from_vector(rv, {1, nz}, device);
  const models::WalkFn random_walk = [random_dir](const Tensor& z, double a) {
    return models::walk_codes(z, std::vector<float>(static_cast<size_t>(z.size(0)), static_cast<float>(a)), random_dir);
  };

  const std::vector<double> grid = measurement_grid(lo, hi);
  const std::vector<models::WalkPoint> pts = models::measure_walk(g, edit, z_eval, walked, random_walk, grid);
  const double reach_neg = reach(pts, false), reach_pos = reach(pts, true);

  fs::create_directories(o.out);
  // The sheet: for each of the first `rows` evaluation codes, the walk above the edit's target.
  {
    NoGradGuard no_grad;
    const int64_t rows = std::min(o.rows, o.eval_n);
    const Tensor zs = z_eval.slice(0, rows);
    const std::vector<int32_t> labels = g.config().conditional() ? g.config().labels(rows, -1) : std::vector<int32_t>{};
    std::vector<double> cols;
    for (int64_t c = 0; c < o.cols; ++c) {
      const double a = o.sheet_extent * (lo + (hi - lo) * static_cast<double>(c) / static_cast<double>(o.cols - 1));
      cols.push_back(std::fabs(a) < 1e-9 * (hi - lo) ? 0.0 : a);  // "+0.0px", not the rounding's "-0.0px"
    }
    std::vector<std::vector<float>> walk(static_cast<size_t>(o.cols)), target(static_cast<size_t>(o.cols));
    const Tensor base = models::generator_unit(g, zs, labels).to(Device::CPU);
    const int64_t C = base.size(1), H = base.size(2), W = base.size(3), S = C * H * W;
    const std::vector<float> base_v = base.to_vector();
    for (size_t c = 0; c < cols.size(); ++c) {
      const std::vector<float> av(static_cast<size_t>(rows), static_cast<float>(cols[c]));
      walk[c] = models::generator_unit(g, walked(zs, cols[c]), labels).to_vector();
      std::vector<float> mask;
      models::apply_edit_batch(edit, base_v, rows, C, H, W, av, target[c], mask);
    }
    std::vector<float> cells;
    std::vector<std::string> row_labels, col_labels;
    for (int64_t r = 0; r < rows; ++r) {
      for (const auto* src : {&walk, &target}) {
        for (size_t c = 0; c < cols.size(); ++c) {
          const auto& v = (*src)[c];
          cells.insert(cells.end(), v.begin() + r * S, v.begin() + (r + 1) * S);
        }
      }
      row_labels.push_back("z" + std::to_string(r) + " walk");
      row_labels.push_back("z" + std::to_string(r) + " edit");
    }
    for (double a : cols) col_labels.push_back(a_label(edit, a));
    const Tensor images = Tensor::from_vector(cells, {rows * 2 * o.cols, C, H, W});
    const int64_t up = o.upscale > 0 ? o.upscale : auto_upscale(H);
    const std::string title = std::string("steer: ") + models::steer_edit_name(edit) + " on " + run.describe();
    std::vector<std::string> lines{
        (nonlinear ? "walk: G(f^n(z)), f(z) = z + MLP(z) learned, a = n eps (eps " + format_number("%.3g", hi / 4) + ", " +
                         format_number("%.3g", lo / 4) + "; "
                   : "walk: G(z + a w), w learned (|w| = " + format_number("%.3g", speed) + ", ") +
            std::to_string(o.steps) + " Adam steps); edit: the image edit of G(z) the walk imitates",
        "trained on a in [" + a_label(edit, lo) + ", " + a_label(edit, hi) + "]; columns span " +
            format_number("%g", o.sheet_extent) + " x that range"};
    data::save_png((fs::path(o.out) / "walk.png").string(),
                   data::with_header(data::labeled_sheet(images, o.cols, row_labels, col_labels, "", up), title, lines));
  }

  Metadata meta{{"edit", models::steer_edit_name(edit)},
                {"run", o.dir},
                {"model", run.describe()},
                {"range", setting_text(lo) + ":" + setting_text(hi)},
                {"steps", std::to_string(o.steps)},
                {"batch", std::to_string(o.batch)},
                {"lr", setting_text(o.lr)},
                {"seed", std::to_string(o.seed)}};
  meta["walk"] = o.walk;
  if (nonlinear) {
    // The two MLPs (pos.*, neg.*) and their steps; w.safetensors is the linear walk's file.
    meta["eps_pos"] = setting_text(f->eps_pos);
    meta["eps_neg"] = setting_text(f->eps_neg);
    meta["hidden"] = std::to_string(o.hidden);
    f->to(Device::CPU);
    save_tensors((fs::path(o.out) / "walk.safetensors").string(), f->state_dict(), meta);
  } else {
    save_tensors((fs::path(o.out) / "w.safetensors").string(), {{"w", trained.w.to(Device::CPU)}}, meta);
  }

  nlohmann::json measured = nlohmann::json::array();
  for (const auto& p : pts) {
    measured.push_back({{"a", round_to(p.a, 4)},
                        {"mse_learned", round_to(p.mse_learned, 6)},
                        {"mse_random", round_to(p.mse_random, 6)},
                        {"mse_identity", round_to(p.mse_identity, 6)},
                        {"l2_learned", round_to(p.l2_learned, 4)},
                        {"l2_random", round_to(p.l2_random, 4)},
                        {"l2_identity", round_to(p.l2_identity, 4)},
                        {"achieved", round_to(p.achieved, 4)},
                        {"random_achieved", round_to(p.random_achieved, 4)},
                        {"target", round_to(p.target, 4)}});
  }
  // The training range's ends, the usual summary: where the grid has k = 4 (index 4 and 12).
  const models::WalkPoint& at_lo = pts[4];
  const models::WalkPoint& at_hi = pts[12];
  nlohmann::json summary{{"edit", models::steer_edit_name(edit)},
                         {"model", run.describe()},
                         {"range", {lo, hi}},
                         {"steps", o.steps},
                         {"walk", o.walk},
                         {"speed", round_to(speed, 4)},
                         {"loss_first", round_to(trained.loss.front(), 6)},
                         {"loss_last", round_to(trained.loss.back(), 6)},
                         {"mse_at_lo", {{"learned", round_to(at_lo.mse_learned, 6)}, {"random", round_to(at_lo.mse_random, 6)}, {"identity", round_to(at_lo.mse_identity, 6)}}},
                         {"mse_at_hi", {{"learned", round_to(at_hi.mse_learned, 6)}, {"random", round_to(at_hi.mse_random, 6)}, {"identity", round_to(at_hi.mse_identity, 6)}}},
                         {"achieved_at_lo", round_to(at_lo.achieved, 4)},
                         {"target_at_lo", round_to(at_lo.target, 4)},
                         {"achieved_at_hi", round_to(at_hi.achieved, 4)},
                         {"target_at_hi", round_to(at_hi.target, 4)},
                         {"reach", {reach_neg, reach_pos}},
                         {"out", o.out}};
  nlohmann::json report = summary;
  report["run"] = o.dir;
  report["batch"] = o.batch;
  report["lr"] = o.lr;
  report["seed"] = o.seed;
  report["eval_n"] = o.eval_n;
  report["achieved_is"] = achieved_name(edit);
  report["loss"] = trained.loss;
  report["loss_step"] = trained.loss_step;
  report["measured"] = measured;
  write_file_atomic((fs::path(o.out) / "report.json").string(), report.dump(2) + "\n");

  std::ostringstream md;
  md << "# steer: " << models::steer_edit_name(edit) << " on " << run.describe() << " (" << o.dir << ")\n\n"
     << (nonlinear ? "Non-linear walk (f(z) = z + MLP(z), " + std::to_string(o.hidden) + " hidden units, taken n times; speed |f(z) - z| / eps = "
                   : std::string("Linear walk w (|w| = "))
     << format_number("%.4g", speed) << "), " << o.steps << " Adam steps (lr " << o.lr
     << ", batch " << o.batch << ", seed " << o.seed << ") on a in [" << format_number("%g", lo) << ", "
     << format_number("%g", hi) << "]; training loss " << format_number("%.5f", trained.loss.front()) << " (first "
     << t.log_every << " steps) -> " << format_number("%.5f", trained.loss.back()) << " (last).\n\n"
     << "Measured on " << o.eval_n << " codes; MSE per valid pixel (images in [0, 1]) against edit(G(z), a). "
     << "random: a direction of the same norm; identity: no walk (G(z) itself). achieved: "
     << achieved_name(edit) << ".\n\n"
     << "| a | edit | MSE learned | MSE random | MSE identity | achieved | target | random achieved |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& p : pts) {
    md << "| " << format_number("%.3g", p.a) << " | " << a_label(edit, p.a) << " | " << format_number("%.5f", p.mse_learned)
       << " | " << format_number("%.5f", p.mse_random) << " | " << format_number("%.5f", p.mse_identity) << " | "
       << format_number("%.3f", p.achieved) << " | " << format_number("%.3f", p.target) << " | "
       << format_number("%.3f", p.random_achieved) << " |\n";
  }
  md << "\nReach (the farthest a on each side where the learned walk's error is below no walk's): a from "
     << format_number("%.3g", reach_neg) << " to " << format_number("%.3g", reach_pos) << " (trained on "
     << format_number("%.3g", lo) << " to " << format_number("%.3g", hi) << ").\n";
  write_file_atomic((fs::path(o.out) / "report.md").string(), md.str());
  std::cout << summary.dump() << "\n";
}

}  // namespace

void add_steer_command(CLI::App& app) {
  auto o = std::make_shared<SteerOptions>();
  CLI::App* cmd = app.add_subcommand(
      "steer", "learn a walk in a GAN's noise that shifts, zooms or brightens its images (Jahanian et al. 2020)");
  cmd->add_option("dir", o->dir, "GAN run directory written by latentlab train dcgan|cgan|gan128")->required();
  cmd->add_option("--edit", o->edit, "the image edit to learn: shift-x, shift-y, zoom or brightness")->required();
  cmd->add_option("--out", o->out, "output directory: walk.png, w.safetensors, report.json, report.md")->required();
  cmd->add_option("--range", o->range,
                  "LO:HI, the a of training (pixels for shifts, ln(factor) for zoom, an offset for brightness; "
                  "default: +-size/5 px, +-ln(1/0.6), +-0.4)");
  cmd->add_option("--walk", o->walk, "linear (z + a w) or nonlinear (a small MLP's step f(z) = z + MLP(z), taken n times)")
      ->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "nonlinear walk: hidden units of the MLP")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Adam steps")->capture_default_str();
  cmd->add_option("--batch", o->batch, "codes per step")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the codes, the a's and the random direction")->capture_default_str();
  cmd->add_option("--eval-n", o->eval_n, "codes the walk is measured on")->capture_default_str();
  cmd->add_option("--rows", o->rows, "codes shown in walk.png")->capture_default_str();
  cmd->add_option("--cols", o->cols, "values of a shown in walk.png")->capture_default_str();
  cmd->add_option("--sheet-extent", o->sheet_extent, "walk.png's columns span this times the training range")->capture_default_str();
  cmd->add_option("--upscale", o->upscale, "pixel repeat of each image (0: automatic)")->capture_default_str();
  add_device_flags(cmd, o->device);
  cmd->callback([o] { run_steer(*o); });
}

}  // namespace ll::app
