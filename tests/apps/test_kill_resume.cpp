// test_kill_resume.cpp: the training commands as real processes (fork/exec of the built `latentlab`),
// stopped at chosen moments and killed there, then resumed; a second training into a busy directory;
// a full disk; SIGINT/SIGTERM.
//
// Moments are hit with the test hooks, not with sleeps: LATENTLAB_TEST_STOP_AT (apps/train_control.h:
// "epoch2:step3", "epoch2:staged", "epoch2:half-applied", ...) and LATENTLAB_TEST_SAVE_STOP
// (engine/io/safetensors.cpp: "half:<file>:<n>", half of a temporary file written; "rename:<file>:<n>",
// the temporary file complete and not yet renamed) make the process stop itself with SIGSTOP; the
// test sees it stopped (waitpid WUNTRACED), checks the run directory while it is frozen, then sends
// SIGKILL (or SIGTERM/SIGINT and SIGCONT).
//
// Every child runs with OMP_NUM_THREADS=1: on a loaded machine OpenMP's spinning threads make a
// tiny run ten times slower (both sides of every comparison run so).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/idx.h"
#include "engine/io/safetensors.h"
#include "tests/apps/toy_run.h"

#ifndef LATENTLAB_BIN
#error "LATENTLAB_BIN (the path of the built latentlab program) is set by tests/CMakeLists.txt"
#endif

extern char** environ;

namespace ll::app {
namespace {

using test::TempDir;
using test::write_bars;
namespace fs = std::filesystem;

// ---- processes ----------------------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  std::string log;  // its stdout and stderr
};

// Starts `latentlab args...` with `env` ("NAME=value") added to this process's environment, output
// to `log`. `in_child` runs after fork, before exec (async-signal-safe calls only).
Child start(const std::vector<std::string>& args, const std::vector<std::string>& env, const std::string& log,
            void (*in_child)() = nullptr) {
  std::vector<std::string> argv_s{LATENTLAB_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s{"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"};
  env_s.insert(env_s.end(), env.begin(), env.end());
  auto key = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    if (std::none_of(env_s.begin(), env_s.end(), [&](const std::string& o) { return key(o) == key(kv); })) env_s.push_back(kv);
  }
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + log);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    if (in_child != nullptr) in_child();
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  return {pid, log};
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Waits for the child to stop itself at its hook; false (with the reason) if it ended instead.
::testing::AssertionResult stopped(const Child& c) {
  int status = 0;
  if (::waitpid(c.pid, &status, WUNTRACED) != c.pid) return ::testing::AssertionFailure() << "waitpid failed";
  if (WIFSTOPPED(status)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the process ended (status " << status << ") before its hook:\n" << read_text(c.log);
}

// Waits for the child to end; its exit status, or 1000 + signal when a signal ended it.
int finish(const Child& c) {
  int status = 0;
  while (::waitpid(c.pid, &status, 0) != c.pid) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -1;
}

void kill_stopped(const Child& c) {
  ::kill(c.pid, SIGKILL);
  EXPECT_EQ(finish(c), 1000 + SIGKILL);
}

// Runs to the end; the exit status.
int run_to_end(const std::vector<std::string>& args, const std::string& log, void (*in_child)() = nullptr) {
  return finish(start(args, {}, log, in_child));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);) lines.push_back(line);
  return lines;
}

// ---- the runs -----------------------------------------------------------------------------------

// 96 training images, batch 16: 6 steps an epoch.
std::vector<std::string> vae_args(const std::string& data, const std::string& out, int epochs) {
  return {"train", "vae", "--data", data, "--out", out, "--epochs", std::to_string(epochs), "--batch-size", "16",
          "--latent-dim", "2", "--hidden", "32", "--lr", "3e-3", "--seed", "5", "--device", "cpu"};
}

