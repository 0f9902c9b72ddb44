// test_map_score.cpp: `latentlab latent-map` and `latentlab score` end to end, in-process, on small
// models trained on the toy data set of tests/apps/toy_run.h (12x12 images, a bright square at one
// of 4 places, label = place): the pictures have the promised sizes, the numbers their ranges, a
// 2-D latent is drawn as it is and a larger one through PCA, the per-image scores add up to what
// `latentlab eval` reports, a foreign set of noise images is told apart, and bad input gets one line
// and a nonzero exit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "apps/run_dir.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "models/latent.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using test::Result;
using test::run;
using test::TempDir;
namespace fs = std::filesystem;
using nlohmann::json;

// Width and height of a PNG file from its IHDR chunk (bytes 16..23, big-endian), {0, 0} if the file
// is not a PNG.
std::pair<int64_t, int64_t> png_size(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<unsigned char> b(24);
  if (!f.read(reinterpret_cast<char*>(b.data()), 24)) return {0, 0};
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!std::equal(sig, sig + 8, b.begin())) return {0, 0};
  auto be32 = [&](int at) {
    return (int64_t{b[at]} << 24) | (int64_t{b[at + 1]} << 16) | (int64_t{b[at + 2]} << 8) | int64_t{b[at + 3]};
  };
  return {be32(16), be32(20)};
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A CSV file as rows of fields (header included), split on commas.
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::stringstream s(line);
    while (std::getline(s, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.push_back("");  // getline drops a trailing empty field
    rows.push_back(fields);
  }
  return rows;
}

json parse_json_line(const Result& r) {
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  return json::parse(r.out);
}

// Numpy's default (linear) quantile, as latent-map computes its lattice range.
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// An IDX file of n uniform-noise gray images (no labels): a clearly foreign data set.
void write_noise_images(const std::string& path, int64_t n, int64_t side) {
  std::mt19937 rng(7);
  data::IdxArray a{{n, side, side}, std::vector<uint8_t>(static_cast<size_t>(n * side * side))};
  for (auto& v : a.data) v = static_cast<uint8_t>(rng() & 0xff);
  data::write_idx(path, a);
}

// The models are trained once per test program (each is a few hundred milliseconds).
class MapScore : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>("map_score");
    vae2_ = test::train_toy_model(*dir_, "vae2", "vae", 2, 4);
    vae4_ = test::train_toy_model(*dir_, "vae4", "vae", 4, 4);
    ae2_ = test::train_toy_model(*dir_, "ae2", "ae", 2, 4);
    data_ = *dir_ / "data";
    // The toy test set repeats 4 images; a copy with every pixel jittered has distinct codes, for
    // the nearest-neighbour numbers (whose code spacing is 0 on exact duplicates).
    jitter_ = *dir_ / "jitter";
    fs::create_directories(jitter_);
    data::IdxArray images = data::read_idx(data_ + "/t10k-images-idx3-ubyte");
    std::mt19937 rng(3);
    for (auto& v : images.data) v = static_cast<uint8_t>(std::clamp<int>(v + static_cast<int>(rng() % 41) - 20, 0, 255));
    data::write_idx(jitter_ + "/t10k-images-idx3-ubyte", images);
    fs::copy_file(data_ + "/t10k-labels-idx1-ubyte", jitter_ + "/t10k-labels-idx1-ubyte");
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string path(const std::string& name) { return *dir_ / name; }

  static std::unique_ptr<TempDir> dir_;
  static std::string vae2_, vae4_, ae2_, data_, jitter_;
};
std::unique_ptr<TempDir> MapScore::dir_;
std::string MapScore::vae2_, MapScore::vae4_, MapScore::ae2_, MapScore::data_, MapScore::jitter_;

// ---- latent-map ---------------------------------------------------------------------------------

