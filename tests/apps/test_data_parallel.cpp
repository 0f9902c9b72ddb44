// test_data_parallel.cpp: `mpirun -np N latentlab train vae` (docs/distributed.md), run as a user
// runs it: real processes under the MPI launcher.
//   - N ranks give, bit for bit, the one-process run with --micro-batches N (the same parts, added in
//     the same fixed order), for N = 2 and for N = 3 with a last batch smaller than the ranks (an
//     empty shard); and the plain one-process run within float32 rounding of the sums' order;
//   - the same for dcgan and cgan on 2 ranks, parameter for parameter;
//   - with --sync-bn (synchronized BatchNorm), dcgan on 2 ranks is the one-process run to rounding;
//   - a run trained on 2 ranks resumes on one process (and the other way), the same as straight;
//   - ranks given different settings stop at once, naming the difference;
//   - a rank killed in the middle of an epoch ends the job within seconds, the last completed
//     epoch's checkpoint intact and resumable.
// Skips, saying why, where the build has no MPI.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data/image.h"
#include "engine/checkpoint.h"
#include "tests/apps/toy_run.h"

#ifndef LATENTLAB_BIN
#error "LATENTLAB_BIN (the path of the built latentlab program) is set by tests/CMakeLists.txt"
#endif

namespace ll::app {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

#ifdef LATENTLAB_MPIEXEC
constexpr bool kHaveMpi = true;
#ifndef LATENTLAB_LSAN_OPENMPI
#define LATENTLAB_LSAN_OPENMPI ""
#endif
#else
constexpr bool kHaveMpi = false;
#define LATENTLAB_LSAN_OPENMPI ""
#define LATENTLAB_MPIEXEC ""
#define LATENTLAB_MPIEXEC_FLAGS ""
#endif

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Shell {
  int status;
  std::string output;
};

// Runs a shell command line with its output in `log`; the exit status (or 128 + signal).
Shell sh(const std::string& command, const std::string& log) {
  // (In the sanitized build, LeakSanitizer leaves out Open MPI's own leaks: tests/dist/lsan_openmpi.supp.)
  const std::string line = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
                           "OPENBLAS_NUM_THREADS=1 LATENTLAB_DIST_TIMEOUT_S=60 " LATENTLAB_LSAN_OPENMPI " " + command +
                           " > " + log + " 2>&1";
  const int raw = std::system(line.c_str());
  const int status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return {status, read_text(log)};
}

std::string mpirun(int np) {
  return std::string(LATENTLAB_MPIEXEC) + " -np " + std::to_string(np) + " " + LATENTLAB_MPIEXEC_FLAGS + " ";
}

std::string train_args(const TempDir& t, const std::string& out, int epochs) {
  // 50 training images in batches of 16: 16, 16, 16 and 2 (with 3 ranks one shard of the last
  // batch is empty); 20 test images in batches of 16 (the test pass split over the ranks).
  return std::string(" train vae --data ") + (t / "data") + " --out " + (t / out) + " --epochs " + std::to_string(epochs) +
         " --batch-size 16 --latent-dim 3 --hidden 24 --lr 3e-3 --seed 7 --device cpu";
}

std::map<std::string, Tensor> tensors_of(const std::string& path) { return load_tensors(path); }

// Every tensor of two checkpoint files equal bit for bit.
void expect_same_bits(const std::string& a, const std::string& b) {
  const auto ta = tensors_of(a), tb = tensors_of(b);
  ASSERT_EQ(ta.size(), tb.size()) << a << " vs " << b;
  for (const auto& [name, x] : ta) {
    ASSERT_TRUE(tb.count(name)) << name;
    EXPECT_EQ(x.to_vector(), tb.at(name).to_vector()) << name << ": " << a << " vs " << b;
  }
}

// The largest |a - b| / max |a| over the tensors of two checkpoints.
double max_relative_difference(const std::string& a, const std::string& b) {
  const auto ta = tensors_of(a), tb = tensors_of(b);
  double worst = 0;
  for (const auto& [name, x] : ta) {
    const std::vector<float> u = x.to_vector(), v = tb.at(name).to_vector();
    double scale = 0, diff = 0;
    for (size_t i = 0; i < u.size(); ++i) {
      scale = std::max(scale, std::abs(static_cast<double>(u[i])));
      diff = std::max(diff, std::abs(static_cast<double>(u[i]) - v[i]));
    }
    if (scale > 0) worst = std::max(worst, diff / scale);
  }
  return worst;
}

nlohmann::json last_metrics(const std::string& dir) {
  std::istringstream in(read_text(dir + "/metrics.jsonl"));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return nlohmann::json::parse(last);
}

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kHaveMpi) GTEST_SKIP() << "this build has no MPI: apt-get install openmpi-bin libopenmpi-dev, then reconfigure";
    test::write_toy_dataset(t_ / "data", 50, 20);
  }
  TempDir t_{"dist"};
};