// 64 images, batch 16: 4 steps an epoch.
std::vector<std::string> gan_args(const std::string& data, const std::string& out, int epochs) {
  return {"train", "dcgan", "--data", data, "--out", out, "--epochs", std::to_string(epochs), "--batch-size", "16",
          "--ngf", "4", "--ndf", "4", "--nz", "8", "--fid-n", "0", "--seed", "3", "--device", "cpu"};
}

std::vector<std::string> with_resume(std::vector<std::string> args) {
  args.push_back("--resume");
  return args;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A run directory as a reader sees it: every file loads. Temporary files (<name>.tmp.<pid>, of the
// writer `writer` only) are allowed, since no reader opens them; staged files (*.next) are whole.
void expect_every_file_loads(const std::string& dir, pid_t writer, const std::string& when) {
  SCOPED_TRACE(when);
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string path = e.path().string();
    if (name == "train.lock") continue;
    if (has(name, ".tmp.")) {
      EXPECT_EQ(name.substr(name.rfind(".tmp.") + 5), std::to_string(writer)) << name;
      continue;
    }
    const std::string base = name.size() > 5 && name.ends_with(".next") ? name.substr(0, name.size() - 5) : name;
    if (base.ends_with(".safetensors")) {
      EXPECT_NO_THROW((void)io::load_safetensors(path)) << name;
    } else if (base.ends_with(".png")) {
      const std::string png = read_text(path);
      ASSERT_GT(png.size(), 20u) << name;
      EXPECT_EQ(png.substr(1, 3), "PNG") << name;
      EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND") << name << " is cut off";
    } else if (base == "metrics.jsonl" || base == "steps.jsonl" || base == "checkpoint.commit") {
      for (const std::string& line : lines_of(read_text(path))) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        EXPECT_TRUE(j.is_object() && j.contains("epoch")) << name << ": " << line;
      }
    } else {
      ADD_FAILURE() << "unexpected file " << name;
    }
  }
}

// After a resume: nothing of an interrupted save is left.
void expect_no_leftovers(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    EXPECT_FALSE(has(name, ".tmp.") || name.ends_with(".next") || name == "checkpoint.commit") << dir << ": " << name;
  }
}

std::string epoch_of(const std::string& checkpoint) { return io::load_safetensors(checkpoint).metadata.at("epoch"); }

// metrics.jsonl or steps.jsonl without the timings (epoch_s, img_per_s, time_s), one JSON text per
// line.
std::vector<std::string> lines_without_timing(const std::string& dir, const std::string& name = "metrics.jsonl") {
  std::vector<std::string> out;
  for (const std::string& line : lines_of(read_text((fs::path(dir) / name).string()))) {
    auto j = nlohmann::json::parse(line);
    for (const char* key : {"epoch_s", "img_per_s", "time_s"}) j.erase(key);
    out.push_back(j.dump());
  }
  return out;
}

// Two run directories hold the same files, byte for byte (metrics.jsonl, steps.jsonl: but for the
// timings).
void expect_same_run(const std::string& a, const std::string& b) {
  std::map<std::string, std::string> fa, fb;
  for (const auto& e : fs::directory_iterator(a)) fa[e.path().filename().string()] = e.path().string();
  for (const auto& e : fs::directory_iterator(b)) fb[e.path().filename().string()] = e.path().string();
  fa.erase("train.lock");
  fb.erase("train.lock");
  std::vector<std::string> na, nb;
  for (auto& [n, p] : fa) na.push_back(n);
  for (auto& [n, p] : fb) nb.push_back(n);
  ASSERT_EQ(na, nb);
  for (auto& [name, path] : fa) {
    if (name == "metrics.jsonl" || name == "steps.jsonl") {
      EXPECT_EQ(lines_without_timing(a, name), lines_without_timing(b, name)) << name;
    } else {
      EXPECT_TRUE(read_text(path) == read_text(fb.at(name))) << name << " differs between " << a << " and " << b;
    }
  }
}

