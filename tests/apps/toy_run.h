// toy_run.h: what the program's tests share: a temporary folder, a tiny synthetic data set in IDX
// files, and running `latentlab ...` in-process with its output captured.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "data/idx.h"
#include "tests/common/temp_dir.h"

namespace ll::app::test {

namespace fs = std::filesystem;

using ll::test::TempDir;  // tests/common/temp_dir.h

// 64 images of 28x28 in each split (the GANs' size): a bright bar at one of 4 heights, label =
// height index.
inline void write_bars(const std::string& dir) {
  fs::create_directories(dir);
  for (const char* split : {"train", "t10k"}) {
    data::IdxArray images{{64, 28, 28}, std::vector<uint8_t>(64 * 784, 0)};
    data::IdxArray labels{{64}, std::vector<uint8_t>(64)};
    for (int n = 0; n < 64; ++n) {
      labels.data[static_cast<size_t>(n)] = static_cast<uint8_t>(n % 4);
      for (int y = 4 + 5 * (n % 4); y < 8 + 5 * (n % 4); ++y)
        for (int x = 3; x < 25; ++x) images.data[static_cast<size_t>(n * 784 + y * 28 + x)] = 255;
    }
    data::write_idx(dir + "/" + split + "-images-idx3-ubyte", images);
    data::write_idx(dir + "/" + split + "-labels-idx1-ubyte", labels);
  }
}

// A folder data set of 12x12 images: a bright square at one of 4 places, label = place.
inline void write_toy_dataset(const std::string& dir, int64_t n_train, int64_t n_test) {
  fs::create_directories(dir);
  auto write = [&](const std::string& split, int64_t n) {
    data::IdxArray images{{n, 12, 12}, std::vector<uint8_t>(static_cast<size_t>(n * 144), 10)};
    data::IdxArray labels{{n}, std::vector<uint8_t>(static_cast<size_t>(n))};
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = i % 4, oy = (k / 2) * 6, ox = (k % 2) * 6;
      labels.data[static_cast<size_t>(i)] = static_cast<uint8_t>(k);
      for (int64_t y = 1; y < 5; ++y)
        for (int64_t x = 1; x < 5; ++x) images.data[static_cast<size_t>(i * 144 + (oy + y) * 12 + ox + x)] = 240;
    }
    data::write_idx(dir + "/" + split + "-images-idx3-ubyte", images);
    data::write_idx(dir + "/" + split + "-labels-idx1-ubyte", labels);
  };
  write("train", n_train);
  write("t10k", n_test);
}

struct Result {
  int status;
  std::string out, err;
};

inline Result run(std::vector<std::string> args) {
  args.insert(args.begin(), "latentlab");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int status = run_cli(static_cast<int>(argv.size()), argv.data());
  Result r{status, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
  return r;
}

// Trains a small VAE (or AE) for `epochs` on a toy data set in `t / "data"` and returns its run
// directory `t / name`; fails the test if training fails.
inline std::string train_toy_model(const TempDir& t, const std::string& name, const std::string& kind = "vae",
                                   int latent_dim = 2, int epochs = 3) {
  if (!fs::exists(t / "data/train-images-idx3-ubyte")) write_toy_dataset(t / "data", 96, 32);
  const Result r = run({"train", kind, "--data", t / "data", "--out", t / name, "--epochs", std::to_string(epochs),
                        "--batch-size", "16", "--latent-dim", std::to_string(latent_dim), "--hidden", "32", "--lr",
                        "3e-3", "--seed", "5", "--device", "cpu"});
  EXPECT_EQ(r.status, 0) << r.err;
  return t / name;
}

}  // namespace ll::app::test
