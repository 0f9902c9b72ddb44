// test_latent_cmds.cpp: `latentlab interpolate`, `arithmetic` and `traverse`, in-process, on small
// VAE and AE models trained on the 12x12 toy data set (4 classes: a bright square in one of 4 places).
// The pictures are checked by their layout (sizes that follow from rows and columns), the numbers by
// recomputing them from the model with models/latent.h, and bad input by its exit status and message.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/run_dir.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "engine/ops/ops.h"
#include "models/latent.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using test::Result;
using test::run;
using test::TempDir;
namespace fs = std::filesystem;

constexpr int64_t kUpscale = 8;                  // passed as --upscale: 12x12 images become 96x96 cells
constexpr int64_t kCell = 12 * kUpscale + 2;     // a cell and the grid's 2-pixel padding

// One VAE (4-d) and one AE (3-d) trained once for the whole suite.
class LatentCmds : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>("latent_cmds");
    vae_ = test::train_toy_model(*dir_, "vae", "vae", 4, 4);
    ae_ = test::train_toy_model(*dir_, "ae", "ae", 3, 4);
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::string out(const std::string& name) { return *dir_ / name; }
  static std::string data() { return *dir_ / "data"; }

  static std::unique_ptr<TempDir> dir_;
  static std::string vae_, ae_;
};
std::unique_ptr<TempDir> LatentCmds::dir_;
std::string LatentCmds::vae_, LatentCmds::ae_;

// The command's stdout is exactly one JSON line.
nlohmann::json json_of(const Result& r) {
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  return nlohmann::json::parse(r.out);
}

// Width and height from a PNG's IHDR chunk (bytes 16..23, big-endian).
std::pair<int64_t, int64_t> png_size(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<unsigned char> h(24);
  f.read(reinterpret_cast<char*>(h.data()), 24);
  EXPECT_TRUE(f) << "cannot read a PNG header from " << path;
  EXPECT_EQ(h[1], 'P');
  auto be32 = [&](int at) { return (int64_t{h[at]} << 24) | (int64_t{h[at + 1]} << 16) | (int64_t{h[at + 2]} << 8) | int64_t{h[at + 3]}; };
  return {be32(16), be32(20)};
}

// A failed command: nonzero exit, nothing on stdout, one line on stderr containing `what`.
void expect_error(const Result& r, const std::string& what) {
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << "expected '" << what << "' in: " << r.err;
}