TEST_F(DataParallel, RanksEqualMicroBatchesBitForBitAndTheOneProcessRunToRounding) {
  const std::string bin = LATENTLAB_BIN;
  for (int np : {2, 3}) {
    const std::string ranks = "ranks" + std::to_string(np), micro = "micro" + std::to_string(np);
    Shell r = sh(mpirun(np) + bin + train_args(t_, ranks, 2), t_ / (ranks + ".log"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find(std::to_string(np) + " ranks (mpi)"), std::string::npos) << r.output;
    // One summary line per epoch and one "training" line: rank 0 alone reports. (Counted by their
    // starts: the sanitized build adds LeakSanitizer's statistics of the suppressed MPI leaks.)
    auto lines_starting = [&](const std::string& prefix) {
      int n = 0;
      std::istringstream in(r.output);
      for (std::string line; std::getline(in, line);) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
      return n;
    };
    EXPECT_EQ(lines_starting("epoch "), 2) << r.output;
    EXPECT_EQ(lines_starting("latentlab: training "), 1) << r.output;
    r = sh(bin + train_args(t_, micro, 2) + " --micro-batches " + std::to_string(np), t_ / (micro + ".log"));
    ASSERT_EQ(r.status, 0) << r.output;
    expect_same_bits(t_ / (ranks + "/model.safetensors"), t_ / (micro + "/model.safetensors"));
    expect_same_bits(t_ / (ranks + "/optimizer.safetensors"), t_ / (micro + "/optimizer.safetensors"));
    const auto a = last_metrics(t_ / ranks), b = last_metrics(t_ / micro);
    for (const char* key : {"train_loss", "train_recon", "train_kl", "test_loss", "recon", "kl"}) {
      EXPECT_EQ(a[key].get<double>(), b[key].get<double>()) << key;
    }
    EXPECT_EQ(a["ranks"], np);
    EXPECT_EQ(b["micro_batches"], np);
  }
  // The plain one-process run adds the batch's gradient in one pass: the same training up to the
  // order of float32 sums. After 8 Adam steps the weights agree to 1e-5 of their largest value
  // (measured: 1.3e-7; the bound leaves room because Adam divides by sqrt(v), which magnifies
  // differences where v is tiny).
  ASSERT_EQ(sh(bin + train_args(t_, "one", 2), t_ / "one.log").status, 0);
  const double d = max_relative_difference(t_ / "one/model.safetensors", t_ / "ranks2/model.safetensors");
  EXPECT_LT(d, 1e-5);
  std::cerr << "largest relative difference, 1 process vs 2 ranks: " << d << "\n";
  EXPECT_NEAR(last_metrics(t_ / "one")["test_loss"].get<double>(), last_metrics(t_ / "ranks2")["test_loss"].get<double>(),
              1e-4 * last_metrics(t_ / "one")["test_loss"].get<double>());
}

// The GANs: N ranks equal --micro-batches N in every parameter, bit for bit, and in the figures;
// BatchNorm's running statistics are rank 0's own (each part normalizes by its own statistics, as
// DistributedDataParallel's default), so those are not compared.
TEST_F(DataParallel, GansOnTwoRanksEqualTwoMicroBatches) {
  const std::string bin = LATENTLAB_BIN;
  test::write_bars(t_ / "bars");
  for (const std::string model : {"dcgan", "cgan"}) {
    const std::string args = " train " + model + " --data " + (t_ / "bars") +
                             " --epochs 2 --batch-size 16 --ngf 8 --ndf 8 --nz 8 --fid-n 0 --seed 3 --device cpu --out ";
    Shell r = sh(mpirun(2) + bin + args + (t_ / (model + "2")), t_ / (model + "2.log"));
    ASSERT_EQ(r.status, 0) << r.output;
    r = sh(bin + args + (t_ / (model + "m")) + " --micro-batches 2", t_ / (model + "m.log"));
    ASSERT_EQ(r.status, 0) << r.output;
    for (const char* file : {"generator.safetensors", "discriminator.safetensors"}) {
      const auto a = tensors_of(t_ / (model + "2/" + file)), b = tensors_of(t_ / (model + "m/" + file));
      int compared = 0;
      for (const auto& [name, x] : a) {
        if (name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos) continue;
        EXPECT_EQ(x.to_vector(), b.at(name).to_vector()) << model << " " << file << " " << name;
        ++compared;
      }
      EXPECT_GT(compared, 3);
    }
    const auto ma = last_metrics(t_ / (model + "2")), mb = last_metrics(t_ / (model + "m"));
    for (const char* key : {"loss_d", "loss_g", "d_real", "d_fake", "d_accuracy"}) EXPECT_EQ(ma[key], mb[key]) << model << " " << key;
  }
}

// --sync-bn: every BatchNorm layer normalizes by the whole batch's statistics (engine/ops/norm.h
// sync_batch_norm), so 2 ranks compute the one-process run's steps, to float rounding: every
// parameter and the running statistics within kSyncBnBound of the largest value of each tensor
// after 2 epochs (measured: 2.1e-7 in the generator, 1.3e-7 in the discriminator). Without it the
// 2-rank run differs by 0.3 (D) and 2.1 (G, its running statistics) of the largest values.
TEST_F(DataParallel, SyncBatchNormOnTwoRanksIsTheOneProcessRun) {
  constexpr double kSyncBnBound = 2e-5;
  const std::string bin = LATENTLAB_BIN;
  test::write_bars(t_ / "bars");
  const std::string args = " train dcgan --data " + (t_ / "bars") +
                           " --epochs 2 --batch-size 16 --ngf 8 --ndf 8 --nz 8 --fid-n 0 --seed 3 --device cpu --out ";
  Shell r = sh(mpirun(2) + bin + args + (t_ / "sync2") + " --sync-bn", t_ / "sync2.log");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 ranks (mpi), 3 BatchNorm layers synchronized"), std::string::npos) << r.output;
  EXPECT_EQ(last_metrics(t_ / "sync2")["sync_bn"], true);
  ASSERT_EQ((r = sh(mpirun(2) + bin + args + (t_ / "plain2"), t_ / "plain2.log")).status, 0) << r.output;
  ASSERT_EQ((r = sh(bin + args + (t_ / "one"), t_ / "one.log")).status, 0) << r.output;
  for (const char* file : {"/generator.safetensors", "/discriminator.safetensors"}) {
    const double synced = max_relative_difference(t_ / "one" + file, t_ / "sync2" + file);
    const double plain = max_relative_difference(t_ / "one" + file, t_ / "plain2" + file);
    std::cerr << file << ": largest relative difference from the one-process run, 2 ranks with --sync-bn " << synced
              << ", without " << plain << "\n";
    EXPECT_LT(synced, kSyncBnBound) << file;
    EXPECT_GT(plain, 100 * synced) << file;
  }
  // The flags it cannot go with: one line, nothing trained.
  r = sh(mpirun(2) + bin + args + (t_ / "mb") + " --sync-bn --micro-batches 2", t_ / "mb.log");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--sync-bn normalizes the shards of all ranks together"), std::string::npos) << r.output;
  r = sh(mpirun(3) + bin + " train dcgan --data " + (t_ / "bars") + " --batch-size 2 --fid-n 0 --sync-bn --out " + (t_ / "b1"),
         t_ / "b1.log");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--sync-bn needs at least one image per rank in every batch"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(t_ / "mb/generator.safetensors") || fs::exists(t_ / "b1/generator.safetensors"));
}

// gan128 (dropout in D, BatchNorm in G): a part's dropout masks are the whole batch's rows, so with
// --sync-bn 2 ranks train the one-process run's weights to rounding; the masks' offset is saved with
// the checkpoint, so an epoch on 2 ranks resumed on one process continues the same masks. One step
// of 2 images per epoch (a gan128 step is seconds on a CPU). Measured: 2.4e-6 (G) and 1.3e-5 (D)
// of each tensor's largest value (Adam's first steps magnify the rounding of gradients near 0);
// masks drawn where each rank's generator happens to be instead: 7e-2.
TEST_F(DataParallel, Gan128OnTwoRanksWithSyncBatchNormIsTheOneProcessRunAndResumes) {
  const std::string bin = LATENTLAB_BIN;
  fs::create_directories(t_ / "faces");
  for (int i = 0; i < 2; ++i) {
    data::Image im{128, 128, 3, {}};
    im.pixels.resize(static_cast<size_t>(128 * 128 * 3));
    for (size_t k = 0; k < im.pixels.size(); ++k) im.pixels[k] = static_cast<uint8_t>((k * (5 + 3 * i)) % 253);
    data::save_png(t_ / ("faces/f" + std::to_string(i) + ".png"), im);
  }
  const std::string args = " train gan128 --data " + (t_ / "faces") + " --batch-size 2 --fid-n 0 --seed 3 --device cpu --out ";
  Shell r = sh(bin + args + (t_ / "one") + " --epochs 2", t_ / "g_one.log");
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ((r = sh(mpirun(2) + bin + args + (t_ / "split") + " --epochs 1 --sync-bn", t_ / "g_split.log")).status, 0) << r.output;
  Metadata meta;
  load_tensors(t_ / "split/discriminator.safetensors", &meta);
  // One step: three passes through D, each drawing 2 images x 8192 features.
  EXPECT_EQ(meta["dropout_offset"], std::to_string(3 * 2 * 8192));
  ASSERT_EQ((r = sh(bin + args + (t_ / "split") + " --epochs 2 --resume", t_ / "g_resume.log")).status, 0) << r.output;
  for (const char* file : {"/generator.safetensors", "/discriminator.safetensors"}) {
    const double d = max_relative_difference(t_ / "one" + file, t_ / "split" + file);
    std::cerr << "gan128 " << file << ": 2 ranks (--sync-bn) then one process, against one process: " << d << "\n";
    EXPECT_LT(d, 1e-4) << file;
  }
}

TEST_F(DataParallel, ResumesWithAnotherNumberOfRanks) {
  const std::string bin = LATENTLAB_BIN;
  ASSERT_EQ(sh(bin + train_args(t_, "straight", 2) + " --micro-batches 2", t_ / "s.log").status, 0);
  // Epoch 1 on 2 ranks, epoch 2 on one process; and the other way round.
  ASSERT_EQ(sh(mpirun(2) + bin + train_args(t_, "a", 1), t_ / "a1.log").status, 0);
  Shell r = sh(bin + train_args(t_, "a", 2) + " --micro-batches 2 --resume", t_ / "a2.log");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same_bits(t_ / "straight/model.safetensors", t_ / "a/model.safetensors");
  ASSERT_EQ(sh(bin + train_args(t_, "b", 1) + " --micro-batches 2", t_ / "b1.log").status, 0);
  r = sh(mpirun(2) + bin + train_args(t_, "b", 2) + " --resume", t_ / "b2.log");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_same_bits(t_ / "straight/model.safetensors", t_ / "b/model.safetensors");
}

TEST_F(DataParallel, RanksWithDifferentSettingsStopAtOnce) {
  // Rank 1 is given another --limit: every rank names the difference and the job ends, nothing written.
  const std::string script = t_ / "differ.sh";
  std::ofstream(script) << "#!/bin/sh\nif [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec \"$@\" --limit 40; fi\nexec \"$@\"\n";
  fs::permissions(script, fs::perms::owner_all);
  const Shell r = sh(mpirun(2) + script + " " + LATENTLAB_BIN + train_args(t_, "differ", 1), t_ / "differ.log");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("ranks disagree on the training's settings: rank 1 differs from rank 0"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(t_ / "differ/model.safetensors"));
}

TEST_F(DataParallel, AKilledRankEndsTheJobAndTheLastEpochIsIntact) {
  // Rank 1 stops itself before step 2 of epoch 3 (apps/train_control.h's test hook) and is killed
  // there; rank 0 waits in the all-reduce until mpirun, seeing rank 1 die, ends the job.
  const std::string script = t_ / "stop.sh", pid_file = t_ / "rank1.pid";
  std::ofstream(script) << "#!/bin/sh\nif [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then echo $$ > " << pid_file
                        << "; export LATENTLAB_TEST_STOP_AT=epoch3:step2; fi\nexec \"$@\"\n";
  fs::permissions(script, fs::perms::owner_all);
  const auto start = std::chrono::steady_clock::now();
  std::thread killer([&] {
    // Wait for rank 1 to stop itself (state T in /proc/PID/stat), then SIGKILL it.
    for (int i = 0; i < 1200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const std::string pid = read_text(pid_file);
      if (pid.empty()) continue;
      const std::string stat = read_text("/proc/" + std::to_string(std::stol(pid)) + "/stat");
      const size_t paren = stat.rfind(')');
      if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T') {
        ::kill(static_cast<pid_t>(std::stol(pid)), SIGKILL);
        return;
      }
    }
  });
  const Shell r = sh(mpirun(2) + script + " " + LATENTLAB_BIN + train_args(t_, "killed", 4), t_ / "killed.log");
  killer.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_LT(seconds, 60.0) << r.output;
  // Epochs 1 and 2 were saved; nothing of epoch 3.
  EXPECT_EQ(last_metrics(t_ / "killed")["epoch"], 2) << r.output;
  Metadata meta;
  load_tensors(t_ / "killed/model.safetensors", &meta);
  EXPECT_EQ(meta["epoch"], "2");
  // And it resumes (on one process) to the end, as the straight run.
  Shell resumed = sh(std::string(LATENTLAB_BIN) + train_args(t_, "killed", 4) + " --micro-batches 2 --resume", t_ / "resume.log");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  ASSERT_EQ(sh(std::string(LATENTLAB_BIN) + train_args(t_, "straight", 4) + " --micro-batches 2", t_ / "straight.log").status, 0);
  expect_same_bits(t_ / "straight/model.safetensors", t_ / "killed/model.safetensors");
}

}  // namespace
}  // namespace ll::app

