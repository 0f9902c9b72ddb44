// test_serve.cpp: `latentlab serve`. The API (apps/serve_api.h) in-process, without sockets, on a
// small VAE and AE (the 12x12 toy data set) and a DCGAN and conditional GAN (28x28 bars): each
// endpoint's answer recomputed from the model with models/latent.h, and every class of bad input
// answered with 400 and one line naming what is wrong. Then the real HTTP server (serve_http.h) on
// an ephemeral loopback port, with httplib's client: the page, concurrent clients, path traversal,
// a foreign Host header and an oversized body.
#include <gtest/gtest.h>
#ifndef LATENTLAB_NO_HTTPLIB
#include <httplib.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/run_dir.h"
#include "apps/serve_api.h"
#include "apps/serve_http.h"
#include "data/image.h"
#include "data/loader.h"
#include "engine/ops/ops.h"
#include "engine/rng.h"
#include "models/latent.h"
#include "tests/apps/toy_run.h"

namespace ll::app {
namespace {

using json = nlohmann::json;
using test::TempDir;

std::vector<std::string> gan_args(const std::string& model, const std::string& data, const std::string& out) {
  return {"train", model, "--data", data, "--out", out, "--epochs", "1", "--batch-size", "16", "--ngf", "8", "--ndf", "8",
          "--nz", "16", "--seed", "3", "--device", "cpu"};
}

// One run of each kind and an explorer over it, each trained on first use: ctest runs every test
// in a process of its own, so a test trains only the runs it uses.
class Serve : public testing::Test {
 protected:
  static void TearDownTestSuite() {
    for (auto& e : explorers_) e.reset();
    dir_.reset();
  }
  static TempDir& dir() {
    if (!dir_) dir_ = std::make_unique<TempDir>("serve");
    return *dir_;
  }
  // "vae" (4-d) and "ae" (3-d) on the 12x12 toy data set; "dcgan" and "cgan" (nz 16) on 28x28 bars.
  static std::string run_dir(const std::string& kind) {
    const std::string out = dir() / kind;
    if (std::filesystem::exists(out)) return out;
    if (kind == "vae") return test::train_toy_model(dir(), "vae", "vae", 4, 3);
    if (kind == "ae") return test::train_toy_model(dir(), "ae", "ae", 3, 3);
    if (!std::filesystem::exists(dir() / "bars")) test::write_bars(dir() / "bars");
    const test::Result r = test::run(gan_args(kind, dir() / "bars", out));
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }
  static Explorer& explorer(const std::string& kind) {
    const size_t k = kind == "vae" ? 0 : kind == "ae" ? 1 : kind == "dcgan" ? 2 : 3;
    if (!explorers_[k]) explorers_[k] = std::make_unique<Explorer>(GenerativeRun::open(run_dir(kind)), ExplorerOptions{});
    return *explorers_[k];
  }