// One moment: start a training to 3 epochs with `hook` set, let it stop there, check the directory
// (frozen, then killed), resume, and compare with the uninterrupted run `straight`.
struct Moment {
  std::string hook;           // NAME=value
  std::string model_file;     // the checkpoint to read the epoch of at the moment of the kill
  std::string model_epoch;    // its epoch then
};

void kill_and_resume(const TempDir& t, const std::string& data, const std::string& straight, const Moment& m,
                     std::vector<std::string> (*args)(const std::string&, const std::string&, int)) {
  SCOPED_TRACE(m.hook);
  static int n = 0;
  const std::string out = t / ("killed" + std::to_string(++n));
  const Child c = start(args(data, out, 3), {m.hook}, t / ("killed" + std::to_string(n) + ".log"));
  ASSERT_TRUE(stopped(c));
  expect_every_file_loads(out, c.pid, "frozen at the hook");
  EXPECT_EQ(epoch_of((fs::path(out) / m.model_file).string()), m.model_epoch);
  kill_stopped(c);
  expect_every_file_loads(out, c.pid, "killed");
  // The dead process's lock is no obstacle.
  EXPECT_EQ(read_text((fs::path(out) / "train.lock").string()), std::to_string(c.pid) + "\n");
  const std::string log = t / ("resumed" + std::to_string(n) + ".log");
  ASSERT_EQ(run_to_end(with_resume(args(data, out, 3)), log), 0) << read_text(log);
  expect_no_leftovers(out);
  expect_same_run(straight, out);
}

TEST(KillResume, VaeKilledAtEveryMomentResumesBitForBit) {
  TempDir t("kill_vae");
  test::write_toy_dataset(t / "data", 96, 32);
  ASSERT_EQ(run_to_end(vae_args(t / "data", t / "straight", 3), t / "straight.log"), 0) << read_text(t / "straight.log");
  const std::vector<Moment> moments = {
      {"LATENTLAB_TEST_STOP_AT=epoch2:step3", "model.safetensors", "1"},                     // mid-epoch
      {"LATENTLAB_TEST_SAVE_STOP=half:model.safetensors.next:2", "model.safetensors", "1"},  // half a temp file
      {"LATENTLAB_TEST_SAVE_STOP=rename:optimizer.safetensors.next:2", "model.safetensors", "1"},  // before a rename
      {"LATENTLAB_TEST_STOP_AT=epoch2:staged", "model.safetensors", "1"},        // all staged, no commit record
      {"LATENTLAB_TEST_STOP_AT=epoch2:committed", "model.safetensors", "1"},     // record written, nothing renamed
      {"LATENTLAB_TEST_STOP_AT=epoch2:half-applied", "model.safetensors", "2"},  // optimizer and model renamed, the rest not
  };
  for (const Moment& m : moments) kill_and_resume(t, t / "data", t / "straight", m, vae_args);
}

TEST(KillResume, GanKilledAtEveryMomentResumesBitForBit) {
  TempDir t("kill_gan");
  write_bars(t / "data");
  ASSERT_EQ(run_to_end(gan_args(t / "data", t / "straight", 3), t / "straight.log"), 0) << read_text(t / "straight.log");
  const std::vector<Moment> moments = {
      {"LATENTLAB_TEST_STOP_AT=epoch2:step2", "generator.safetensors", "1"},
      {"LATENTLAB_TEST_SAVE_STOP=half:generator.safetensors.next:2", "generator.safetensors", "1"},
      {"LATENTLAB_TEST_SAVE_STOP=rename:generator.safetensors.next:2", "generator.safetensors", "1"},
      // Both optimizers and the discriminator renamed, the generator not: only the commit record
      // can make this directory whole again.
      {"LATENTLAB_TEST_STOP_AT=epoch2:half-applied", "optimizer_g.safetensors", "2"},
  };
  for (const Moment& m : moments) kill_and_resume(t, t / "data", t / "straight", m, gan_args);
}

