// cmd_train.cpp: `latentlab train ae|vae` — trains an autoencoder or a (beta-)VAE and writes the
// run directory (apps/run_dir.h): checkpoints, metrics.jsonl, sample and reconstruction pictures.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/run_dir.h"
#include "apps/train_classifier.h"
#include "apps/train_control.h"
#include "apps/train_dbvae.h"
#include "apps/train_gan.h"
#include "apps/train_loop.h"
#include "apps/train_pix2pix.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/dist/communicator.h"
#include "engine/dist/data_parallel.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"

namespace ll::app {

namespace fs = std::filesystem;
using models::Autoencoder;
using models::VaeConfig;

namespace {

struct TrainOptions {
  std::string model;
  std::string arch = "mlp";
  std::string data = "fashion-mnist";
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double lr = 1e-3;
  int64_t latent_dim = 20;
  int64_t hidden = 400;
  int64_t conv_channels = 32;
  double beta = 1.0;
  std::string recon = "bce";
  DeviceFlags device;  // --device, --conv-backend, --allow-tf32
  bool cuda_graph = false;
  uint64_t seed = 1;
  std::string out;
  bool resume = false;
  int64_t limit = 0;
  int64_t image_size = 0;
  int64_t test_limit = 0;
  // GANs (apps/train_gan.h)
  double beta1 = 0.5;
  int64_t nz = 100, ngf = 64, ndf = 64;
  int64_t fid_n = 5000;
  std::string classifier;
  int64_t log_every = 0;  // steps between progress lines where stderr is not a terminal (0: every 30 s)
  std::string dist = "auto";  // --dist: the communicator (engine/dist/communicator.h)
  int64_t micro_batches = 1;  // --micro-batches: parts of each rank's batch, one after the other
  bool sync_bn = false;       // --sync-bn: GANs' BatchNorm over the whole batch across the ranks
  bool lr_given = false, batch_size_given = false;  // on the command line (--resume takes the run's otherwise)
  // The DB-VAE (apps/train_dbvae.h): its biased task (data/biased.h) and its sampler.
  std::string debias = "on";
  double alpha = 0.3;
  int64_t bins = 10;
  std::string majority = "0", minority = "6", negative = "2,4";
  double minority_fraction = 0.02;
};

enum Stream : uint64_t { kInit = kVaeInit, kNoise = kVaeNoise, kSamples = kVaeSamples, kTestNoise = kVaeTestNoise };

// Writes the samples grid to `samples_path` and the reconstructions to `recon_path`.
void write_pictures(Autoencoder& model, const data::Dataset& test, const std::string& samples_path,
                    const std::string& recon_path, uint64_t seed, Device device) {
  NoGradGuard no_grad;
  model.eval();
  // 64 decoded prior samples from a fixed batch of codes: the same z every epoch.
  Generator zgen(seed, kSamples);
  const Tensor z = randn({64, model.config().latent_dim}, zgen, device);
  data::save_png(samples_path, data::make_grid(model.generate(z).to(Device::CPU), 8, 2, 0, 0.0f, 1.0f, 2));
  // 8 test images above their reconstructions from the mean code, twice.
  const int64_t k = std::min<int64_t>(16, test.n);
  std::vector<int64_t> idx(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
  const Tensor x = data::gather_images(test, idx, data::Scale::Unit).to(device);
  const Tensor r = model.generate(model.encode(x).first).to(Device::CPU);
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < k; b += 8) {
    const int64_t e = std::min(k, b + 8);
    rows.push_back(x.to(Device::CPU).slice(b, e));
    rows.push_back(r.slice(b, e));
  }
  data::save_png(recon_path, data::make_grid(cat(rows, 0), 8, 2, 0, 0.0f, 1.0f, 2));
  model.train();
}

// The limits of the numeric flags. Values outside them are refused, one line naming the flag, before
// any data is read or any file written. The bounds on sizes are far above any sensible value and
// only keep arithmetic and allocations finite.
constexpr int64_t kMaxEpochs = 1000000;
constexpr int64_t kMaxBatch = int64_t{1} << 20;
constexpr int64_t kMaxLatent = 4096;  // models::VaeConfig's bound
constexpr int64_t kMaxHidden = 65536;
constexpr int64_t kMaxChannels = 1024;
constexpr int64_t kMaxImageSize = 1024;
constexpr int64_t kMaxFidN = 1000000;

void check_range(const char* flag, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    throw std::invalid_argument(std::string(flag) + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                                std::to_string(value));
  }
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_flags(const TrainOptions& o) {
  check_range("--epochs", o.epochs, 1, kMaxEpochs);
  // A batch larger than the training set is allowed where the last partial batch is kept (ae, vae,
  // classifier: one step of all images per epoch); the GANs, which drop it, refuse it once the data
  // set is read.
  check_range("--batch-size", o.batch_size, 1, kMaxBatch);
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) throw std::invalid_argument("--lr must be a positive finite number, got " + number_text(o.lr));
  check_range("--latent-dim", o.latent_dim, 1, kMaxLatent);
  check_range("--hidden", o.hidden, 1, kMaxHidden);
  check_range("--conv-channels", o.conv_channels, 1, kMaxChannels);
  if (!(o.beta >= 0.0) || !std::isfinite(o.beta)) throw std::invalid_argument("--beta must be a finite number >= 0, got " + number_text(o.beta));
  if (o.limit < 0) throw std::invalid_argument("--limit must be >= 0 (0: all images), got " + std::to_string(o.limit));
  if (o.test_limit < 0) throw std::invalid_argument("--test-limit must be >= 0 (0: all images), got " + std::to_string(o.test_limit));
  if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) throw std::invalid_argument("--beta1 must be in [0, 1), got " + number_text(o.beta1));
  check_range("--nz", o.nz, 1, kMaxLatent);
  check_range("--ngf", o.ngf, 1, kMaxChannels);
  check_range("--ndf", o.ndf, 1, kMaxChannels);
  check_range("--image-size", o.image_size, 0, kMaxImageSize);
  check_range("--fid-n", o.fid_n, 0, kMaxFidN);
  check_range("--log-every", o.log_every, 0, kMaxBatch);
  check_range("--micro-batches", o.micro_batches, 1, 4096);
}

