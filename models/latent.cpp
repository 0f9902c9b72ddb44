// latent.cpp: selectors, encoding, paths, PCA and AUROC in a model's latent space (latent.h).
#include "models/latent.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops/ops.h"

namespace ll::models {
namespace {

[[noreturn]] void bad_selector(const std::string& selector, const std::string& why) {
  throw std::invalid_argument("image selector '" + selector + "': " + why +
                              " (expected idx:I,J,..., label:K or label:K:COUNT)");
}

// A whole decimal number, nothing around it; `what` names it in the error.
int64_t parse_int(const std::string& selector, const std::string& s, const char* what) {
  if (s.empty()) bad_selector(selector, std::string("empty ") + what);
  for (size_t i = 0; i < s.size(); ++i) {
    const bool digit = s[i] >= '0' && s[i] <= '9';
    if (!digit && !(i == 0 && s[i] == '-' && s.size() > 1)) {
      bad_selector(selector, std::string(what) + " '" + s + "' is not a whole number");
    }
  }
  errno = 0;
  const long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE) bad_selector(selector, std::string(what) + " '" + s + "' is out of range");
  return static_cast<int64_t>(v);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

void check_model_fits(const Autoencoder& model, const data::Dataset& dataset, const char* op) {
  const VaeConfig& c = model.config();
  if (c.channels != dataset.channels || c.height != dataset.height || c.width != dataset.width) {
    throw std::invalid_argument(std::string(op) + ": the model takes " + std::to_string(c.channels) + "x" +
                                std::to_string(c.height) + "x" + std::to_string(c.width) + " images, data set '" +
                                dataset.name + "' has " + std::to_string(dataset.channels) + "x" +
                                std::to_string(dataset.height) + "x" + std::to_string(dataset.width));
  }
}

// Encodes the images at `indices` in batches into mu (and logvar when `want_logvar` and the model is
// variational), each (n, D), on the CPU.
Encoded encode_indices(Autoencoder& model, const data::Dataset& dataset, const std::vector<int64_t>& indices,
                       int64_t batch_size, bool want_logvar, const char* op) {
  check_model_fits(model, dataset, op);
  if (batch_size < 1) throw std::invalid_argument(std::string(op) + ": batch_size must be >= 1");
  for (int64_t i : indices) {
    if (i < 0 || i >= dataset.n) {
      throw std::invalid_argument(std::string(op) + ": index " + std::to_string(i) + " is outside data set '" +
                                  dataset.name + "' of " + std::to_string(dataset.n) + " images");
    }
  }
  const int64_t n = static_cast<int64_t>(indices.size()), d = model.config().latent_dim;
  const bool logvar = want_logvar && model.variational();
  std::vector<float> mu(static_cast<size_t>(n * d)), lv(logvar ? static_cast<size_t>(n * d) : 0);
  NoGradGuard no_grad;  // encoding only: recording a graph would hold every activation alive
  for (int64_t b = 0; b < n; b += batch_size) {
    const int64_t e = std::min(n, b + batch_size);
    const std::vector<int64_t> idx(indices.begin() + b, indices.begin() + e);
    Tensor x = data::gather_images(dataset, idx, data::Scale::Unit);
    // The model's parameters decide the device: follow them so a CUDA model encodes on the GPU.
    auto params = model.parameters();
    if (!params.empty()) x = x.to(params.front().device());
    auto [m, v] = model.encode(x);
    const std::vector<float> mv = m.to_vector();
    std::copy(mv.begin(), mv.end(), mu.begin() + b * d);
    if (logvar) {
      const std::vector<float> vv = v.to_vector();
      std::copy(vv.begin(), vv.end(), lv.begin() + b * d);
    }
  }
  Encoded out;
  out.mu = Tensor::from_vector(mu, {n, d});
  if (logvar) out.logvar = Tensor::from_vector(lv, {n, d});
  return out;
}

std::vector<double> to_double(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return {v.begin(), v.end()};
}

}  // namespace

std::vector<int64_t> select_images(const data::Dataset& dataset, const std::string& selector) {
  const size_t colon = selector.find(':');
  if (colon == std::string::npos) bad_selector(selector, "no ':' after the kind");
  const std::string kind = selector.substr(0, colon), rest = selector.substr(colon + 1);

  if (kind == "idx") {
    std::vector<int64_t> out;
    for (const std::string& s : split(rest, ',')) {
      const int64_t i = parse_int(selector, s, "index");
      if (i < 0 || i >= dataset.n) {
        bad_selector(selector, "index " + std::to_string(i) + " is outside data set '" + dataset.name + "' of " +
                                   std::to_string(dataset.n) + " images (0.." + std::to_string(dataset.n - 1) + ")");
      }
      out.push_back(i);
    }
    return out;
  }
  if (kind == "label") {
    const std::vector<std::string> parts = split(rest, ':');
    if (parts.size() > 2) bad_selector(selector, "too many ':'");
    const int64_t label = parse_int(selector, parts[0], "label");
    int64_t count = -1;  // all
    if (parts.size() == 2) {
      count = parse_int(selector, parts[1], "count");
      if (count < 1) bad_selector(selector, "count must be >= 1, got " + std::to_string(count));
    }
    if (dataset.labels.empty()) bad_selector(selector, "data set '" + dataset.name + "' has no labels");
    std::vector<int64_t> out;
    for (int64_t i = 0; i < static_cast<int64_t>(dataset.labels.size()); ++i) {
      if (dataset.labels[static_cast<size_t>(i)] == label) out.push_back(i);
    }
    if (out.empty()) bad_selector(selector, "data set '" + dataset.name + "' has no images of class " + parts[0]);
    if (count > static_cast<int64_t>(out.size())) {
      bad_selector(selector, "data set '" + dataset.name + "' has only " + std::to_string(out.size()) +
                                 " images of class " + parts[0] + ", " + std::to_string(count) + " asked");
    }
    if (count > 0) out.resize(static_cast<size_t>(count));
    return out;
  }
  bad_selector(selector, "unknown kind '" + kind + "'");
}

std::vector<int64_t> select_rows(const std::string& spec, int64_t n) {
  const std::string list = spec.rfind("idx:", 0) == 0 ? spec.substr(4) : spec;
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument("'" + spec + "': " + why + " (expected indices into the generated batch of " +
                                std::to_string(n) + ", e.g. 3,17,42 or idx:3,17,42)");
  };
  std::vector<int64_t> out;
  for (const std::string& s : split(list, ',')) {
    const bool digits = !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) bad("'" + s + "' is not an index");
    const int64_t i = std::stoll(s);
    if (i >= n) bad("index " + s + " is outside the batch (0.." + std::to_string(n - 1) + ")");
    out.push_back(i);
  }
  return out;
}

Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& indices) {
  if (indices.empty()) throw std::invalid_argument("gather_rows: no rows named");
  std::vector<Tensor> parts;
  parts.reserve(indices.size());
  for (int64_t i : indices) {
    if (i < 0 || i >= t.size(0)) throw std::invalid_argument("gather_rows: row " + std::to_string(i) + " of " + t.str());
    parts.push_back(t.slice(i, i + 1));
  }
  return cat(parts, 0);
}

