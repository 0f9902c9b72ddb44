// test_gan_cli.cpp: `latentlab train dcgan|cgan` end to end on a tiny 28x28 data set, and
// `train gan128` on a folder of images.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/idx.h"
#include "data/image.h"
#include "engine/checkpoint.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using test::Result;
using test::run;
using test::TempDir;
using test::write_bars;
namespace fs = std::filesystem;

std::vector<std::string> gan_args(const std::string& model, const std::string& data, const std::string& out, int epochs) {
  return {"train", model, "--data", data, "--out", out, "--epochs", std::to_string(epochs), "--batch-size", "16",
          "--ngf", "8", "--ndf", "8", "--nz", "16", "--seed", "3", "--device", "cpu"};
}

TEST(GanCli, TrainsWritesAndResumesExactly) {
  TempDir t("gan");
  write_bars(t / "data");
  for (const char* model : {"dcgan", "cgan"}) {
    const std::string m = model;
    Result r = run(gan_args(m, t / "data", t / (m + "_straight"), 2));
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* f : {"generator.safetensors", "discriminator.safetensors", "optimizer_g.safetensors",
                          "optimizer_d.safetensors", "metrics.jsonl", "samples_epoch2.png"}) {
      EXPECT_TRUE(fs::exists(t / (m + "_straight/" + f))) << m << " " << f;
    }
    std::ifstream f(t / (m + "_straight/metrics.jsonl"));
    std::string line;
    int lines = 0;
    while (std::getline(f, line)) {
      const auto j = nlohmann::json::parse(line);
      for (const char* key : {"loss_d", "loss_g", "d_real", "d_fake", "d_accuracy", "img_per_s"}) {
        EXPECT_TRUE(j.contains(key)) << key;
      }
      ++lines;
    }
    EXPECT_EQ(lines, 2);
    // steps.jsonl: 64 images in batches of 16, 4 steps an epoch, each with both losses and D's figures.
    std::ifstream steps_file(t / (m + "_straight/steps.jsonl"));
    int step_lines = 0;
    for (std::string step_line; std::getline(steps_file, step_line); ++step_lines) {
      const auto j = nlohmann::json::parse(step_line);
      EXPECT_EQ(j["epoch"], 1 + step_lines / 4) << step_line;
      EXPECT_EQ(j["step"], 1 + step_lines % 4) << step_line;
      for (const char* key : {"images", "loss_d", "loss_g", "d_real", "d_fake", "d_accuracy", "lr", "time_s"}) {
        EXPECT_TRUE(j.contains(key)) << key;
      }
    }
    EXPECT_EQ(step_lines, 8);
    // Resume: 1 epoch, then on to 2, equals 2 straight.
    ASSERT_EQ(run(gan_args(m, t / "data", t / (m + "_split"), 1)).status, 0);
    std::vector<std::string> resume = gan_args(m, t / "data", t / (m + "_split"), 2);
    resume.push_back("--resume");
    r = run(resume);
    ASSERT_EQ(r.status, 0) << r.err;
    const auto a = load_tensors(t / (m + "_straight/generator.safetensors"));
    const auto b = load_tensors(t / (m + "_split/generator.safetensors"));
    for (auto& [name, tensor] : a) EXPECT_EQ(tensor.to_vector(), b.at(name).to_vector()) << m << " " << name;
    // No overwriting a run without --resume.
    r = run(gan_args(m, t / "data", t / (m + "_split"), 3));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
    // An optimizer file of another epoch than the generator's (a save cut short) is refused.
    save_tensors(t / (m + "_split/optimizer_d.safetensors"), load_tensors(t / (m + "_split/optimizer_d.safetensors")),
                 {{"epoch", "1"}});
    resume = gan_args(m, t / "data", t / (m + "_split"), 3);
    resume.push_back("--resume");
    r = run(resume);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("are not from the generator's epoch"), std::string::npos) << r.err;
  }
}

