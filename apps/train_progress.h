// train_progress.h: the progress lines every training prints on stderr while an epoch runs.
//
// On a terminal, one live line, rewritten at most four times a second:
//   epoch 2/10  step 120/469  loss 104.21  1890 img/s  ETA 0:19 (run 2:51)
// Elsewhere (a log file, CI, nohup) a live line would be invisible until the epoch ends, so a plain
// line is printed instead: every --log-every steps when that flag is given, else every 30 seconds,
//   latentlab: epoch 2/10  step 120/469  loss 104.21  1890 img/s  ETA 0:19 (run 2:51)  41.3 s
// ending with the time since the training started. The losses are the caller's text (running means
// over the epoch so far). ETA: the rest of this epoch at this epoch's rate of steps; "run": the
// epochs still to come at the same rate (test passes and checkpoints not counted).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace ll::app {

// "m:ss" (minutes may exceed 59), or "h:mm:ss" from an hour on.
std::string format_duration(double seconds);

class TrainProgress {
 public:
  // `log_every`: steps between plain lines (0: every 30 s); `live`: stderr is a terminal.
  TrainProgress(int64_t epochs, int64_t log_every, bool live);
  static bool stderr_is_terminal();

  void start_epoch(int64_t epoch, int64_t steps);  // epoch counts from 0
  // After step `step` (1-based) of the epoch, with `seen` images trained on in this epoch so far.
  void step(int64_t step, int64_t seen, const std::string& losses);
  // Clears the live line, before the epoch's summary line or an error.
  void clear();

 private:
  using Clock = std::chrono::steady_clock;
  std::string line(int64_t step, int64_t seen, const std::string& losses) const;

  int64_t epochs_, log_every_;
  bool live_;
  int64_t epoch_ = 0, steps_ = 0;
  Clock::time_point run_start_, epoch_start_, last_print_;
  bool shown_ = false;  // a live line is on the screen
};

}  // namespace ll::app