Tensor encode_means(Autoencoder& model, const data::Dataset& dataset, const std::vector<int64_t>& indices,
                    int64_t batch_size) {
  return encode_indices(model, dataset, indices, batch_size, false, "encode_means").mu;
}

Encoded encode_all(Autoencoder& model, const data::Dataset& dataset, int64_t batch_size) {
  std::vector<int64_t> all(static_cast<size_t>(dataset.n));
  std::iota(all.begin(), all.end(), int64_t{0});
  return encode_indices(model, dataset, all, batch_size, true, "encode_all");
}

UnitStats unit_stats(const Encoded& codes) {
  if (!codes.mu.defined() || codes.mu.dim() != 2 || codes.mu.size(0) < 1) {
    throw std::invalid_argument("unit_stats: expected codes (N, D) with N >= 1");
  }
  const int64_t N = codes.mu.size(0), D = codes.mu.size(1);
  const bool vae = codes.logvar.defined();
  const std::vector<float> mu = codes.mu.to_vector();
  const std::vector<float> lv = vae ? codes.logvar.to_vector() : std::vector<float>{};
  const auto u = [](int64_t i) { return static_cast<size_t>(i); };
  UnitStats s;
  s.kl.assign(u(D), 0.0);
  s.mean.assign(u(D), 0.0);
  s.variance.assign(u(D), 0.0);
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t d = 0; d < D; ++d) {
      const double m = mu[u(i * D + d)];
      s.mean[u(d)] += m;
      if (vae) {
        const double l = lv[u(i * D + d)];
        s.kl[u(d)] += -0.5 * (1.0 + l - m * m - std::exp(l));
      }
    }
  }
  for (int64_t d = 0; d < D; ++d) {
    s.mean[u(d)] /= static_cast<double>(N);
    s.kl[u(d)] /= static_cast<double>(N);
  }
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t d = 0; d < D; ++d) {
      const double e = mu[u(i * D + d)] - s.mean[u(d)];
      s.variance[u(d)] += e * e;
    }
  }
  s.active.assign(u(D), false);
  for (int64_t d = 0; d < D; ++d) {
    s.variance[u(d)] /= static_cast<double>(N);
    s.active[u(d)] = s.variance[u(d)] > UnitStats::kActiveThreshold;
    s.active_units += s.active[u(d)] ? 1 : 0;
  }
  const std::vector<double>& key = vae ? s.kl : s.variance;
  s.ranking.resize(u(D));
  std::iota(s.ranking.begin(), s.ranking.end(), int64_t{0});
  std::stable_sort(s.ranking.begin(), s.ranking.end(), [&](int64_t a, int64_t b) { return key[u(a)] > key[u(b)]; });
  return s;
}