// Killed before its first epoch was saved, a run leaves no checkpoint; training again into the
// directory (without --resume) cleans up and equals an uninterrupted run.
TEST(KillResume, KilledInTheFirstEpochStartsAgainCleanly) {
  TempDir t("kill_first");
  test::write_toy_dataset(t / "data", 96, 32);
  ASSERT_EQ(run_to_end(vae_args(t / "data", t / "straight", 2), t / "straight.log"), 0);
  const Child c = start(vae_args(t / "data", t / "run", 2), {"LATENTLAB_TEST_SAVE_STOP=half:model.safetensors.next:1"}, t / "a.log");
  ASSERT_TRUE(stopped(c));
  kill_stopped(c);
  EXPECT_FALSE(fs::exists(t / "run/model.safetensors"));
  expect_every_file_loads(t / "run", c.pid, "killed in epoch 1");
  ASSERT_EQ(run_to_end(vae_args(t / "data", t / "run", 2), t / "b.log"), 0) << read_text(t / "b.log");
  EXPECT_TRUE(has(read_text(t / "b.log"), "unfinished file")) << read_text(t / "b.log");
  expect_no_leftovers(t / "run");
  expect_same_run(t / "straight", t / "run");
}

// A second training into a directory in use is refused at once, naming the first one's pid, and
// takes nothing from it.
TEST(KillResume, ASecondTrainingIntoTheSameDirectoryIsRefused) {
  TempDir t("lock");
  test::write_toy_dataset(t / "data", 96, 32);
  write_bars(t / "bars");
  ASSERT_EQ(run_to_end(vae_args(t / "data", t / "straight", 3), t / "straight.log"), 0);
  const Child first = start(vae_args(t / "data", t / "run", 3), {"LATENTLAB_TEST_STOP_AT=epoch2:step1"}, t / "first.log");
  ASSERT_TRUE(stopped(first));
  const std::vector<std::vector<std::string>> others = {
      vae_args(t / "data", t / "run", 3), with_resume(vae_args(t / "data", t / "run", 5)), gan_args(t / "bars", t / "run", 1),
      {"train", "classifier", "--data", t / "bars", "--out", t / "run", "--device", "cpu"}};
  for (const auto& args : others) {
    const std::string log = t / "second.log";
    EXPECT_EQ(run_to_end(args, log), 1);
    const std::string err = read_text(log);
    EXPECT_EQ(lines_of(err).size(), 1u) << err;
    EXPECT_TRUE(has(err, "latentlab process " + std::to_string(first.pid) + " is training there")) << err;
  }
  ::kill(first.pid, SIGCONT);
  ASSERT_EQ(finish(first), 0) << read_text(first.log);
  expect_same_run(t / "straight", t / "run");
}

// SIGTERM in the middle of an epoch: the step in progress ends, nothing of the epoch is written,
// the exit status is 128 + 15 and the last line names the checkpoint --resume continues from.
TEST(KillResume, SigtermMidEpochStopsCleanly) {
  TempDir t("sigterm");
  test::write_toy_dataset(t / "data", 96, 32);
  ASSERT_EQ(run_to_end(vae_args(t / "data", t / "straight", 3), t / "straight.log"), 0);
  const Child c = start(vae_args(t / "data", t / "run", 3), {"LATENTLAB_TEST_STOP_AT=epoch2:step3"}, t / "a.log");
  ASSERT_TRUE(stopped(c));
  ::kill(c.pid, SIGTERM);  // pending until the process continues
  ::kill(c.pid, SIGCONT);
  EXPECT_EQ(finish(c), 128 + SIGTERM);
  const std::vector<std::string> lines = lines_of(read_text(c.log));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "latentlab: stopped by SIGTERM in epoch 2 after step 3 of 6 (the epoch is not saved): the last complete "
                          "checkpoint is epoch 1 in " + (t / "run") + "; `--resume` continues from it");
  expect_no_leftovers(t / "run");
  expect_every_file_loads(t / "run", c.pid, "after SIGTERM");
  EXPECT_EQ(epoch_of(t / "run/model.safetensors"), "1");
  EXPECT_EQ(epoch_of(t / "run/optimizer.safetensors"), "1");
  EXPECT_EQ(lines_without_timing(t / "run").size(), 1u);
  ASSERT_EQ(run_to_end(with_resume(vae_args(t / "data", t / "run", 3)), t / "b.log"), 0) << read_text(t / "b.log");
  expect_same_run(t / "straight", t / "run");
}