  static std::unique_ptr<TempDir> dir_;
  static std::unique_ptr<Explorer> explorers_[4];
};
std::unique_ptr<TempDir> Serve::dir_;
std::unique_ptr<Explorer> Serve::explorers_[4];

// A successful JSON answer.
json ok(Explorer& e, const std::string& path, const json& body) {
  const HttpResponse r = e.handle("POST", path, body.dump());
  EXPECT_EQ(r.status, 200) << path << " " << body.dump() << " -> " << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  return json::parse(r.body);
}

json get(Explorer& e, const std::string& path) {
  const HttpResponse r = e.handle("GET", path, "");
  EXPECT_EQ(r.status, 200) << path << " -> " << r.body;
  return json::parse(r.body);
}

// A refused request: `status`, and {"error": one line containing `what`}.
void refused(Explorer& e, const std::string& method, const std::string& path, const std::string& body, int status,
             const std::string& what) {
  const HttpResponse r = e.handle(method, path, body);
  EXPECT_EQ(r.status, status) << method << " " << path << " " << body.substr(0, 200) << " -> " << r.body;
  ASSERT_EQ(r.content_type, "application/json") << r.body;
  const json j = json::parse(r.body);
  ASSERT_TRUE(j.contains("error") && j["error"].is_string()) << r.body;
  const std::string message = j["error"];
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_LT(message.size(), 300u) << message;
  EXPECT_NE(message.find(what), std::string::npos) << "expected '" << what << "' in: " << message;
}

void bad(Explorer& e, const std::string& path, const std::string& body, const std::string& what) { refused(e, "POST", path, body, 400, what); }

std::vector<uint8_t> unbase64(const std::string& s) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : s) {
    if (c == '=') break;
    const size_t v = kAlphabet.find(c);
    EXPECT_NE(v, std::string::npos) << "not base64: " << c;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The PNG of a data: URL, checked to be one; its width and height from the IHDR chunk.
std::pair<int64_t, int64_t> png_size(const std::string& url) {
  const std::string prefix = "data:image/png;base64,";
  EXPECT_EQ(url.rfind(prefix, 0), 0u) << url.substr(0, 40);
  const std::vector<uint8_t> png = unbase64(url.substr(prefix.size()));
  EXPECT_GE(png.size(), 24u);
  if (png.size() < 24) return {0, 0};
  EXPECT_EQ(png[1], 'P');
  auto be32 = [&](int at) { return (int64_t{png[at]} << 24) | (int64_t{png[at + 1]} << 16) | (int64_t{png[at + 2]} << 8) | int64_t{png[at + 3]}; };
  return {be32(16), be32(20)};
}

// What the explorer must send for images (N, C, H, W): one PNG each, of the model's decoding.
std::vector<std::string> expected_urls(const Tensor& images) {
  std::vector<std::string> urls;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const std::vector<uint8_t> png = data::encode_png(data::make_grid(images.slice(i, i + 1), 1, 0));
    static const char* kA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b;
    for (size_t k = 0; k < png.size(); k += 3) {
      const uint32_t v = (uint32_t{png[k]} << 16) | (k + 1 < png.size() ? uint32_t{png[k + 1]} << 8 : 0) | (k + 2 < png.size() ? png[k + 2] : 0);
      b += kA[(v >> 18) & 63];
      b += kA[(v >> 12) & 63];
      b += k + 1 < png.size() ? kA[(v >> 6) & 63] : '=';
      b += k + 2 < png.size() ? kA[v & 63] : '=';
    }
    urls.push_back("data:image/png;base64," + b);
  }
  return urls;
}

std::vector<float> floats(const json& j) { return j.get<std::vector<float>>(); }

TEST_F(Serve, InfoOrdersTheVaeUnitsByKl) {
  const json info = get(explorer("vae"), "/api/info");
  EXPECT_EQ(info["kind"], "vae");
  EXPECT_EQ(info["latent_dim"], 4);
  EXPECT_EQ(info["ranked_by"], "kl");
  EXPECT_EQ(info["image"]["height"], 12);
  EXPECT_TRUE(info["encoder"]);
  EXPECT_TRUE(info["map"]);
  EXPECT_EQ(info["test_images"], 32);
  EXPECT_EQ(info["classes"].size(), 4u);
  ASSERT_EQ(info["units"].size(), 4u);
  // The same numbers as models::unit_stats over the test set, largest KL first.
  GenerativeRun run = GenerativeRun::open(run_dir("vae"));
  models::Autoencoder& model = run.autoencoder("test");
  const data::Dataset test = load_test_set(run.data_name(), model.config());
  const models::UnitStats stats = models::unit_stats(models::encode_all(model, test));
  double previous = 1e30;
  for (size_t k = 0; k < 4; ++k) {
    const json& u = info["units"][k];
    EXPECT_EQ(u["dim"], stats.ranking[k]);
    const double kl = u["kl"];
    EXPECT_NEAR(kl, stats.kl[static_cast<size_t>(stats.ranking[k])], 1e-4);
    EXPECT_LE(kl, previous);
    previous = kl;
    EXPECT_EQ(u["lo"], -3.0);
    EXPECT_EQ(u["hi"], 3.0);
  }
}

TEST_F(Serve, DecodeIsTheModelsDecoding) {
  const std::vector<float> z{0.5f, -1.0f, 0.25f, 2.0f};
  const json r = ok(explorer("vae"), "/api/decode", {{"code", z}});
  EXPECT_EQ(png_size(r["image"]), std::make_pair(int64_t{12}, int64_t{12}));
  GenerativeRun run = GenerativeRun::open(run_dir("vae"));
  EXPECT_EQ(r["image"], expected_urls(run.decode(Tensor::from_vector(z, {1, 4})))[0]);
  // Another code, another image; the same code, the same image.
  EXPECT_NE(ok(explorer("vae"), "/api/decode", {{"code", {0, 0, 0, 0}}})["image"], r["image"]);
  EXPECT_EQ(ok(explorer("vae"), "/api/decode", {{"code", z}})["image"], r["image"]);
}

TEST_F(Serve, EncodeGivesTheMeanCode) {
  const json r = ok(explorer("vae"), "/api/encode", {{"index", 5}});
  GenerativeRun run = GenerativeRun::open(run_dir("vae"));
  models::Autoencoder& model = run.autoencoder("test");
  const data::Dataset test = load_test_set(run.data_name(), model.config());
  const std::vector<float> mu = models::encode_means(model, test, {5}).to_vector();
  const std::vector<float> code = floats(r["code"]);
  ASSERT_EQ(code.size(), 4u);
  for (size_t d = 0; d < 4; ++d) EXPECT_NEAR(code[d], mu[d], 1e-4);
  EXPECT_EQ(r["label"], 5 % 4);
  EXPECT_EQ(r["image"], expected_urls(data::gather_images(test, {5}, data::Scale::Unit))[0]);
  EXPECT_EQ(png_size(r["decoded"]), std::make_pair(int64_t{12}, int64_t{12}));
}

TEST_F(Serve, InterpolatesLerpAndSlerpBetweenTheSameEnds) {
  const json a{{"code", {2, 0, 0, 0}}}, b{{"index", 3}};
  const json lerp = ok(explorer("vae"), "/api/interpolate", {{"from", a}, {"to", b}, {"steps", 5}, {"mode", "lerp"}});
  const json slerp = ok(explorer("vae"), "/api/interpolate", {{"from", a}, {"to", b}, {"steps", 5}, {"mode", "slerp"}});
  ASSERT_EQ(lerp["images"].size(), 5u);
  ASSERT_EQ(slerp["images"].size(), 5u);
  EXPECT_EQ(lerp["images"][0], slerp["images"][0]);
  EXPECT_EQ(lerp["images"][4], slerp["images"][4]);
  EXPECT_EQ(lerp["images"][0], ok(explorer("vae"), "/api/decode", {{"code", {2, 0, 0, 0}}})["image"]);
  EXPECT_EQ(lerp["images"][4], ok(explorer("vae"), "/api/encode", {{"index", 3}})["decoded"]);
  // Slerp keeps the norm between the ends' (here |a| = 2); lerp's middle is shorter.
  EXPECT_NEAR(lerp["norms"][0].get<double>(), 2.0, 1e-3);
  EXPECT_LT(lerp["norms"][2].get<double>(), slerp["norms"][2].get<double>());
}

TEST_F(Serve, ArithmeticAddsTheClassDifference) {
  const json r = ok(explorer("vae"), "/api/arithmetic", {{"plus", "label:1"}, {"minus", "label:0"}, {"base", {{"index", 2}}}, {"scales", {0, 1}}});
  ASSERT_EQ(r["images"].size(), 2u);
  EXPECT_EQ(r["plus"]["images"], 8);  // 32 test images, 4 classes
  EXPECT_EQ(r["images"][0], ok(explorer("vae"), "/api/encode", {{"index", 2}})["decoded"]);
  GenerativeRun run = GenerativeRun::open(run_dir("vae"));
  models::Autoencoder& model = run.autoencoder("test");
  const data::Dataset test = load_test_set(run.data_name(), model.config());
  const Tensor mu = models::encode_all(model, test).mu;
  const std::vector<float> v = (models::mean_code(models::gather_rows(mu, models::select_images(test, "label:1"))) -
                                models::mean_code(models::gather_rows(mu, models::select_images(test, "label:0"))))
                                   .to_vector();
  double norm_v = 0;
  for (const float x : v) norm_v += static_cast<double>(x) * x;
  EXPECT_NEAR(r["vector_norm"].get<double>(), std::sqrt(norm_v), 1e-3);
  std::vector<float> edited = models::encode_means(model, test, {2}).to_vector();
  for (size_t d = 0; d < 4; ++d) edited[d] += v[d];
  const json decoded = ok(explorer("vae"), "/api/decode", {{"code", edited}});
  EXPECT_EQ(r["images"][1], decoded["image"]);
}

TEST_F(Serve, TraverseSetsOneUnit) {
  const json r = ok(explorer("vae"), "/api/traverse", {{"dim", 2}, {"steps", 3}, {"range", {-2, 2}}, {"base", {{"code", {1, 1, 1, 1}}}}});
  ASSERT_EQ(r["images"].size(), 3u);
  EXPECT_EQ(floats(r["values"]), (std::vector<float>{-2, 0, 2}));
  EXPECT_EQ(r["images"][0], ok(explorer("vae"), "/api/decode", {{"code", {1, 1, -2, 1}}})["image"]);
  EXPECT_EQ(r["images"][1], ok(explorer("vae"), "/api/decode", {{"code", {1, 1, 0, 1}}})["image"]);
}

TEST_F(Serve, MapPointsAndTheirCodes) {
  const json m = get(explorer("vae"), "/api/map");
  EXPECT_EQ(m["axes"], "pca");  // D = 4
  ASSERT_EQ(m["points"].size(), 32u);  // every test image (fewer than --map-points)
  for (const json& p : m["points"]) {
    ASSERT_EQ(p.size(), 4u);
    EXPECT_EQ(p[2], p[3].get<int>() % 4);  // the label of test image p[3]
  }
  // A map point decodes mean + x pc1 + y pc2; a test image's own projection comes back near its code.
  const json p0 = m["points"][0];
  const json at = ok(explorer("vae"), "/api/map/point", {{"x", p0[0]}, {"y", p0[1]}});
  EXPECT_EQ(png_size(at["image"]), std::make_pair(int64_t{12}, int64_t{12}));
  EXPECT_EQ(at["code"].size(), 4u);
  // A 2-D latent maps its codes themselves: the AE here has 3 dims (PCA); a GAN has no map.
  EXPECT_EQ(get(explorer("ae"), "/api/map")["axes"], "pca");
  refused(explorer("dcgan"), "GET", "/api/map", "", 400, "needs an encoder");
}

TEST_F(Serve, BatchIsTheSampleCommandsDraw) {
  const json r = ok(explorer("vae"), "/api/batch", {{"seed", 3}, {"n", 4}});
  ASSERT_EQ(r["codes"].size(), 4u);
  Generator gen(3);
  const std::vector<float> z = randn({4, 4}, gen).to_vector();
  for (size_t i = 0; i < 4; ++i) {
    for (size_t d = 0; d < 4; ++d) EXPECT_NEAR(r["codes"][i][d].get<double>(), z[i * 4 + d], 1e-5);
  }
  EXPECT_EQ(ok(explorer("vae"), "/api/batch", {{"seed", 3}, {"n", 4}}), r);
  EXPECT_NE(ok(explorer("vae"), "/api/batch", {{"seed", 4}, {"n", 4}})["codes"], r["codes"]);
}

TEST_F(Serve, ScoresOfTestImages) {
  const json r = ok(explorer("vae"), "/api/scores", {{"indices", {0, 1}}});
  EXPECT_EQ(r["score"], "neg_elbo");
  ASSERT_EQ(r["scores"].size(), 2u);
  for (const json& s : r["scores"]) EXPECT_NEAR(s["neg_elbo"].get<double>(), s["recon"].get<double>() + s["kl"].get<double>(), 1e-3);
  const json w = ok(explorer("vae"), "/api/scores", {{"worst", 3}, {"of", 32}, {"seed", 1}});
  ASSERT_EQ(w["scores"].size(), 3u);
  EXPECT_EQ(w["of"], 32);
  EXPECT_GE(w["scores"][0]["neg_elbo"].get<double>(), w["scores"][1]["neg_elbo"].get<double>());
  EXPECT_GE(w["scores"][1]["neg_elbo"].get<double>(), w["scores"][2]["neg_elbo"].get<double>());
  // The AE ranks by reconstruction error and has no KL.
  const json a = ok(explorer("ae"), "/api/scores", {{"indices", {4}}});
  EXPECT_EQ(a["score"], "recon");
  EXPECT_FALSE(a["scores"][0].contains("kl"));
}

TEST_F(Serve, AutoencoderUnitsByVarianceWithTheirOwnRanges) {
  const json info = get(explorer("ae"), "/api/info");
  EXPECT_EQ(info["kind"], "ae");
  EXPECT_EQ(info["ranked_by"], "variance");
  ASSERT_EQ(info["units"].size(), 3u);
  for (const json& u : info["units"]) {
    EXPECT_TRUE(u["kl"].is_null());
    EXPECT_LT(u["lo"].get<double>(), u["hi"].get<double>());
  }
  EXPECT_GE(info["units"][0]["variance"].get<double>(), info["units"][2]["variance"].get<double>());
}

TEST_F(Serve, GanRuns) {
  const json info = get(explorer("dcgan"), "/api/info");
  EXPECT_EQ(info["kind"], "gan");
  EXPECT_EQ(info["latent_dim"], 16);
  EXPECT_FALSE(info["encoder"]);
  EXPECT_FALSE(info["map"]);
  EXPECT_EQ(info["ranked_by"], "index");
  std::vector<float> z(16, 0.0f);
  z[3] = 1.5f;
  const json d = ok(explorer("dcgan"), "/api/decode", {{"code", z}});
  EXPECT_EQ(png_size(d["image"]), std::make_pair(int64_t{28}, int64_t{28}));
  GenerativeRun run = GenerativeRun::open(run_dir("dcgan"));
  EXPECT_EQ(d["image"], expected_urls(run.decode(Tensor::from_vector(z, {1, 16})))[0]);
  // Arithmetic over rows of a seeded batch, as `latentlab arithmetic --seed --batch`.
  const json b = ok(explorer("dcgan"), "/api/batch", {{"seed", 2}, {"n", 10}});
  const json r = ok(explorer("dcgan"), "/api/arithmetic",
                    {{"plus", "1,2"}, {"minus", "idx:3"}, {"seed", 2}, {"batch", 10}, {"base", {{"code", b["codes"][5]}}}, {"scales", {0, 1}}});
  ASSERT_EQ(r["images"].size(), 2u);
  EXPECT_EQ(r["images"][0], b["images"][5]);
  EXPECT_EQ(r["minus"]["mean_image"], b["images"][3]);
  const json i = ok(explorer("dcgan"), "/api/interpolate", {{"from", {{"code", b["codes"][0]}}}, {"to", {{"code", b["codes"][1]}}}, {"steps", 3}});
  EXPECT_EQ(i["images"][0], b["images"][0]);
  EXPECT_EQ(i["images"][2], b["images"][1]);
  EXPECT_EQ(ok(explorer("dcgan"), "/api/traverse", {{"dim", 15}, {"steps", 2}})["images"].size(), 2u);
  // What needs an encoder says so; a label is for the conditional GAN.
  bad(explorer("dcgan"), "/api/encode", R"({"index":0})", "needs an encoder");
  bad(explorer("dcgan"), "/api/scores", R"({"indices":[0]})", "needs an encoder");
  bad(explorer("dcgan"), "/api/interpolate", R"({"from":{"index":0},"to":{"index":1}})", "needs an encoder");
  bad(explorer("dcgan"), "/api/decode", json{{"code", z}, {"label", 1}}.dump(), "'label' is for a conditional GAN");
  bad(explorer("dcgan"), "/api/arithmetic", json{{"plus", "1,99"}, {"minus", "2"}, {"batch", 10}, {"base", {{"code", z}}}}.dump(), "'plus'");
}

TEST_F(Serve, ConditionalGanTakesAClass) {
  const json info = get(explorer("cgan"), "/api/info");
  EXPECT_TRUE(info["conditional"]);
  ASSERT_EQ(info["classes"].size(), 4u);
  const std::vector<float> z(16, 0.3f);
  const json a = ok(explorer("cgan"), "/api/decode", {{"code", z}, {"label", 1}});
  const json b = ok(explorer("cgan"), "/api/decode", {{"code", z}, {"label", 2}});
  EXPECT_NE(a["image"], b["image"]);
  EXPECT_EQ(ok(explorer("cgan"), "/api/decode", {{"code", z}})["image"], ok(explorer("cgan"), "/api/decode", {{"code", z}, {"label", 0}})["image"]);
  bad(explorer("cgan"), "/api/decode", json{{"code", z}, {"label", 4}}.dump(), "'label' must be an integer in 0..3");
  // A batch cycles through the classes unless one is given.
  EXPECT_EQ(ok(explorer("cgan"), "/api/batch", {{"n", 6}})["labels"], json({0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(ok(explorer("cgan"), "/api/batch", {{"n", 3}, {"label", 2}})["labels"], json({2, 2, 2}));
}

// Every class of bad input: 400 and one line that names the field and what was expected.
TEST_F(Serve, BadRequestsGet400AndOneClearLine) {
  Explorer& e = explorer("vae");
  const std::string code4 = R"("code":[0,0,0,0])";
  // The body: not JSON, not an object, too deep, too large.
  bad(e, "/api/decode", "", "not JSON");
  bad(e, "/api/decode", "{", "not JSON");
  bad(e, "/api/decode", R"({"code":[0,0,0,0],})", "not JSON");
  bad(e, "/api/decode", "[1,2,3,4]", "must be a JSON object");
  bad(e, "/api/decode", "42", "must be a JSON object");
  bad(e, "/api/decode", std::string(100000, '[') + std::string(100000, ']'), "nests");
  bad(e, "/api/decode", "{\"code\":[" + std::string(300000, ' ') + "0,0,0,0]}", "at most 262144");
  // Fields: unknown, missing, of the wrong type, the wrong length, out of range, not finite.
  bad(e, "/api/decode", "{" + code4 + R"(,"extra":1})", "unknown field 'extra'");
  bad(e, "/api/decode", "{}", "'code' is required");
  bad(e, "/api/decode", R"({"code":"0,0,0,0"})", "'code' must be an array of 4 numbers, got a string");
  bad(e, "/api/decode", R"({"code":[0,0]})", "'code' must hold 4 numbers, got 2");
  bad(e, "/api/decode", R"({"code":[0,0,0,0,0]})", "'code' must hold 4 numbers, got 5");
  bad(e, "/api/decode", R"({"code":[0,0,0,"1"]})", "'code'[3] must be a number, got a string");
  bad(e, "/api/decode", R"({"code":[0,0,0,null]})", "'code'[3] must be a number, got null");
  bad(e, "/api/decode", R"({"code":[0,0,0,5000]})", "'code'[3] must be a finite number in [-1000, 1000]");
  bad(e, "/api/decode", R"({"code":[0,0,0,1e999]})", "not JSON: number overflow parsing '1e999'");
  bad(e, "/api/decode", "{" + code4 + R"(,"label":1})", "'label' is for a conditional GAN");
  bad(e, "/api/encode", R"({"index":32})", "'index' must be an integer in 0..31, got 32");
  bad(e, "/api/encode", R"({"index":-1})", "'index' must be an integer in 0..31, got -1");
  bad(e, "/api/encode", R"({"index":1.5})", "'index' must be an integer in 0..31, got a number");
  bad(e, "/api/encode", R"({"index":18446744073709551615})", "'index' must be an integer in 0..31");
  bad(e, "/api/batch", R"({"n":0})", "'n' must be an integer in 1..100, got 0");
  bad(e, "/api/batch", R"({"n":101})", "'n' must be an integer in 1..100, got 101");
  bad(e, "/api/batch", R"({"seed":-1})", "'seed' must be an integer in 0..");
  bad(e, "/api/batch", R"({"seed":"7"})", "'seed' must be an integer");
  // Interpolation: its ends, steps and mode.
  bad(e, "/api/interpolate", R"({"to":{"index":0}})", "'from' is required");
  bad(e, "/api/interpolate", R"({"from":[0,0,0,0],"to":{"index":0}})", "'from' must be a JSON object, got an array");
  bad(e, "/api/interpolate", R"({"from":{"index":0,"code":[0,0,0,0]},"to":{"index":0}})", "exactly one of 'code' and 'index'");
  bad(e, "/api/interpolate", R"({"from":{"index":99},"to":{"index":0}})", "'from'.index must be an integer in 0..31");
  bad(e, "/api/interpolate", R"({"from":{"index":0},"to":{"code":[1]}})", "'to'.code must hold 4 numbers, got 1");
  bad(e, "/api/interpolate", R"({"from":{"index":0},"to":{"idx":1}})", "unknown field 'idx' in 'to'");
  bad(e, "/api/interpolate", R"({"from":{"index":0},"to":{"index":1},"steps":1})", "'steps' must be an integer in 2..32, got 1");
  bad(e, "/api/interpolate", R"({"from":{"index":0},"to":{"index":1},"steps":1000000})", "'steps' must be an integer in 2..32");
  bad(e, "/api/interpolate", R"({"from":{"index":0},"to":{"index":1},"mode":"cubic"})", "'mode' must be \"lerp\" or \"slerp\"");
  bad(e, "/api/interpolate", R"({"from":{"index":0},"to":{"index":1},"mode":""})", "'mode' must be a string of 1..8 characters");
  // Arithmetic: selectors, base, scales.
  bad(e, "/api/arithmetic", R"({"plus":"label:9","minus":"label:0","base":{"index":0}})", "'plus'");
  bad(e, "/api/arithmetic", R"({"plus":"label:1","minus":"idx:1,99","base":{"index":0}})", "'minus'");
  bad(e, "/api/arithmetic", R"({"plus":"label:1","minus":"bogus","base":{"index":0}})", "'minus'");
  bad(e, "/api/arithmetic", R"({"plus":"label:1","minus":"label:0"})", "'base' is required");
  bad(e, "/api/arithmetic", R"({"plus":"label:1","minus":"label:0","base":{"index":0},"scales":[100]})", "'scales'[0] must be a finite number in [-10, 10]");
  bad(e, "/api/arithmetic", R"({"plus":"label:1","minus":"label:0","base":{"index":0},"scales":[]})", "'scales' must hold 1..16 numbers, got 0");
  bad(e, "/api/arithmetic", R"({"plus":"label:1","minus":"label:0","base":{"index":0},"seed":1})", "unknown field 'seed'");
  bad(e, "/api/arithmetic", "{\"plus\":\"" + std::string(300, 'x') + R"(","minus":"label:0","base":{"index":0}})", "'plus' must be a string of 1..256 characters");
  // Traversal, the map, scores.
  bad(e, "/api/traverse", R"({"dim":4})", "'dim' must be an integer in 0..3, got 4");
  bad(e, "/api/traverse", R"({"dim":0,"range":[1,1]})", "'range' must be two different numbers");
  bad(e, "/api/traverse", R"({"dim":0,"range":[1]})", "'range' must hold 2 numbers, got 1");
  bad(e, "/api/map/point", R"({"x":"1","y":0})", "'x' must be a number, got a string");
  bad(e, "/api/map/point", R"({"x":1})", "'y' is required");
  bad(e, "/api/scores", R"({})", "give either 'indices'");
  bad(e, "/api/scores", R"({"indices":[0],"worst":2})", "give either 'indices'");
  bad(e, "/api/scores", R"({"indices":[0.5]})", "'indices'[0] must be an integer");
  bad(e, "/api/scores", R"({"indices":[]})", "'indices' must hold 1..64 numbers");
  bad(e, "/api/scores", R"({"worst":2,"of":5000})", "'of' must be an integer in 1..2000");
  bad(e, "/api/scores", R"({"worst":99})", "'worst' must be an integer in 1..32");
  // Methods and paths: 405 with Allow for a known path, 404 for anything else (no file is read).
  refused(e, "GET", "/api/decode", "", 405, "/api/decode takes POST");
  refused(e, "POST", "/api/info", "{}", 405, "/api/info takes GET");
  refused(e, "DELETE", "/api/map", "", 405, "takes GET");
  refused(e, "POST", "/index.html", "", 405, "takes GET");
  refused(e, "GET", "/api/nothing", "", 404, "no such page");
  refused(e, "GET", "/../../etc/passwd", "", 404, "no such page");
  refused(e, "GET", "/app.js/../../../etc/passwd", "", 404, "no such page");
  refused(e, "GET", "/%2e%2e/etc/passwd", "", 404, "no such page");
  refused(e, "GET", "/etc/passwd", "", 404, "no such page");
  EXPECT_EQ(e.handle("GET", "/api/decode", "").headers.back(), std::make_pair(std::string("Allow"), std::string("POST")));
  // ... and after all that the explorer still answers.
  EXPECT_EQ(e.handle("POST", "/api/decode", "{" + code4 + "}").status, 200);
}

TEST_F(Serve, ServesItsOwnPage) {
  const HttpResponse page = explorer("vae").handle("GET", "/", "");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("latentlab explorer"), std::string::npos);
  EXPECT_EQ(explorer("vae").handle("GET", "/index.html", "").body, page.body);
  EXPECT_EQ(explorer("vae").handle("GET", "/app.js", "").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(explorer("vae").handle("GET", "/style.css", "").content_type, "text/css; charset=utf-8");
  // The page refers to nothing outside the server (no CDN, no fonts): no absolute URLs in it.
  for (const char* f : {"/", "/app.js", "/style.css"}) {
    const std::string body = explorer("vae").handle("GET", f, "").body;
    EXPECT_EQ(body.find("http://"), std::string::npos) << f;
    EXPECT_EQ(body.find("https://"), std::string::npos) << f;
  }
  // And the browser is told to load nothing from elsewhere.
  bool csp = false;
  for (const auto& [name, value] : page.headers) csp |= name == "Content-Security-Policy" && value.find("default-src 'none'") != std::string::npos;
  EXPECT_TRUE(csp);
}

// Many threads at once, each decoding its own codes: every answer is the one a lone request gets.
TEST_F(Serve, ConcurrentRequestsGetTheirOwnAnswers) {
  constexpr int kThreads = 8, kRequests = 40;
  std::vector<std::string> expected(kThreads);
  auto code = [](int t) { return json{{"code", {0.1 * t, -0.2 * t, 0.3, 1.0 - 0.25 * t}}}; };
  for (int t = 0; t < kThreads; ++t) expected[static_cast<size_t>(t)] = ok(explorer("vae"), "/api/decode", code(t))["image"];
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        const HttpResponse r = i % 4 == 3 ? explorer("vae").handle("POST", "/api/interpolate", R"({"from":{"index":0},"to":{"index":1},"steps":3})")
                                          : explorer("vae").handle("POST", "/api/decode", code(t).dump());
        if (r.status != 200) ++wrong;
        else if (i % 4 != 3 && json::parse(r.body)["image"] != expected[static_cast<size_t>(t)]) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// The real server on an ephemeral loopback port.
#ifdef LATENTLAB_NO_HTTPLIB
TEST_F(Serve, HttpServerOnLoopback) {
  GTEST_SKIP() << "this build has no cpp-httplib (apt-get install libcpp-httplib-dev pkg-config, then reconfigure)";
}
#else
TEST_F(Serve, HttpServerOnLoopback) {
  ExplorerServer server(explorer("vae"), 12);
  const int port = server.bind("127.0.0.1", 0);
  ASSERT_GT(port, 0);
  // Stopped and joined however the test ends (an ASSERT returns early).
  struct Serving {
    ExplorerServer& server;
    std::thread thread;
    ~Serving() {
      server.stop();
      thread.join();
    }
  } serving{server, std::thread([&] { server.run(); })};
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(10, 0);
  client.set_tcp_nodelay(true);
  // bind() already listens, so a request made before run() reaches its accept loop waits in the
  // socket's backlog rather than failing.
  auto page = client.Get("/");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("latentlab explorer"), std::string::npos);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  auto js = client.Get("/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);

  auto decoded = client.Post("/api/decode", R"({"code":[0,0,0,0]})", "application/json");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->status, 200);
  EXPECT_EQ(json::parse(decoded->body)["image"], ok(explorer("vae"), "/api/decode", {{"code", {0, 0, 0, 0}}})["image"]);
  auto badjson = client.Post("/api/decode", "{nope", "application/json");
  ASSERT_TRUE(badjson);
  EXPECT_EQ(badjson->status, 400);
  EXPECT_NE(json::parse(badjson->body)["error"].get<std::string>().find("not JSON"), std::string::npos);

  // Path traversal, raw and percent-encoded: 404 with the JSON error, never a file.
  for (const char* p : {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/app.js/../../etc/passwd", "//etc/passwd",
                        "/..%2f..%2fetc%2fpasswd", "/web/app.js", "/apps/web/index.html"}) {
    auto r = client.Get(p);
    ASSERT_TRUE(r) << p;
    EXPECT_EQ(r->status, 404) << p;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << p;
    EXPECT_TRUE(json::parse(r->body).contains("error")) << p << ": " << r->body;
  }
  // A page elsewhere that resolves its name to 127.0.0.1 (DNS rebinding) is refused.
  auto rebind = client.Get("/api/info", httplib::Headers{{"Host", "evil.example:" + std::to_string(port)}});
  ASSERT_TRUE(rebind);
  EXPECT_EQ(rebind->status, 400);
  EXPECT_NE(rebind->body.find("localhost only"), std::string::npos);
  auto localhost = client.Get("/api/info", httplib::Headers{{"Host", "localhost:" + std::to_string(port)}});
  ASSERT_TRUE(localhost);
  EXPECT_EQ(localhost->status, 200);
  // A body over 1 MiB is refused before it is read; over 256 KiB by the explorer.
  auto huge = client.Post("/api/decode", std::string(2 << 20, ' '), "application/json");
  if (huge) {  // httplib may close the connection mid-upload instead of answering: either way, refused
    EXPECT_EQ(huge->status, 413);
  }
  auto large = client.Post("/api/decode", std::string(300 << 10, ' '), "application/json");
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 400);

  // 8 clients at once, each on its own connection, 25 decodes each: every one answered.
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client cl("127.0.0.1", port);
      cl.set_read_timeout(20, 0);
      cl.set_tcp_nodelay(true);  // no 40 ms Nagle/delayed-ACK wait per request (bench/results/serve_load.md)
      for (int i = 0; i < 25; ++i) {
        const json body{{"code", {0.1 * c, 0.01 * i, 0, 0}}};
        auto r = cl.Post("/api/decode", body.dump(), "application/json");
        if (!r || r->status != 200 || !json::parse(r->body).contains("image")) ++failures;
      }
    });
  }
  for (auto& th : clients) th.join();
  EXPECT_EQ(failures.load(), 0);
  // And it still serves after all of it.
  auto info = client.Get("/api/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, 200);
}
#endif

TEST_F(Serve, CommandLineRefusesBadFlags) {
  test::Result r = test::run({"serve", dir() / "missing"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = test::run({"serve", run_dir("vae"), "--port", "70000"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--port must be in 0..65535"), std::string::npos) << r.err;
  r = test::run({"serve", run_dir("vae"), "--threads", "0"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  r = test::run({"serve", run_dir("vae"), "--map-points", "1"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--map-points"), std::string::npos) << r.err;
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("example.com"));
}

}  // namespace
}  // namespace ll::app
