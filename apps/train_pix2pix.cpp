#include "apps/train_pix2pix.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "apps/fid_eval.h"
#include "apps/run_dir.h"
#include "apps/train_control.h"
#include "apps/train_loop.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/paired.h"
#include "data/plot.h"
#include "engine/checkpoint.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/pix2pix.h"

namespace ll::app {

namespace fs = std::filesystem;
using models::Pix2PixConfig;

namespace {

// The run's random streams (subsequences of Philox under --seed).
enum Stream : uint64_t { kInit = 0, kDropout = 1 };  // (evaluation masks: models::pix2pix_translate)

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

// [0, 1] -> [-1, 1], the generator's range.
Tensor to_symmetric(const Tensor& x) { return add_scalar(scale(x, 2.0f), -1.0f); }
// [-1, 1] -> [0, 1].
Tensor to_unit(const Tensor& x) { return scale(add_scalar(x, 1.0f), 0.5f); }

double mean_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> u = a.to(Device::CPU).to_vector(), v = b.to(Device::CPU).to_vector();
  double s = 0;
  for (size_t i = 0; i < u.size(); ++i) s += std::abs(static_cast<double>(u[i]) - static_cast<double>(v[i]));
  return u.empty() ? 0.0 : s / static_cast<double>(u.size());
}

// The task's settings as the generator's metadata records them; --resume requires the same.
Metadata task_metadata(const Pix2PixTrainOptions& o) {
  Metadata m{{"task", o.task}, {"lambda_l1", setting_text(o.lambda_l1)}, {"gan_weight", setting_text(o.gan_weight)}};
  if (o.task == "edges") m["edge_threshold"] = setting_text(o.edge_threshold);
  if (o.task == "inpaint") m["mask_size"] = std::to_string(o.mask_size);
  return m;
}

// The pix2pix part of the epoch loop (apps/train_loop.h): a step is models::pix2pix_train_step on a
// batch of targets and the inputs made from them, the sums are the step's losses, the end of an
// epoch translates the test inputs (test_l1, the FID, the sheet), and an epoch saves both networks,
// both optimizers and the sheet.
class Pix2PixSteps : public EpochSteps {
 public:
  Pix2PixSteps(const Pix2PixTrainOptions& o, const Pix2PixConfig& c, const data::PairOptions& pairs,
               models::UNetGenerator& g, models::PatchDiscriminator& d, optim::Adam& opt_g, optim::Adam& opt_d,
               Generator& dropout, data::DataLoader& loader, const Tensor& test_x, const Tensor& test_y,
               FidEvaluator* fid, Device device)
      : o_(o), c_(c), pairs_(pairs), g_(g), d_(d), opt_g_(opt_g), opt_d_(opt_d), dropout_(dropout), loader_(loader),
        test_x_(test_x), test_y_(test_y), fid_(fid), device_(device) {
    // The baselines, once: the input itself as the output.
    identity_l1_ = mean_abs_diff(test_x_, test_y_);
    if (fid_ != nullptr) {
      identity_fid_ = fid_->evaluate(test_x_).fid;
      fid_floor_ = fid_->floor(test_x_.size(0)).fid;
    }
  }

