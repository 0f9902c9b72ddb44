// test_pix2pix_cli.cpp: `latentlab train pix2pix` end to end on a tiny 28x28 data set: both tasks
// write their run directory (checkpoints, metrics with the test figures and baselines, the sheets),
// --resume continues exactly, and the pix2pix flags are refused elsewhere (and vice versa).
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

std::vector<std::string> p2p_args(const std::string& task, const std::string& data, const std::string& out, int epochs) {
  return {"train", "pix2pix", "--task", task, "--data", data, "--out", out, "--epochs", std::to_string(epochs),
          "--batch-size", "16", "--ngf", "4", "--ndf", "4", "--test-limit", "20", "--seed", "3", "--device", "cpu"};
}

TEST(Pix2PixCli, TrainsBothTasksAndResumesExactly) {
  TempDir t("pix2pix");
  write_bars(t / "data");
  for (const char* task : {"edges", "inpaint"}) {
    const std::string k = task;
    Result r = run(p2p_args(k, t / "data", t / (k + "_straight"), 2));
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* f : {"generator.safetensors", "discriminator.safetensors", "optimizer_g.safetensors",
                          "optimizer_d.safetensors", "metrics.jsonl", "steps.jsonl", "sheet_epoch1.png",
                          "sheet_epoch2.png", "sheet.png"}) {
      EXPECT_TRUE(fs::exists(t / (k + "_straight/" + f))) << k << " " << f;
    }
    std::ifstream f(t / (k + "_straight/metrics.jsonl"));
    int lines = 0;
    for (std::string line; std::getline(f, line); ++lines) {
      const auto j = nlohmann::json::parse(line);
      for (const char* key : {"loss_d", "loss_gan", "l1", "test_l1", "identity_l1", "img_per_s"}) {
        EXPECT_TRUE(j.contains(key)) << key;
      }
      EXPECT_EQ(j["task"], k);
      EXPECT_EQ(j["test_n"], 20);
      EXPECT_GT(j["test_l1"].get<double>(), 0.0);
      EXPECT_GT(j["identity_l1"].get<double>(), 0.0);
      EXPECT_FALSE(j.contains("fid"));  // no classifier in this directory
    }
    EXPECT_EQ(lines, 2);
    Metadata meta;
    load_tensors(t / (k + "_straight/generator.safetensors"), &meta);
    EXPECT_EQ(meta["task"], k);
    EXPECT_EQ(meta["epoch"], "2");
    EXPECT_EQ(meta["lambda_l1"], "100.0");  // setting_text: reads back as the same double
    // The commands for generative runs name it rather than misread its generator.
    r = run({"sample", t / (k + "_straight"), "--n", "4", "--out", t / "s.png"});
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("holds a pix2pix run"), std::string::npos) << r.err;
    // Resume: 1 epoch, then on to 2, equals 2 straight (weights, and the dropout masks' stream).
    ASSERT_EQ(run(p2p_args(k, t / "data", t / (k + "_split"), 1)).status, 0);
    std::vector<std::string> resume = p2p_args(k, t / "data", t / (k + "_split"), 2);
    resume.push_back("--resume");
    r = run(resume);
    ASSERT_EQ(r.status, 0) << r.err;
    const auto a = load_tensors(t / (k + "_straight/generator.safetensors"));
    const auto b = load_tensors(t / (k + "_split/generator.safetensors"));
    for (auto& [name, tensor] : a) EXPECT_EQ(tensor.to_vector(), b.at(name).to_vector()) << k << " " << name;
    // No overwriting a run without --resume; no resuming with another task.
    r = run(p2p_args(k, t / "data", t / (k + "_split"), 3));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
    resume = p2p_args(k == "edges" ? "inpaint" : "edges", t / "data", t / (k + "_split"), 3);
    resume.push_back("--resume");
    r = run(resume);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("task"), std::string::npos) << r.err;
  }
}

TEST(Pix2PixCli, L1OnlyAndFlagChecks) {
  TempDir t("pix2pix_flags");
  write_bars(t / "data");
  std::vector<std::string> args = p2p_args("edges", t / "data", t / "l1", 1);
  args.insert(args.end(), {"--gan-weight", "0"});
  Result r = run(args);
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(t / "l1/metrics.jsonl");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(nlohmann::json::parse(line)["loss_d"], 0.0);
  // pix2pix's flags are refused by other models, the autoencoders' by pix2pix; bad values name the flag.
  r = run({"train", "dcgan", "--data", t / "data", "--out", t / "x", "--task", "edges"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--task is for pix2pix"), std::string::npos) << r.err;
  r = run({"train", "pix2pix", "--data", t / "data", "--out", t / "y", "--latent-dim", "4"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--latent-dim"), std::string::npos) << r.err;
  r = run({"train", "pix2pix", "--data", t / "data", "--out", t / "z", "--task", "colorize"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--task"), std::string::npos) << r.err;
  r = run({"train", "pix2pix", "--task", "inpaint", "--mask-size", "28", "--data", t / "data", "--out", t / "w"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--mask-size"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / "w/generator.safetensors"));
}

}  // namespace
}  // namespace ll::app
