// serve_api.cpp: the requests of `latentlab serve` (serve_api.h), checked and answered.
#include "apps/serve_api.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/web_assets.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "engine/rng.h"
#include "models/latent.h"
#include "models/scores.h"

namespace ll::app {

namespace {

using json = nlohmann::json;
using Limits = ExplorerLimits;

// A request the client got wrong: 400 with the message.
struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The random streams of the explorer (Philox subsequences of a request's or the map's seed).
enum Stream : int64_t { kMapSubset = 7, kScorePool = 8 };

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  // replace: a message that quotes the client's bytes must not fail on invalid UTF-8.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.headers = {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}};
  return r;
}

HttpResponse error_response(int status, const std::string& message) { return json_response(status, json{{"error", message}}); }

// A client's text quoted in a message: at most 40 bytes, so an error stays one short line.
std::string clip(const std::string& s) { return s.size() <= 40 ? s : s.substr(0, 37) + "..."; }

// The deepest nesting of [ and { in a JSON text (outside strings). Checked before parsing, so that a
// body of a hundred thousand '[' is refused without building (and recursively destroying) a value
// that deep.
int nesting_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return deepest;
}

const char* type_of(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number_integer() || j.is_number_unsigned()) return "an integer";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

std::string num_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The fields of one JSON object of a request, each read with its type and range checked. `where`
// names the object in messages: "" for the body, "'from'" for a nested one.
class Fields {
 public:
  Fields(const json& j, std::string where, std::initializer_list<const char*> allowed) : j_(j), where_(std::move(where)) {
    if (!j.is_object()) throw BadRequest((where_.empty() ? std::string("the request body") : where_) + " must be a JSON object, got " + type_of(j));
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return it.key() == a; })) {
        std::string expected;
        for (const char* a : allowed) expected += std::string(expected.empty() ? "" : ", ") + a;
        throw BadRequest("unknown field '" + clip(it.key()) + "'" + (where_.empty() ? "" : " in " + where_) +
                         (allowed.size() ? " (expected " + expected + ")" : " (this endpoint takes none)"));
      }
    }
  }

  bool has(const char* key) const { return j_.contains(key); }
  const json& at(const char* key) const { return j_.at(key); }
  std::string name(const char* key) const { return where_.empty() ? "'" + std::string(key) + "'" : where_ + "." + key; }

  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    require(key);
    const json& v = j_.at(key);
    const std::string range = " in " + std::to_string(lo) + ".." + std::to_string(hi);
    if (!v.is_number_integer()) throw BadRequest(name(key) + " must be an integer" + range + ", got " + type_of(v));
    // nlohmann keeps non-negative integers unsigned: one above INT64_MAX would wrap to a negative
    // int64 and pass a lower bound, so it is refused as it is.
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw BadRequest(name(key) + " must be an integer" + range + ", got " + std::to_string(v.get<uint64_t>()));
    }
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) throw BadRequest(name(key) + " must be an integer" + range + ", got " + std::to_string(i));
    return i;
  }
  int64_t integer(const char* key, int64_t lo, int64_t hi, int64_t fallback) const { return has(key) ? integer(key, lo, hi) : fallback; }

  double number(const char* key, double lo, double hi) const {
    require(key);
    return checked_number(j_.at(key), name(key), lo, hi);
  }

  std::string text(const char* key, size_t max_chars) const {
    require(key);
    const json& v = j_.at(key);
    if (!v.is_string()) throw BadRequest(name(key) + " must be a string, got " + type_of(v));
    const std::string s = v.get<std::string>();
    if (s.empty() || s.size() > max_chars) {
      throw BadRequest(name(key) + " must be a string of 1.." + std::to_string(max_chars) + " characters, got " + std::to_string(s.size()));
    }
    return s;
  }
  std::string text(const char* key, size_t max_chars, const std::string& fallback) const { return has(key) ? text(key, max_chars) : fallback; }

  // An array of min_n..max_n numbers, each finite and within [lo, hi].
  std::vector<float> numbers(const char* key, size_t min_n, size_t max_n, double lo, double hi) const {
    require(key);
    const json& v = j_.at(key);
    const std::string count = min_n == max_n ? std::to_string(min_n) : std::to_string(min_n) + ".." + std::to_string(max_n);
    if (!v.is_array()) throw BadRequest(name(key) + " must be an array of " + count + " numbers, got " + type_of(v));
    if (v.size() < min_n || v.size() > max_n) {
      throw BadRequest(name(key) + " must hold " + count + " numbers, got " + std::to_string(v.size()));
    }
    std::vector<float> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      out.push_back(static_cast<float>(checked_number(v[i], name(key) + "[" + std::to_string(i) + "]", lo, hi)));
    }
    return out;
  }

 private:
  void require(const char* key) const {
    if (!has(key)) throw BadRequest(name(key) + " is required");
  }
  static double checked_number(const json& v, const std::string& what, double lo, double hi) {
    // JSON has no NaN or infinity, but a number may overflow a double ("1e999" parses as inf).
    if (!v.is_number()) throw BadRequest(what + " must be a number, got " + type_of(v));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      throw BadRequest(what + " must be a finite number in [" + num_text(lo) + ", " + num_text(hi) + "], got " + num_text(d));
    }
    return d;
  }

  const json& j_;
  std::string where_;
};

