// test_dbvae_cli.cpp: `latentlab train dbvae` and `latentlab debias-report` end to end on a toy data
// set (tests/apps/toy_run.h: 12x12 squares at 4 places, class = place), and the weighted draw.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "apps/train_dbvae.h"
#include "tests/apps/toy_run.h"

namespace ll::app::test {
namespace {

std::vector<std::string> dbvae_args(const TempDir& t, const std::string& name, const std::string& debias, int seed) {
  return {"train", "dbvae", "--data", t / "data", "--out", t / name, "--epochs", "2", "--batch-size", "16",
          "--hidden", "16", "--latent-dim", "2", "--majority", "0", "--minority", "1", "--negative", "2,3",
          "--minority-fraction", "0.1", "--bins", "4", "--alpha", "0.01", "--debias", debias, "--seed",
          std::to_string(seed), "--device", "cpu"};
}

TEST(DbVaeCli, TrainsBothModesAndTheReportMeasuresThemPerSubgroup) {
  TempDir t("dbvae");
  write_toy_dataset(t / "data", 96, 32);  // 24 images per class in training, 8 in test
  for (const auto& [name, debias, seed] : {std::tuple{"on1", "on", 1}, {"on2", "on", 2}, {"off1", "off", 1}}) {
    const Result r = run(dbvae_args(t, name, debias, seed));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::exists(t / (std::string(name) + "/dbvae.safetensors")));
    std::ifstream metrics(t / (std::string(name) + "/metrics.jsonl"));
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(metrics, line);) lines.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(lines.size(), 2u);
    for (const char* key : {"test_accuracy_minority", "test_accuracy_majority", "minority_weight_mass", "minority_drawn"}) {
      EXPECT_TRUE(lines[1].contains(key)) << key;
    }
    // 24 majority positives and round(0.1 / 0.9 * 24) = 3 minority ones.
    EXPECT_NE(r.err.find("24 majority + 3 minority positives, 48 negatives"), std::string::npos) << r.err;
  }
  const Result rep = run({"debias-report", t / "on1", t / "on2", t / "off1", "--out", t / "report", "--top", "8", "--device", "cpu"});
  ASSERT_EQ(rep.status, 0) << rep.err;
  for (const char* f : {"report.json", "report.md", "resampled.png"}) EXPECT_TRUE(fs::exists(t / ("report/" + std::string(f)))) << f;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(t / "report/report.json"));
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["summary"]["groups"]["on"]["runs"], 2);
  EXPECT_EQ(j["summary"]["groups"]["off"]["runs"], 1);
  for (const auto& run_j : j["runs"]) {
    EXPECT_EQ(run_j["test_images"]["minority"], 8);  // the test split keeps the whole minority
    const double gap = run_j["gap"].get<double>();
    EXPECT_NEAR(gap, run_j["accuracy_majority"].get<double>() - run_j["accuracy_minority"].get<double>(), 1e-12);
  }
  EXPECT_TRUE(j["summary"].contains("on_minus_off"));
  const double mass = j["resampled"]["minority_share_of_weight"].get<double>();
  EXPECT_GT(mass, 0.0);
  EXPECT_LE(mass, 1.0);
  EXPECT_EQ(j["resampled"]["images"].size(), 8u);
  EXPECT_NE(rep.out.find("\"groups\""), std::string::npos) << rep.out;
}

TEST(DbVaeCli, BadFlagsGetOneLine) {
  TempDir t("dbvae_bad");
  write_toy_dataset(t / "data", 32, 8);
  auto args = dbvae_args(t, "r", "on", 1);
  args.push_back("--alpha=-1");
  Result r = run(args);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--alpha"), std::string::npos) << r.err;
  r = run({"train", "vae", "--data", t / "data", "--out", t / "v", "--bins", "4"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--bins is for dbvae"), std::string::npos) << r.err;
  args = dbvae_args(t, "r2", "on", 1);
  *std::find(args.begin(), args.end(), std::string("2,3")) = "0,2";  // --negative 0,2: class 0 is also the majority
  r = run(args);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("more than one"), std::string::npos) << r.err;
  r = run({"debias-report", t / "nothing", "--out", t / "rep"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("no dbvae.safetensors"), std::string::npos) << r.err;
}

TEST(WeightedDraw, FollowsTheWeightsAndTheSeed) {
  const std::vector<double> w{0.0, 0.25, 0.75};
  const std::vector<int64_t> a = weighted_draw(w, 4000, 7, 0);
  int64_t count[3] = {0, 0, 0};
  for (int64_t k : a) ++count[k];
  EXPECT_EQ(count[0], 0);
  EXPECT_NEAR(static_cast<double>(count[1]) / 4000.0, 0.25, 0.03);
  EXPECT_EQ(a, weighted_draw(w, 4000, 7, 0));
  EXPECT_NE(a, weighted_draw(w, 4000, 7, 1));
}

}  // namespace
}  // namespace ll::app::test