// The flags that only some models use, and those models. A flag given to a model that does not use
// it is refused with one line (a silently ignored flag is an experiment other than the one asked for).
void check_flags_apply(const CLI::App& cmd, const std::string& model) {
  using Models = std::vector<std::string>;
  const Models autoencoders{"ae", "vae"}, gans{"dcgan", "gan128", "cgan"}, dbvae{"dbvae"};
  const Models latent_models{"ae", "vae", "dbvae"};
  Models resumable = autoencoders;
  resumable.insert(resumable.end(), gans.begin(), gans.end());
  resumable.push_back("pix2pix");
  Models adversarial = gans, evaluated = latent_models;  // flags pix2pix shares (apps/train_pix2pix.h)
  adversarial.push_back("pix2pix");
  evaluated.push_back("pix2pix");
  const Models data_parallel{"ae", "vae", "dcgan", "gan128", "cgan"};  // docs/distributed.md
  std::vector<std::pair<const char*, Models>> only{
      {"--arch", autoencoders},       {"--latent-dim", latent_models}, {"--hidden", latent_models},
      {"--conv-channels", autoencoders}, {"--recon", autoencoders},   {"--beta", {"vae"}},
      {"--cuda-graph", autoencoders}, {"--test-limit", evaluated},    {"--nz", gans},
      {"--ngf", adversarial},         {"--ndf", adversarial},         {"--image-size", gans},
      {"--beta1", adversarial},       {"--fid-n", gans},              {"--classifier", adversarial},
      {"--resume", resumable},        {"--dist", data_parallel},      {"--micro-batches", data_parallel},
      {"--sync-bn", gans},
      {"--debias", dbvae},            {"--alpha", dbvae},             {"--bins", dbvae},
      {"--majority", dbvae},          {"--minority", dbvae},          {"--negative", dbvae},
      {"--minority-fraction", dbvae}};
  for (const char* const* f = pix2pix_only_flags(); *f != nullptr; ++f) only.push_back({*f, {"pix2pix"}});
  for (const auto& [flag, models] : only) {
    if (cmd.count(flag) == 0 || std::find(models.begin(), models.end(), model) != models.end()) continue;
    std::string list;
    for (const std::string& m : models) list += (list.empty() ? "" : ", ") + m;
    throw std::invalid_argument(std::string(flag) + " is for " + list + ", not " + model +
                                (std::string(flag) == "--resume" ? " (train it again into a new --out)"
                                                                 : " (leave it out)"));
  }
}