// RFC 4648 base64 (with padding), for PNGs in data: URLs.
std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    for (int k = 3; k >= 0; --k) out += kAlphabet[(v >> (6 * k)) & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (two ? uint32_t{bytes[i + 1]} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Images (N, C, H, W) in [0, 1] as N data: URLs of PNGs at the model's size (the page scales them
// with `image-rendering: pixelated`, so no bytes are spent on enlarged copies).
std::vector<std::string> png_urls(const Tensor& images) {
  std::vector<std::string> urls;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const data::Image im = data::make_grid(images.slice(i, i + 1), 1, 0);
    urls.push_back("data:image/png;base64," + base64(data::encode_png(im)));
  }
  return urls;
}

double round4(double x) { return std::round(x * 1e4) / 1e4; }

// A code as JSON, to 5 decimals: the page's sliders and the map do not need float's last digits,
// and a code of 512 numbers stays a few kilobytes.
json code_json(const std::vector<float>& code) {
  json out = json::array();
  for (const float v : code) out.push_back(std::round(static_cast<double>(v) * 1e5) / 1e5);
  return out;
}

std::vector<float> row_of(const std::vector<float>& m, int64_t D, int64_t i) {
  return {m.begin() + i * D, m.begin() + (i + 1) * D};
}

}  // namespace

struct Explorer::State {
  GenerativeRun run;
  ExplorerOptions options;
  std::mutex model_mutex;
  int64_t D = 0;
  std::string data_name;
  std::vector<std::string> class_names;
  // Autoencoder/VAE runs: the test set and its codes (means of q(z|x), (N, D)), computed once.
  std::unique_ptr<data::Dataset> test;
  models::Encoded codes;
  std::vector<float> mu;  // codes.mu on the host
  models::UnitStats stats;
  // The latent map: a subset of the test images in 2-D.
  bool map_pca = false;
  std::vector<int64_t> map_index;
  std::vector<float> map_x, map_y;
  std::vector<double> explained;
  std::vector<float> pca_mean, pca_components;  // (D), (2, D)
  json info;

  explicit State(GenerativeRun r) : run(std::move(r)) {}

  bool has_encoder() const { return test != nullptr; }

  // Model calls, one at a time (serve_api.h says why), with no graph recorded on this thread.
  template <class F>
  auto locked(F&& f) {
    std::lock_guard<std::mutex> lock(model_mutex);
    NoGradGuard no_grad;
    return f();
  }

  Tensor decode(const std::vector<float>& codes, int64_t n, const std::vector<int32_t>& labels) {
    const Tensor z = Tensor::from_vector(codes, {n, D});
    return locked([&] { return run.decode(z, labels).to(Device::CPU); });
  }

  void need_encoder(const std::string& what) const {
    if (!has_encoder()) {
      throw BadRequest(what + " needs an encoder, and this is a GAN run (" + run.describe() +
                       ") without one: take codes from /api/batch instead");
    }
  }

  std::string class_name(int32_t label) const {
    if (label < 0) return "";
    return static_cast<size_t>(label) < class_names.size() ? class_names[static_cast<size_t>(label)] : std::to_string(label);
  }

