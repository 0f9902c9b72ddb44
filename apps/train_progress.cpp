#include "apps/train_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ll::app {

std::string format_duration(double seconds) {
  const long long s = std::llround(std::max(seconds, 0.0));
  char buf[40];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

TrainProgress::TrainProgress(int64_t epochs, int64_t log_every, bool live)
    : epochs_(epochs), log_every_(log_every), live_(live), run_start_(Clock::now()) {}

bool TrainProgress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) != 0; }

void TrainProgress::start_epoch(int64_t epoch, int64_t steps) {
  epoch_ = epoch;
  steps_ = steps;
  epoch_start_ = last_print_ = Clock::now();
}

std::string TrainProgress::line(int64_t step, int64_t seen, const std::string& losses) const {
  const double s = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  const double steps_per_s = static_cast<double>(step) / std::max(s, 1e-9);
  const double images_per_s = static_cast<double>(seen) / std::max(s, 1e-9);
  const double epoch_left = static_cast<double>(steps_ - step) / std::max(steps_per_s, 1e-9);
  const double run_left = epoch_left + static_cast<double>((epochs_ - epoch_ - 1) * steps_) / std::max(steps_per_s, 1e-9);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "epoch %lld/%lld  step %lld/%lld  ", static_cast<long long>(epoch_ + 1),
                static_cast<long long>(epochs_), static_cast<long long>(step), static_cast<long long>(steps_));
  std::string text = buf + losses;
  std::snprintf(buf, sizeof(buf), "  %.0f img/s  ETA ", images_per_s);
  text += buf + format_duration(epoch_left) + " (run " + format_duration(run_left) + ")";
  return text;
}

void TrainProgress::step(int64_t step, int64_t seen, const std::string& losses) {
  const Clock::time_point now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (live_) {
    if (since < 0.25 && step != steps_) return;
    last_print_ = now;
    std::fprintf(stderr, "\r%s   ", line(step, seen, losses).c_str());
    shown_ = true;
    return;
  }
  const bool due = log_every_ > 0 ? step % log_every_ == 0 : since >= 30.0;
  if (!due) return;
  last_print_ = now;
  std::fprintf(stderr, "latentlab: %s  %.1f s\n", line(step, seen, losses).c_str(),
               std::chrono::duration<double>(now - run_start_).count());
}

void TrainProgress::clear() {
  if (!shown_) return;
  std::fprintf(stderr, "\r%*s\r", 120, "");
  shown_ = false;
}

}  // namespace ll::app