Tensor interpolate(const Tensor& a, const Tensor& b, int64_t steps, PathMode mode) {
  check_arg(a.defined() && b.defined() && a.dim() == 1 && b.shape() == a.shape(), "interpolate",
            "need two codes of the same shape (D), got " + (a.defined() ? shape_str(a.shape()) : "undefined") +
                " and " + (b.defined() ? shape_str(b.shape()) : "undefined"));
  check_arg(steps >= 2, "interpolate", "need steps >= 2 (both ends), got " + std::to_string(steps));
  const std::vector<double> va = to_double(a), vb = to_double(b);
  const size_t d = va.size();

  // Slerp's weights. The angle comes from w = 2 atan2(|â - b̂|, |â + b̂|) (Kahan's formula), not
  // acos(â·b̂), which loses half its digits near 0 and pi — exactly where the fallback test is made.
  bool slerp = mode == PathMode::Slerp;
  double w = 0;
  if (slerp) {
    double na = 0, nb = 0;
    for (size_t i = 0; i < d; ++i) na += va[i] * va[i], nb += vb[i] * vb[i];
    na = std::sqrt(na), nb = std::sqrt(nb);
    if (na == 0 || nb == 0) {
      slerp = false;  // no direction to rotate from
    } else {
      double diff = 0, sum = 0;
      for (size_t i = 0; i < d; ++i) {
        const double ua = va[i] / na, ub = vb[i] / nb;
        diff += (ua - ub) * (ua - ub), sum += (ua + ub) * (ua + ub);
      }
      w = 2 * std::atan2(std::sqrt(diff), std::sqrt(sum));
      // (Anti)parallel: the great circle is undefined (antiparallel) or sin w ~ 0 divides noise.
      if (w < 1e-6 || w > std::numbers::pi - 1e-6) slerp = false;
    }
  }

  std::vector<float> out(static_cast<size_t>(steps) * d);
  for (int64_t s = 0; s < steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
    double wa = 1 - t, wb = t;
    if (slerp) {
      // Shoemake 1985, "Animating rotation with quaternion curves", eq. for Slerp; White 2016,
      // "Sampling generative networks", for latent spaces.
      wa = std::sin((1 - t) * w) / std::sin(w);
      wb = std::sin(t * w) / std::sin(w);
    }
    for (size_t i = 0; i < d; ++i) out[static_cast<size_t>(s) * d + i] = static_cast<float>(wa * va[i] + wb * vb[i]);
  }
  // The ends are the codes themselves, bit for bit (the weights above are 1 and 0 there already;
  // this states the contract rather than relying on sin(w) / sin(w) == 1).
  for (size_t i = 0; i < d; ++i) {
    out[i] = static_cast<float>(va[i]);
    out[static_cast<size_t>(steps - 1) * d + i] = static_cast<float>(vb[i]);
  }
  return Tensor::from_vector(out, {steps, static_cast<int64_t>(d)});
}

