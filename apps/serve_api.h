// serve_api.h: what `latentlab serve` answers, without the sockets: a request (method, path, body)
// in, a response (status, content type, body) out. apps/serve_http.h puts it behind cpp-httplib;
// the tests call handle() directly.
//
// The API is JSON over POST, one endpoint per latent tool of the command line (docs/latent_lab.md):
//
//   GET  /api/info         the run: kind, model, data, latent_dim, image size, classes, and the latent
//                          units in slider order (a VAE's by KL, an AE's by code variance, a GAN's
//                          by index) with each unit's slider range; the limits below
//   POST /api/decode       {"code": [D numbers], "label"?: K}                     -> {"image"}
//   POST /api/encode       {"index": I}  a test image's mean code (VAE/AE)        -> {"code", "image", "decoded", "label", "class"}
//   POST /api/batch        {"seed": S, "n": N, "label"?: K}  prior / noise draws, the rows of
//                          `latentlab sample --seed S --n N`                      -> {"codes", "images"}
//   POST /api/interpolate  {"from": END, "to": END, "steps": N, "mode": "lerp"|"slerp", "label"?}
//                                                                                 -> {"images", "norms", "angle_deg"}
//   POST /api/arithmetic   {"plus": SEL, "minus": SEL, "base": END, "scales"?: [s...]}: v = mean
//                          code of plus - mean code of minus, base + s v decoded for each s. SEL
//                          selects test images (VAE/AE: "label:7", "idx:3,17", "label:7:20") or rows
//                          of the batch {"seed", "batch"} (GAN: "3,17", as `latentlab arithmetic`)
//                                                                                 -> {"images", "vector_norm", ...}
//   POST /api/traverse     {"dim": d, "base"?: END, "range"?: [lo, hi], "steps"?: N, "label"?}
//                                                                                 -> {"images", "values"}
//   GET  /api/map          test images' codes in 2-D (the latent itself for D = 2, else its first
//                          two principal components, as `latentlab latent-map`) with labels (VAE/AE)
//   POST /api/map/point    {"x", "y"}: the code at a point of the map, decoded    -> {"code", "image"}
//   POST /api/scores       {"indices": [I...]} or {"worst": K, "of": N, "seed": S}: per-image outlier
//                          scores of test images (models/scores.h; VAE/AE)        -> {"score", "scores"}
//
// END is {"code": [D numbers]} or {"index": I} (a test image's mean code, VAE/AE). Images are PNGs
// as data: URLs ("data:image/png;base64,..."), one per image, in [0, 1] at the model's size.
// GET / and the page's files (index.html, app.js, style.css, compiled into the program from
// apps/web/) are the only other paths: a fixed table, so no request can name a file on disk.
//
// Every request is checked before the model runs: the body is a JSON object of at most
// kMaxBodyBytes, nested at most kMaxDepth deep, with only the endpoint's fields, each of its JSON
// type and range (codes exactly D finite numbers of magnitude <= kMaxCodeValue); a bad one gets
// 400 and {"error": one line naming the field and what was expected}. Unknown paths get 404,
// other methods 405, a failure of the model itself 500, each with the same {"error"}.
//
// Thread safety: handle() may be called from many threads. The model is held once; every model
// call (encode, decode, scores) runs under one mutex, because a module's forward pass is not
// re-entrant (it may cache activations for backward) and the CPU kernels already use every core
// through OpenMP. The autograd switch NoGradGuard is thread-local (engine/autograd.cpp), so each
// call sets it on its own thread. Parsing, validation and PNG encoding run outside the lock.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apps/run_dir.h"

namespace ll::app {

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
};

struct ExplorerOptions {
  std::string data;          // the test images' data set; "" = the one the run was trained on
  int64_t map_points = 2000; // test images on the latent map (a seeded random subset)
  uint64_t seed = 0;         // of that subset
};

// The limits every request is held to (also reported by /api/info).
struct ExplorerLimits {
  static constexpr size_t kMaxBodyBytes = 256 * 1024;
  static constexpr int kMaxDepth = 8;
  static constexpr double kMaxCodeValue = 1000;  // an AE's codes have no unit scale; 1e3 is ample
  static constexpr int64_t kMaxBatch = 100;  // `latentlab arithmetic`'s default --batch
  static constexpr int64_t kMaxSteps = 32;
  static constexpr int64_t kMaxScales = 16;
  static constexpr double kMaxScale = 10;
  static constexpr int64_t kMaxScoreIndices = 64;
  static constexpr int64_t kMaxScorePool = 2000;
  static constexpr int64_t kMaxWorst = 32;
  static constexpr size_t kMaxSelectorChars = 256;
};

class Explorer {
 public:
  // Takes the run; an autoencoder/VAE run's test set is loaded and encoded once here (its codes
  // serve the map, the slider order, encode and the concept vectors). Throws std::invalid_argument
  // / std::runtime_error with one line when the data set is missing or does not fit the model.
  Explorer(GenerativeRun run, const ExplorerOptions& options);
  ~Explorer();
  Explorer(const Explorer&) = delete;
  Explorer& operator=(const Explorer&) = delete;

  // Never throws: every failure is a response.
  HttpResponse handle(const std::string& method, const std::string& path, const std::string& body);

  // Every path handle() answers other than with 404: "/", the page's files and the API's endpoints.
  static std::vector<std::string> paths();

  // "VAE (vae mlp 784-400-20 beta=1 bce) on fashion-mnist, 10000 test images encoded".
  std::string summary() const;

  struct State;  // opaque: the run, its encoded test set and the endpoints (serve_api.cpp)

 private:
  std::unique_ptr<State> s_;
};

}  // namespace ll::app
