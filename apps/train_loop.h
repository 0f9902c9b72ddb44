// train_loop.h: the epoch loop that every training of `latentlab train` shares (autoencoders and
// VAEs in cmd_train.cpp, the GANs in train_gan.cpp, the classifier in train_classifier.cpp); a model
// brings only its step, its sums and what it saves (an EpochSteps). Besides the model's files, every
// epoch saves its steps' figures in DIR/steps.jsonl (apps/run_dir.h), a line per step.
//
// Per epoch: the model starts the epoch (its data order), then for every batch the loop reaches the
// test hook (apps/train_control.h: test_step_point), queues the step, and reads the figures of the
// step queued before it: a step's figures are read once the next step is in the queue, so no host
// synchronization sits inside a step and a GPU never idles while the host reads a loss. Figures are
// summed in step order. A non-finite loss stops the run naming the epoch and the step; SIGINT or
// SIGTERM stops it after the step in progress, the unfinished epoch unsaved. Then the model's
// end-of-epoch work (a test pass, pictures, an FID), and the epoch saved as one checkpoint
// (apps/run_dir.h: CheckpointSet, through save_checkpoint, which keeps the previous epoch on a full
// disk), its metrics line included, and one summary line on stderr. Progress while the epoch runs:
// apps/train_progress.h.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "apps/run_dir.h"

namespace ll::app {

// What a finished step reports to the loop.
struct StepDone {
  int64_t images = 0;     // trained on in this step
  std::string nonfinite;  // empty, or what became non-finite, e.g. "the loss became nan"
  // The step's own figures for DIR/steps.jsonl, e.g. {"loss": 104.2, "recon": 98.1, "kl": 6.1}.
  nlohmann::json scalars = nlohmann::json::object();
};

// The time of an epoch, for its metrics line and summary.
struct EpochTiming {
  std::chrono::steady_clock::time_point start;  // when the epoch began
  double train_s = 0;                           // seconds of training steps (no test pass, no save)
  int64_t images = 0;                           // trained on in the epoch
  double seconds_so_far() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

class EpochSteps {
 public:
  virtual ~EpochSteps() = default;
  // Starts epoch `epoch` (0-based: the data order, the sums); returns how many steps it has.
  virtual int64_t start_epoch(int64_t epoch) = 0;
  // Takes the epoch's next batch; false when none is left.
  virtual bool next_batch() = 0;
  // Queues the step on that batch; its figures are read by a later finish_step.
  virtual void queue_step() = 0;
  // Reads the figures of the oldest queued step and adds them to the epoch's sums.
  virtual StepDone finish_step() = 0;
  // The running means of the epoch so far, for the progress line ("loss 104.21").
  virtual std::string running_losses() const = 0;
  // The learning rate of the steps (steps.jsonl).
  virtual double lr() const = 0;
  // After the epoch's last step, before it is saved: a test pass, pictures, an FID.
  virtual void end_epoch(int64_t epoch, const EpochTiming& timing) = 0;
  // Writes the epoch's files under set.stage(name) and its metrics line (set.stage_metrics_line).
  virtual void save(int64_t epoch, CheckpointSet& set, const EpochTiming& timing) = 0;
  // The line printed once the epoch is saved (without the newline).
  virtual std::string summary(int64_t epoch, const EpochTiming& timing) const = 0;
};

struct LoopOptions {
  LoopOptions(std::string out_dir, int64_t first_epoch, int64_t all_epochs, int64_t log_every_steps)
      : out(std::move(out_dir)), start_epoch(first_epoch), epochs(all_epochs), log_every(log_every_steps) {}
  std::string out;  // the run directory
  int64_t start_epoch = 0, epochs = 1;  // trains epochs start_epoch .. epochs - 1 (0-based)
  int64_t log_every = 0;  // apps/train_progress.h
  // False on the ranks of a data-parallel run other than 0: they train and test as rank 0 does,
  // but write nothing (no checkpoint, no steps.jsonl, no progress or summary lines).
  bool writer = true;
  // What a stop says about what is saved, given the last saved epoch (0: none); default:
  // last_checkpoint_phrase(out, saved_epoch), "the last complete checkpoint is epoch 3 in DIR; ...".
  std::function<std::string(int64_t saved_epoch)> saved_phrase;
};

// Trains epochs start_epoch .. epochs - 1. Throws Interrupted on a signal, std::runtime_error on a
// non-finite loss ("<nonfinite> at epoch E step S: lower --lr (<saved phrase>)"), and what the
// model's calls throw.
void run_epochs(EpochSteps& steps, const LoopOptions& options);

}  // namespace ll::app