std::vector<float> row(const Tensor& t, int64_t i) {
  const std::vector<float> v = t.to_vector();
  const int64_t d = t.size(1);
  return {v.begin() + i * d, v.begin() + (i + 1) * d};
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// ---------------------------------------------------------------- interpolate

TEST_F(LatentCmds, InterpolateWritesAStripWithTheInputsAtBothEnds) {
  const std::string png = out("strip.png");
  const nlohmann::json j = json_of(run({"interpolate", vae_, "--from", "0", "--to", "5", "--steps", "6", "--out", png,
                                        "--upscale", std::to_string(kUpscale)}));
  EXPECT_TRUE(fs::exists(png));
  EXPECT_EQ(j["from"]["index"], 0);
  EXPECT_EQ(j["to"]["index"], 5);
  EXPECT_EQ(j["from"]["label"], 0);
  EXPECT_EQ(j["to"]["label"], 1);
  EXPECT_EQ(j["mode"], "lerp");
  EXPECT_EQ(j["steps"], 6);
  EXPECT_EQ(j["out"], png);
  ASSERT_EQ(j["path_norms"]["lerp"].size(), 6u);
  EXPECT_NEAR(j["path_norms"]["lerp"][0].get<double>(), j["from"]["norm"].get<double>(), 1e-4);
  EXPECT_NEAR(j["path_norms"]["lerp"][5].get<double>(), j["to"]["norm"].get<double>(), 1e-4);
  EXPECT_GT(j["distance"].get<double>(), 0.0);
  EXPECT_GE(j["angle_deg"].get<double>(), 0.0);
  EXPECT_LE(j["angle_deg"].get<double>(), 180.0);

  // Layout: 6 path columns + 2 input columns; one more step adds one cell, `both` adds one row.
  const auto [w6, h6] = png_size(png);
  EXPECT_GE(w6, 8 * kCell);
  EXPECT_GE(h6, kCell);
  ASSERT_EQ(run({"interpolate", vae_, "--from", "0", "--to", "5", "--steps", "7", "--out", out("strip7.png"), "--upscale",
                 std::to_string(kUpscale)}).status, 0);
  ASSERT_EQ(run({"interpolate", vae_, "--from", "0", "--to", "5", "--steps", "6", "--mode", "both", "--out", out("both.png"),
                 "--upscale", std::to_string(kUpscale)}).status, 0);
  const auto [w7, h7] = png_size(out("strip7.png"));
  const auto [wb, hb] = png_size(out("both.png"));
  EXPECT_EQ(w7 - w6, kCell);
  EXPECT_EQ(h7, h6);
  EXPECT_EQ(hb - h6, kCell);
  EXPECT_GT(wb, w6);  // the row labels "lerp" / "slerp"
}

TEST_F(LatentCmds, InterpolateRandomEndsAreDistinctAndDeterministic) {
  auto go = [&](const std::string& seed) {
    return json_of(run({"interpolate", vae_, "--from", "random", "--to", "random", "--seed", seed, "--out", out("r.png")}));
  };
  const nlohmann::json a = go("3"), b = go("3"), c = go("4");
  EXPECT_EQ(a, b);
  EXPECT_GT(a["distance"].get<double>(), 0.0);  // two `random`s differ
  EXPECT_NE(a["from"]["norm"], c["from"]["norm"]);
  EXPECT_FALSE(a["from"].contains("index"));
  // Without input images at the ends the strip is two cells narrower.
  const std::string up = std::to_string(kUpscale);
  ASSERT_EQ(run({"interpolate", vae_, "--seed", "3", "--out", out("r8.png"), "--upscale", up}).status, 0);
  ASSERT_EQ(run({"interpolate", vae_, "--from", "0", "--to", "1", "--out", out("i8.png"), "--upscale", up}).status, 0);
  EXPECT_EQ(png_size(out("i8.png")).first - png_size(out("r8.png")).first, 2 * kCell);
}

TEST_F(LatentCmds, LerpEndpointsDecodeToTheEndpointsAndHalfwayIsTheMidpoint) {
  const nlohmann::json j = json_of(run({"interpolate", vae_, "--from", "2", "--to", "7", "--steps", "3", "--out", out("half.png")}));
  EXPECT_EQ(j["halfway_column"], 1);

  LoadedRun r = load_run(vae_);
  r.model->eval();
  const data::Dataset test = data::load_dataset(data(), data::Split::Test);
  const Tensor codes = models::encode_means(*r.model, test, {2, 7});  // (2, D)
  const Tensor a = codes.slice(0, 1).reshape({-1}), b = codes.slice(1, 2).reshape({-1});
  const Tensor path = models::interpolate(a, b, 3, models::PathMode::Lerp);
  EXPECT_LT(max_abs_diff(row(path, 0), a.to_vector()), 1e-6);
  EXPECT_LT(max_abs_diff(row(path, 2), b.to_vector()), 1e-6);
  // The study's halfway point: mu_a + (mu_b - mu_a) / 2.
  std::vector<float> half = a.to_vector();
  const std::vector<float> bv = b.to_vector();
  for (size_t i = 0; i < half.size(); ++i) half[i] += (bv[i] - half[i]) / 2;
  EXPECT_LT(max_abs_diff(row(path, 1), half), 1e-6);
  EXPECT_NEAR(j["path_norms"]["lerp"][1].get<double>(), norm(half), 1e-3);
  EXPECT_NEAR(j["from"]["norm"].get<double>(), norm(a.to_vector()), 1e-3);

  // The decoded ends are the decodings of the ends' codes.
  const Tensor ends = r.model->generate(path);
  const Tensor direct = r.model->generate(codes);
  EXPECT_LT(max_abs_diff(row(ends.flatten(), 0), row(direct.flatten(), 0)), 1e-5);
  EXPECT_LT(max_abs_diff(row(ends.flatten(), 2), row(direct.flatten(), 1)), 1e-5);
}

TEST_F(LatentCmds, SlerpDiffersFromLerpBetweenNonParallelEnds) {
  const nlohmann::json j = json_of(run({"interpolate", vae_, "--from", "random", "--to", "random", "--seed", "1", "--mode", "both",
                                        "--steps", "5", "--out", out("ls.png")}));
  const double angle = j["angle_deg"].get<double>();
  ASSERT_GT(angle, 1.0);
  ASSERT_LT(angle, 179.0);
  const auto& lerp = j["path_norms"]["lerp"];
  const auto& slerp = j["path_norms"]["slerp"];
  ASSERT_EQ(lerp.size(), 5u);
  ASSERT_EQ(slerp.size(), 5u);
  EXPECT_NEAR(lerp[0].get<double>(), slerp[0].get<double>(), 1e-4);
  EXPECT_NEAR(lerp[4].get<double>(), slerp[4].get<double>(), 1e-4);
  // The straight line cuts inside the sphere: its middle is shorter than the great circle's.
  EXPECT_LT(lerp[2].get<double>(), slerp[2].get<double>() - 1e-3);

  // The same at the level of the codes.
  const Tensor a = Tensor::from_vector({1, 0, 0, 0}, {4}), b = Tensor::from_vector({0, 2, 0, 0}, {4});
  const Tensor l = models::interpolate(a, b, 5, models::PathMode::Lerp);
  const Tensor s = models::interpolate(a, b, 5, models::PathMode::Slerp);
  EXPECT_GT(max_abs_diff(row(l, 2), row(s, 2)), 0.1);
  EXPECT_LT(max_abs_diff(row(l, 0), row(s, 0)), 1e-6);
  EXPECT_LT(max_abs_diff(row(l, 4), row(s, 4)), 1e-6);
}

// ---------------------------------------------------------------- arithmetic

TEST_F(LatentCmds, ArithmeticConceptVectorIsTheDifferenceOfMeansAndUndoesExactly) {
  const std::string png = out("arith.png"), idx = out("edit.idx");
  const nlohmann::json j = json_of(run({"arithmetic", vae_, "--concept", "label:1-label:0", "--to", "label:2:5", "--out", png,
                                        "--out-idx", idx, "--upscale", std::to_string(kUpscale)}));
  EXPECT_EQ(j["form"], "concept");
  EXPECT_EQ(j["plus"]["images"], 8);  // 32 test images, 4 classes
  EXPECT_EQ(j["minus"]["images"], 8);
  EXPECT_EQ(j["base"]["images"], 5);
  EXPECT_EQ(j["rows_shown"], 5);
  EXPECT_EQ(j["scales"], nlohmann::json({0.0, 0.5, 1.0, 1.5, 2.0}));
  EXPECT_LT(j["roundtrip_max_abs"].get<double>(), 1e-5);

  // Recompute v and the edits with models/latent.h.
  LoadedRun r = load_run(vae_);
  r.model->eval();
  const data::Dataset test = data::load_dataset(data(), data::Split::Test);
  NoGradGuard no_grad;
  const Tensor v = models::mean_code(models::encode_means(*r.model, test, models::select_images(test, "label:1"))) -
                   models::mean_code(models::encode_means(*r.model, test, models::select_images(test, "label:0")));
  EXPECT_NEAR(j["vector_norm"].get<double>(), norm(v.to_vector()), 1e-3);
  const Tensor Z = models::encode_means(*r.model, test, models::select_images(test, "label:2:5"));
  const Tensor V = cat(std::vector<Tensor>(5, v.reshape({1, -1})), 0);
  // Adding the vector and subtracting it again returns the base codes.
  EXPECT_LT(max_abs_diff(((Z + V) - V).to_vector(), Z.to_vector()), 1e-6);

  // --out-idx: the scale-1 edits of every base image, uint8, (n, H, W).
  const data::IdxArray edits = data::read_idx(idx);
  ASSERT_EQ(edits.dims, (std::vector<int64_t>{5, 12, 12}));
  const std::vector<float> want = r.model->generate(Z + V).to_vector();
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(edits.data[i], want[i] * 255.0f, 1.0) << i;

  // Layout: 5 rows; columns original + 5 scales (0 is the plain decoding).
  const auto [w, h] = png_size(png);
  EXPECT_GE(w, 6 * kCell);
  EXPECT_GE(h, 5 * kCell);
  ASSERT_EQ(run({"arithmetic", vae_, "--concept", "label:1-label:0", "--to", "label:2:5", "--rows", "4", "--out", out("arith4.png"),
                 "--upscale", std::to_string(kUpscale)}).status, 0);
  EXPECT_EQ(h - png_size(out("arith4.png")).second, kCell);
}

TEST_F(LatentCmds, ArithmeticScaleZeroReproducesTheBaseDecodings) {
  const std::string idx = out("zero.idx");
  const nlohmann::json j = json_of(run({"arithmetic", vae_, "--concept", "idx:1,5-idx:0,4", "--to", "idx:2,6,10", "--scale", "0",
                                        "--idx-scale", "0", "--out", out("zero.png"), "--out-idx", idx}));
  EXPECT_EQ(j["scales"], nlohmann::json({0.0}));
  EXPECT_EQ(j["plus"]["images"], 2);
  EXPECT_EQ(j["idx_scale"], 0.0);
  LoadedRun r = load_run(vae_);
  r.model->eval();
  const data::Dataset test = data::load_dataset(data(), data::Split::Test);
  const std::vector<float> want = r.model->generate(models::encode_means(*r.model, test, {2, 6, 10})).to_vector();
  const data::IdxArray got = data::read_idx(idx);
  ASSERT_EQ(got.dims, (std::vector<int64_t>{3, 12, 12}));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got.data[i], want[i] * 255.0f, 1.0) << i;
}