  // The conditional GAN's class for n images: `label` (default 0) for every one; empty otherwise,
  // where a `label` is refused.
  std::vector<int32_t> labels_for(const Fields& f, int64_t n) const {
    const int64_t k = run.num_classes();
    if (k == 0) {
      if (f.has("label")) throw BadRequest("'label' is for a conditional GAN (cgan); this run is " + run.describe());
      return {};
    }
    return std::vector<int32_t>(static_cast<size_t>(n), static_cast<int32_t>(f.integer("label", 0, k - 1, 0)));
  }

  std::vector<float> code_field(const Fields& f, const char* key) const {
    return f.numbers(key, static_cast<size_t>(D), static_cast<size_t>(D), -Limits::kMaxCodeValue, Limits::kMaxCodeValue);
  }

  int64_t test_index(const Fields& f, const char* key) const {
    need_encoder("a test image (" + f.name(key) + ")");
    return f.integer(key, 0, test->n - 1);
  }

  // END: {"code": [...]} or {"index": I}.
  std::vector<float> endpoint(const Fields& parent, const char* key) const {
    if (!parent.has(key)) throw BadRequest(parent.name(key) + " is required: {\"code\": [" + std::to_string(D) + " numbers]} or {\"index\": test image}");
    const Fields f(parent.at(key), parent.name(key), {"code", "index"});
    if (f.has("code") == f.has("index")) throw BadRequest(parent.name(key) + " must have exactly one of 'code' and 'index'");
    if (f.has("code")) return code_field(f, "code");
    return row_of(mu, D, test_index(f, "index"));
  }

  void build_map();
  void build_info();

  json info_json() const { return info; }
  json decode_api(const json& body);
  json encode_api(const json& body);
  json batch_api(const json& body);
  json interpolate_api(const json& body);
  json arithmetic_api(const json& body);
  json traverse_api(const json& body);
  json map_api(const json& body);
  json map_point_api(const json& body);
  json scores_api(const json& body);
};

void Explorer::State::build_map() {
  if (!has_encoder() || D < 2) return;
  map_index = data::random_subset(test->n, options.map_points, options.seed, kMapSubset);
  const int64_t n = static_cast<int64_t>(map_index.size());
  const Tensor subset = models::gather_rows(codes.mu, map_index);  // (n, D)
  map_x.resize(static_cast<size_t>(n));
  map_y.resize(static_cast<size_t>(n));
  map_pca = D > 2;
  const std::vector<float> sv = subset.to_vector();
  if (!map_pca) {
    for (int64_t i = 0; i < n; ++i) {
      map_x[static_cast<size_t>(i)] = sv[static_cast<size_t>(2 * i)];
      map_y[static_cast<size_t>(i)] = sv[static_cast<size_t>(2 * i + 1)];
    }
    return;
  }
  // As `latentlab latent-map`: the first two principal components of the codes, and the share of
  // the codes' total variance each explains (both with the population normalization).
  const models::Pca p = models::pca(subset, 2);
  pca_mean = p.mean.to_vector();
  pca_components = p.components.to_vector();
  const std::vector<float> proj = p.projected.to_vector();
  double total = 0, var[2] = {0, 0};
  for (int64_t d = 0; d < D; ++d) {
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; ++i) m += sv[static_cast<size_t>(i * D + d)];
    m /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) s += (sv[static_cast<size_t>(i * D + d)] - m) * (sv[static_cast<size_t>(i * D + d)] - m);
    total += s / static_cast<double>(n);
  }
  for (int64_t i = 0; i < n; ++i) {
    map_x[static_cast<size_t>(i)] = proj[static_cast<size_t>(2 * i)];
    map_y[static_cast<size_t>(i)] = proj[static_cast<size_t>(2 * i + 1)];
    for (int k = 0; k < 2; ++k) var[k] += static_cast<double>(proj[static_cast<size_t>(2 * i + k)]) * proj[static_cast<size_t>(2 * i + k)];
  }
  for (int k = 0; k < 2; ++k) explained.push_back(total > 0 ? round4(var[k] / static_cast<double>(n) / total) : 0.0);
}

