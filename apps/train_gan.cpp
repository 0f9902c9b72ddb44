#include "apps/train_gan.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <filesystem>
#include <iostream>
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
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/dist/communicator.h"
#include "engine/dist/data_parallel.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/gan.h"
#include "models/gan_trace.h"

namespace ll::app {

namespace fs = std::filesystem;
using models::GanConfig;

namespace {

// The streams of models/gan_trace.h (the trace tool makes its inputs as this file does), and the
// noise of the per-epoch FID samples: the same codes every epoch, so the FIDs of epochs compare.
enum Stream : uint64_t {
  kInit = models::kGanInitStream,
  kNoise = models::kGanNoiseStream,
  kFixedNoise = models::kGanFixedNoiseStream,
  kFidNoise = 3
};

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

}  // namespace

// The GANs' part of the epoch loop (apps/train_loop.h): a step is models::gan_train_step_async (D,
// then G) on a batch and fresh noise, the sums are both losses, D(x), D(G(z)) and D's accuracy, the
// end of an epoch draws the fixed-noise picture and the FID, and an epoch saves both networks, both
// optimizers and the picture.
class GanSteps : public EpochSteps {
 public:
  GanSteps(const GanTrainOptions& o, const GanConfig& c, models::GanGenerator& g, models::GanDiscriminator& d,
           optim::Adam& opt_g, optim::Adam& opt_d, Generator& noise, data::DataLoader& loader, FidEvaluator* fid,
           const Tensor& fixed_z, const std::vector<int32_t>& fixed_labels, int64_t grid_cols, Device device,
           dist::Communicator& comm)
      : o_(o), c_(c), g_(g), d_(d), opt_g_(opt_g), opt_d_(opt_d), noise_(noise), loader_(loader), fid_(fid),
        fixed_z_(fixed_z), fixed_labels_(fixed_labels), grid_cols_(grid_cols), device_(device), comm_(comm),
        sharded_(comm.size() > 1 || o.micro_batches > 1), d_grads_(d.parameters(), 5), g_grads_(g.parameters(), 2) {}