// SIGINT while a GAN is saving: the save completes, then the run stops, naming that epoch.
TEST(KillResume, SigintDuringASaveFinishesTheSave) {
  TempDir t("sigint");
  write_bars(t / "data");
  ASSERT_EQ(run_to_end(gan_args(t / "data", t / "straight", 3), t / "straight.log"), 0);
  const Child c = start(gan_args(t / "data", t / "run", 3), {"LATENTLAB_TEST_SAVE_STOP=rename:generator.safetensors.next:2"}, t / "a.log");
  ASSERT_TRUE(stopped(c));
  ::kill(c.pid, SIGINT);
  ::kill(c.pid, SIGCONT);
  EXPECT_EQ(finish(c), 128 + SIGINT);
  const std::vector<std::string> lines = lines_of(read_text(c.log));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "latentlab: stopped by SIGINT after epoch 2: the last complete checkpoint is epoch 2 in " + (t / "run") +
                              "; `--resume` continues from it");
  expect_no_leftovers(t / "run");
  EXPECT_EQ(epoch_of(t / "run/generator.safetensors"), "2");
  EXPECT_EQ(epoch_of(t / "run/optimizer_d.safetensors"), "2");
  ASSERT_EQ(run_to_end(with_resume(gan_args(t / "data", t / "run", 3)), t / "b.log"), 0) << read_text(t / "b.log");
  expect_same_run(t / "straight", t / "run");
}

// The classifier (which has no --resume) keeps its last complete epoch.
TEST(KillResume, SigtermStopsTheClassifierKeepingItsLastEpoch) {
  TempDir t("sigterm_clf");
  write_bars(t / "data");
  const Child c = start({"train", "classifier", "--data", t / "data", "--out", t / "run", "--epochs", "3", "--batch-size", "16",
                         "--device", "cpu"},
                        {"LATENTLAB_TEST_STOP_AT=epoch2:step1"}, t / "a.log");
  ASSERT_TRUE(stopped(c));
  ::kill(c.pid, SIGTERM);
  ::kill(c.pid, SIGCONT);
  EXPECT_EQ(finish(c), 128 + SIGTERM);
  const std::string err = read_text(c.log);
  EXPECT_TRUE(has(lines_of(err).back(), "stopped by SIGTERM in epoch 2 after step 1 of 4 (the epoch is not saved): the last "
                                        "complete classifier is epoch 1 in " + (t / "run/classifier.safetensors")))
      << err;
  expect_no_leftovers(t / "run");
  EXPECT_EQ(epoch_of(t / "run/classifier.safetensors"), "1");
}

// ---- a full disk --------------------------------------------------------------------------------

// Snapshot of a directory's files (but the lock file, which a later run rewrites).
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files[e.path().filename().string()] = read_text(e.path().string());
  files.erase("train.lock");
  return files;
}