void Explorer::State::build_info() {
  const bool gan = run.is_gan();
  const bool vae = !gan && run.autoencoder("info").variational();
  info = json{{"kind", gan ? "gan" : vae ? "vae" : "ae"},
              {"model", run.describe()},
              {"data", data_name},
              {"latent_dim", D},
              {"image", {{"channels", run.image_channels()}, {"height", run.image_height()}, {"width", gan ? run.image_height() : run.autoencoder("info").config().width}}},
              {"conditional", run.num_classes() > 0},
              {"classes", class_names},
              {"encoder", has_encoder()},
              {"map", has_encoder() && D >= 2},
              {"test_images", has_encoder() ? test->n : 0}};
  // The sliders: a VAE's units by KL (the ones that carry information first; collapsed units,
  // KL ~ 0, last), an AE's by code variance, a GAN's in index order. Ranges: the prior's bulk
  // [-3, 3] for a VAE and a GAN; an AE has no prior, so its units span their codes' mean +- 3 sd.
  json units = json::array();
  if (gan) {
    for (int64_t d = 0; d < D; ++d) units.push_back({{"dim", d}, {"kl", nullptr}, {"variance", nullptr}, {"active", nullptr}, {"lo", -3}, {"hi", 3}});
    info["ranked_by"] = "index";
  } else {
    double total_kl = 0;
    for (const int64_t d : stats.ranking) {
      const size_t u = static_cast<size_t>(d);
      const double sd = std::max(std::sqrt(stats.variance[u]), 0.1);
      units.push_back({{"dim", d},
                       {"kl", vae ? json(round4(stats.kl[u])) : json(nullptr)},
                       {"variance", round4(stats.variance[u])},
                       {"active", static_cast<bool>(stats.active[u])},
                       {"lo", vae ? -3.0 : round4(stats.mean[u] - 3 * sd)},
                       {"hi", vae ? 3.0 : round4(stats.mean[u] + 3 * sd)}});
      total_kl += stats.kl[u];
    }
    info["ranked_by"] = vae ? "kl" : "variance";
    info["active_units"] = stats.active_units;
    if (vae) info["total_kl"] = round4(total_kl);
  }
  info["units"] = units;
  info["limits"] = {{"max_body_bytes", Limits::kMaxBodyBytes}, {"max_code_value", Limits::kMaxCodeValue},
                    {"max_batch", Limits::kMaxBatch},        {"max_steps", Limits::kMaxSteps},
                    {"max_scales", Limits::kMaxScales},      {"max_scale", Limits::kMaxScale},
                    {"max_score_indices", Limits::kMaxScoreIndices}, {"max_score_pool", Limits::kMaxScorePool},
                    {"max_worst", Limits::kMaxWorst}};
}

json Explorer::State::decode_api(const json& body) {
  const Fields f(body, "", {"code", "label"});
  const std::vector<float> code = code_field(f, "code");
  const std::vector<int32_t> labels = labels_for(f, 1);
  return {{"image", png_urls(decode(code, 1, labels))[0]}};
}

json Explorer::State::encode_api(const json& body) {
  need_encoder("encode");
  const Fields f(body, "", {"index"});
  const int64_t i = test_index(f, "index");
  const std::vector<float> code = row_of(mu, D, i);
  const int32_t label = test->labels.empty() ? -1 : test->labels[static_cast<size_t>(i)];
  const Tensor original = data::gather_images(*test, {i}, data::Scale::Unit);
  json out{{"index", i}, {"code", code_json(code)}, {"image", png_urls(original)[0]}, {"decoded", png_urls(decode(code, 1, {}))[0]}, {"label", label}};
  out["class"] = class_name(label);
  return out;
}

json Explorer::State::batch_api(const json& body) {
  const Fields f(body, "", {"seed", "n", "label"});
  const int64_t seed = f.integer("seed", 0, (int64_t{1} << 53) - 1, 0);  // JavaScript's exact integers
  const int64_t n = f.integer("n", 1, Limits::kMaxBatch, 16);
  // As `latentlab sample --seed S --n N`: one (N, D) draw from Generator(S), so the rows are the
  // images `sample --numbered` shows and the indices `arithmetic --seed S --batch N` takes. A
  // conditional GAN cycles through its classes unless a label is given.
  std::vector<int32_t> labels;
  if (run.num_classes() > 0) labels = run.labels(n, f.has("label") ? f.integer("label", 0, run.num_classes() - 1) : -1);
  else labels_for(f, n);  // refuses a label
  Generator gen(static_cast<uint64_t>(seed));
  const std::vector<float> z = randn({n, D}, gen).to_vector();
  json codes = json::array();
  for (int64_t i = 0; i < n; ++i) codes.push_back(code_json(row_of(z, D, i)));
  json out{{"seed", seed}, {"n", n}, {"codes", codes}, {"images", png_urls(decode(z, n, labels))}};
  if (!labels.empty()) out["labels"] = labels;
  return out;
}