  int64_t start_epoch(int64_t epoch) override {
    loader_.start_epoch(epoch);
    sum_ = {};
    steps_ = seen_ = 0;
    return loader_.batches_per_epoch();
  }
  bool next_batch() override { return (batch_ = loader_.next()).has_value(); }
  void queue_step() override {
    const int64_t n = batch_->images.size(0);
    const Tensor z = randn({n, c_.nz}, noise_, device_);
    const std::vector<int32_t> labels = c_.conditional() ? batch_->labels : std::vector<int32_t>{};
    if (sharded_) {
      const models::GanStepResult r = sharded_step(batch_->images.to(device_), labels, z);
      queued_.push_back({[r] { return r; }, n});
      return;
    }
    queued_.push_back({[p = models::gan_train_step_async(g_, d_, opt_g_, opt_d_, batch_->images.to(device_), labels, z)]() mutable {
                         return p.get();
                       },
                       n});
  }
  StepDone finish_step() override {
    const models::GanStepResult r = queued_.front().first();
    StepDone done;
    done.images = queued_.front().second;
    queued_.pop_front();
    done.scalars = {{"loss_d", r.loss_d}, {"loss_g", r.loss_g}, {"d_real", r.d_real}, {"d_fake", r.d_fake},
                    {"d_accuracy", r.d_accuracy}};
    if (!std::isfinite(r.loss_d) || !std::isfinite(r.loss_g)) {
      done.nonfinite = "the GAN losses became non-finite (D " + std::to_string(r.loss_d) + ", G " + std::to_string(r.loss_g) + ")";
      return done;
    }
    sum_.loss_d += r.loss_d;
    sum_.loss_g += r.loss_g;
    sum_.d_real += r.d_real;
    sum_.d_fake += r.d_fake;
    sum_.d_accuracy += r.d_accuracy;
    ++steps_;
    seen_ += done.images;
    return done;
  }
  // Running means over the epoch so far (single steps of a GAN swing too much to read).
  std::string running_losses() const override {
    const double k = static_cast<double>(std::max<int64_t>(steps_, 1));
    char text[96];
    std::snprintf(text, sizeof(text), "loss D %.3f G %.3f  D(x) %.2f D(G(z)) %.2f", sum_.loss_d / k, sum_.loss_g / k,
                  sum_.d_real / k, sum_.d_fake / k);
    return text;
  }
  double lr() const override { return o_.lr; }
  void end_epoch(int64_t, const EpochTiming&) override {
    if (comm_.rank() != 0) return;  // the pictures and the FID are rank 0's (it alone writes)
    {
      NoGradGuard no_grad;
      g_.eval();
      sample_images_ = g_.forward(fixed_z_, fixed_labels_).to(Device::CPU);
      g_.train();
    }
    fid_text_.clear();
    fid_json_ = nlohmann::json();
    if (!fid_) return;
    g_.eval();
    Generator fid_noise(o_.seed, kFidNoise);
    const std::vector<int32_t> fid_labels = c_.labels(o_.fid_n, -1);
    std::vector<Tensor> parts;
    for (int64_t b = 0; b < o_.fid_n; b += 500) {
      const int64_t k = std::min<int64_t>(500, o_.fid_n - b);
      const std::vector<int32_t> part(fid_labels.begin() + (fid_labels.empty() ? 0 : b),
                                      fid_labels.begin() + (fid_labels.empty() ? 0 : b + k));
      parts.push_back(g_.images(randn({k, c_.nz}, fid_noise, device_), part));
    }
    g_.train();
    const FidReport r = fid_->evaluate(cat(parts, 0), fid_labels);
    fid_json_ = r.to_json({});
    char buf[96];
    std::snprintf(buf, sizeof(buf), "  FID %.2f", r.fid);
    fid_text_ = buf;
    if (!r.per_class_accuracy.empty()) {
      std::snprintf(buf, sizeof(buf), " (class accuracy %.3f)", fid_json_["mean_class_accuracy"].get<double>());
      fid_text_ += buf;
    }
  }
  void save(int64_t epoch, CheckpointSet& set, const EpochTiming& t) override {
    const std::string epoch_str = std::to_string(epoch + 1);
    const double k = static_cast<double>(std::max<int64_t>(steps_, 1));
    save_tensors(set.stage("optimizer_g.safetensors"), opt_g_.state_dict(), {{"epoch", epoch_str}});
    save_tensors(set.stage("optimizer_d.safetensors"), opt_d_.state_dict(), {{"epoch", epoch_str}});
    Metadata d_meta{{"config", c_.to_json()}, {"epoch", epoch_str}};
    if (d_.dropout_generator() != nullptr) d_meta["dropout_offset"] = std::to_string(d_.dropout_generator()->offset());
    save_module(set.stage("discriminator.safetensors"), d_, d_meta);
    save_module(set.stage("generator.safetensors"), g_,
                {{"config", c_.to_json()}, {"data", o_.data}, {"epoch", epoch_str}, {"seed", std::to_string(o_.seed)},
                 {"noise_offset", std::to_string(noise_.offset())}, {"lr", setting_text(o_.lr)},
                 {"beta1", setting_text(o_.beta1)}, {"batch_size", std::to_string(o_.batch_size)}, {"format", "pt"}});
    data::save_png(set.stage("samples_epoch" + epoch_str + ".png"),
                   data::make_grid(sample_images_, grid_cols_, 2, 0, -1.0f, 1.0f, grid_cols_ == 8 ? 2 : 1));
    nlohmann::json line{{"epoch", epoch + 1},           {"loss_d", sum_.loss_d / k},     {"loss_g", sum_.loss_g / k},
                        {"d_real", sum_.d_real / k},    {"d_fake", sum_.d_fake / k},     {"d_accuracy", sum_.d_accuracy / k},
                        {"epoch_s", t.seconds_so_far()}, {"img_per_s", static_cast<double>(seen_) / t.train_s}, {"lr", o_.lr},
                        {"beta1", o_.beta1},            {"batch_size", o_.batch_size}};
    if (comm_.size() > 1) {
      const auto [d_s, d_n] = d_grads_.take_exchange_time();
      const auto [g_s, g_n] = g_grads_.take_exchange_time();
      line["ranks"] = comm_.size();
      line["all_reduce_ms_per_step"] = d_n > 0 ? 1e3 * (d_s + g_s) / static_cast<double>(d_n) : 0.0;  // D's and G's
    }
    if (o_.micro_batches > 1) line["micro_batches"] = o_.micro_batches;
    if (o_.sync_bn) line["sync_bn"] = true;
    if (fid_) {
      line["fid"] = fid_json_["fid"];
      line["fid_n"] = o_.fid_n;
      line["fid_class_histogram"] = fid_json_["class_histogram"];
      line["fid_mean_confidence"] = fid_json_["mean_confidence"];
      if (fid_json_.contains("per_class_accuracy")) line["fid_per_class_accuracy"] = fid_json_["per_class_accuracy"];
    }
    set.stage_metrics_line(line.dump());
  }
  std::string summary(int64_t epoch, const EpochTiming& t) const override {
    const double k = static_cast<double>(std::max<int64_t>(steps_, 1));
    char text[256];
    std::snprintf(text, sizeof(text), "epoch %lld/%lld  loss D %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f  D accuracy %.2f  %.0f img/s  %.1f s%s",
                  static_cast<long long>(epoch + 1), static_cast<long long>(o_.epochs), sum_.loss_d / k, sum_.loss_g / k,
                  sum_.d_real / k, sum_.d_fake / k, sum_.d_accuracy / k, static_cast<double>(seen_) / t.train_s, t.train_s,
                  fid_text_.c_str());
    return text;
  }

