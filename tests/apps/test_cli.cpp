// test_cli.cpp: the latentlab program end to end, in-process, on a tiny synthetic data set:
// training writes its run directory, resume continues exactly, sample and eval read it back, and
// bad input gets one clear line and a nonzero exit.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/run_dir.h"
#include "apps/train_control.h"
#include "data/idx.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using test::Result;
using test::run;
using test::TempDir;
using test::write_toy_dataset;
namespace fs = std::filesystem;

std::vector<nlohmann::json> read_metrics(const std::string& dir) {
  std::ifstream f(metrics_path(dir));
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(f, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// `args` with `flag` set to `value` (replaced where present, else appended).
std::vector<std::string> with_flag(std::vector<std::string> args, const std::string& flag, const std::string& value) {
  const auto it = std::find(args.begin(), args.end(), flag);
  if (it != args.end() && it + 1 != args.end()) {
    *(it + 1) = value;
  } else {
    args.insert(args.end(), {flag, value});
  }
  return args;
}

std::vector<std::string> train_args(const std::string& data, const std::string& out, int epochs) {
  return {"train", "vae", "--data", data, "--out", out, "--epochs", std::to_string(epochs), "--batch-size", "16",
          "--latent-dim", "2", "--hidden", "32", "--lr", "3e-3", "--seed", "5", "--device", "cpu"};
}

TEST(Cli, TrainWritesTheRunDirectoryAndLossFalls) {
  TempDir t("train");
  write_toy_dataset(t / "data", 96, 32);
  const Result r = run(train_args(t / "data", t / "run", 4));
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "metrics.jsonl", "steps.jsonl", "samples_epoch4.png",
                        "recon.png"}) {
    EXPECT_TRUE(fs::exists(t / ("run/" + std::string(f)))) << f;
  }
  const auto m = read_metrics(t / "run");
  ASSERT_EQ(m.size(), 4u);
  for (const char* key : {"epoch", "train_loss", "test_loss", "recon", "kl", "epoch_s", "img_per_s"}) {
    EXPECT_TRUE(m[0].contains(key)) << key;
  }
  EXPECT_LT(m[3]["train_loss"].get<double>(), m[0]["train_loss"].get<double>());
  EXPECT_LT(m[3]["test_loss"].get<double>(), m[0]["test_loss"].get<double>());
  EXPECT_NEAR(m[3]["test_loss"].get<double>(), m[3]["recon"].get<double>() + m[3]["kl"].get<double>(), 1e-3);
  EXPECT_NE(r.err.find("epoch 4/4"), std::string::npos) << r.err;
  // steps.jsonl: one line per step (96 images, batch 16: 6 a epoch), whose losses average, weighted
  // by their images, to the epoch's train_loss in metrics.jsonl.
  std::ifstream steps_file(t / "run/steps.jsonl");
  std::vector<nlohmann::json> steps;
  for (std::string line; std::getline(steps_file, line);) steps.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(steps.size(), 24u);
  EXPECT_EQ(steps[7]["epoch"], 2);
  EXPECT_EQ(steps[7]["step"], 2);
  EXPECT_EQ(steps[7]["images"], 16);
  EXPECT_EQ(steps[7]["lr"].get<double>(), 3e-3);
  EXPECT_GE(steps[7]["time_s"].get<double>(), 0.0);
  for (int e = 0; e < 4; ++e) {
    double sum = 0, images = 0;
    for (int k = 0; k < 6; ++k) {
      const auto& st = steps[static_cast<size_t>(e * 6 + k)];
      EXPECT_NEAR(st["loss"].get<double>(), st["recon"].get<double>() + st["kl"].get<double>(), 1e-6 * st["loss"].get<double>());
      sum += st["loss"].get<double>() * st["images"].get<double>();
      images += st["images"].get<double>();
    }
    EXPECT_NEAR(sum / images, m[static_cast<size_t>(e)]["train_loss"].get<double>(), 1e-9 * sum / images) << "epoch " << e + 1;
  }
  // eval draws its codes as the training's test pass did (the run's seed and batch size): the same
  // test loss as the last metrics line, and the epoch as a number; another --seed, other codes.
  const Result e = run({"eval", t / "run"});
  ASSERT_EQ(e.status, 0) << e.err;
  const auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j["test_loss"].get<double>(), m[3]["test_loss"].get<double>());
  EXPECT_EQ(j["kl"].get<double>(), m[3]["kl"].get<double>());
  EXPECT_EQ(j["epoch"], 4);
  EXPECT_EQ(j["seed"], 5);
  const auto other = nlohmann::json::parse(run({"eval", t / "run", "--seed", "6"}).out);
  EXPECT_NE(other["test_loss"].get<double>(), m[3]["test_loss"].get<double>());
  // No temporary files left behind.
  for (auto& e : fs::directory_iterator(t / "run")) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST(Cli, ResumeContinuesExactlyAsAnUninterruptedRun) {
  TempDir t("resume");
  write_toy_dataset(t / "data", 64, 16);
  ASSERT_EQ(run(train_args(t / "data", t / "straight", 3)).status, 0);
  ASSERT_EQ(run(train_args(t / "data", t / "split", 1)).status, 0);
  std::vector<std::string> resume = train_args(t / "data", t / "split", 3);
  resume.push_back("--resume");
  const Result r = run(resume);
  ASSERT_EQ(r.status, 0) << r.err;
  const LoadedRun a = load_run(t / "straight"), b = load_run(t / "split");
  for (auto& [name, tensor] : a.model->state_dict()) {
    EXPECT_EQ(tensor.to_vector(), b.model->state_dict().at(name).to_vector()) << name;
  }
  EXPECT_EQ(read_metrics(t / "split").size(), 3u);
  EXPECT_EQ(read_metrics(t / "straight")[2]["test_loss"], read_metrics(t / "split")[2]["test_loss"]);
}

