#include "apps/train_loop.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "apps/train_control.h"
#include "apps/train_progress.h"

namespace ll::app {

void run_epochs(EpochSteps& steps, const LoopOptions& o) {
  int64_t saved_epoch = o.start_epoch;
  auto saved_phrase = [&] {
    return o.saved_phrase ? o.saved_phrase(saved_epoch) : last_checkpoint_phrase(o.out, saved_epoch);
  };
  TrainProgress progress(o.epochs, o.log_every, TrainProgress::stderr_is_terminal());
  StopSignals stop_signals;
  for (int64_t epoch = o.start_epoch; epoch < o.epochs; ++epoch) {
    EpochTiming timing;
    timing.start = std::chrono::steady_clock::now();
    const int64_t total = steps.start_epoch(epoch);
    if (o.writer) progress.start_epoch(epoch, total);
    int64_t started = 0, finished = 0;
    bool pending = false;
    std::vector<std::string> step_lines;  // this epoch's lines of steps.jsonl
    auto finish = [&] {
      const StepDone done = steps.finish_step();
      ++finished;
      timing.images += done.images;
      nlohmann::json line{{"epoch", epoch + 1}, {"step", finished}, {"images", done.images}};
      line.update(done.scalars);
      line["lr"] = steps.lr();
      line["time_s"] = timing.seconds_so_far();
      step_lines.push_back(line.dump());
      if (!done.nonfinite.empty()) {
        if (o.writer) progress.clear();
        throw std::runtime_error(done.nonfinite + " at epoch " + std::to_string(epoch + 1) + " step " +
                                 std::to_string(finished) + ": lower --lr (" + saved_phrase() + ")");
      }
      if (o.writer) progress.step(finished, timing.images, steps.running_losses());
    };
    while (steps.next_batch()) {
      test_step_point(epoch + 1, ++started);
      steps.queue_step();
      if (pending) finish();
      pending = true;
      if (const int sig = StopSignals::pending()) {
        if (o.writer) progress.clear();
        throw Interrupted(sig, "stopped by " + signal_name(sig) + " in epoch " + std::to_string(epoch + 1) + " after step " +
                                   std::to_string(started) + " of " + std::to_string(total) +
                                   " (the epoch is not saved): " + saved_phrase());
      }
    }
    if (pending) finish();
    timing.train_s = timing.seconds_so_far();
    steps.end_epoch(epoch, timing);
    if (o.writer) {
      // The epoch's files replace the previous epoch's together, or not at all (apps/run_dir.h).
      CheckpointSet set(o.out, epoch + 1);
      save_checkpoint(set, epoch + 1, saved_epoch, [&] {
        steps.save(epoch, set, timing);
        set.stage_jsonl("steps.jsonl", step_lines);
      });
      progress.clear();
      std::fprintf(stderr, "%s\n", steps.summary(epoch, timing).c_str());
    }
    saved_epoch = epoch + 1;
    // A signal during the test pass or the save: the epoch is complete and saved; stop here.
    if (const int sig = StopSignals::pending(); sig != 0 && epoch + 1 < o.epochs) {
      throw Interrupted(sig, "stopped by " + signal_name(sig) + " after epoch " + std::to_string(epoch + 1) + ": " +
                                 saved_phrase());
    }
  }
}

}  // namespace ll::app