 private:
  // models::gan_train_step on the batch split into parts (engine/dist/data_parallel.h): this rank's
  // shard in --micro-batches parts. D's step: each part's two backward passes (real, then G(z) held
  // fixed), the parts' gradients added over the parts and the ranks, then D's Adam step; G's step:
  // each part through the updated D, the same sum, G's Adam step. Each part's losses are its means
  // times its share of the batch (n_part / B), so the sum is the gradient of the batch's mean, as
  // the one-process step's. BatchNorm normalizes each part by its own statistics (the default of
  // PyTorch's DistributedDataParallel); so, unlike the autoencoders', a GAN's parts are not the
  // one-process step, but N ranks still equal --micro-batches N in one process, parameter for
  // parameter (BatchNorm's running statistics are rank 0's, updated by its shard alone). With
  // --sync-bn (one part per rank) every BatchNorm layer normalizes by the whole batch's statistics
  // (engine/ops/norm.h sync_batch_norm): then the ranks' step is the one-process step, to float
  // rounding, and the running statistics are the batch's on every rank. Every rank then runs every
  // forward and backward, in the same order (each exchanges statistics): no rank's part is empty.
  models::GanStepResult sharded_step(const Tensor& real, const std::vector<int32_t>& labels, const Tensor& z) {
    const int64_t B = real.size(0);
    const dist::Rows mine = dist::shard_rows(B, comm_.size(), comm_.rank());
    struct Part {
      int64_t first = 0, n = 0;
      float share = 0;  // n / B
      std::vector<int32_t> labels;
      Tensor fake;  // G(z) of the part, kept with its graph from D's step to G's
    };
    std::vector<Part> parts;
    for (int64_t m = 0; m < o_.micro_batches; ++m) {
      const dist::Rows r = dist::shard_rows(mine.size(), o_.micro_batches, m);
      Part p;
      p.first = mine.begin + r.begin;
      p.n = r.size();
      p.share = static_cast<float>(static_cast<double>(p.n) / static_cast<double>(B));
      if (!labels.empty()) p.labels.assign(labels.begin() + p.first, labels.begin() + p.first + p.n);
      parts.push_back(std::move(p));
    }
    // D's figures of a part's logits (models/gan.h), as shares of the batch's means.
    auto sigmoid_sum = [](const Tensor& logits) {
      const std::vector<float> v = logits.to_vector();
      return models::sigmoid_sum(v.data(), static_cast<int64_t>(v.size()));
    };
    auto positives = [](const Tensor& logits, bool positive) {
      const std::vector<float> v = logits.to_vector();
      return static_cast<double>(models::count_positive(v.data(), static_cast<int64_t>(v.size()), positive));
    };
    const double b = static_cast<double>(B);
    // gan128's dropout masks: the one-process step's three passes through D (real, G(z) for D, G(z)
    // for G) each draw B * F numbers; a part's rows take theirs at the pass's offset + first * F,
    // so that every split of the batch uses the whole batch's masks.
    Generator* masks = d_.dropout_generator();
    const int64_t F = d_.dropout_numbers_per_image();
    const uint64_t mask_base = masks != nullptr ? masks->offset() : 0;
    uint64_t per_pass = 0;  // how far one pass's draw of B * F numbers moves the generator
    if (masks != nullptr) {
      Generator probe = *masks;
      probe.next(B * F);
      per_pass = probe.offset() - mask_base;
    }
    auto place_masks = [&](uint64_t pass, const Part& p) {
      if (masks != nullptr) masks->set_offset(mask_base + pass * per_pass + static_cast<uint64_t>(p.first * F));
    };
    // (1) D: loss_real * share, loss_fake * share; the figures as shares of the batch's.
    for (Part& p : parts) {
      if (p.n == 0) {
        d_grads_.add_empty_part();
        continue;
      }
      const Tensor x = real.slice(p.first, p.first + p.n), zp = z.slice(p.first, p.first + p.n);
      opt_d_.zero_grad();
      place_masks(0, p);
      const Tensor out_real = d_.forward(x, p.labels);
      const Tensor loss_real = scale(bce_with_logits(out_real, Tensor::ones({p.n}, device_)), p.share);
      loss_real.backward();
      p.fake = g_.forward(zp, p.labels);
      place_masks(1, p);
      const Tensor out_fake = d_.forward(p.fake.detach(), p.labels);
      const Tensor loss_fake = scale(bce_with_logits(out_fake, Tensor::zeros({p.n}, device_)), p.share);
      loss_fake.backward();
      d_grads_.add_part({loss_real.item(), loss_fake.item(), static_cast<float>(sigmoid_sum(out_real) / b),
                         static_cast<float>(sigmoid_sum(out_fake) / b),
                         static_cast<float>((positives(out_real, true) + positives(out_fake, false)) / (2 * b))});
    }
    const std::vector<float> d_totals = d_grads_.finish(comm_);
    opt_d_.step();
    // (2) G through the updated D, whose parameters are frozen for it (as in models::gan_train_step).
    const FrozenParameters frozen_d(d_.parameters());
    for (Part& p : parts) {
      if (p.n == 0) {
        g_grads_.add_empty_part();
        continue;
      }
      opt_g_.zero_grad();
      place_masks(2, p);
      const Tensor out = d_.forward(p.fake, p.labels);
      const Tensor loss_g = scale(bce_with_logits(out, Tensor::ones({p.n}, device_)), p.share);
      loss_g.backward();
      g_grads_.add_part({loss_g.item(), static_cast<float>(sigmoid_sum(out) / b)});
    }
    if (masks != nullptr) masks->set_offset(mask_base + 3 * per_pass);  // where the one-process step leaves it
    const std::vector<float> g_totals = g_grads_.finish(comm_);
    opt_g_.step();
    models::GanStepResult r;
    r.loss_d = static_cast<double>(d_totals[0]) + d_totals[1];
    r.d_real = d_totals[2];
    r.d_fake = d_totals[3];
    r.d_accuracy = d_totals[4];
    r.loss_g = g_totals[0];
    r.d_fake_after = g_totals[1];
    return r;
  }