TEST_F(MapScore, LatentMapOfA2dLatentUsesTheLatentItself) {
  const std::string out = path("map2.png");
  const Result r = run({"latent-map", vae2_, "--data", jitter_, "--out", out, "--grid", "5", "--size", "320",
                        "--prior-samples", "500"});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["projection"], "latent");
  EXPECT_FALSE(j.contains("variance_explained"));
  EXPECT_EQ(j["images"], 32);
  EXPECT_EQ(j["latent_dim"], 2);
  EXPECT_EQ(j["prior_samples"], 500);
  EXPECT_NE(r.err.find("the latent itself"), std::string::npos) << r.err;

  // The scatter plot has the requested size; the manifold is 5 x 5 cells of 12-pixel images shown at
  // least 4x (48 pixels), plus labels.
  EXPECT_EQ(png_size(out), std::make_pair(int64_t{320}, int64_t{320}));
  const std::string manifold = path("map2_manifold.png");
  EXPECT_EQ(j["manifold_out"], manifold);
  const auto [mw, mh] = png_size(manifold);
  EXPECT_GE(mw, 5 * 48);
  EXPECT_GE(mh, 5 * 48);
  EXPECT_LT(mw, 5 * 48 + 200);
  EXPECT_LT(mh, 5 * 48 + 200);

  // The lattice spans the 1st..99th percentile of the codes' own coordinates z1 and z2.
  LoadedRun loaded = load_run(vae2_);
  loaded.model->eval();
  const data::Dataset test = data::load_dataset(jitter_, data::Split::Test);
  std::vector<int64_t> all(static_cast<size_t>(test.n));
  std::iota(all.begin(), all.end(), int64_t{0});
  const std::vector<float> codes = models::encode_means(*loaded.model, test, all).to_vector();
  std::vector<double> z1, z2;
  for (size_t i = 0; i < codes.size(); i += 2) z1.push_back(codes[i]), z2.push_back(codes[i + 1]);
  EXPECT_NEAR(j["grid_range"][0][0].get<double>(), quantile(z1, 0.01), 1e-5);
  EXPECT_NEAR(j["grid_range"][0][1].get<double>(), quantile(z1, 0.99), 1e-5);
  EXPECT_NEAR(j["grid_range"][1][0].get<double>(), quantile(z2, 0.01), 1e-5);
  EXPECT_NEAR(j["grid_range"][1][1].get<double>(), quantile(z2, 0.99), 1e-5);

  // Coverage is a fraction, and grows with the radius.
  const double cov = j["coverage"].get<double>();
  EXPECT_GE(cov, 0.0);
  EXPECT_LE(cov, 1.0);
  EXPECT_DOUBLE_EQ(cov, j["coverage_at"]["0.25"].get<double>());  // the default radius
  double previous = 0;
  for (const char* radius : {"0.1", "0.25", "0.5", "1"}) {
    const double c = j["coverage_at"][radius].get<double>();
    EXPECT_GE(c, previous) << radius;
    EXPECT_LE(c, 1.0) << radius;
    previous = c;
  }
  EXPECT_GT(j["prior_nn_mean"].get<double>(), 0.0);
  EXPECT_GT(j["code_nn_mean"].get<double>(), 0.0);
  EXPECT_NEAR(j["nn_ratio"].get<double>(), j["prior_nn_mean"].get<double>() / j["code_nn_mean"].get<double>(), 1e-12);
}

TEST_F(MapScore, LatentMapOfALargerLatentUsesPca) {
  const std::string out = path("map4.png");
  const Result r = run({"latent-map", vae4_, "--out", out, "--grid", "4", "--manifold-out", path("m4.png")});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["projection"], "pca");
  EXPECT_EQ(j["latent_dim"], 4);
  ASSERT_TRUE(j.contains("variance_explained"));
  const double v1 = j["variance_explained"][0].get<double>(), v2 = j["variance_explained"][1].get<double>();
  EXPECT_GT(v1, 0.0);
  EXPECT_GE(v1, v2 - 1e-12);  // PC1 explains the most
  EXPECT_GE(v2, 0.0);
  EXPECT_LE(v1 + v2, 1.0 + 1e-9);
  EXPECT_NE(r.err.find("axes PC1, PC2 of the 4-d codes"), std::string::npos) << r.err;
  EXPECT_EQ(png_size(out), std::make_pair(int64_t{640}, int64_t{640}));  // the default size
  EXPECT_GE(png_size(path("m4.png")).first, 4 * 48);

  // The lattice spans the codes' principal-component coordinates, not their raw ones.
  LoadedRun loaded = load_run(vae4_);
  loaded.model->eval();
  const data::Dataset test = data::load_dataset(data_, data::Split::Test);
  const models::Pca p = models::pca(models::encode_all(*loaded.model, test).mu, 2);
  const std::vector<float> proj = p.projected.to_vector();
  std::vector<double> u, v;
  for (size_t i = 0; i < proj.size(); i += 2) u.push_back(proj[i]), v.push_back(proj[i + 1]);
  EXPECT_NEAR(j["grid_range"][0][0].get<double>(), quantile(u, 0.01), 1e-4);
  EXPECT_NEAR(j["grid_range"][1][1].get<double>(), quantile(v, 0.99), 1e-4);
}