// A real full disk: a small tmpfs in a mount namespace of this test process (needs root, or
// CAP_SYS_ADMIN; skipped otherwise). Epoch 1 fits; the tmpfs is then shrunk to what epoch 1 uses
// plus 8 KiB, so saving epoch 2 meets ENOSPC. The run stops with one line, nonzero; epoch 1's files
// are untouched; after the disk grows, --resume continues as if nothing happened.
TEST(FullDisk, EnospcKeepsThePreviousCheckpoint) {
  TempDir t("enospc");
  if (::unshare(CLONE_NEWNS) != 0) GTEST_SKIP() << "no mount namespace (unshare: " << std::strerror(errno) << "): needs root";
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
  const std::string disk = t / "disk";
  fs::create_directories(disk);
  if (::mount("latentlab-test", disk.c_str(), "tmpfs", 0, "size=16m") != 0) GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{disk};
  test::write_toy_dataset(t / "data", 96, 32);
  const std::string run = disk + "/run";
  ASSERT_EQ(run_to_end(vae_args(t / "data", t / "straight", 2), t / "straight.log"), 0);
  ASSERT_EQ(run_to_end(vae_args(t / "data", run, 1), t / "a.log"), 0) << read_text(t / "a.log");
  struct statvfs st {};
  ASSERT_EQ(::statvfs(disk.c_str(), &st), 0);
  const uint64_t used = static_cast<uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
  const std::string size = "size=" + std::to_string(used + 8192);
  ASSERT_EQ(::mount(nullptr, disk.c_str(), "tmpfs", MS_REMOUNT, size.c_str()), 0) << std::strerror(errno);
  const auto before = snapshot(run);

  EXPECT_EQ(run_to_end(with_resume(vae_args(t / "data", run, 2)), t / "b.log"), 1);
  const std::string err = read_text(t / "b.log");
  const std::vector<std::string> lines = lines_of(err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.starts_with("latentlab: error:"); }), 1) << err;
  EXPECT_TRUE(has(lines.back(), "latentlab: error: saving epoch 2 failed, nothing of it was kept and the last complete checkpoint (epoch 1) is intact")) << err;
  EXPECT_TRUE(has(lines.back(), "No space left on device")) << err;
  EXPECT_TRUE(snapshot(run) == before) << "epoch 1's files changed";

  ASSERT_EQ(::mount(nullptr, disk.c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0) << std::strerror(errno);
  ASSERT_EQ(run_to_end(with_resume(vae_args(t / "data", run, 2)), t / "c.log"), 0) << read_text(t / "c.log");
  expect_same_run(t / "straight", run);
}

// The same without root: RLIMIT_FSIZE (with SIGXFSZ ignored) makes a write past 4 KiB fail with
// EFBIG ("File too large"), here while a GAN saves epoch 2.
void limit_file_size() {
  ::signal(SIGXFSZ, SIG_IGN);
  const struct rlimit limit {4096, 4096};
  ::setrlimit(RLIMIT_FSIZE, &limit);
}

TEST(FullDisk, FileSizeLimitKeepsThePreviousCheckpoint) {
  TempDir t("efbig");
  write_bars(t / "data");
  ASSERT_EQ(run_to_end(gan_args(t / "data", t / "straight", 2), t / "straight.log"), 0);
  ASSERT_EQ(run_to_end(gan_args(t / "data", t / "run", 1), t / "a.log"), 0) << read_text(t / "a.log");
  const auto before = snapshot(t / "run");
  EXPECT_EQ(run_to_end(with_resume(gan_args(t / "data", t / "run", 2)), t / "b.log", limit_file_size), 1);
  const std::string err = read_text(t / "b.log");
  EXPECT_TRUE(has(lines_of(err).back(), "latentlab: error: saving epoch 2 failed, nothing of it was kept and the last complete checkpoint (epoch 1) is intact")) << err;
  EXPECT_TRUE(has(lines_of(err).back(), "File too large")) << err;
  EXPECT_TRUE(snapshot(t / "run") == before) << "epoch 1's files changed";
  expect_no_leftovers(t / "run");
  ASSERT_EQ(run_to_end(with_resume(gan_args(t / "data", t / "run", 2)), t / "c.log"), 0) << read_text(t / "c.log");
  expect_same_run(t / "straight", t / "run");
}

}  // namespace
}  // namespace ll::app