namespace ll::app {
namespace {

// The flags of data-parallel training are for ae, vae and the GANs (the classifier
// train as one process), checked like every other flag: one line, nothing written.
TEST(DataParallelFlags, AreForAeAndVae) {
  TempDir t("dist_flags");
  test::write_toy_dataset(t / "data", 20, 8);
  test::Result r = test::run({"train", "classifier", "--data", t / "data", "--out", t / "g", "--micro-batches", "2"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--micro-batches is for ae, vae, dcgan, gan128, cgan, not classifier"), std::string::npos) << r.err;
  r = test::run({"train", "classifier", "--data", t / "data", "--out", t / "c", "--dist", "none"});
  EXPECT_NE(r.err.find("--dist is for ae, vae, dcgan, gan128, cgan, not classifier"), std::string::npos) << r.err;
  r = test::run({"train", "vae", "--data", t / "data", "--out", t / "v", "--micro-batches", "0"});
  EXPECT_NE(r.err.find("--micro-batches must be in 1..4096"), std::string::npos) << r.err;
  r = test::run({"train", "vae", "--data", t / "data", "--out", t / "v", "--sync-bn"});
  EXPECT_NE(r.err.find("--sync-bn is for dcgan, gan128, cgan, not vae"), std::string::npos) << r.err;
  r = test::run({"train", "vae", "--data", t / "data", "--out", t / "v", "--dist", "tcp"});
  EXPECT_NE(r.status, 0);
  EXPECT_FALSE(fs::exists(t / "g") || fs::exists(t / "c") || fs::exists(t / "v"));
  // --dist none with micro-batches trains in one process.
  r = test::run({"train", "vae", "--data", t / "data", "--out", t / "v", "--dist", "none", "--micro-batches", "3",
                 "--epochs", "1", "--batch-size", "8", "--hidden", "8", "--latent-dim", "2", "--device", "cpu"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("3 micro-batches"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ll::app
