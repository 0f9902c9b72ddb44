// test_fid_cli.cpp: `latentlab train classifier` and `latentlab fid` end to end on a tiny data set of
// four classes (a bright bar at one of four heights), and the FID per epoch of `train dcgan|cgan`.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/idx.h"
#include "engine/checkpoint.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using test::Result;
using test::run;
using test::TempDir;
namespace fs = std::filesystem;

void write_bars(const std::string& dir) {
  fs::create_directories(dir);
  for (const char* split : {"train", "t10k"}) {
    data::IdxArray images{{64, 28, 28}, std::vector<uint8_t>(64 * 784, 0)};
    data::IdxArray labels{{64}, std::vector<uint8_t>(64)};
    for (int n = 0; n < 64; ++n) {
      labels.data[static_cast<size_t>(n)] = static_cast<uint8_t>(n % 4);
      for (int y = 4 + 5 * (n % 4); y < 8 + 5 * (n % 4); ++y)
        for (int x = 3 + n % 3; x < 25; ++x) images.data[static_cast<size_t>(n * 784 + y * 28 + x)] = 255;
    }
    data::write_idx(dir + "/" + split + "-images-idx3-ubyte", images);
    data::write_idx(dir + "/" + split + "-labels-idx1-ubyte", labels);
  }
}

nlohmann::json last_json_line(const std::string& text) {
  std::string last, line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '{') last = line;
  }
  return nlohmann::json::parse(last);
}

TEST(FidCli, ClassifierTrainsAndScoresItsOwnTestSetAtZero) {
  TempDir t("fid");
  write_bars(t / "data");
  const std::string clf = t / "clf";
  Result r = run({"train", "classifier", "--data", t / "data", "--out", clf, "--epochs", "8", "--batch-size", "16",
                  "--seed", "2", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  Metadata meta;
  load_tensors(clf + "/classifier.safetensors", &meta);
  EXPECT_EQ(meta["data"], t / "data");
  EXPECT_GE(std::stod(meta["test_accuracy"]), 0.9) << "four bar heights are easy to tell apart";
  EXPECT_TRUE(fs::exists(clf + "/metrics.jsonl"));

  // The test images themselves: the same statistics as the reference, FID 0 up to rounding. (64
  // images give a covariance of rank <= 63 in 128 dimensions: the square roots of its ~0 eigenvalues
  // turn float64 rounding into ~1e-4 here.)
  r = run({"fid", t / "data/t10k-images-idx3-ubyte", "--classifier", clf, "--n", "64", "--floor", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = last_json_line(r.out);
  EXPECT_NEAR(j["fid"].get<double>(), 0.0, 1e-3);
  EXPECT_EQ(j["n"].get<int64_t>(), 64);
  int64_t total = 0;
  for (int64_t c : j["class_histogram"]) total += c;
  EXPECT_EQ(total, 64);
  EXPECT_GT(j["mean_confidence"].get<double>(), 0.25);
  EXPECT_TRUE(j.contains("floor"));

  // A GAN trained with that classifier reports FID after each epoch; `fid` scores the run, and
  // the conditional GAN's samples per class.
  for (const char* model : {"dcgan", "cgan"}) {
    const std::string out = t / (std::string(model) + "_run");
    r = run({"train", model, "--data", t / "data", "--out", out, "--epochs", "1", "--batch-size", "16", "--ngf", "8",
             "--ndf", "8", "--nz", "16", "--seed", "3", "--device", "cpu", "--classifier", clf, "--fid-n", "100"});
    ASSERT_EQ(r.status, 0) << r.err;
    std::ifstream f(out + "/metrics.jsonl");
    std::string line;
    std::getline(f, line);
    const auto m = nlohmann::json::parse(line);
    ASSERT_TRUE(m.contains("fid")) << line;
    EXPECT_GT(m["fid"].get<double>(), 0.0);
    EXPECT_EQ(m["fid_n"].get<int64_t>(), 100);
    r = run({"fid", out, "--classifier", clf, "--n", "40", "--device", "cpu"});
    ASSERT_EQ(r.status, 0) << r.err;
    const auto g = last_json_line(r.out);
    EXPECT_EQ(g["n"].get<int64_t>(), 40);
    EXPECT_EQ(g.contains("per_class_accuracy"), std::string(model) == "cgan");
    if (std::string(model) == "cgan") {
      EXPECT_EQ(g["per_class_accuracy"].size(), 4u);
    }
  }
}

TEST(FidCli, BadInputGetsOneClearLine) {
  TempDir t("fid_bad");
  write_bars(t / "data");
  Result r = run({"fid", t / "data/t10k-images-idx3-ubyte", "--classifier", t / "none", "--device", "cpu"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("latentlab train classifier"), std::string::npos) << r.err;
  r = run({"fid", t / "missing.idx", "--classifier", t / "none", "--device", "cpu"});
  EXPECT_NE(r.status, 0);
  r = run({"fid", t / "data/t10k-images-idx3-ubyte", "--n", "1", "--device", "cpu"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--n"), std::string::npos) << r.err;
  r = run({"fid", t / "data", "--device", "cpu"});
  EXPECT_NE(r.status, 0) << "a data folder is no run directory";
}

}  // namespace
}  // namespace ll::app