json Explorer::State::interpolate_api(const json& body) {
  const Fields f(body, "", {"from", "to", "steps", "mode", "label"});
  const std::vector<float> a = endpoint(f, "from"), b = endpoint(f, "to");
  const int64_t steps = f.integer("steps", 2, Limits::kMaxSteps, 8);
  const std::string mode = f.text("mode", 8, "lerp");
  if (mode != "lerp" && mode != "slerp") throw BadRequest("'mode' must be \"lerp\" or \"slerp\", got \"" + clip(mode) + "\"");
  const std::vector<int32_t> labels = labels_for(f, steps);
  const Tensor path = models::interpolate(Tensor::from_vector(a, {D}), Tensor::from_vector(b, {D}), steps,
                                          mode == "lerp" ? models::PathMode::Lerp : models::PathMode::Slerp);
  const std::vector<float> pv = path.to_vector();
  json norms = json::array();
  for (int64_t s = 0; s < steps; ++s) {
    const std::vector<float> r = row_of(pv, D, s);
    norms.push_back(round4(std::sqrt(std::inner_product(r.begin(), r.end(), r.begin(), 0.0))));
  }
  const double na = std::sqrt(std::inner_product(a.begin(), a.end(), a.begin(), 0.0));
  const double nb = std::sqrt(std::inner_product(b.begin(), b.end(), b.begin(), 0.0));
  const double cosine = na > 0 && nb > 0 ? std::clamp(std::inner_product(a.begin(), a.end(), b.begin(), 0.0) / (na * nb), -1.0, 1.0) : 1.0;
  return {{"mode", mode},
          {"steps", steps},
          {"norms", norms},
          {"angle_deg", round4(std::acos(cosine) * 180 / std::numbers::pi)},
          {"images", png_urls(decode(pv, steps, labels))}};
}

json Explorer::State::arithmetic_api(const json& body) {
  const bool gan = run.is_gan();
  const Fields f = gan ? Fields(body, "", {"plus", "minus", "base", "scales", "seed", "batch", "label"})
                       : Fields(body, "", {"plus", "minus", "base", "scales"});
  const std::string plus = f.text("plus", Limits::kMaxSelectorChars), minus = f.text("minus", Limits::kMaxSelectorChars);
  const std::vector<float> base = endpoint(f, "base");
  const std::vector<float> scales = f.has("scales") ? f.numbers("scales", 1, Limits::kMaxScales, -Limits::kMaxScale, Limits::kMaxScale)
                                                    : std::vector<float>{0, 0.5f, 1, 1.5f, 2};
  // The two groups' codes: test images' mean codes (VAE/AE), or rows of a seeded batch (GAN).
  Tensor pool;
  auto group = [&](const std::string& spec, const char* key) {
    std::vector<int64_t> idx;
    try {
      idx = gan ? models::select_rows(spec, pool.size(0)) : models::select_images(*test, spec);
    } catch (const std::invalid_argument& e) {
      throw BadRequest(std::string("'") + key + "': " + e.what());
    }
    if (idx.empty()) throw BadRequest(std::string("'") + key + "' selects no images: \"" + clip(spec) + "\"");
    return idx;
  };
  if (gan) {
    Generator gen(static_cast<uint64_t>(f.integer("seed", 0, (int64_t{1} << 53) - 1, 0)));
    pool = randn({f.integer("batch", 1, Limits::kMaxBatch, Limits::kMaxBatch), D}, gen);
  } else {
    pool = codes.mu;
  }
  const std::vector<int64_t> ip = group(plus, "plus"), im = group(minus, "minus");
  const std::vector<float> zp = models::mean_code(models::gather_rows(pool, ip)).to_vector();
  const std::vector<float> zm = models::mean_code(models::gather_rows(pool, im)).to_vector();
  std::vector<float> v(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) v[static_cast<size_t>(d)] = zp[static_cast<size_t>(d)] - zm[static_cast<size_t>(d)];
  // Rows: the two group means, then base + s v for each scale; decoded in one batch.
  std::vector<float> rows = zp;
  rows.insert(rows.end(), zm.begin(), zm.end());
  for (const float s : scales) {
    for (int64_t d = 0; d < D; ++d) rows.push_back(base[static_cast<size_t>(d)] + s * v[static_cast<size_t>(d)]);
  }
  const int64_t n = 2 + static_cast<int64_t>(scales.size());
  const std::vector<int32_t> labels = labels_for(f, n);
  std::vector<std::string> urls = png_urls(decode(rows, n, labels));
  return {{"plus", {{"selector", plus}, {"images", ip.size()}, {"mean_image", urls[0]}}},
          {"minus", {{"selector", minus}, {"images", im.size()}, {"mean_image", urls[1]}}},
          {"vector_norm", round4(std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0)))},
          {"scales", scales},
          {"images", std::vector<std::string>(urls.begin() + 2, urls.end())}};
}