Tensor mean_code(const Tensor& codes) {
  check_arg(codes.defined() && codes.dim() == 2 && codes.size(0) >= 1, "mean_code",
            "need codes (n >= 1, D), got " + (codes.defined() ? shape_str(codes.shape()) : "undefined"));
  const int64_t n = codes.size(0), d = codes.size(1);
  const std::vector<float> v = codes.to_vector();
  std::vector<double> acc(static_cast<size_t>(d), 0.0);  // float64 sums: n may be a whole data set
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < d; ++j) acc[static_cast<size_t>(j)] += v[static_cast<size_t>(r * d + j)];
  }
  std::vector<float> out(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) out[static_cast<size_t>(j)] = static_cast<float>(acc[static_cast<size_t>(j)] / n);
  return Tensor::from_vector(out, {d});
}

// The symmetric eigenproblem by Jacobi's method (Golub & Van Loan, "Matrix Computations", 4th ed.,
// section 8.5): each rotation J(p, q, theta), chosen by Algorithm 8.5.1 (sym.schur2), zeroes a_pq;
// sweeping over all pairs repeatedly drives off(A) to zero, quadratically in the end. Jacobi is
// slower than tridiagonal QR but short, and accurate to high relative precision for the small
// eigenvalues too, which PCA's trailing variances need.
//
// Order: the round-robin ("parallel", Brent & Luk 1985; GvL 8.5.5) ordering instead of cyclic-by-
// row. Each of the n - 1 rounds of a sweep pairs every index with another once, so the n/2
// rotations of a round touch disjoint rows and columns: their angles can all be computed from the
// same A, and J^T A J is applied as two passes over whole rows (A <- A J row by row, then the rows
// p, q of each pair). Cyclic-by-row would write columns p and q after every single rotation, a
// strided access that made D = 512 about five times slower.
//
// a: n x n symmetric, row-major, overwritten (its diagonal ends up holding the eigenvalues).
// v: receives the eigenvectors as ROWS (row i belongs to eigenvalue a[i][i]), so that V <- V J
// also touches contiguous rows.
namespace {
void jacobi_eigen(std::vector<double>& a, std::vector<double>& v, int64_t n) {
  v.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1.0;
  if (n < 2) return;
  double frob2 = 0;
  for (double x : a) frob2 += x * x;
  if (frob2 == 0) return;
  const double tol2 = frob2 * 1e-30;  // converged when off(A) <= 1e-15 ||A||_F

  // Round-robin pairing (the "circle method"): m players (n, plus a bye when n is odd); player 0
  // stays, the others rotate one seat per round; seat i meets seat m - 1 - i.
  const int64_t m = n + (n % 2);
  std::vector<int64_t> seat(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) seat[static_cast<size_t>(i)] = i;
  struct Rotation {
    int64_t p, q;
    double c, s;
  };
  std::vector<Rotation> rots;
  rots.reserve(static_cast<size_t>(m / 2));

  for (int sweep = 0; sweep < 100; ++sweep) {
    double off2 = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i != j) off2 += a[static_cast<size_t>(i * n + j)] * a[static_cast<size_t>(i * n + j)];
    if (off2 <= tol2) return;

    for (int64_t round = 0; round < m - 1; ++round) {
      rots.clear();
      for (int64_t i = 0; i < m / 2; ++i) {
        int64_t p = seat[static_cast<size_t>(i)], q = seat[static_cast<size_t>(m - 1 - i)];
        if (p >= n || q >= n) continue;  // the bye
        if (p > q) std::swap(p, q);
        const double apq = a[static_cast<size_t>(p * n + q)];
        if (apq == 0) continue;
        // sym.schur2: t = tan(theta) is the smaller root of t^2 + 2 tau t - 1 = 0 (|theta| <= pi/4).
        const double tau = (a[static_cast<size_t>(q * n + q)] - a[static_cast<size_t>(p * n + p)]) / (2 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1 + tau * tau));
        const double c = 1 / std::sqrt(1 + t * t);
        rots.push_back({p, q, c, t * c});
      }
      // A <- A J: in every row, columns p and q of each pair mix.
      for (int64_t k = 0; k < n; ++k) {
        double* row = &a[static_cast<size_t>(k * n)];
        for (const Rotation& r : rots) {
          const double x = row[r.p], y = row[r.q];
          row[r.p] = r.c * x - r.s * y;
          row[r.q] = r.s * x + r.c * y;
        }
      }
      // A <- J^T A (rows p and q mix), and V <- V J (rows of V^T mix the same way). The pair's own
      // off-diagonal entry is zero in exact arithmetic; it is set so, as in GvL's algorithm.
      for (const Rotation& r : rots) {
        for (std::vector<double>* mat : {&a, &v}) {
          double* rp = &(*mat)[static_cast<size_t>(r.p * n)];
          double* rq = &(*mat)[static_cast<size_t>(r.q * n)];
          for (int64_t k = 0; k < n; ++k) {
            const double x = rp[k], y = rq[k];
            rp[k] = r.c * x - r.s * y;
            rq[k] = r.s * x + r.c * y;
          }
        }
        a[static_cast<size_t>(r.p * n + r.q)] = a[static_cast<size_t>(r.q * n + r.p)] = 0;
      }
      std::rotate(seat.begin() + 1, seat.end() - 1, seat.end());
    }
  }
  // 100 sweeps are far beyond what quadratic convergence needs (typically about 10); what is
  // left is the best the arithmetic allows.
}
}  // namespace