  const GanTrainOptions& o_;
  const GanConfig& c_;
  models::GanGenerator& g_;
  models::GanDiscriminator& d_;
  optim::Adam& opt_g_;
  optim::Adam& opt_d_;
  Generator& noise_;
  data::DataLoader& loader_;
  FidEvaluator* fid_;
  const Tensor& fixed_z_;
  const std::vector<int32_t>& fixed_labels_;
  int64_t grid_cols_;
  Device device_;
  dist::Communicator& comm_;
  bool sharded_;
  dist::GradientSum d_grads_, g_grads_;
  std::optional<data::Batch> batch_;
  std::deque<std::pair<std::function<models::GanStepResult()>, int64_t>> queued_;  // a step and its batch's size
  models::GanStepResult sum_;
  int64_t steps_ = 0, seen_ = 0;
  Tensor sample_images_;
  std::string fid_text_;
  nlohmann::json fid_json_;
};

void run_train_gan(const GanTrainOptions& options) {
  GanTrainOptions o = options;  // --resume replaces lr, beta1 and batch size by the run's
  check_training_flags(o.epochs, o.batch_size, 2, o.lr, o.limit);
  const Device device = apply_device_flags(o.device);
  if (o.image_size < 0) throw std::invalid_argument("--image-size must be positive (or 0 for the model's own size)");
  // Data-parallel (docs/distributed.md): dcgan and cgan; rank 0 alone writes the run directory.
  const std::unique_ptr<dist::Communicator> comm = dist::make_communicator(o.dist, device);
  const bool writer = comm->rank() == 0;
  if (o.sync_bn && o.micro_batches > 1) {
    throw std::invalid_argument("--sync-bn normalizes the shards of all ranks together, and --micro-batches computes a rank's "
                                "parts one after the other, which cannot share statistics: leave one of them out");
  }
  std::optional<TrainingDir> run_dir;
  if (writer) run_dir.emplace(o.out);  // locked now if it exists, else created by open() once the data has loaded
  const int64_t folder_size = o.image_size > 0 ? o.image_size : o.model == "gan128" ? 128 : o.model == "cgan" ? 28 : 64;
  data::Dataset train = data::load_dataset(o.data, data::Split::Train, folder_size);
  train.keep_first(o.limit);

  GanConfig c;
  c.arch = o.model == "cgan" ? models::GanArch::CGAN28 : o.model == "gan128" ? models::GanArch::GAN128 : models::GanArch::DCGAN28;
  if (o.model == "dcgan" && train.height == 64 && train.width == 64) c.arch = models::GanArch::DCGAN64;
  c.channels = train.channels;
  c.nz = o.nz;
  c.ngf = o.ngf;
  c.ndf = o.ndf;
  c.validate();
  if (train.height != c.image_size() || train.width != c.image_size()) {
    throw std::invalid_argument(o.data + " has " + std::to_string(train.height) + "x" + std::to_string(train.width) +
                                " images; " + o.model + " trains on " + std::to_string(c.image_size()) + "x" +
                                std::to_string(c.image_size()) + " (dcgan: 28x28 or 64x64, gan128: 128x128, cgan: 28x28;" +
                                " a folder of images is resized with --image-size)");
  }
  if (c.conditional()) {
    if (train.labels.empty()) throw std::invalid_argument("cgan needs class labels; " + o.data + " has none");
    // The data set's classes: its class names when it has them, else the largest label + 1.
    c.num_classes = static_cast<int64_t>(train.class_names.size());
    for (int32_t l : train.labels) c.num_classes = std::max<int64_t>(c.num_classes, l + 1);
    c.num_classes = std::max<int64_t>(c.num_classes, 2);
  }
  // The last partial batch is dropped (as pytorch/examples' DCGAN): with fewer images than a batch,
  // an epoch would train nothing.
  auto check_batch = [&] {
    if (o.sync_bn && o.batch_size < comm->size()) {
      throw std::invalid_argument("--sync-bn needs at least one image per rank in every batch: --batch-size " +
                                  std::to_string(o.batch_size) + " is less than the " + std::to_string(comm->size()) + " ranks");
    }
    if (o.batch_size <= train.n) return;
    throw std::invalid_argument("--batch-size " + std::to_string(o.batch_size) + " is more than the " + std::to_string(train.n) +
                                " training images: " + o.model + " drops the last partial batch, so an epoch would train no step" +
                                " (use --batch-size " + std::to_string(train.n) + " or less)");
  };
  if (!o.resume) check_batch();  // (a resumed run's batch size is the run's: checked once it is read)

  comm->check_same("the training's settings",
                   nlohmann::json{{"config", c.to_json()}, {"data", o.data}, {"train_images", train.n},
                                  {"batch_size", o.batch_size}, {"lr", o.lr}, {"beta1", o.beta1}, {"seed", o.seed},
                                  {"epochs", o.epochs}, {"micro_batches", o.micro_batches}, {"sync_bn", o.sync_bn}, {"resume", o.resume},
                                  {"out", o.out}, {"fid_n", o.fid_n}}
                       .dump());
  if (writer) run_dir->open();
  comm->barrier();  // the other ranks read the directory once rank 0 has put it right
  Generator init(o.seed, kInit);
  models::GanGenerator g(c, init);
  models::GanDiscriminator d(c, init);
  int64_t start_epoch = 0;
  uint64_t noise_offset = 0;
  if (o.resume) {
    Metadata meta = load_module(path_in(o.out, "generator.safetensors"), g);
    if (meta["config"] != c.to_json()) {
      throw std::invalid_argument("--resume: " + o.out + " holds another GAN (" + meta["config"] + ")");
    }
    const std::string path = path_in(o.out, "generator.safetensors");
    const ResumePoint at = resume_point(meta, path, o.seed);
    resume_setting(meta, path, "lr", "--lr", o.lr_given, o.lr);
    resume_setting(meta, path, "beta1", "--beta1", o.beta1_given, o.beta1);
    resume_setting(meta, path, "batch_size", "--batch-size", o.batch_size_given, o.batch_size);
    check_batch();
    const std::string d_path = path_in(o.out, "discriminator.safetensors");
    const Metadata d_meta = load_module(d_path, d);
    // gan128's dropout masks continue where the run left them (runs saved before the offset was
    // recorded restart them at 0).
    if (d.dropout_generator() != nullptr && d_meta.count("dropout_offset") > 0) {
      d.dropout_generator()->set_offset(metadata_count(d_meta, "dropout_offset", d_path));
    }
    start_epoch = at.epoch;
    noise_offset = at.noise_offset;
  } else if (fs::exists(path_in(o.out, "generator.safetensors"))) {
    throw std::invalid_argument(o.out + " already holds a trained GAN: pass --resume to continue it, or choose another --out");
  }
  g.to(device);
  d.to(device);
  optim::Adam opt_g(g.parameters(), {.lr = o.lr, .beta1 = o.beta1, .beta2 = 0.999});
  optim::Adam opt_d(d.parameters(), {.lr = o.lr, .beta1 = o.beta1, .beta2 = 0.999});
  if (o.resume) load_gan_optimizers(o.out, start_epoch, opt_g, opt_d);
  // Rank 0's weights and BatchNorm statistics everywhere.
  dist::broadcast_modules(*comm, {&g, &d});
  // One process has the whole batch: its BatchNorm is already the batch's (and needs no exchange).
  const int64_t synced = o.sync_bn && comm->size() > 1 ? dist::synchronize_batch_norm({&g, &d}, dist::batch_norm_group(*comm)) : 0;
  if (start_epoch >= o.epochs) {
    if (writer) std::cerr << "latentlab: " << o.out << " has already trained " << start_epoch << " epochs\n";
    return;
  }

  // One fixed batch of noise for the pictures; for the conditional GAN, row r of the 8x8 grid is class r.
  // The 128x128 GAN shows a 4x4 grid (a 512-pixel picture, and a quarter of the generator's work).
  const int64_t grid_cols = c.arch == models::GanArch::GAN128 ? 4 : 8;
  Generator fixed(o.seed, kFixedNoise);
  const Tensor fixed_z = randn({grid_cols * grid_cols, c.nz}, fixed, device);
  std::vector<int32_t> fixed_labels;
  if (c.conditional()) {
    for (int64_t i = 0; i < 64; ++i) fixed_labels.push_back(static_cast<int32_t>((i / 8) % c.num_classes));
  }
  Generator noise(o.seed, kNoise);
  noise.set_offset(noise_offset);
  data::DataLoader loader(train, {.batch_size = o.batch_size, .shuffle = true, .drop_last = true,
                                  .scale = data::Scale::Symmetric, .seed = o.seed});
  // FID after every epoch, when a classifier of matching images is at hand (apps/fid_eval.h).
  std::unique_ptr<FidEvaluator> fid;
  if (o.fid_n > 0 && writer) {
    const std::string dir = o.classifier.empty() ? default_classifier_dir(o.data) : o.classifier;
    if (!o.classifier.empty() || fs::exists(fs::path(dir) / "classifier.safetensors")) {
      fid = std::make_unique<FidEvaluator>(dir, device);
      const auto& cc = fid->classifier_config();
      if (cc.channels != c.channels || cc.size != c.image_size()) {
        throw std::invalid_argument("--classifier " + dir + " takes " + std::to_string(cc.channels) + "x" + std::to_string(cc.size) +
                                    "x" + std::to_string(cc.size) + " images, this GAN makes " + std::to_string(c.channels) + "x" +
                                    std::to_string(c.image_size()) + "x" + std::to_string(c.image_size()));
      }
      std::cerr << "latentlab: FID of " << o.fid_n << " samples after every epoch, on the classifier in " << dir << "\n";
    } else {
      std::cerr << "latentlab: no FID per epoch: no classifier in " << dir << " (`latentlab train classifier --data " << o.data
                << " --out " << dir << "` makes one)\n";
    }
  }
  if (writer) {
    std::cerr << "latentlab: training " << models::gan_arch_name(c.arch) << " (G " << g.num_parameters() << ", D "
              << d.num_parameters() << " parameters) on " << train.name << " (" << train.n << " images), "
              << device_name(device) << ", batch " << o.batch_size << ", lr " << o.lr << ", seed " << o.seed;
    if (comm->size() > 1) std::cerr << ", " << comm->size() << " ranks (" << comm->backend() << ")";
    if (o.micro_batches > 1) std::cerr << ", " << o.micro_batches << " micro-batches";
    if (synced > 0) std::cerr << ", " << synced << " BatchNorm layers synchronized";
    if (o.sync_bn && comm->size() == 1) std::cerr << ", --sync-bn (one process: plain BatchNorm is the same)";
    std::cerr << "\n";
  }
  GanSteps steps{o, c, g, d, opt_g, opt_d, noise, loader, fid.get(), fixed_z, fixed_labels, grid_cols, device, *comm};
  LoopOptions loop(o.out, start_epoch, o.epochs, o.log_every);
  loop.writer = writer;
  run_epochs(steps, loop);
  if (writer) {
    std::cerr << "latentlab: wrote generator.safetensors, discriminator.safetensors, metrics.jsonl and samples_epoch"
              << o.epochs << ".png in " << o.out << "\n";
  }
}

}  // namespace ll::app