  int64_t start_epoch(int64_t epoch) override {
    loader_.start_epoch(epoch);
    sum_ = {};
    steps_ = seen_ = 0;
    return loader_.batches_per_epoch();
  }
  bool next_batch() override { return (batch_ = loader_.next()).has_value(); }
  void queue_step() override {
    const Tensor x = to_symmetric(data::make_pair_inputs(batch_->images, batch_->indices, pairs_)).to(device_);
    const Tensor y = to_symmetric(batch_->images).to(device_);
    done_.push_back({models::pix2pix_train_step(g_, d_, opt_g_, opt_d_, x, y, static_cast<float>(o_.lambda_l1),
                                                static_cast<float>(o_.gan_weight)),
                     batch_->images.size(0)});
  }
  StepDone finish_step() override {
    const auto [r, n] = done_.front();
    done_.pop_front();
    StepDone done;
    done.images = n;
    done.scalars = {{"loss_d", r.loss_d}, {"loss_gan", r.loss_gan}, {"l1", r.l1}};
    if (!std::isfinite(r.loss_d) || !std::isfinite(r.loss_gan) || !std::isfinite(r.l1)) {
      done.nonfinite = "a pix2pix loss became non-finite (D " + std::to_string(r.loss_d) + ", G " +
                       std::to_string(r.loss_gan) + ", L1 " + std::to_string(r.l1) + ")";
    }
    sum_.loss_d += r.loss_d;
    sum_.loss_gan += r.loss_gan;
    sum_.l1 += r.l1;
    sum_.d_real += r.d_real;
    sum_.d_fake += r.d_fake;
    ++steps_;
    seen_ += n;
    return done;
  }
  std::string running_losses() const override {
    const double k = static_cast<double>(std::max<int64_t>(steps_, 1));
    char text[96];
    std::snprintf(text, sizeof(text), "loss D %.3f G %.3f  L1 %.4f", sum_.loss_d / k, sum_.loss_gan / k, sum_.l1 / k);
    return text;
  }
  double lr() const override { return o_.lr; }
  void end_epoch(int64_t, const EpochTiming&) override {
    const Tensor out = to_unit(models::pix2pix_translate(g_, to_symmetric(test_x_), 250, o_.seed, device_));
    test_l1_ = mean_abs_diff(out, test_y_);
    if (fid_ != nullptr) fid_value_ = fid_->evaluate(out).fid;
    // The sheet: 16 test pairs (fewer with a smaller test set), rows input / output / target, twice.
    const int64_t k = std::min<int64_t>(16, out.size(0));
    std::vector<Tensor> rows;
    std::vector<std::string> labels;
    for (int64_t b = 0; b < k; b += 8) {
      const int64_t e = std::min(k, b + 8);
      rows.insert(rows.end(), {test_x_.slice(b, e), out.slice(b, e), test_y_.slice(b, e)});
      labels.insert(labels.end(), {"input", "output", "target"});
    }
    sheet_ = cat(rows, 0);
    sheet_labels_ = labels;
    sheet_cols_ = std::min<int64_t>(8, k);
  }
  void save(int64_t epoch, CheckpointSet& set, const EpochTiming& t) override {
    const std::string epoch_str = std::to_string(epoch + 1);
    const double k = static_cast<double>(std::max<int64_t>(steps_, 1));
    save_tensors(set.stage("optimizer_g.safetensors"), opt_g_.state_dict(), {{"epoch", epoch_str}});
    save_tensors(set.stage("optimizer_d.safetensors"), opt_d_.state_dict(), {{"epoch", epoch_str}});
    save_module(set.stage("discriminator.safetensors"), d_, {{"config", c_.to_json()}, {"epoch", epoch_str}});
    Metadata meta = task_metadata(o_);
    meta.insert({{"config", c_.to_json()}, {"data", o_.data}, {"epoch", epoch_str}, {"seed", std::to_string(o_.seed)},
                 {"noise_offset", std::to_string(dropout_.offset())}, {"lr", setting_text(o_.lr)},
                 {"beta1", setting_text(o_.beta1)}, {"batch_size", std::to_string(o_.batch_size)},
                 {"test_l1", setting_text(test_l1_)}});
    if (fid_ != nullptr) meta["fid"] = setting_text(fid_value_);
    save_module(set.stage("generator.safetensors"), g_, meta);
    const std::string title =
        std::string("pix2pix ") + o_.task + (o_.gan_weight == 0 ? " (L1 only)" : "") + ", epoch " + epoch_str;
    const data::Image sheet = data::labeled_sheet(sheet_, sheet_cols_, sheet_labels_, {}, title, 2);
    data::save_png(set.stage("sheet_epoch" + epoch_str + ".png"), sheet);
    data::save_png(set.stage("sheet.png"), sheet);
    nlohmann::json line{{"epoch", epoch + 1},           {"task", o_.task},
                        {"loss_d", sum_.loss_d / k},    {"loss_gan", sum_.loss_gan / k},
                        {"l1", sum_.l1 / k},            {"d_real", sum_.d_real / k},
                        {"d_fake", sum_.d_fake / k},    {"test_l1", test_l1_},
                        {"identity_l1", identity_l1_},  {"test_n", test_x_.size(0)},
                        {"epoch_s", t.seconds_so_far()}, {"img_per_s", static_cast<double>(seen_) / t.train_s},
                        {"lr", o_.lr},                  {"lambda_l1", o_.lambda_l1},
                        {"gan_weight", o_.gan_weight},  {"batch_size", o_.batch_size}};
    if (fid_ != nullptr) {
      line["fid"] = fid_value_;
      line["identity_fid"] = identity_fid_;
      line["fid_floor"] = fid_floor_;
    }
    set.stage_metrics_line(line.dump());
    epoch_s_ = t.seconds_so_far();
  }
  std::string summary(int64_t epoch, const EpochTiming& t) const override {
    const double k = static_cast<double>(std::max<int64_t>(steps_, 1));
    char text[256];
    std::snprintf(text, sizeof(text), "epoch %lld/%lld  loss D %.3f G %.3f  L1 %.4f  test L1 %.4f (input %.4f)",
                  static_cast<long long>(epoch + 1), static_cast<long long>(o_.epochs), sum_.loss_d / k,
                  sum_.loss_gan / k, sum_.l1 / k, test_l1_, identity_l1_);
    std::string s = text;
    if (fid_ != nullptr) {
      std::snprintf(text, sizeof(text), "  FID %.2f (input %.2f, real %.2f)", fid_value_, identity_fid_, fid_floor_);
      s += text;
    }
    std::snprintf(text, sizeof(text), "  %.0f img/s  %.1f s", static_cast<double>(seen_) / t.train_s, epoch_s_);
    return s + text;
  }

