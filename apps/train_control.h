// train_control.h: what keeps a training run well-behaved when something else happens: a second
// training aimed at the same directory, SIGINT/SIGTERM, and the test hooks that let the tests stop a
// real process at a chosen moment (tests/apps/test_kill_resume.cpp).
//
//   RunLock      flock(2) on DIR/train.lock for the whole training; a second training into DIR fails
//                at once naming the holder's pid. The kernel drops the lock when its process dies,
//                so a lock left by a killed run never blocks --resume. The file stays (unlinking a
//                lock file races with a process about to lock it); its pid means something only
//                while the lock is held.
//   StopSignals  while alive, SIGINT and SIGTERM set a flag that the training loops read after
//                each step (and after saving an epoch); the loop then throws Interrupted, which the
//                CLI reports as one line and exit status 128 + signal. A second signal kills as
//                usual (the handler is one-shot); the checkpoint is safe either way, since every
//                save is staged and committed (apps/run_dir.h: CheckpointSet).
//   test_point   LATENTLAB_TEST_STOP_AT=<point>[,<point>...]: the process stops itself with SIGSTOP
//                on reaching a named point, so that a test can inspect the run directory and then
//                kill it (SIGKILL) or signal it exactly there. Points: "epoch<E>:step<S>" (before
//                step S of epoch E, both from 1), "epoch<E>:staged" (every file of epoch E written
//                under its staging name, before the commit record), "epoch<E>:committed" (commit
//                record written, nothing renamed yet), "epoch<E>:half-applied" (half of the staged
//                files renamed into place). Unset, it costs one getenv per call. For tests only.
#pragma once
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "engine/optim/optimizer.h"

namespace ll::app {

// The directory a training writes, locked for as long as this object lives. An existing DIR is
// locked at construction, before the data is read, so that a second training into it is refused at
// once; open() creates a new DIR and locks it once the data has loaded (a data set that fails to
// load leaves no directory behind), then puts right what an interrupted save left in it
// (recover_run_dir, apps/run_dir.h).
class RunLock;
class TrainingDir {
 public:
  explicit TrainingDir(std::string dir);
  ~TrainingDir();
  TrainingDir(const TrainingDir&) = delete;
  TrainingDir& operator=(const TrainingDir&) = delete;
  void open();

 private:
  std::string dir_;
  std::unique_ptr<RunLock> lock_;
};

// The flags every training takes: --epochs >= 1, --batch-size >= min_batch (2 where BatchNorm
// needs a batch), --lr a positive finite number, --limit >= 0. std::invalid_argument naming the flag.
void check_training_flags(int64_t epochs, int64_t batch_size, int64_t min_batch, double lr, int64_t limit);

// What --resume continues from, read from the metadata of the run's model file `path`: the epoch
// reached and the offset of the training's noise stream. The run's seed must be `seed` (a different
// --seed would continue another random sequence): std::invalid_argument naming both.
struct ResumePoint {
  int64_t epoch = 0;
  uint64_t noise_offset = 0;
};
ResumePoint resume_point(const std::map<std::string, std::string>& meta, const std::string& path, uint64_t seed);

// --resume of a run with a generator and a discriminator (the GANs, pix2pix): their Adam states
// from dir/optimizer_g.safetensors and dir/optimizer_d.safetensors, which must both be from `epoch`
// (the generator's); std::runtime_error otherwise (the run was stopped while saving).
void load_gan_optimizers(const std::string& dir, int64_t epoch, optim::Adam& opt_g, optim::Adam& opt_d);

// The lock file of a run directory.
std::string lock_path(const std::string& dir);

class RunLock {
 public:
  // Locks DIR (which must exist). Throws std::runtime_error, one line naming the other process's
  // pid, when another training holds it.
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

class StopSignals {
 public:
  StopSignals();   // installs the SIGINT and SIGTERM handlers, clearing any earlier request
  ~StopSignals();  // restores the handlers that were there before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal received since construction (SIGINT or SIGTERM), 0 when none.
  static int pending();
};

// "SIGINT", "SIGTERM", else "signal N".
std::string signal_name(int signal);

// A training stopped by a signal; what() is the line to print (without the "latentlab: " prefix).
class Interrupted : public std::runtime_error {
 public:
  Interrupted(int signal, const std::string& message) : std::runtime_error(message), signal_(signal) {}
  int signal() const { return signal_; }
  int exit_status() const { return 128 + signal_; }

 private:
  int signal_;
};

// "the last complete checkpoint is epoch 3 in DIR; `--resume` continues from it", or, when no epoch
// was saved, "no epoch was complete, so nothing was saved in DIR".
std::string last_checkpoint_phrase(const std::string& dir, int64_t saved_epoch);

// The test hook described above.
void test_point(const std::string& name);
// test_point("epoch<E>:step<S>"), building the name only when the hook is set.
void test_step_point(int64_t epoch, int64_t step);

}  // namespace ll::app