VaeConfig config_from_flags(const TrainOptions& o, const data::Dataset& d) {
  VaeConfig c;
  if (o.model != "ae" && o.model != "vae") throw std::invalid_argument("model must be ae or vae, got '" + o.model + "'");
  c.kind = o.model == "ae" ? models::AeKind::AE : models::AeKind::VAE;
  c.arch = o.arch == "conv" ? models::Arch::Conv : models::Arch::MLP;
  c.recon = o.recon == "mse" ? models::Recon::MSE : models::Recon::BCE;
  c.channels = d.channels;
  c.height = d.height;
  c.width = d.width;
  c.latent_dim = o.latent_dim;
  c.hidden = o.hidden;
  c.conv_channels = o.conv_channels;
  c.beta = o.beta;
  c.validate();
  return c;
}

// The autoencoder's and VAE's part of the epoch loop (apps/train_loop.h): a step is
// models::train_step_async (or the captured graph's launch), the sums are the loss and its parts,
// the end of an epoch is the test pass, and an epoch saves the optimizer, the model (with its
// configuration and the run's settings in the metadata) and the pictures.
class VaeSteps : public EpochSteps {
 public:
  VaeSteps(const TrainOptions& o, Autoencoder& model, optim::Adam& adam, Generator& noise, models::VaeGraphStep* graph,
           data::DataLoader& loader, const data::Dataset& test, Device device, dist::Communicator& comm)
      : o_(o), model_(model), adam_(adam), noise_(noise), graph_(graph), loader_(loader), test_set_(test), device_(device),
        comm_(comm), sharded_(comm.size() > 1 || o.micro_batches > 1), grads_(model.parameters(), 2) {}