// --resume continues with the run's own learning rate and batch size when the flags are left out
// (here the run trained with --lr 3e-3 and --batch-size 16, not the defaults 1e-3 and 128), so the
// result equals the uninterrupted run's; a value given takes effect, saying so on one line.
TEST(Cli, ResumeTakesTheRunsSettingsUnlessGiven) {
  TempDir t("resume_settings");
  write_toy_dataset(t / "data", 64, 16);
  ASSERT_EQ(run(train_args(t / "data", t / "straight", 2)).status, 0);
  ASSERT_EQ(run(train_args(t / "data", t / "split", 1)).status, 0);
  Result r = run({"train", "vae", "--data", t / "data", "--out", t / "split", "--epochs", "2", "--latent-dim", "2",
                  "--hidden", "32", "--seed", "5", "--device", "cpu", "--resume"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("goes on with"), std::string::npos) << r.err;
  const auto straight = read_metrics(t / "straight"), split = read_metrics(t / "split");
  ASSERT_EQ(split.size(), 2u);
  EXPECT_EQ(split[1]["lr"].get<double>(), 3e-3);
  EXPECT_EQ(split[1]["batch_size"].get<int64_t>(), 16);
  EXPECT_EQ(straight[1]["test_loss"], split[1]["test_loss"]);

  std::vector<std::string> lower = with_flag(train_args(t / "data", t / "split", 3), "--lr", "1e-4");
  lower.push_back("--resume");
  r = run(lower);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("latentlab: --resume with --lr 0.0001: the run trained with 0.003 so far, and goes on with 0.0001"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(read_metrics(t / "split")[2]["lr"].get<double>(), 1e-4);
}

// A flag that the model does not use is refused with one line, before any data is read, rather
// than silently ignored.
TEST(Cli, FlagsThatDoNotApplyToTheModelAreRefused) {
  TempDir t("inapplicable");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"train", "dcgan", "--beta", "4"}, "--beta is for vae, not dcgan (leave it out)"},
      {{"train", "ae", "--beta", "4"}, "--beta is for vae, not ae"},
      {{"train", "vae", "--nz", "16"}, "--nz is for dcgan, gan128, cgan, not vae"},
      {{"train", "vae", "--beta1", "0.9"}, "--beta1 is for dcgan, gan128, cgan, pix2pix, not vae"},
      {{"train", "cgan", "--latent-dim", "3"}, "--latent-dim is for ae, vae, dbvae, not cgan"},
      {{"train", "gan128", "--test-limit", "10"}, "--test-limit is for ae, vae, dbvae, pix2pix, not gan128"},
      {{"train", "classifier", "--alpha", "0.1"}, "--alpha is for dbvae, not classifier"},
      {{"train", "classifier", "--resume"}, "--resume is for ae, vae, dcgan, gan128, cgan, pix2pix, not classifier"},
      {{"train", "classifier", "--fid-n", "10"}, "--fid-n is for dcgan, gan128, cgan, not classifier"},
      {{"train", "vae", "--task", "edges"}, "--task is for pix2pix, not vae"},
      {{"train", "pix2pix", "--nz", "16"}, "--nz is for dcgan, gan128, cgan, not pix2pix"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--out", t / "x", "--data", t / "nowhere", "--device", "cpu"});
    const Result r = run(a);
    EXPECT_NE(r.status, 0) << message;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(t / "x")) << message;
  }
}