 private:
  const Pix2PixTrainOptions& o_;
  const Pix2PixConfig& c_;
  const data::PairOptions& pairs_;
  models::UNetGenerator& g_;
  models::PatchDiscriminator& d_;
  optim::Adam& opt_g_;
  optim::Adam& opt_d_;
  Generator& dropout_;
  data::DataLoader& loader_;
  const Tensor& test_x_;  // (n, C, S, S) in [0, 1], CPU
  const Tensor& test_y_;
  FidEvaluator* fid_;
  Device device_;
  std::optional<data::Batch> batch_;
  std::deque<std::pair<models::Pix2PixStepResult, int64_t>> done_;
  models::Pix2PixStepResult sum_;
  int64_t steps_ = 0, seen_ = 0;
  double test_l1_ = 0, identity_l1_ = 0, fid_value_ = 0, identity_fid_ = 0, fid_floor_ = 0, epoch_s_ = 0;
  Tensor sheet_;
  std::vector<std::string> sheet_labels_;
  int64_t sheet_cols_ = 8;
};

const char* const kOnlyFlags[] = {"--task", "--lambda-l1", "--gan-weight", "--edge-threshold", "--mask-size", nullptr};

}  // namespace

const char* const* pix2pix_only_flags() { return kOnlyFlags; }

void add_pix2pix_flags(CLI::App* cmd, Pix2PixTrainOptions& o) {
  cmd->add_option("--task", o.task, "pix2pix: edges (Sobel edge map -> image) or inpaint (masked square -> image)")
      ->capture_default_str()->check(CLI::IsMember({"edges", "inpaint"}));
  cmd->add_option("--lambda-l1", o.lambda_l1, "pix2pix: weight of the L1 term (the paper: 100)")->capture_default_str();
  cmd->add_option("--gan-weight", o.gan_weight, "pix2pix: weight of the adversarial term (0: L1 only, no discriminator)")
      ->capture_default_str();
  cmd->add_option("--edge-threshold", o.edge_threshold, "pix2pix edges: Sobel magnitude above which a pixel is an edge")
      ->capture_default_str();
  cmd->add_option("--mask-size", o.mask_size, "pix2pix inpaint: side of the masked square")->capture_default_str();
}