TEST_F(LatentCmds, ArithmeticThreeGroupFormAddsAMeanRow) {
  const std::string png = out("groups.png");
  const nlohmann::json j = json_of(run({"arithmetic", vae_, "--plus", "label:3:3", "--minus", "label:1:3", "--base", "label:2:3",
                                        "--out", png, "--upscale", std::to_string(kUpscale)}));
  EXPECT_EQ(j["form"], "groups");
  EXPECT_EQ(j["plus"]["images"], 3);
  EXPECT_EQ(j["base"]["images"], 3);
  EXPECT_EQ(j["rows_shown"], 4);  // mean(base), then the 3 base images
  ASSERT_EQ(run({"arithmetic", vae_, "--concept", "label:3:3-label:1:3", "--to", "label:2:3", "--out", out("concept3.png"),
                 "--upscale", std::to_string(kUpscale)}).status, 0);
  EXPECT_EQ(png_size(png).second - png_size(out("concept3.png")).second, kCell);
}

// ---------------------------------------------------------------- traverse

TEST_F(LatentCmds, TraverseRanksDimensionsByKlAndCountsActiveUnits) {
  const std::string png = out("trav.png");
  const nlohmann::json j = json_of(run({"traverse", vae_, "--dims", "0-3", "--range", "-3:3", "--steps", "5", "--out", png,
                                        "--upscale", std::to_string(kUpscale)}));
  EXPECT_EQ(j["ranked_by"], "kl");
  EXPECT_EQ(j["latent_dim"], 4);
  EXPECT_EQ(j["images"], 32);
  EXPECT_EQ(j["rows"], nlohmann::json({0, 1, 2, 3}));
  EXPECT_EQ(j["values"], nlohmann::json({-3.0, -1.5, 0.0, 1.5, 3.0}));
  ASSERT_EQ(j["dims"].size(), 4u);
  int active = 0;
  double total = 0;
  for (const auto& d : j["dims"]) {
    const double kl = d["kl"].get<double>(), var = d["variance"].get<double>();
    EXPECT_TRUE(std::isfinite(kl));
    EXPECT_GE(kl, 0.0);
    EXPECT_GE(var, 0.0);
    EXPECT_EQ(d["active"].get<bool>(), var > 0.01);
    active += d["active"].get<bool>() ? 1 : 0;
    total += kl;
  }
  EXPECT_EQ(j["active_units"], active);
  EXPECT_NEAR(j["total_kl"].get<double>(), total, 1e-3);
  // The ranking lists every dimension once, by decreasing KL.
  ASSERT_EQ(j["ranking"].size(), 4u);
  for (size_t k = 1; k < 4; ++k) {
    EXPECT_GE(j["dims"][j["ranking"][k - 1].get<size_t>()]["kl"].get<double>(), j["dims"][j["ranking"][k].get<size_t>()]["kl"].get<double>());
  }
  // The per-dimension KLs sum to the KL of the VAE's loss, which `eval` reports per image.
  const nlohmann::json e = json_of(run({"eval", vae_}));
  EXPECT_NEAR(total, e["kl"].get<double>(), 1e-3 * std::max(1.0, total));

  // Layout: one row per dimension, one column per step.
  const auto [w, h] = png_size(png);
  EXPECT_GE(w, 5 * kCell);
  ASSERT_EQ(run({"traverse", vae_, "--dims", "0,2", "--steps", "5", "--out", out("trav2.png"), "--upscale", std::to_string(kUpscale)}).status, 0);
  EXPECT_EQ(h - png_size(out("trav2.png")).second, 2 * kCell);
  // A test image as the base adds its column (9 steps, so that the cells and not the text set the width).
  ASSERT_EQ(run({"traverse", vae_, "--dims", "0,2", "--steps", "9", "--out", out("trav9.png"), "--upscale", std::to_string(kUpscale)}).status, 0);
  ASSERT_EQ(run({"traverse", vae_, "--dims", "0,2", "--steps", "9", "--base", "idx:3", "--out", out("trav3.png"), "--upscale",
                 std::to_string(kUpscale)}).status, 0);
  EXPECT_EQ(png_size(out("trav3.png")).first - png_size(out("trav9.png")).first, kCell);
}