json Explorer::State::traverse_api(const json& body) {
  const Fields f(body, "", {"dim", "base", "range", "steps", "label"});
  const int64_t dim = f.integer("dim", 0, D - 1);
  const std::vector<float> base = f.has("base") ? endpoint(f, "base") : std::vector<float>(static_cast<size_t>(D), 0.0f);
  std::vector<float> range{-3, 3};
  if (f.has("range")) {
    range = f.numbers("range", 2, 2, -Limits::kMaxCodeValue, Limits::kMaxCodeValue);
    if (range[0] == range[1]) throw BadRequest("'range' must be two different numbers [lo, hi]");
  }
  const int64_t steps = f.integer("steps", 2, Limits::kMaxSteps, 9);
  const std::vector<int32_t> labels = labels_for(f, steps);
  // As `latentlab traverse`: the value replaces the base's coordinate.
  std::vector<float> rows, values;
  for (int64_t s = 0; s < steps; ++s) {
    const float v = range[0] + (range[1] - range[0]) * static_cast<float>(s) / static_cast<float>(steps - 1);
    values.push_back(v);
    std::vector<float> z = base;
    z[static_cast<size_t>(dim)] = v;
    rows.insert(rows.end(), z.begin(), z.end());
  }
  return {{"dim", dim}, {"values", values}, {"images", png_urls(decode(rows, steps, labels))}};
}

json Explorer::State::map_api(const json& body) {
  need_encoder("the latent map");
  const Fields f(body, "", {});
  if (D < 2) throw BadRequest("the latent map needs at least 2 latent dimensions; this run has " + std::to_string(D));
  json points = json::array();
  for (size_t i = 0; i < map_index.size(); ++i) {
    const int64_t idx = map_index[i];
    points.push_back({round4(map_x[i]), round4(map_y[i]), test->labels.empty() ? -1 : test->labels[static_cast<size_t>(idx)], idx});
  }
  json out{{"axes", map_pca ? "pca" : "latent"}, {"points", points}, {"classes", class_names}};
  if (map_pca) out["variance_explained"] = explained;
  return out;
}

json Explorer::State::map_point_api(const json& body) {
  need_encoder("the latent map");
  const Fields f(body, "", {"x", "y"});
  if (D < 2) throw BadRequest("the latent map needs at least 2 latent dimensions; this run has " + std::to_string(D));
  const double x = f.number("x", -Limits::kMaxCodeValue, Limits::kMaxCodeValue);
  const double y = f.number("y", -Limits::kMaxCodeValue, Limits::kMaxCodeValue);
  // The map's axes: z1, z2 themselves, or z = mean + x pc1 + y pc2 (the plane the map shows).
  std::vector<float> code(static_cast<size_t>(D));
  if (!map_pca) {
    code = {static_cast<float>(x), static_cast<float>(y)};
  } else {
    for (int64_t d = 0; d < D; ++d) {
      code[static_cast<size_t>(d)] = static_cast<float>(pca_mean[static_cast<size_t>(d)] + x * pca_components[static_cast<size_t>(d)] +
                                                        y * pca_components[static_cast<size_t>(D + d)]);
    }
  }
  return {{"code", code_json(code)}, {"image", png_urls(decode(code, 1, {}))[0]}};
}

