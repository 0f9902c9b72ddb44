// test_steer_cli.cpp: `latentlab steer` end to end on a tiny DCGAN run: its files, its numbers, and
// its refusals (a VAE run, an unknown edit, a range without 0).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using test::Result;
using test::run;
using test::TempDir;
using test::write_bars;
namespace fs = std::filesystem;

TEST(SteerCli, LearnsAWalkAndWritesItsReport) {
  TempDir t("steer");
  write_bars(t / "data");
  ASSERT_EQ(run({"train", "dcgan", "--data", t / "data", "--out", t / "dcgan", "--epochs", "1", "--batch-size", "16",
                 "--ngf", "8", "--ndf", "8", "--nz", "16", "--seed", "3", "--device", "cpu"})
                .status,
            0);
  Result r = run({"steer", t / "dcgan", "--edit", "brightness", "--out", t / "bright", "--steps", "40", "--batch", "8",
                  "--lr", "0.05", "--eval-n", "16", "--rows", "2", "--cols", "3", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["edit"], "brightness");
  EXPECT_EQ(j["walk"], "linear");
  EXPECT_GT(j["speed"].get<double>(), 0.0);  // |w|
  // The walk does the edit better than no walk and a random direction of its norm, at both ends.
  for (const char* end : {"mse_at_lo", "mse_at_hi"}) {
    EXPECT_LT(j[end]["learned"].get<double>(), j[end]["identity"].get<double>()) << end;
    EXPECT_LT(j[end]["learned"].get<double>(), j[end]["random"].get<double>()) << end;
  }
  for (const char* f : {"walk.png", "w.safetensors", "report.json", "report.md"}) {
    EXPECT_TRUE(fs::exists(t / ("bright/" + std::string(f)))) << f;
  }
  Metadata meta;
  const auto w = load_tensors(t / "bright/w.safetensors", &meta);
  EXPECT_EQ(w.at("w").shape(), (Shape{1, 16}));
  EXPECT_EQ(meta.at("edit"), "brightness");
  std::ifstream f(t / "bright/report.json");
  const auto report = nlohmann::json::parse(f);
  ASSERT_EQ(report["measured"].size(), 17u);  // 0 and 8 points on each side, to twice the range
  EXPECT_EQ(report["measured"][8]["a"], 0.0);
  EXPECT_EQ(report["measured"][8]["mse_learned"], 0.0);
  EXPECT_GT(fs::file_size(t / "bright/walk.png"), 1000u);
  // The same command, the same w (seeded).
  r = run({"steer", t / "dcgan", "--edit", "brightness", "--out", t / "bright2", "--steps", "40", "--batch", "8",
           "--lr", "0.05", "--eval-n", "16", "--rows", "2", "--cols", "3", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(load_tensors(t / "bright2/w.safetensors").at("w").to_vector(), w.at("w").to_vector());

  // A shift runs too (the centroid's displacement has the edit's sign at the range's ends).
  r = run({"steer", t / "dcgan", "--edit", "shift-x", "--out", t / "shift", "--steps", "20", "--batch", "8",
           "--eval-n", "8", "--rows", "1", "--cols", "2", "--range=-3:3", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_LT(s["target_at_lo"].get<double>(), 0.0);
  EXPECT_GT(s["target_at_hi"].get<double>(), 0.0);

  // The non-linear walk: two MLPs in walk.safetensors, and it too beats no walk.
  r = run({"steer", t / "dcgan", "--edit", "brightness", "--walk", "nonlinear", "--hidden", "16", "--out", t / "nl",
           "--steps", "40", "--batch", "8", "--lr", "0.01", "--eval-n", "16", "--rows", "2", "--cols", "3", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto nl = nlohmann::json::parse(r.out);
  EXPECT_EQ(nl["walk"], "nonlinear");
  for (const char* end : {"mse_at_lo", "mse_at_hi"}) {
    EXPECT_LT(nl[end]["learned"].get<double>(), nl[end]["identity"].get<double>()) << end;
  }
  const auto mlp = load_tensors(t / "nl/walk.safetensors");
  EXPECT_EQ(mlp.at("pos.0.weight").shape(), (Shape{16, 16}));
  EXPECT_EQ(mlp.at("neg.2.weight").shape(), (Shape{16, 16}));
  EXPECT_FALSE(fs::exists(t / "nl/w.safetensors"));

  // Refusals, one line each.
  r = run({"steer", t / "dcgan", "--edit", "rotate", "--out", t / "x"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--edit must be"), std::string::npos) << r.err;
  r = run({"steer", t / "dcgan", "--edit", "zoom", "--walk", "curved", "--out", t / "x"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--walk must be"), std::string::npos) << r.err;
  r = run({"steer", t / "dcgan", "--edit", "zoom", "--range", "0.1:0.5", "--out", t / "x"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--range"), std::string::npos) << r.err;
  test::write_toy_dataset(t / "toy", 32, 16);
  ASSERT_EQ(run({"train", "vae", "--data", t / "toy", "--out", t / "vae", "--epochs", "1", "--batch-size", "16",
                 "--latent-dim", "2", "--hidden", "16", "--device", "cpu"})
                .status,
            0);
  r = run({"steer", t / "vae", "--edit", "zoom", "--out", t / "x"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("needs a GAN run"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ll::app