// A picture is written only under a .png name; a run of another kind (a GAN, a classifier) given to
// a command for autoencoder runs is named as such.
TEST(Cli, OutputNamesAndRunKindsAreChecked) {
  TempDir t("kinds");
  write_toy_dataset(t / "data", 32, 8);
  ASSERT_EQ(run(train_args(t / "data", t / "run", 1)).status, 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"interpolate", t / "run", "--out", t / "x.idx"},
        std::vector<std::string>{"traverse", t / "run", "--out", t / "x.idx"},
        std::vector<std::string>{"arithmetic", t / "run", "--concept", "label:1-label:2", "--to", "label:0", "--out", t / "x.idx"}}) {
    const Result r = run(args);
    EXPECT_NE(r.status, 0) << args[0];
    EXPECT_NE(r.err.find("--out: must name a .png file (a PNG picture is written), got '" + (t / "x.idx") + "'"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(t / "x.idx")) << args[0];
  }
  fs::create_directories(t / "gan");
  std::ofstream(t / "gan/generator.safetensors") << "x";
  for (const char* command : {"score", "eval", "traverse", "latent-map"}) {
    const Result r = run({command, t / "gan"});
    EXPECT_NE(r.status, 0) << command;
    EXPECT_NE(r.err.find("holds a GAN (generator.safetensors), and this command works on autoencoder and VAE runs"),
              std::string::npos)
        << command << ": " << r.err;
  }
}

TEST(Cli, RefusesToOverwriteARunAndChecksResume) {
  TempDir t("refuse");
  write_toy_dataset(t / "data", 32, 8);
  ASSERT_EQ(run(train_args(t / "data", t / "run", 1)).status, 0);
  const auto before = fs::last_write_time(t / "run/model.safetensors");
  Result r = run(train_args(t / "data", t / "run", 2));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(t / "run/model.safetensors"), before);
  // Resuming with another architecture is refused, naming both.
  std::vector<std::string> other = train_args(t / "data", t / "run", 2);
  other.push_back("--resume");
  other[11] = "3";  // --latent-dim 3
  r = run(other);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("holds a vae mlp 144-32-2"), std::string::npos) << r.err;
}