  int64_t start_epoch(int64_t epoch) override {
    loader_.start_epoch(epoch);
    loss_sum_ = recon_sum_ = kl_sum_ = 0;
    seen_ = 0;
    return loader_.batches_per_epoch();
  }
  bool next_batch() override { return (batch_ = loader_.next()).has_value(); }
  void queue_step() override {
    const Tensor x = batch_->images.to(device_);
    if (sharded_) {
      const models::VaeLoss l = sharded_step(x);
      queued_.push_back([l] { return l; });
      return;
    }
    queued_.push_back([p = graph_ ? graph_->step(x) : models::train_step_async(model_, adam_, x, noise_)]() mutable { return p.get(); });
  }
  StepDone finish_step() override {
    const models::VaeLoss l = queued_.front()();
    queued_.pop_front();
    loss_sum_ += l.recon_sum + model_.config().beta * l.kl_sum;
    recon_sum_ += l.recon_sum;
    kl_sum_ += l.kl_sum;
    seen_ += l.n;
    StepDone done;
    done.images = l.n;
    const double n = static_cast<double>(l.n);  // per image, as metrics.jsonl
    done.scalars = {{"loss", (l.recon_sum + model_.config().beta * l.kl_sum) / n}, {"recon", l.recon_sum / n}, {"kl", l.kl_sum / n}};
    if (!std::isfinite(l.recon_sum) || !std::isfinite(l.kl_sum)) {
      done.nonfinite = "the loss became " + std::to_string(l.recon_sum + l.kl_sum);
    }
    return done;
  }
  std::string running_losses() const override {
    char text[48];
    std::snprintf(text, sizeof(text), "loss %.2f", loss_sum_ / static_cast<double>(seen_));
    return text;
  }
  double lr() const override { return o_.lr; }
  void end_epoch(int64_t, const EpochTiming&) override {
    // The test noise stream restarts every epoch: test losses of different epochs compare models,
    // not draws. Data-parallel: each rank takes every size()-th batch and the sums are added.
    Generator test_noise(o_.seed, kTestNoise);
    test_ = evaluate_dataset(model_, test_set_, o_.batch_size, test_noise, device_, comm_.rank(), comm_.size());
    if (comm_.size() > 1) {
      const std::vector<double> t = dist::sum_over_ranks(comm_, {test_.recon, test_.kl, static_cast<double>(test_.n)});
      test_.recon = t[0];
      test_.kl = t[1];
      test_.n = static_cast<int64_t>(t[2]);
    }
  }
  void save(int64_t epoch, CheckpointSet& set, const EpochTiming& t) override {
    const std::string epoch_str = std::to_string(epoch + 1);
    save_tensors(set.stage("optimizer.safetensors"), adam_.state_dict(), {{"epoch", epoch_str}});
    Metadata m{{"config", model_.config().to_json()},
               {"data", o_.data},
               {"epoch", epoch_str},
               {"seed", std::to_string(o_.seed)},
               {"noise_offset", std::to_string(noise_.offset())},
               {"lr", setting_text(o_.lr)},
               {"batch_size", std::to_string(o_.batch_size)},
               {"format", "pt"}};
    save_tensors(set.stage("model.safetensors"), model_.state_dict(), m);
    write_pictures(model_, test_set_, set.stage("samples_epoch" + epoch_str + ".png"), set.stage("recon.png"), o_.seed,
                   device_);
    epoch_s_ = t.seconds_so_far();
    const double n = static_cast<double>(seen_);
    nlohmann::json line{{"epoch", epoch + 1},
                        {"train_loss", loss_sum_ / n},
                        {"train_recon", recon_sum_ / n},
                        {"train_kl", kl_sum_ / n},
                        {"test_loss", test_.loss_per_image(model_.config().beta)},
                        {"recon", test_.recon_per_image()},
                        {"kl", test_.kl_per_image()},
                        {"epoch_s", epoch_s_},
                        {"img_per_s", n / t.train_s},
                        {"lr", o_.lr},
                        {"batch_size", o_.batch_size}};
    if (comm_.size() > 1) {
      // The all-reduce of the gradients: its time per step, waiting for the slowest rank included.
      const auto [exchange_s, exchanges] = grads_.take_exchange_time();
      line["ranks"] = comm_.size();
      line["all_reduce_ms_per_step"] = exchanges > 0 ? 1e3 * exchange_s / static_cast<double>(exchanges) : 0.0;
    }
    if (o_.micro_batches > 1) line["micro_batches"] = o_.micro_batches;
    set.stage_metrics_line(line.dump());
  }
  std::string summary(int64_t epoch, const EpochTiming& t) const override {
    const double n = static_cast<double>(seen_);
    char text[192];
    std::snprintf(text, sizeof(text), "epoch %lld/%lld  train %.3f  test %.3f (recon %.3f + kl %.3f)  %.0f img/s  %.1f s",
                  static_cast<long long>(epoch + 1), static_cast<long long>(o_.epochs), loss_sum_ / n,
                  test_.loss_per_image(model_.config().beta), test_.recon_per_image(), test_.kl_per_image(), n / t.train_s,
                  epoch_s_);
    return text;
  }

 private:
  // One step on the batch x split into parts (engine/dist/data_parallel.h): this rank's shard of
  // the batch, in --micro-batches parts, each part's gradient computed on its own and the parts
  // added in the communicator's fixed order, then across the ranks; then one Adam step. Each part
  // draws its codes where the whole batch's draw would put them (row r's noise at the batch's
  // offset + r * D), so the numbers are those of the batch, whatever the split.
  models::VaeLoss sharded_step(const Tensor& x) {
    const int64_t B = x.size(0), D = model_.config().latent_dim;
    const bool draws = model_.variational();
    const uint64_t base = noise_.offset();
    const dist::Rows mine = dist::shard_rows(B, comm_.size(), comm_.rank());
    for (int64_t m = 0; m < o_.micro_batches; ++m) {
      const dist::Rows part = dist::shard_rows(mine.size(), o_.micro_batches, m);
      if (part.size() == 0) {
        grads_.add_empty_part();
        continue;
      }
      const int64_t first = mine.begin + part.begin;
      const Tensor xs = x.slice(first, first + part.size());
      adam_.zero_grad();
      if (draws) noise_.set_offset(base + static_cast<uint64_t>(first * D));
      models::VaeLossTensors l = model_.loss_tensors(xs, model_.forward(xs, noise_));
      l.loss.backward();
      const models::VaeLoss v = models::PendingVaeLoss(l).get();
      grads_.add_part({static_cast<float>(v.recon_sum), static_cast<float>(v.kl_sum)});
    }
    if (draws) {
      noise_.set_offset(base);
      noise_.next(B * D);  // where the whole batch's draw leaves the stream
    }
    const std::vector<float> totals = grads_.finish(comm_);
    adam_.step();
    models::VaeLoss l;
    l.recon_sum = totals[0];
    l.kl_sum = totals[1];
    l.n = B;
    return l;
  }