json Explorer::State::scores_api(const json& body) {
  need_encoder("outlier scores");
  const Fields f(body, "", {"indices", "worst", "of", "seed"});
  const bool by_index = f.has("indices");
  if (by_index == f.has("worst")) throw BadRequest("give either 'indices' (test images) or 'worst' (with 'of' and 'seed')");
  std::vector<int64_t> idx;
  int64_t worst = 0;
  uint64_t seed = 0;
  if (by_index) {
    if (f.has("of") || f.has("seed")) throw BadRequest("'of' and 'seed' go with 'worst', not with 'indices'");
    const std::vector<float> v = f.numbers("indices", 1, Limits::kMaxScoreIndices, 0, static_cast<double>(test->n - 1));
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] != std::floor(v[i])) throw BadRequest("'indices'[" + std::to_string(i) + "] must be an integer");
      idx.push_back(static_cast<int64_t>(v[i]));
    }
  } else {
    worst = f.integer("worst", 1, Limits::kMaxWorst);
    seed = static_cast<uint64_t>(f.integer("seed", 0, (int64_t{1} << 53) - 1, 0));
    idx = data::random_subset(test->n, f.integer("of", 1, Limits::kMaxScorePool, 500), seed, kScorePool);
  }
  models::Autoencoder& model = run.autoencoder("outlier scores");
  const bool vae = model.variational();
  // One draw of z per image from the training's test-noise stream, as `latentlab score` (K = 1).
  std::vector<models::ImageScores> scores;
  locked([&] {
    Generator noise(seed, kVaeTestNoise);
    for (size_t start = 0; start < idx.size(); start += 256) {
      const std::vector<int64_t> part(idx.begin() + static_cast<std::ptrdiff_t>(start),
                                      idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), start + 256)));
      const std::vector<models::ImageScores> s = models::score_batch(model, data::gather_images(*test, part, data::Scale::Unit), 1, noise);
      scores.insert(scores.end(), s.begin(), s.end());
    }
    return 0;
  });
  const char* primary = vae ? "neg_elbo" : "recon";
  std::vector<size_t> order(idx.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (!by_index) {
    // Highest first; ties keep test-set order.
    auto key = [&](size_t i) { return vae ? scores[i].neg_elbo : scores[i].recon; };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
    order.resize(std::min(order.size(), static_cast<size_t>(worst)));
  }
  json rows = json::array();
  for (const size_t i : order) {
    const int32_t label = test->labels.empty() ? -1 : test->labels[static_cast<size_t>(idx[i])];
    json r{{"index", idx[i]}, {"label", label}, {"class", class_name(label)}, {"recon", round4(scores[i].recon)},
           {"entropy", round4(scores[i].entropy)}, {"excess", round4(scores[i].excess)}};
    if (vae) {
      r["kl"] = round4(scores[i].kl);
      r["neg_elbo"] = round4(scores[i].neg_elbo);
    }
    r["image"] = png_urls(data::gather_images(*test, {idx[i]}, data::Scale::Unit))[0];
    rows.push_back(r);
  }
  json out{{"score", primary}, {"scores", rows}};
  if (!by_index) out["of"] = idx.size();
  return out;
}

namespace {

using Api = json (Explorer::State::*)(const json&);
struct Route {
  const char* path;
  const char* method;
  Api api;  // nullptr: /api/info
};

}  // namespace

// (Defined after State, whose members they name.)
static const Route kRoutes[] = {
    {"/api/info", "GET", nullptr},
    {"/api/map", "GET", &Explorer::State::map_api},
    {"/api/decode", "POST", &Explorer::State::decode_api},
    {"/api/encode", "POST", &Explorer::State::encode_api},
    {"/api/batch", "POST", &Explorer::State::batch_api},
    {"/api/interpolate", "POST", &Explorer::State::interpolate_api},
    {"/api/arithmetic", "POST", &Explorer::State::arithmetic_api},
    {"/api/traverse", "POST", &Explorer::State::traverse_api},
    {"/api/map/point", "POST", &Explorer::State::map_point_api},
    {"/api/scores", "POST", &Explorer::State::scores_api},
};

std::vector<std::string> Explorer::paths() {
  std::vector<std::string> out{"/"};
  for (const WebAsset& a : web_assets()) out.push_back(a.path);
  for (const Route& r : kRoutes) out.push_back(r.path);
  return out;
}