void run_train_pix2pix(const Pix2PixTrainOptions& options) {
  Pix2PixTrainOptions o = options;  // --resume replaces lr, beta1 and batch size by the run's
  check_training_flags(o.epochs, o.batch_size, 1, o.lr, o.limit);
  if (!(o.lambda_l1 >= 0) || !std::isfinite(o.lambda_l1)) throw std::invalid_argument("--lambda-l1 must be a finite number >= 0");
  if (!(o.gan_weight >= 0) || !std::isfinite(o.gan_weight)) throw std::invalid_argument("--gan-weight must be a finite number >= 0");
  if (o.lambda_l1 == 0 && o.gan_weight == 0) throw std::invalid_argument("--lambda-l1 and --gan-weight are both 0: nothing to train");
  if (!std::isfinite(o.edge_threshold) || o.edge_threshold < 0) throw std::invalid_argument("--edge-threshold must be >= 0");
  if (o.test_limit < 0) throw std::invalid_argument("--test-limit must be >= 0 (0: all test images)");
  data::PairOptions pairs;
  pairs.task = data::parse_pair_task(o.task);
  pairs.edge_threshold = o.edge_threshold;
  pairs.mask_size = o.mask_size;
  pairs.seed = o.seed;
  const Device device = apply_device_flags(o.device);
  TrainingDir run_dir(o.out);  // locked now if it exists, else created by open() once the data has loaded
  data::Dataset train = data::load_dataset(o.data, data::Split::Train);
  data::Dataset test = data::load_dataset(o.data, data::Split::Test, train.height);
  train.keep_first(o.limit);
  test.keep_first(o.test_limit);
  if (train.height != train.width) throw std::invalid_argument(o.data + ": pix2pix takes square images");
  if (pairs.task == data::PairTask::Inpaint && (o.mask_size < 1 || o.mask_size >= train.height)) {
    throw std::invalid_argument("--mask-size must be in [1, " + std::to_string(train.height - 1) + "] for " +
                                std::to_string(train.height) + "x" + std::to_string(train.height) + " images, got " +
                                std::to_string(o.mask_size));
  }
  Pix2PixConfig c;
  c.channels = train.channels;
  c.size = train.height;
  c.ngf = o.ngf;
  c.ndf = o.ndf;
  c.validate();
  auto check_batch = [&] {
    if (o.batch_size <= train.n) return;
    throw std::invalid_argument("--batch-size " + std::to_string(o.batch_size) + " is more than the " +
                                std::to_string(train.n) + " training images: pix2pix drops the last partial batch" +
                                " (use --batch-size " + std::to_string(train.n) + " or less)");
  };
  if (!o.resume) check_batch();
  run_dir.open();

  Generator init(o.seed, kInit);
  auto dropout = std::make_shared<Generator>(o.seed, kDropout);
  models::UNetGenerator g(c, init, dropout);
  models::PatchDiscriminator d(c, init);
  const std::string gpath = path_in(o.out, "generator.safetensors");
  int64_t start_epoch = 0;
  if (o.resume) {
    Metadata meta = load_module(gpath, g);
    if (meta["config"] != c.to_json()) throw std::invalid_argument("--resume: " + o.out + " holds another model (" + meta["config"] + ")");
    if (meta["task"] != o.task) {
      throw std::invalid_argument("--resume: " + o.out + " trained --task " + meta["task"] + ", not " + o.task);
    }
    for (const auto& [key, value] : task_metadata(o)) {
      if (meta[key] != value) {
        throw std::invalid_argument("--resume: the run has " + key + " " + (meta[key].empty() ? "unset" : meta[key]) + ", not " +
                                    value + " (leave the flag out or give the run's value)");
      }
    }
    const ResumePoint at = resume_point(meta, gpath, o.seed);
    resume_setting(meta, gpath, "lr", "--lr", o.lr_given, o.lr);
    resume_setting(meta, gpath, "beta1", "--beta1", o.beta1_given, o.beta1);
    resume_setting(meta, gpath, "batch_size", "--batch-size", o.batch_size_given, o.batch_size);
    check_batch();
    load_module(path_in(o.out, "discriminator.safetensors"), d);
    start_epoch = at.epoch;
    dropout->set_offset(at.noise_offset);
  } else if (fs::exists(gpath)) {
    throw std::invalid_argument(o.out + " already holds a trained pix2pix: pass --resume to continue it, or choose another --out");
  }
  g.to(device);
  d.to(device);
  optim::Adam opt_g(g.parameters(), {.lr = o.lr, .beta1 = o.beta1, .beta2 = 0.999});
  optim::Adam opt_d(d.parameters(), {.lr = o.lr, .beta1 = o.beta1, .beta2 = 0.999});
  if (o.resume) load_gan_optimizers(o.out, start_epoch, opt_g, opt_d);
  if (start_epoch >= o.epochs) {
    std::cerr << "latentlab: " << o.out << " has already trained " << start_epoch << " epochs\n";
    return;
  }

  // The test pairs, in [0, 1] on the CPU, fixed for the whole run.
  std::vector<int64_t> all(static_cast<size_t>(test.n));
  for (int64_t i = 0; i < test.n; ++i) all[static_cast<size_t>(i)] = i;
  const Tensor test_y = data::gather_images(test, all, data::Scale::Unit);
  const Tensor test_x = data::make_pair_inputs(test_y, all, pairs);

  std::unique_ptr<FidEvaluator> fid;
  const std::string cdir = o.classifier.empty() ? default_classifier_dir(o.data) : o.classifier;
  if (!o.classifier.empty() || fs::exists(fs::path(cdir) / "classifier.safetensors")) {
    fid = std::make_unique<FidEvaluator>(cdir, device);
    const auto& cc = fid->classifier_config();
    if (cc.channels != c.channels || cc.size != c.size) {
      throw std::invalid_argument("--classifier " + cdir + " takes " + std::to_string(cc.channels) + "x" + std::to_string(cc.size) +
                                  "x" + std::to_string(cc.size) + " images, not " + std::to_string(c.channels) + "x" +
                                  std::to_string(c.size) + "x" + std::to_string(c.size));
    }
    std::cerr << "latentlab: FID of the " << test.n << " test outputs after every epoch, on the classifier in " << cdir << "\n";
  } else {
    std::cerr << "latentlab: no FID: no classifier in " << cdir << " (`latentlab train classifier --data " << o.data
              << " --out " << cdir << "` makes one)\n";
  }
  data::DataLoader loader(train, {.batch_size = o.batch_size, .shuffle = true, .drop_last = true,
                                  .scale = data::Scale::Unit, .seed = o.seed});
  std::cerr << "latentlab: training pix2pix " << o.task << " (U-Net G " << g.num_parameters() << ", PatchGAN D "
            << d.num_parameters() << " parameters, " << c.size << "x" << c.size << " padded to " << c.padded_size()
            << ") on " << train.name << " (" << train.n << " train, " << test.n << " test images), " << device_name(device)
            << ", batch " << o.batch_size << ", lr " << o.lr << ", lambda " << o.lambda_l1 << ", GAN weight "
            << o.gan_weight << ", seed " << o.seed << "\n";
  Pix2PixSteps steps{o, c, pairs, g, d, opt_g, opt_d, *dropout, loader, test_x, test_y, fid.get(), device};
  LoopOptions loop(o.out, start_epoch, o.epochs, o.log_every);
  run_epochs(steps, loop);
  std::cerr << "latentlab: wrote generator.safetensors, discriminator.safetensors, metrics.jsonl and sheet.png in "
            << o.out << "\n";
}

}  // namespace ll::app