TEST_F(LatentCmds, TraverseSortOrdersRowsByKl) {
  const nlohmann::json j = json_of(run({"traverse", vae_, "--sort"}));  // no --out: numbers only
  EXPECT_EQ(j["rows"], j["ranking"]);
  const nlohmann::json k = json_of(run({"traverse", vae_, "--dims", "3,1", "--sort"}));
  const double kl3 = k["dims"][3]["kl"].get<double>(), kl1 = k["dims"][1]["kl"].get<double>();
  EXPECT_EQ(k["rows"], kl3 >= kl1 ? nlohmann::json({3, 1}) : nlohmann::json({1, 3}));
  // The test set's mean code as the base.
  EXPECT_EQ(json_of(run({"traverse", vae_, "--dims", "0", "--base", "mean", "--out", out("mean.png")}))["base"], "mean");
  EXPECT_TRUE(fs::exists(out("mean.png")));
}

TEST_F(LatentCmds, TraverseOfAnAutoencoderRanksByCodeVariance) {
  const Result r = run({"traverse", ae_, "--sort", "--out", out("ae.png")});
  const nlohmann::json j = json_of(r);
  EXPECT_EQ(j["ranked_by"], "variance");
  EXPECT_FALSE(j.contains("total_kl"));
  ASSERT_EQ(j["dims"].size(), 3u);
  for (const auto& d : j["dims"]) EXPECT_TRUE(d["kl"].is_null());
  EXPECT_GE(j["dims"][j["rows"][0].get<size_t>()]["variance"].get<double>(), j["dims"][j["rows"][2].get<size_t>()]["variance"].get<double>());
  EXPECT_NE(r.err.find("no KL"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(out("ae.png")));
}

// ---------------------------------------------------------------- bad input

TEST_F(LatentCmds, BadInputGetsOneLineAndANonzeroExit) {
  const std::string p = out("bad.png");
  expect_error(run({"interpolate", out("nowhere"), "--out", p}), "does not exist");
  expect_error(run({"interpolate", vae_, "--from", "999", "--out", p}), "outside");
  expect_error(run({"interpolate", vae_, "--from", "banana", "--out", p}), "--from");
  expect_error(run({"interpolate", vae_, "--steps", "1", "--out", p}), "--steps");
  expect_error(run({"interpolate", vae_, "--mode", "cubic", "--out", p}), "--mode");
  expect_error(run({"arithmetic", vae_, "--concept", "label:1", "--to", "idx:0", "--out", p}), "--concept");
  expect_error(run({"arithmetic", vae_, "--concept", "label:1-label:x", "--to", "idx:0", "--out", p}), "label:x");
  expect_error(run({"arithmetic", vae_, "--concept", "label:1-label:0", "--out", p}), "--to");
  expect_error(run({"arithmetic", vae_, "--concept", "label:1-label:0", "--to", "idx:40", "--out", p}), "outside");
  expect_error(run({"arithmetic", vae_, "--concept", "label:1-label:9", "--to", "idx:0", "--out", p}), "class 9");
  expect_error(run({"arithmetic", vae_, "--plus", "label:1", "--base", "idx:0", "--out", p}), "--minus");
  expect_error(run({"arithmetic", vae_, "--concept", "label:1-label:0", "--to", "idx:0", "--scale", "1,x", "--out", p}), "--scale");
  expect_error(run({"traverse", vae_, "--dims", "0-9"}), "--dims");
  expect_error(run({"traverse", vae_, "--dims", "1,1"}), "twice");
  expect_error(run({"traverse", vae_, "--range", "3:3"}), "--range");
  expect_error(run({"traverse", vae_, "--steps", "1"}), "--steps");
  expect_error(run({"traverse", vae_, "--base", "idx:99"}), "outside");
  expect_error(run({"traverse", vae_, "--base", "label:1"}), "--base");
  // Selecting by label needs labels: a single images file has none.
  const std::string unlabeled = out("unlabeled-images-idx3-ubyte");
  data::write_idx(unlabeled, data::read_idx(data() + "/t10k-images-idx3-ubyte"));
  expect_error(run({"arithmetic", vae_, "--data", unlabeled, "--concept", "label:1-label:0", "--to", "idx:0", "--out", p}), "no labels");
  // Indices still work on it.
  EXPECT_EQ(run({"interpolate", vae_, "--data", unlabeled, "--from", "0", "--to", "1", "--out", p}).status, 0);
}

}  // namespace
}  // namespace ll::app