TEST_F(MapScore, LatentMapRangeFixesTheLattice) {
  const Result r = run({"latent-map", vae4_, "--out", path("range.png"), "--grid", "3", "--range", "2.5"});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["grid_range"], json::parse("[[-2.5, 2.5], [-2.5, 2.5]]"));
}

TEST_F(MapScore, LatentMapOfDuplicateImagesHasNoCodeSpacing) {
  // The toy test set is 4 images, 8 times each: every code has an exact twin.
  const Result r = run({"latent-map", vae2_, "--out", path("dup.png"), "--grid", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["code_nn_mean"].get<double>(), 0.0);
  EXPECT_TRUE(j["nn_ratio"].is_null());
}

TEST_F(MapScore, LatentMapCoverageIsAllOrNothingAtExtremeRadii) {
  Result r = run({"latent-map", vae2_, "--out", path("wide.png"), "--radius", "1000", "--grid", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_DOUBLE_EQ(parse_json_line(r)["coverage"].get<double>(), 1.0);
  r = run({"latent-map", vae2_, "--out", path("narrow.png"), "--radius", "1e-9", "--grid", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_DOUBLE_EQ(parse_json_line(r)["coverage"].get<double>(), 0.0);
}

TEST_F(MapScore, LatentMapIsDeterministicForASeed) {
  const std::vector<std::string> args{"latent-map", ae2_, "--out", path("det.png"), "--n", "20", "--seed", "3", "--grid", "3"};
  const Result a = run(args);
  ASSERT_EQ(a.status, 0) << a.err;
  const std::string png_a = read_file(path("det.png")), manifold_a = read_file(path("det_manifold.png"));
  const Result b = run(args);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(png_a, read_file(path("det.png")));
  EXPECT_EQ(manifold_a, read_file(path("det_manifold.png")));
  EXPECT_EQ(parse_json_line(a)["images"], 20);
  // Another seed draws other prior points (and another subset of 20).
  const Result c = run({"latent-map", ae2_, "--out", path("det.png"), "--n", "20", "--seed", "4", "--grid", "3"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(parse_json_line(a)["prior_nn_mean"], parse_json_line(c)["prior_nn_mean"]);
}

TEST_F(MapScore, LatentMapWritesIntoTheRunDirectoryByDefault) {
  const Result r = run({"latent-map", vae2_, "--grid", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(vae2_ + "/latent_map.png"));
  EXPECT_TRUE(fs::exists(vae2_ + "/latent_map_manifold.png"));
}

// ---- score ----------------------------------------------------------------------------------------

TEST_F(MapScore, ScoreWritesOneCsvRowPerImage) {
  const std::string csv = path("scores.csv");
  const Result r = run({"score", vae2_, "--data", data_, "--csv", csv});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["images"], 32);
  EXPECT_EQ(j["n_in"], 32);
  EXPECT_EQ(j["score"], "neg_elbo");
  EXPECT_FALSE(j.contains("auroc"));  // nothing foreign to tell apart
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 33u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"index", "source", "label", "recon", "kl", "neg_elbo", "entropy", "excess"}));
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 8u) << i;
    EXPECT_EQ(std::stoll(rows[i][0]), static_cast<long long>(i - 1));
    EXPECT_EQ(rows[i][1], "in");
    EXPECT_EQ(std::stoi(rows[i][2]), static_cast<int>((i - 1) % 4));  // toy labels
    const double recon = std::stod(rows[i][3]), kl = std::stod(rows[i][4]), nelbo = std::stod(rows[i][5]);
    const double entropy = std::stod(rows[i][6]), excess = std::stod(rows[i][7]);
    EXPECT_GT(recon, 0.0);
    EXPECT_GE(kl, 0.0);
    EXPECT_NEAR(nelbo, recon + kl, 1e-6 * nelbo);
    // BCE never goes below the input's own entropy.
    EXPECT_GT(entropy, 0.0);
    EXPECT_GE(excess, -1e-6 * recon);
    EXPECT_NEAR(excess, recon - entropy, 1e-6 * recon);
  }
}

TEST_F(MapScore, ScoreMeansEqualEvalsLossParts) {
  // With one draw, the whole test set and the same seed, the per-image scores average to the
  // numbers `latentlab eval` computes from the batch loss: the same z, the same formulas.
  const Result s = run({"score", vae2_, "--seed", "11"});
  ASSERT_EQ(s.status, 0) << s.err;
  const Result e = run({"eval", vae2_, "--seed", "11"});
  ASSERT_EQ(e.status, 0) << e.err;
  const json sj = parse_json_line(s), ej = parse_json_line(e);
  EXPECT_NEAR(sj["mean"]["in"]["recon"].get<double>(), ej["recon"].get<double>(), 1e-5 * ej["recon"].get<double>());
  EXPECT_NEAR(sj["mean"]["in"]["kl"].get<double>(), ej["kl"].get<double>(), 1e-5 * ej["kl"].get<double>() + 1e-6);
  EXPECT_NEAR(sj["mean"]["in"]["neg_elbo"].get<double>(), ej["test_loss"].get<double>(), 1e-5 * ej["test_loss"].get<double>());
}

TEST_F(MapScore, ScoreTellsForeignNoiseFromTheTrainingData) {
  write_noise_images(path("noise.idx"), 40, 12);
  const std::string csv = path("mixed.csv"), worst = path("worst.png");
  const Result r = run({"score", vae2_, "--data", data_, "--foreign", path("noise.idx"), "--n", "20", "--csv", csv, "--worst",
                        worst, "--worst-n", "6", "--seed", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["images"], 40);
  EXPECT_EQ(j["n_in"], 20);
  EXPECT_EQ(j["n_foreign"], 20);
  for (const char* s : {"recon", "kl", "neg_elbo", "entropy", "excess"}) {
    ASSERT_TRUE(j["auroc"].contains(s)) << s;
    EXPECT_GE(j["auroc"][s].get<double>(), 0.0) << s;
    EXPECT_LE(j["auroc"][s].get<double>(), 1.0) << s;
  }
  EXPECT_GT(j["auroc"]["recon"].get<double>(), 0.9);
  EXPECT_GT(j["auroc"]["neg_elbo"].get<double>(), 0.9);
  EXPECT_GT(j["mean"]["foreign"]["neg_elbo"].get<double>(), j["mean"]["in"]["neg_elbo"].get<double>());

  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 41u);
  int foreign = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i][1] == "foreign") {
      ++foreign;
      EXPECT_EQ(rows[i][2], "-1");  // the noise file has no labels
    } else {
      EXPECT_EQ(rows[i][1], "in");
    }
  }
  EXPECT_EQ(foreign, 20);
  // 6 cells in one row, each at least a 12-pixel image shown 4x (48 pixels) wide, two images tall.
  const auto [w, h] = png_size(worst);
  EXPECT_GE(w, 6 * 48);
  EXPECT_GE(h, 2 * 48);
}

