#include "apps/train_control.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <filesystem>
#include <string>
#include <utility>

#include "apps/run_dir.h"
#include "engine/checkpoint.h"

namespace ll::app {

namespace fs = std::filesystem;

std::string lock_path(const std::string& dir) { return (fs::path(dir) / "train.lock").string(); }

TrainingDir::TrainingDir(std::string dir) : dir_(std::move(dir)) {
  if (fs::is_directory(dir_)) lock_ = std::make_unique<RunLock>(dir_);
}

TrainingDir::~TrainingDir() = default;

void TrainingDir::open() {
  fs::create_directories(dir_);
  if (!lock_) lock_ = std::make_unique<RunLock>(dir_);
  recover_run_dir(dir_);
}

void check_training_flags(int64_t epochs, int64_t batch_size, int64_t min_batch, double lr, int64_t limit) {
  if (epochs < 1) throw std::invalid_argument("--epochs must be at least 1");
  if (batch_size < min_batch) {
    throw std::invalid_argument("--batch-size must be at least " + std::to_string(min_batch) +
                                (min_batch == 2 ? " (BatchNorm needs a batch)" : ""));
  }
  if (!(lr > 0.0) || !std::isfinite(lr)) throw std::invalid_argument("--lr must be a positive finite number");
  if (limit < 0) throw std::invalid_argument("--limit must be >= 0 (0: all images)");
}

ResumePoint resume_point(const Metadata& meta, const std::string& path, uint64_t seed) {
  const uint64_t run_seed = metadata_count(meta, "seed", path);
  if (run_seed != seed) {
    throw std::invalid_argument("--resume: the run used --seed " + std::to_string(run_seed) + ", not " + std::to_string(seed));
  }
  ResumePoint p;
  p.epoch = static_cast<int64_t>(metadata_count(meta, "epoch", path, INT64_MAX));
  p.noise_offset = metadata_count(meta, "noise_offset", path);
  return p;
}

void load_gan_optimizers(const std::string& dir, int64_t epoch, optim::Adam& opt_g, optim::Adam& opt_d) {
  Metadata mg, md;
  opt_g.load_state_dict(load_tensors((std::filesystem::path(dir) / "optimizer_g.safetensors").string(), &mg));
  opt_d.load_state_dict(load_tensors((std::filesystem::path(dir) / "optimizer_d.safetensors").string(), &md));
  if (mg["epoch"] != std::to_string(epoch) || md["epoch"] != std::to_string(epoch)) {
    throw std::runtime_error("--resume: the optimizer files in " + dir +
                             " are not from the generator's epoch (the run was stopped while saving)");
  }
}

namespace {

// The pid written in a lock file, or "" when it holds none (yet).
std::string read_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pid += buf[i];
  return pid;
}

}  // namespace

RunLock::RunLock(const std::string& dir) {
  const std::string path = lock_path(dir);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::runtime_error("cannot create the lock file '" + path + "': " + std::strerror(errno));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string pid = err == EWOULDBLOCK ? read_pid(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) {
      throw std::runtime_error("cannot lock '" + path + "': " + std::strerror(err));
    }
    const std::string who = pid.empty() ? "another latentlab process" : "latentlab process " + pid;
    throw std::runtime_error(dir + " is in use: " + who + " is training there (it holds " + path +
                             "); wait for it to end, or stop it" + (pid.empty() ? "" : " (kill " + pid + ")") +
                             " and continue with --resume");
  }
  // The pid is for the message above only; a failure to write it (a full disk) does not matter.
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd_, text.data(), text.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int signal) { g_stop_signal = signal; }

}  // namespace

StopSignals::StopSignals() {
  g_stop_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  // One-shot (a second Ctrl-C kills at once), and system calls restart rather than fail with EINTR.
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int StopSignals::pending() { return g_stop_signal; }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

std::string last_checkpoint_phrase(const std::string& dir, int64_t saved_epoch) {
  if (saved_epoch <= 0) return "no epoch was complete, so nothing was saved in " + dir;
  return "the last complete checkpoint is epoch " + std::to_string(saved_epoch) + " in " + dir +
         "; `--resume` continues from it";
}

void test_point(const std::string& name) {
  const char* spec = std::getenv("LATENTLAB_TEST_STOP_AT");
  if (spec == nullptr || *spec == '\0') return;
  const std::string points = std::string(",") + spec + ",";
  if (points.find("," + name + ",") != std::string::npos) ::raise(SIGSTOP);
}

void test_step_point(int64_t epoch, int64_t step) {
  const char* spec = std::getenv("LATENTLAB_TEST_STOP_AT");
  if (spec == nullptr || *spec == '\0') return;
  test_point("epoch" + std::to_string(epoch) + ":step" + std::to_string(step));
}

}  // namespace ll::app