Explorer::Explorer(GenerativeRun run, const ExplorerOptions& options) : s_(std::make_unique<State>(std::move(run))) {
  State& s = *s_;
  s.options = options;
  if (options.map_points < 2) throw std::invalid_argument("--map-points must be at least 2, got " + std::to_string(options.map_points));
  s.D = s.run.latent_dim();
  s.data_name = options.data.empty() ? s.run.data_name() : options.data;
  if (!s.run.is_gan()) {
    models::Autoencoder& model = s.run.autoencoder("serve");
    s.test = std::make_unique<data::Dataset>(load_test_set(s.data_name, model.config(), options.data.empty() ? "" : "--data"));
    if (s.test->n < 1) throw std::invalid_argument(s.data_name + " has no test images");
    s.locked([&] {
      s.codes = models::encode_all(model, *s.test);
      return 0;
    });
    s.mu = s.codes.mu.to_vector();
    s.stats = models::unit_stats(s.codes);
    if (!s.test->labels.empty()) {
      const int32_t top = *std::max_element(s.test->labels.begin(), s.test->labels.end());
      for (int32_t k = 0; k <= top; ++k) {
        s.class_names.push_back(static_cast<size_t>(k) < s.test->class_names.size() ? s.test->class_names[static_cast<size_t>(k)] : std::to_string(k));
      }
    }
    s.build_map();
  } else if (s.run.num_classes() > 0) {
    // A conditional GAN's classes by name where its data set still loads and names them.
    std::vector<std::string> names;
    try {
      names = data::load_dataset(s.data_name, data::Split::Test).class_names;
    } catch (const std::exception&) {
      names.clear();  // numbers instead: the run serves without its data
    }
    for (int64_t k = 0; k < s.run.num_classes(); ++k) {
      s.class_names.push_back(static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : std::to_string(k));
    }
  }
  s.build_info();
}

Explorer::~Explorer() = default;

std::string Explorer::summary() const {
  const State& s = *s_;
  std::string text = s.run.describe() + ", latent dim " + std::to_string(s.D);
  if (s.has_encoder()) text += ", " + std::to_string(s.test->n) + " test images of " + s.data_name + " encoded";
  return text;
}

HttpResponse Explorer::handle(const std::string& method, const std::string& raw_path, const std::string& body) {
  // The path without a query string; nothing is read from it but its name.
  const std::string path = raw_path.substr(0, raw_path.find('?'));
  try {
    for (const Route& r : kRoutes) {
      if (path != r.path) continue;
      if (method != r.method) {
        HttpResponse res = error_response(405, path + " takes " + r.method + ", not " + clip(method));
        res.headers.emplace_back("Allow", r.method);
        return res;
      }
      if (!r.api) return json_response(200, s_->info_json());
      json request = json::object();  // a GET has no body
      if (std::strcmp(r.method, "POST") == 0) {
        if (body.size() > Limits::kMaxBodyBytes) {
          throw BadRequest("the request body is " + std::to_string(body.size()) + " bytes; at most " + std::to_string(Limits::kMaxBodyBytes));
        }
        if (nesting_depth(body) > Limits::kMaxDepth) {
          throw BadRequest("the request body nests arrays/objects more than " + std::to_string(Limits::kMaxDepth) + " deep");
        }
        try {
          request = json::parse(body);
        } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
          // nlohmann's message says where and why ("[json.exception.parse_error.101] parse error at
          // line 1, column 2: syntax error ..."); its bracketed id means nothing to a client.
          const std::string what = e.what();
          const size_t id_end = what.find("] ");
          throw BadRequest("the request body is not JSON: " + (id_end == std::string::npos ? what : what.substr(id_end + 2)));
        }
      }
      return json_response(200, (s_.get()->*r.api)(request));
    }
    for (const WebAsset& a : web_assets()) {
      if (path == a.path || (path == "/" && std::strcmp(a.path, "/index.html") == 0)) {
        if (method != "GET") {
          HttpResponse res = error_response(405, path + " takes GET, not " + clip(method));
          res.headers.emplace_back("Allow", "GET");
          return res;
        }
        HttpResponse res;
        res.content_type = a.content_type;
        res.body.assign(reinterpret_cast<const char*>(a.data), a.size);
        // The page is the program's own: everything it loads comes from this server (no CDN), and
        // the browser is told to refuse anything else.
        res.headers = {{"Content-Security-Policy",
                        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
                       {"X-Content-Type-Options", "nosniff"},
                       {"Cache-Control", "no-cache"}};
        return res;
      }
    }
    return error_response(404, "no such page: " + clip(path) + " (the explorer is at /)");
  } catch (const std::invalid_argument& e) {  // BadRequest, and the selectors' and models' checks
    return error_response(400, e.what());
  } catch (const std::exception& e) {
    return error_response(500, std::string("internal error: ") + e.what());
  }
}

}  // namespace ll::app