TEST(GanCli, SampleInterpolateAndArithmeticOnGanRuns) {
  TempDir t("gan_lab");
  write_bars(t / "data");
  ASSERT_EQ(run(gan_args("dcgan", t / "data", t / "dcgan", 1)).status, 0);
  ASSERT_EQ(run(gan_args("cgan", t / "data", t / "cgan", 1)).status, 0);

  // sample: IDX of the training data's shape, seeded; a numbered sheet; PNG grids.
  Result r = run({"sample", t / "dcgan", "--n", "12", "--seed", "4", "--out", t / "s.idx"});
  ASSERT_EQ(r.status, 0) << r.err;
  const data::IdxArray a = data::read_idx(t / "s.idx");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{12, 28, 28}));
  ASSERT_EQ(run({"sample", t / "dcgan", "--n", "12", "--seed", "4", "--out", t / "s2.idx"}).status, 0);
  EXPECT_EQ(data::read_idx(t / "s2.idx").data, a.data);
  ASSERT_EQ(run({"sample", t / "dcgan", "--n", "20", "--nrow", "10", "--numbered", "--out", t / "n.png"}).status, 0);
  EXPECT_TRUE(fs::exists(t / "n.png"));
  // cgan: --label draws one class; the same noise with two labels gives two different images.
  ASSERT_EQ(run({"sample", t / "cgan", "--n", "4", "--label", "1", "--out", t / "c1.idx"}).status, 0);
  ASSERT_EQ(run({"sample", t / "cgan", "--n", "4", "--label", "2", "--out", t / "c2.idx"}).status, 0);
  EXPECT_NE(data::read_idx(t / "c1.idx").data, data::read_idx(t / "c2.idx").data);
  EXPECT_NE(run({"sample", t / "cgan", "--n", "4", "--label", "7", "--out", t / "c7.idx"}).status, 0);  // 4 classes
  EXPECT_NE(run({"sample", t / "dcgan", "--n", "4", "--label", "1", "--out", t / "x.idx"}).status, 0);  // not conditional

  // interpolate between two noise vectors; a GAN has no encoder.
  r = run({"interpolate", t / "dcgan", "--mode", "both", "--steps", "5", "--seed", "2", "--out", t / "i.png"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["steps"], 5);
  EXPECT_GT(j["distance"].get<double>(), 0.0);
  r = run({"interpolate", t / "dcgan", "--from", "3", "--out", t / "i2.png"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("no encoder"), std::string::npos) << r.err;

  // arithmetic in noise space over a generated batch, the study's three groups.
  r = run({"arithmetic", t / "dcgan", "--plus", "1,2,3", "--minus", "idx:4,5,6", "--base", "7,8,9", "--batch", "20",
           "--seed", "1", "--out", t / "a.png"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto k = nlohmann::json::parse(r.out);
  EXPECT_EQ(k["plus"], (std::vector<int64_t>{1, 2, 3}));
  EXPECT_GT(k["vector_norm"].get<double>(), 0.0);
  EXPECT_TRUE(fs::exists(t / "a.png"));
  EXPECT_NE(run({"arithmetic", t / "dcgan", "--plus", "1,99", "--minus", "2", "--base", "3", "--batch", "20", "--out",
                 t / "b.png"}).status, 0);  // 99 is not in the batch
  EXPECT_NE(run({"arithmetic", t / "dcgan", "--concept", "label:1-label:2", "--out", t / "b.png"}).status, 0);

  // A generator file whose metadata was edited: a configuration of a far larger model than the file
  // holds is refused before that model is built; a resume count that is not a count is named.
  Metadata meta;
  const auto tensors = load_tensors(t / "dcgan/generator.safetensors", &meta);
  fs::create_directories(t / "edited");
  auto config = nlohmann::json::parse(meta["config"]);
  config["ngf"] = 512;  // about 20M parameters: allowed, and far more than the file holds
  save_tensors(t / "edited/generator.safetensors", tensors, {{"config", config.dump()}, {"epoch", "1"}});
  r = run({"sample", t / "edited", "--n", "4", "--out", t / "e.idx"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("parameters, but the file holds"), std::string::npos) << r.err;
  save_tensors(t / "edited/generator.safetensors", tensors, {{"config", "{\"arch\":\"dcgan28\",\"nz\":1.5}"}});
  r = run({"sample", t / "edited", "--n", "4", "--out", t / "e.idx"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("bad GAN configuration"), std::string::npos) << r.err;
  fs::copy(t / "dcgan", t / "edited_epoch", fs::copy_options::recursive);
  meta["epoch"] = "one";
  save_tensors(t / "edited_epoch/generator.safetensors", tensors, meta);
  std::vector<std::string> resume = gan_args("dcgan", t / "data", t / "edited_epoch", 2);
  resume.push_back("--resume");
  r = run(resume);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("\"epoch\" is \"one\", not a count"), std::string::npos) << r.err;
}

TEST(GanCli, RefusesImagesOfTheWrongSize) {
  TempDir t("gan_bad");
  test::write_toy_dataset(t / "data", 16, 8);  // 12x12 images
  const Result r = run(gan_args("dcgan", t / "data", t / "run", 1));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("28x28"), std::string::npos) << r.err;
}

// A GAN drops the last partial batch: fewer images than --batch-size would train no step, and is
// refused, as are nonsense values of the GAN's own flags.
TEST(GanCli, RefusesABatchLargerThanTheDataAndNonsenseFlags) {
  TempDir t("gan_flags");
  write_bars(t / "data");  // 64 images
  std::vector<std::string> args = gan_args("dcgan", t / "data", t / "run", 1);
  args[9] = "65";  // --batch-size
  Result r = run(args);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("latentlab: error: --batch-size 65 is more than the 64 training images: dcgan drops the last partial batch, "
                       "so an epoch would train no step (use --batch-size 64 or less)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(t / "run"));
  args = gan_args("cgan", t / "data", t / "run", 1);
  args.insert(args.end(), {"--limit", "8"});  // 8 images, batch 16
  r = run(args);
  EXPECT_NE(r.err.find("--batch-size 16 is more than the 8 training images"), std::string::npos) << r.err;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--beta1", "1"}, "--beta1 must be in [0, 1)"},       {{"--beta1", "-0.5"}, "--beta1 must be in [0, 1)"},
      {{"--nz", "0"}, "--nz must be in 1..4096"},            {{"--ngf", "0"}, "--ngf must be in 1..1024"},
      {{"--ndf", "100000"}, "--ndf must be in 1..1024"},     {{"--fid-n", "-1"}, "--fid-n must be in 0..1000000"},
      {{"--image-size", "-64"}, "--image-size must be in 0..1024"}, {{"--lr", "inf"}, "--lr must be a positive finite number"},
  };
  for (const auto& [flag, message] : cases) {
    std::vector<std::string> a = {"train", "dcgan", "--data", t / "data", "--out", t / "run", "--device", "cpu"};
    a.insert(a.end(), flag.begin(), flag.end());
    r = run(a);
    EXPECT_NE(r.status, 0) << flag[0];
    EXPECT_NE(r.err.find("latentlab: error: " + message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(t / "run"));
  }
}

// Non-finite losses stop the GANs and the classifier naming the epoch and the step.
TEST(GanCli, ANonFiniteLossStopsNamingEpochAndStep) {
  TempDir t("gan_nan");
  write_bars(t / "data");
  for (const char* model : {"dcgan", "cgan"}) {
    std::vector<std::string> args = gan_args(model, t / "data", t / (std::string(model) + "_run"), 2);
    args.insert(args.end(), {"--lr", "1e30"});
    const Result r = run(args);
    EXPECT_NE(r.status, 0) << model;
    EXPECT_NE(r.err.find("latentlab: error: the GAN losses became non-finite"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("at epoch 1 step 1: lower --lr (no epoch was complete, so nothing was saved in"), std::string::npos) << r.err;
  }
  const Result r = run({"train", "classifier", "--data", t / "data", "--out", t / "clf", "--epochs", "2", "--batch-size", "16",
                        "--lr", "1e30", "--device", "cpu"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("latentlab: error: the classifier's loss became"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("at epoch 1 step 2: lower --lr"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / "clf/classifier.safetensors"));
}

// The study's 128x128 GAN trains on a folder of pictures of any size (center-cropped and resized),
// skipping a broken file, and its run serves `sample`.
TEST(GanCli, Gan128TrainsOnAFolderOfImages) {
  TempDir t("gan128");
  fs::create_directories(t / "faces");
  for (int i = 0; i < 3; ++i) {
    data::Image im{150 + 20 * i, 140, 3, {}};
    im.pixels.resize(static_cast<size_t>(im.width * im.height * 3));
    for (size_t k = 0; k < im.pixels.size(); ++k) im.pixels[k] = static_cast<uint8_t>((k * (7 + i)) % 251);
    data::save_png(t / ("faces/face" + std::to_string(i) + ".png"), im);
  }
  std::ofstream(t / "faces/broken.jpg") << "not a picture";
  Result r = run({"train", "gan128", "--data", t / "faces", "--out", t / "run", "--epochs", "1", "--batch-size", "2",
                  "--seed", "5", "--device", "cpu"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("skipped 1 of 4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gan128"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(t / "run/samples_epoch1.png"));
  Metadata meta;
  (void)load_tensors(t / "run/generator.safetensors", &meta);
  EXPECT_NE(meta.at("config").find("gan128"), std::string::npos) << meta.at("config");
  r = run({"sample", t / "run", "--n", "2", "--out", t / "s.idx"});
  ASSERT_EQ(r.status, 0) << r.err;
  // Another size for the same model is refused with the size it needs.
  r = run({"train", "gan128", "--data", t / "faces", "--out", t / "run64", "--image-size", "64", "--device", "cpu"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("128x128"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ll::app