TEST(Cli, BadInputGetsOneClearLineAndANonzeroExit) {
  TempDir t("bad");
  Result r = run({"train", "vae", "--out", t / "x", "--data", t / "nothing-here"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("latentlab: error:"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = run({"train", "gan", "--out", t / "x"});  // not a model this command trains
  EXPECT_NE(r.status, 0);
  r = run({"train", "vae", "--out", t / "x", "--epochs", "ten"});
  EXPECT_NE(r.status, 0);
  r = run({"train", "vae"});  // --out missing
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  r = run({"frobnicate"});
  EXPECT_NE(r.status, 0);
  r = run({"sample", t / "no-run", "--out", t / "s.png"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("train a model first"), std::string::npos) << r.err;
  r = run({"eval", t / "no-run"});
  EXPECT_NE(r.status, 0);
  r = run({"train", "vae", "--out", t / "x", "--data", t / "nothing-here", "--lr", "-1"});
  EXPECT_NE(r.status, 0);
  // --cuda-graph: only for the autoencoders, only on the GPU.
  r = run({"train", "vae", "--out", t / "x", "--cuda-graph", "--device", "cpu"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--cuda-graph needs the GPU"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = run({"train", "dcgan", "--out", t / "x", "--cuda-graph"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--cuda-graph is for ae, vae, not dcgan"), std::string::npos) << r.err;
}

// Nonsense numbers are refused with one line naming the flag, before any data is read or any
// directory made.
TEST(Cli, NonsenseFlagValuesAreRefusedBeforeAnyWork) {
  TempDir t("flags");
  write_toy_dataset(t / "data", 32, 8);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--lr", "nan"}, "--lr must be a positive finite number"},
      {{"--lr", "inf"}, "--lr must be a positive finite number"},
      {{"--lr", "0"}, "--lr must be a positive finite number"},
      {{"--lr", "-0.001"}, "--lr must be a positive finite number"},
      {{"--batch-size", "0"}, "--batch-size must be in 1..1048576"},
      {{"--batch-size", "4000000000"}, "--batch-size must be in 1..1048576"},
      {{"--epochs", "0"}, "--epochs must be in 1..1000000"},
      {{"--epochs", "1000000000000"}, "--epochs must be in 1..1000000"},
      {{"--latent-dim", "0"}, "--latent-dim must be in 1..4096"},
      {{"--latent-dim", "100000"}, "--latent-dim must be in 1..4096"},
      {{"--hidden", "0"}, "--hidden must be in 1..65536"},
      {{"--beta", "-1"}, "--beta must be a finite number >= 0"},
      {{"--beta", "nan"}, "--beta must be a finite number >= 0"},
      {{"--beta", "inf"}, "--beta must be a finite number >= 0"},
      {{"--limit", "-5"}, "--limit must be >= 0"},
      {{"--test-limit", "-1"}, "--test-limit must be >= 0"},
  };
  for (const auto& [flags, message] : cases) {
    const Result r = run(with_flag(train_args(t / "data", t / "out", 1), flags[0], flags[1]));
    EXPECT_NE(r.status, 0) << flags[0] << " " << flags[1];
    EXPECT_NE(r.err.find("latentlab: error: " + message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(t / "out")) << flags[0] << " " << flags[1];
  }
  // The same flags are checked for the other trainings.
  Result r = run({"train", "classifier", "--data", t / "data", "--out", t / "out", "--lr", "nan"});
  EXPECT_NE(r.err.find("--lr must be a positive finite number"), std::string::npos) << r.err;
  r = run({"train", "dcgan", "--data", t / "data", "--out", t / "out", "--epochs", "0"});
  EXPECT_NE(r.err.find("--epochs must be in 1..1000000"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / "out"));
  // The autoencoders keep the last partial batch: a batch larger than the training set is one step
  // of all images an epoch.
  r = run(with_flag(train_args(t / "data", t / "big", 2), "--batch-size", "500"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_metrics(t / "big").size(), 2u);
}

// A loss that becomes NaN stops the run naming the epoch and the step; the last complete checkpoint
// stays as it was.
TEST(Cli, ANonFiniteLossStopsNamingEpochAndStep) {
  TempDir t("nan");
  write_toy_dataset(t / "data", 96, 16);
  ASSERT_EQ(run(train_args(t / "data", t / "run", 1)).status, 0);
  std::ifstream f(t / "run/model.safetensors", std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // --lr 1e30: Adam's first step throws the weights to 1e30.
  std::vector<std::string> args = with_flag(train_args(t / "data", t / "run", 3), "--lr", "1e30");
  args.push_back("--resume");
  const Result r = run(args);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("latentlab: error: the loss became"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("at epoch 2 step 2: lower --lr (the last complete checkpoint is epoch 1 in " + (t / "run")), std::string::npos)
      << r.err;
  std::ifstream g(t / "run/model.safetensors", std::ios::binary);
  EXPECT_TRUE(std::string((std::istreambuf_iterator<char>(g)), std::istreambuf_iterator<char>()) == before);
  EXPECT_EQ(read_metrics(t / "run").size(), 1u);
}

// A directory locked by another training (here: this process holds DIR/train.lock as another
// latentlab would) is refused by every training, at once and before the data is read, naming the
// holder's pid.
TEST(Cli, EveryTrainingRefusesADirectoryInUse) {
  TempDir t("busy");
  fs::create_directories(t / "run");
  const int fd = ::open(lock_path(t / "run").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::write(fd, "4242\n", 5), 5);
  for (const char* model : {"ae", "vae", "dcgan", "gan128", "cgan", "classifier", "dbvae"}) {
    const Result r = run({"train", model, "--data", t / "no-data-needed", "--out", t / "run", "--device", "cpu"});
    EXPECT_EQ(r.status, 1) << model;
    EXPECT_EQ(r.err, "latentlab: error: " + (t / "run") + " is in use: latentlab process 4242 is training there (it holds " +
                         (t / "run/train.lock") + "); wait for it to end, or stop it (kill 4242) and continue with --resume\n")
        << model;
  }
  ::close(fd);  // the lock is free again: a training runs
  write_toy_dataset(t / "data", 32, 8);
  const Result r = run(train_args(t / "data", t / "run", 1));
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(Cli, SampleAndEvalReadTheRun) {
  TempDir t("sample");
  write_toy_dataset(t / "data", 32, 8);
  ASSERT_EQ(run(train_args(t / "data", t / "run", 1)).status, 0);

  Result r = run({"sample", t / "run", "--n", "10", "--seed", "3", "--out", t / "s.png"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream png(t / "s.png", std::ios::binary);
  char sig[8] = {};
  png.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");

  r = run({"sample", t / "run", "--n", "10", "--seed", "3", "--out", t / "s.idx"});
  ASSERT_EQ(r.status, 0) << r.err;
  const data::IdxArray a = data::read_idx(t / "s.idx");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{10, 12, 12}));
  // Same seed, same samples; another seed, others.
  ASSERT_EQ(run({"sample", t / "run", "--n", "10", "--seed", "3", "--out", t / "s2.idx"}).status, 0);
  ASSERT_EQ(run({"sample", t / "run", "--n", "10", "--seed", "4", "--out", t / "s3.idx"}).status, 0);
  EXPECT_EQ(data::read_idx(t / "s2.idx").data, a.data);
  EXPECT_NE(data::read_idx(t / "s3.idx").data, a.data);
  EXPECT_NE(run({"sample", t / "run", "--out", t / "s.jpg"}).status, 0);

  r = run({"eval", t / "run"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"], 8);
  EXPECT_NEAR(j["test_loss"].get<double>(), j["recon"].get<double>() + j["kl"].get<double>(), 1e-3);
}

}  // namespace
}  // namespace ll::app