TEST_F(MapScore, ScoreIsDeterministicAndImportanceWeightingTightensTheBound) {
  const std::vector<std::string> args{"score", vae2_, "--samples", "8", "--seed", "5", "--csv", path("iw.csv")};
  const Result a = run(args);
  ASSERT_EQ(a.status, 0) << a.err;
  const std::string csv_a = read_file(path("iw.csv"));
  const Result b = run(args);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(csv_a, read_file(path("iw.csv")));
  const json j = parse_json_line(a);
  EXPECT_EQ(j["score"], "iw_nll");
  const auto rows = read_csv(path("iw.csv"));
  ASSERT_EQ(rows[0].back(), "iw_nll");
  // Burda et al. 2016: the K-sample bound is at least as tight as the ELBO; on average over the
  // images it must come out below the (analytic-KL) negative ELBO.
  EXPECT_LT(j["mean"]["in"]["iw_nll"].get<double>(), j["mean"]["in"]["neg_elbo"].get<double>());
  EXPECT_GT(j["mean"]["in"]["iw_nll"].get<double>(), 0.0);
}

TEST_F(MapScore, ScoreOfAnAutoencoderHasReconstructionOnly) {
  const Result r = run({"score", ae2_, "--csv", path("ae.csv"), "--foreign", data_});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = parse_json_line(r);
  EXPECT_EQ(j["score"], "recon");
  EXPECT_FALSE(j["auroc"].contains("neg_elbo"));
  EXPECT_FALSE(j["auroc"].contains("kl"));
  // The same data set as "foreign" cannot be told apart: every score ties, AUROC exactly 1/2.
  EXPECT_DOUBLE_EQ(j["auroc"]["recon"].get<double>(), 0.5);
  const auto rows = read_csv(path("ae.csv"));
  ASSERT_EQ(rows.size(), 65u);
  EXPECT_EQ(rows[1][4], "");  // no KL
  EXPECT_EQ(rows[1][5], "");  // no ELBO
  const Result bad = run({"score", ae2_, "--rank-by", "neg_elbo", "--worst", path("x.png")});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("not a score of this model"), std::string::npos) << bad.err;
}