Pca pca(const Tensor& rows, int64_t k) {
  check_arg(rows.defined() && rows.dim() == 2 && rows.size(0) >= 1 && rows.size(1) >= 1, "pca",
            "need rows (n >= 1, D >= 1), got " + (rows.defined() ? shape_str(rows.shape()) : "undefined"));
  const int64_t n = rows.size(0), d = rows.size(1);
  check_arg(k >= 1 && k <= d, "pca",
            "need 1 <= k <= D = " + std::to_string(d) + ", got k = " + std::to_string(k));
  const std::vector<double> x = to_double(rows);
  auto X = [&](int64_t r, int64_t j) { return x[static_cast<size_t>(r * d + j)]; };

  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += X(r, j);
  for (double& m : mean) m /= static_cast<double>(n);

  // Sample covariance with the n - 1 divisor (numpy.cov, sklearn's explained_variance_); a single
  // row has zero variance.
  std::vector<double> cov(static_cast<size_t>(d * d), 0.0), centered(static_cast<size_t>(d));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < d; ++j) centered[static_cast<size_t>(j)] = X(r, j) - mean[static_cast<size_t>(j)];
    for (int64_t i = 0; i < d; ++i) {
      const double ci = centered[static_cast<size_t>(i)];
      double* row = &cov[static_cast<size_t>(i * d)];
      for (int64_t j = i; j < d; ++j) row[j] += ci * centered[static_cast<size_t>(j)];
    }
  }
  const double denom = n > 1 ? static_cast<double>(n - 1) : 1.0;
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = i; j < d; ++j) {
      const double c = cov[static_cast<size_t>(i * d + j)] / denom;
      cov[static_cast<size_t>(i * d + j)] = cov[static_cast<size_t>(j * d + i)] = c;
    }
  }

  std::vector<double> vecs;
  jacobi_eigen(cov, vecs, d);
  std::vector<int64_t> order(static_cast<size_t>(d));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Decreasing eigenvalue; equal ones keep their index order so the result is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) {
    return cov[static_cast<size_t>(i * d + i)] > cov[static_cast<size_t>(j * d + j)];
  });

  Pca out;
  out.mean = Tensor::from_vector(std::vector<float>(mean.begin(), mean.end()), {d});
  std::vector<double> comps(static_cast<size_t>(k * d));
  for (int64_t c = 0; c < k; ++c) {
    const int64_t e = order[static_cast<size_t>(c)];
    const double* vec = &vecs[static_cast<size_t>(e * d)];
    // Sign: the component of largest magnitude (the first of equals) is made positive, so that the
    // same data give the same directions whatever the rotation order did.
    int64_t big = 0;
    for (int64_t j = 1; j < d; ++j)
      if (std::abs(vec[j]) > std::abs(vec[big])) big = j;
    const double sign = vec[big] < 0 ? -1.0 : 1.0;
    for (int64_t j = 0; j < d; ++j) comps[static_cast<size_t>(c * d + j)] = sign * vec[j];
    // Round-off can leave a zero variance a hair below zero.
    out.variances.push_back(std::max(0.0, cov[static_cast<size_t>(e * d + e)]));
  }
  out.components = Tensor::from_vector(std::vector<float>(comps.begin(), comps.end()), {k, d});

  std::vector<float> proj(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t j = 0; j < d; ++j) s += (X(r, j) - mean[static_cast<size_t>(j)]) * comps[static_cast<size_t>(c * d + j)];
      proj[static_cast<size_t>(r * k + c)] = static_cast<float>(s);
    }
  }
  out.projected = Tensor::from_vector(proj, {n, k});
  return out;
}