  const TrainOptions& o_;
  Autoencoder& model_;
  optim::Adam& adam_;
  Generator& noise_;
  models::VaeGraphStep* graph_;
  data::DataLoader& loader_;
  const data::Dataset& test_set_;
  Device device_;
  dist::Communicator& comm_;
  bool sharded_;
  dist::GradientSum grads_;
  std::optional<data::Batch> batch_;
  std::deque<std::function<models::VaeLoss()>> queued_;
  double loss_sum_ = 0, recon_sum_ = 0, kl_sum_ = 0, epoch_s_ = 0;
  int64_t seen_ = 0;
  DatasetLoss test_;  // the last test pass
};

void run_train(const TrainOptions& options) {
  TrainOptions o = options;  // --resume replaces lr and batch size by the run's
  const Device device = apply_device_flags(o.device);
  if (o.cuda_graph && device != Device::CUDA) {
    throw std::invalid_argument("--cuda-graph needs the GPU: add --device cuda (this run is on the " +
                                std::string(device_name(device)) + ")");
  }
  // Data-parallel (docs/distributed.md): every rank trains the same model on its shard of each
  // batch; rank 0 alone writes the run directory.
  const std::unique_ptr<dist::Communicator> comm = dist::make_communicator(o.dist, device);
  const bool writer = comm->rank() == 0;
  if (o.cuda_graph && (comm->size() > 1 || o.micro_batches > 1)) {
    throw std::invalid_argument("--cuda-graph captures the one-process step: leave it out with --micro-batches or several ranks");
  }
  std::optional<TrainingDir> run_dir;
  if (writer) run_dir.emplace(o.out);  // locked now if it exists, else created by open() once the data has loaded

  data::Dataset train = data::load_dataset(o.data, data::Split::Train);
  data::Dataset test = data::load_dataset(o.data, data::Split::Test);
  train.keep_first(o.limit);
  test.keep_first(o.test_limit);
  const VaeConfig wanted = config_from_flags(o, train);
  // Every rank must train the same thing; a difference (another flag, another data set) is named.
  comm->check_same("the training's settings",
                   nlohmann::json{{"config", wanted.to_json()}, {"data", o.data},           {"train_images", train.n},
                                  {"test_images", test.n},      {"batch_size", o.batch_size}, {"lr", o.lr},
                                  {"seed", o.seed},             {"epochs", o.epochs},         {"micro_batches", o.micro_batches},
                                  {"resume", o.resume},         {"out", o.out}}
                       .dump());
  if (writer) run_dir->open();
  comm->barrier();  // the other ranks read the directory once rank 0 has put it right (recover_run_dir)
  std::unique_ptr<Autoencoder> model;
  int64_t start_epoch = 0;
  uint64_t noise_offset = 0;
  Metadata meta;
  if (o.resume) {
    LoadedRun run = load_run(o.out);
    if (run.model->config().to_json() != wanted.to_json()) {
      throw std::invalid_argument("--resume: " + o.out + " holds a " + run.model->config().describe() +
                                  ", the flags ask for a " + wanted.describe());
    }
    model = std::move(run.model);
    meta = run.metadata;
    const ResumePoint at = resume_point(meta, model_path(o.out), o.seed);
    start_epoch = at.epoch;
    noise_offset = at.noise_offset;
    resume_setting(meta, model_path(o.out), "lr", "--lr", o.lr_given, o.lr);
    resume_setting(meta, model_path(o.out), "batch_size", "--batch-size", o.batch_size_given, o.batch_size);
  } else {
    if (fs::exists(model_path(o.out))) {
      throw std::invalid_argument(o.out + " already holds a trained model: pass --resume to continue it, or choose another --out");
    }
    Generator init(o.seed, kInit);
    model = std::make_unique<Autoencoder>(wanted, init);
  }
  model->to(device);
  optim::Adam adam(model->parameters(), {.lr = o.lr});
  if (o.resume) {
    Metadata opt_meta;
    auto state = load_tensors(optimizer_path(o.out), &opt_meta);
    if (opt_meta["epoch"] != meta.at("epoch")) {
      throw std::runtime_error("--resume: " + optimizer_path(o.out) + " is from epoch " + opt_meta["epoch"] +
                               " but the model from epoch " + meta.at("epoch") + " (the run was stopped while saving)");
    }
    adam.load_state_dict(state);
  }
  // Rank 0's weights everywhere (the ranks initialized or loaded the same ones; this makes sure).
  dist::broadcast_modules(*comm, {model.get()});
  if (start_epoch >= o.epochs) {
    std::cerr << "latentlab: " << o.out << " has already trained " << start_epoch << " epochs (--epochs " << o.epochs << ")\n";
    return;
  }

  Generator noise(o.seed, kNoise);
  noise.set_offset(noise_offset);
  // --cuda-graph: the step captured once and launched per batch (models/vae.h: VaeGraphStep).
  std::unique_ptr<models::VaeGraphStep> graph_step;
  if (o.cuda_graph) graph_step = std::make_unique<models::VaeGraphStep>(*model, adam, noise);
  data::DataLoader loader(train, {.batch_size = o.batch_size, .shuffle = true, .drop_last = false, .scale = data::Scale::Unit, .seed = o.seed});
  if (writer) {
    std::cerr << "latentlab: training " << model->config().describe() << " (" << model->num_parameters()
              << " parameters) on " << train.name << " (" << train.n << " train, " << test.n << " test images), "
              << device_name(device) << ", batch " << o.batch_size << ", lr " << o.lr << ", seed " << o.seed;
    if (comm->size() > 1) std::cerr << ", " << comm->size() << " ranks (" << comm->backend() << ")";
    if (o.micro_batches > 1) std::cerr << ", " << o.micro_batches << " micro-batches";
    std::cerr << "\n";
  }
  VaeSteps steps{o, *model, adam, noise, graph_step.get(), loader, test, device, *comm};
  LoopOptions loop(o.out, start_epoch, o.epochs, o.log_every);
  loop.writer = writer;
  run_epochs(steps, loop);
  if (writer) {
    std::cerr << "latentlab: wrote " << model_path(o.out) << ", " << metrics_path(o.out) << ", samples_epoch" << o.epochs
              << ".png and recon.png in " << o.out << "\n";
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "train an autoencoder, a (beta-)VAE or a GAN and write a run directory");
  cmd->add_option("model", o->model, "what to train: ae, vae, dcgan, gan128 (the study's 128x128 GAN), cgan (conditional), "
                  "pix2pix (paired translation), classifier (for `latentlab fid`) or dbvae (the debiasing VAE)")
      ->required()->check(CLI::IsMember({"ae", "vae", "dcgan", "gan128", "cgan", "pix2pix", "classifier", "dbvae"}));
  cmd->add_option("--arch", o->arch, "mlp (784-400-20, the pytorch/examples plan) or conv")
      ->capture_default_str()->check(CLI::IsMember({"mlp", "conv"}));
  cmd->add_option("--data", o->data, "fashion-mnist, mnist, shapes[:N], shapes-color[:N], a folder of IDX files, or a folder of images")->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "epochs to train (in all, counting resumed ones)")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "images per step")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Adam learning rate (GANs: 2e-4 unless given)")->capture_default_str();
  cmd->add_option("--latent-dim", o->latent_dim, "latent dimensions")->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "hidden units of the MLP")->capture_default_str();
  cmd->add_option("--conv-channels", o->conv_channels, "base channels of the conv net")->capture_default_str();
  cmd->add_option("--beta", o->beta, "weight of the KL term (beta-VAE; 1 = VAE)")->capture_default_str();
  cmd->add_option("--recon", o->recon, "reconstruction loss: bce or mse")
      ->capture_default_str()->check(CLI::IsMember({"bce", "mse"}));
  add_device_flags(cmd, o->device);
  cmd->add_option("--seed", o->seed, "seed of every random draw of the run")->capture_default_str();
  cmd->add_option("--out", o->out, "run directory to write")->required();
  cmd->add_flag("--resume", o->resume, "continue the run in --out from its last completed epoch");
  cmd->add_flag("--cuda-graph", o->cuda_graph,
                "ae/vae on the GPU: capture the training step once as a CUDA graph and launch it for every "
                "batch (the same numbers, fewer launches)");
  cmd->add_option("--log-every", o->log_every,
                  "where stderr is not a terminal (a log, CI): a progress line every N steps (0: every 30 s)")
      ->capture_default_str();
  cmd->add_option("--dist", o->dist,
                  "data-parallel across the processes of `mpirun -np N`: auto (MPI when started by mpirun, "
                  "else one process), none, mpi, or nccl (GPUs; unverified)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "none", "mpi", "nccl"}));
  cmd->add_option("--micro-batches", o->micro_batches,
                  "split each (rank's) batch into N parts computed one after the other and their gradients "
                  "added (less memory; N parts in one process give a N-rank run's numbers bit for bit)")
      ->capture_default_str();
  cmd->add_flag("--sync-bn", o->sync_bn,
               "GANs under mpirun: normalize BatchNorm by the statistics of the whole batch across the ranks "
               "(synchronized BatchNorm) instead of each rank's shard");
  cmd->add_option("--limit", o->limit, "train on the first N images only (0: all)")->capture_default_str();
  cmd->add_option("--test-limit", o->test_limit, "evaluate on the first N test images only (0: all)")->capture_default_str();
  cmd->add_option("--nz", o->nz, "GAN: noise dimensions")->capture_default_str();
  cmd->add_option("--ngf", o->ngf, "GAN: generator width")->capture_default_str();
  cmd->add_option("--ndf", o->ndf, "GAN: discriminator width")->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "GAN on a folder of images: side to crop and resize to (0: the model's, 64 for dcgan, 128 for gan128)")->capture_default_str();
  cmd->add_option("--beta1", o->beta1, "GAN: Adam's beta1 (DCGAN: 0.5)")->capture_default_str();
  cmd->add_option("--fid-n", o->fid_n, "GAN: samples for the FID after each epoch (0: no FID)")->capture_default_str();
  cmd->add_option("--classifier", o->classifier, "GAN: classifier for the FID (default: runs/classifier-<data>, used when it exists)");
  cmd->add_option("--debias", o->debias, "dbvae: on (resample by the latent histograms, Amini et al. 2019) or off (the same network as a plain classifier)")
      ->capture_default_str()->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--alpha", o->alpha, "dbvae: smoothing of the sampling weights 1 / (histogram density + alpha)")->capture_default_str();
  cmd->add_option("--bins", o->bins, "dbvae: histogram bins per latent unit")->capture_default_str();
  cmd->add_option("--majority", o->majority, "dbvae: the classes of the positive side's majority")->capture_default_str();
  cmd->add_option("--minority", o->minority, "dbvae: the classes of the positive side's rare subgroup")->capture_default_str();
  cmd->add_option("--negative", o->negative, "dbvae: the classes of the negative side")->capture_default_str();
  cmd->add_option("--minority-fraction", o->minority_fraction, "dbvae: the minority's share of the training positives")->capture_default_str();
  auto p = std::make_shared<Pix2PixTrainOptions>();  // pix2pix's own flags (apps/train_pix2pix.h)
  add_pix2pix_flags(cmd, *p);
  cmd->callback([o, p, cmd] {
    check_flags(*o);
    check_flags_apply(*cmd, o->model);
    o->lr_given = cmd->count("--lr") > 0;
    o->batch_size_given = cmd->count("--batch-size") > 0;
    if (o->model == "ae" || o->model == "vae") {
      run_train(*o);
      return;
    }
    if ((o->model == "classifier" || o->model == "dbvae") && dist::launcher_world_size() > 1) {
      throw std::invalid_argument("the " + o->model + " does not train data-parallel: run it as one process, without mpirun");
    }
    if (o->model == "pix2pix" && dist::launcher_world_size() > 1) {
      throw std::invalid_argument("pix2pix does not train data-parallel: run it as one process, without mpirun");
    }
    if (o->model == "pix2pix") {
      p->data = o->data;
      p->epochs = o->epochs;
      if (cmd->count("--batch-size") > 0) p->batch_size = o->batch_size;  // else 16
      if (cmd->count("--lr") > 0) p->lr = o->lr;                          // else the paper's 2e-4
      p->beta1 = o->beta1;
      if (cmd->count("--ngf") > 0) p->ngf = o->ngf;
      if (cmd->count("--ndf") > 0) p->ndf = o->ndf;
      if (cmd->count("--test-limit") > 0) p->test_limit = o->test_limit;  // else 1000
      p->device = o->device;
      p->seed = o->seed;
      p->out = o->out;
      p->resume = o->resume;
      p->limit = o->limit;
      p->classifier = o->classifier;
      p->log_every = o->log_every;
      p->lr_given = o->lr_given;
      p->beta1_given = cmd->count("--beta1") > 0;
      p->batch_size_given = o->batch_size_given;
      run_train_pix2pix(*p);
      return;
    }
    if (o->model == "dbvae") {
      DbVaeTrainOptions d;
      d.data = o->data;
      d.task.majority = data::BiasedTask::parse_classes(o->majority, "--majority");
      d.task.minority = data::BiasedTask::parse_classes(o->minority, "--minority");
      d.task.negative = data::BiasedTask::parse_classes(o->negative, "--negative");
      d.task.minority_fraction = o->minority_fraction;
      d.task.validate();
      d.epochs = o->epochs;
      d.batch_size = o->batch_size;
      d.lr = o->lr;
      if (cmd->count("--hidden") > 0) d.hidden = o->hidden;           // else 256
      if (cmd->count("--latent-dim") > 0) d.latent_dim = o->latent_dim;  // else 8
      d.debias = o->debias == "on";
      d.alpha = o->alpha;
      d.bins = o->bins;
      d.device = o->device;
      d.seed = o->seed;
      d.out = o->out;
      d.limit = o->limit;
      d.test_limit = o->test_limit;
      d.log_every = o->log_every;
      run_train_dbvae(d);
      return;
    }
    if (o->model == "classifier") {
      ClassifierTrainOptions c;
      c.data = o->data;
      if (cmd->count("--epochs") > 0) c.epochs = o->epochs;  // else 5
      c.batch_size = o->batch_size;
      c.lr = o->lr;
      c.device = o->device;
      c.seed = o->seed;
      c.out = o->out;
      c.limit = o->limit;
      c.log_every = o->log_every;
      run_train_classifier(c);
      return;
    }
    GanTrainOptions g;
    g.model = o->model;
    g.data = o->data;
    g.epochs = o->epochs;
    g.batch_size = o->batch_size;
    if (cmd->count("--lr") > 0) g.lr = o->lr;  // else DCGAN's 2e-4
    g.beta1 = o->beta1;
    g.nz = o->nz;
    g.ngf = o->ngf;
    g.ndf = o->ndf;
    g.device = o->device;
    g.seed = o->seed;
    g.out = o->out;
    g.resume = o->resume;
    g.limit = o->limit;
    g.image_size = o->image_size;
    g.fid_n = o->fid_n;
    g.classifier = o->classifier;
    g.log_every = o->log_every;
    g.lr_given = o->lr_given;
    g.beta1_given = cmd->count("--beta1") > 0;
    g.batch_size_given = o->batch_size_given;
    g.dist = o->dist;
    g.micro_batches = o->micro_batches;
    g.sync_bn = o->sync_bn;
    run_train_gan(g);
  });
}

}  // namespace ll::app
