// test_progress.cpp: the progress lines of a training (apps/train_progress.h) where stderr is not a
// terminal: one plain line every --log-every steps, with the step, the caller's losses, img/s and
// the ETAs; durations as m:ss and h:mm:ss.
#include <gtest/gtest.h>

#include <string>

#include "apps/train_progress.h"

namespace ll::app {
namespace {

TEST(TrainProgress, DurationsReadAsMinutesAndHours) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(59.6), "1:00");
  EXPECT_EQ(format_duration(61), "1:01");
  EXPECT_EQ(format_duration(3599), "59:59");
  EXPECT_EQ(format_duration(3725), "1:02:05");
  EXPECT_EQ(format_duration(-3), "0:00");
}

TEST(TrainProgress, APlainLineEveryLogEverySteps) {
  TrainProgress progress(/*epochs=*/3, /*log_every=*/2, /*live=*/false);
  testing::internal::CaptureStderr();
  progress.start_epoch(1, 5);
  for (int64_t step = 1; step <= 5; ++step) progress.step(step, step * 16, "loss " + std::to_string(step));
  progress.clear();  // nothing to clear: no live line
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.find("step 1/5"), std::string::npos) << out;
  EXPECT_NE(out.find("latentlab: epoch 2/3  step 2/5  loss 2  "), std::string::npos) << out;
  EXPECT_NE(out.find("latentlab: epoch 2/3  step 4/5  loss 4  "), std::string::npos) << out;
  EXPECT_EQ(out.find("step 5/5"), std::string::npos) << out;
  int lines = 0;
  for (char c : out) lines += c == '\n';
  EXPECT_EQ(lines, 2) << out;
  EXPECT_NE(out.find(" img/s  ETA "), std::string::npos) << out;
  EXPECT_NE(out.find(" (run "), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;  // no carriage returns in a log
}

TEST(TrainProgress, WithoutLogEveryAQuietLogUntilThirtySeconds) {
  TrainProgress progress(1, 0, false);
  testing::internal::CaptureStderr();
  progress.start_epoch(0, 1000);
  for (int64_t step = 1; step <= 1000; ++step) progress.step(step, step, "loss 1");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");  // a fast epoch: no line before its summary
}

TEST(TrainProgress, ALiveLineOnATerminalIsRewrittenAndCleared) {
  TrainProgress progress(1, 0, true);
  testing::internal::CaptureStderr();
  progress.start_epoch(0, 3);
  for (int64_t step = 1; step <= 3; ++step) progress.step(step, step, "loss 1");
  progress.clear();
  const std::string out = testing::internal::GetCapturedStderr();
  // At most four times a second, and always at the epoch's last step: here only that one.
  EXPECT_EQ(out.rfind("\repoch 1/1  step 3/3  loss 1  ", 0), 0u) << out;
  EXPECT_EQ(out.find('\n'), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\r') << out;  // cleared, ready for the epoch's summary line
}

}  // namespace
}  // namespace ll::app