// ---- bad input ------------------------------------------------------------------------------------

TEST_F(MapScore, BadInputGetsOneClearLineAndANonzeroExit) {
  // 8x8 images cannot go through a model of 12x12 ones.
  {
    data::IdxArray small{{5, 8, 8}, std::vector<uint8_t>(5 * 64, 100)};
    data::write_idx(path("small.idx"), small);
  }
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases{
      {{"score", vae2_, "--foreign", path("small.idx")}, "1x8x8 images; the model takes 1x12x12"},
      {{"score", vae2_, "--data", path("small.idx")}, "1x8x8 images; the model takes 1x12x12"},
      {{"latent-map", vae2_, "--data", path("small.idx"), "--out", path("a.png")}, "1x8x8 images; the model takes 1x12x12"},
      {{"score", vae2_, "--data", path("no-such-data")}, "no-such-data"},
      {{"latent-map", vae2_, "--data", path("no-such-data"), "--out", path("a.png")}, "no-such-data"},
      {{"latent-map", path("no-such-run"), "--out", path("a.png")}, "no-such-run"},
      {{"score", path("no-such-run")}, "no-such-run"},
      {{"latent-map", vae2_, "--grid", "1"}, "--grid"},
      {{"latent-map", vae2_, "--radius", "0"}, "--radius"},
      {{"latent-map", vae2_, "--radius", "-1"}, "--radius"},
      {{"latent-map", vae2_, "--n", "-3"}, "--n"},
      {{"latent-map", vae2_, "--range", "-2"}, "--range"},
      {{"latent-map", vae2_, "--size", "10"}, "--size"},
      {{"latent-map", vae2_, "--prior-samples", "0"}, "--prior-samples"},
      {{"latent-map", vae2_, "--out", path("map.jpg")}, "--out"},
      {{"latent-map", vae2_, "--out", path("a.png"), "--manifold-out", path("m.bmp")}, "--manifold-out"},
      {{"score", vae2_, "--samples", "0"}, "--samples"},
      {{"score", vae2_, "--worst-n", "0", "--worst", path("w.png")}, "--worst-n"},
      {{"score", vae2_, "--csv", path("scores.txt")}, "--csv"},
      {{"score", vae2_, "--worst", path("w.jpg")}, "--worst"},
      {{"score", vae2_, "--n", "-1"}, "--n"},
  };
  for (const Case& c : cases) {
    const Result r = run(c.args);
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    EXPECT_NE(r.status, 0) << cmd;
    EXPECT_NE(r.err.find("latentlab: error:"), std::string::npos) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << cmd << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << cmd << "\n" << r.out;
  }
  // Flags CLI11 itself rejects: nonzero, with the usage.
  EXPECT_NE(run({"latent-map", vae2_, "--grid", "many"}).status, 0);
  EXPECT_NE(run({"score", vae2_, "--no-such-flag"}).status, 0);
  EXPECT_NE(run({"score"}).status, 0);
}

TEST_F(MapScore, LatentMapRefusesA1dLatent) {
  const std::string one = test::train_toy_model(*dir_, "vae1", "vae", 1, 1);
  const Result r = run({"latent-map", one, "--out", path("one.png")});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("at least 2 dimensions"), std::string::npos) << r.err;
  // score has no such limit.
  EXPECT_EQ(run({"score", one}).status, 0);
}

}  // namespace
}  // namespace ll::app