double auroc(const std::vector<double>& positive_scores, const std::vector<double>& negative_scores) {
  if (positive_scores.empty() || negative_scores.empty()) {
    throw std::invalid_argument("auroc: need at least one positive and one negative score, got " +
                                std::to_string(positive_scores.size()) + " and " +
                                std::to_string(negative_scores.size()));
  }
  // Mann-Whitney U by ranks (Mann & Whitney 1947; Hanley & McNeil 1982 for U / (n1 n0) = AUC):
  // sort all scores, give tied groups their mean rank, U = (sum of positive ranks) - n1 (n1 + 1) / 2.
  // A tie between a positive and a negative then counts 1/2, and the cost is the sort, O(n log n).
  std::vector<std::pair<double, bool>> all;  // (score, is positive)
  all.reserve(positive_scores.size() + negative_scores.size());
  for (double s : positive_scores) all.emplace_back(s, true);
  for (double s : negative_scores) all.emplace_back(s, false);
  for (const auto& [s, pos] : all) {
    if (std::isnan(s)) throw std::invalid_argument(std::string("auroc: a ") + (pos ? "positive" : "negative") + " score is NaN");
  }
  std::sort(all.begin(), all.end(), [](const auto& l, const auto& r) { return l.first < r.first; });
  double rank_sum = 0;  // ranks are 1-based
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t m = i; m < j; ++m)
      if (all[m].second) rank_sum += mid_rank;
    i = j;
  }
  const double n1 = static_cast<double>(positive_scores.size()), n0 = static_cast<double>(negative_scores.size());
  return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0);
}

}  // namespace ll::models
