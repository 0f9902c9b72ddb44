#include "models/fid.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace ll::models {

GaussianStats gaussian_stats(const Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2) {
    throw std::invalid_argument("gaussian_stats: needs features (N >= 2, dim), got " + features.str());
  }
  const int64_t n = features.size(0), d = features.size(1);
  const std::vector<float> f = features.to_vector();
  GaussianStats s;
  s.dim = d;
  s.count = n;
  s.mean.assign(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) s.mean[static_cast<size_t>(j)] += f[static_cast<size_t>(i * d + j)];
  }
  for (double& m : s.mean) m /= static_cast<double>(n);
  // Centered products, upper triangle, then mirrored: sum (x - mu)(x - mu)^T / (n - 1).
  s.cov.assign(static_cast<size_t>(d * d), 0.0);
  std::vector<double> c(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) c[static_cast<size_t>(j)] = f[static_cast<size_t>(i * d + j)] - s.mean[static_cast<size_t>(j)];
    for (int64_t j = 0; j < d; ++j) {
      const double cj = c[static_cast<size_t>(j)];
      double* row = s.cov.data() + j * d;
      for (int64_t k = j; k < d; ++k) row[k] += cj * c[static_cast<size_t>(k)];
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t k = j; k < d; ++k) {
      const double v = s.cov[static_cast<size_t>(j * d + k)] / static_cast<double>(n - 1);
      s.cov[static_cast<size_t>(j * d + k)] = v;
      s.cov[static_cast<size_t>(k * d + j)] = v;
    }
  }
  return s;
}

std::vector<double> symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>* vectors) {
  if (n < 0 || static_cast<int64_t>(a.size()) != n * n) throw std::invalid_argument("symmetric_eigen: a is not n x n");
  auto at = [&](int64_t i, int64_t j) -> double& { return a[static_cast<size_t>(i * n + j)]; };
  std::vector<double> v;
  if (vectors) {
    v.assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1.0;
  }
  double total = 0;
  for (double x : a) total += x * x;
  // Cyclic Jacobi: sweep over every (p, q) above the diagonal, rotating a_pq to zero, until the
  // off-diagonal part is rounding noise against the whole matrix (quadratic convergence: a few
  // sweeps past the first handful).
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) off += 2 * at(p, q) * at(p, q);
    }
    if (off <= 1e-30 * total || off == 0.0) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = at(p, q);
        if (apq == 0.0) continue;
        // J = [[c, s], [-s, c]] in the (p, q) plane with J^T A J zero at (p, q) (Golub & Van Loan
        // Algorithm 8.5.1): tau = (a_qq - a_pp) / (2 a_pq), t the smaller root of t^2 + 2 tau t - 1.
        const double tau = (at(q, q) - at(p, p)) / (2 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1 + tau * tau));
        const double c = 1 / std::sqrt(1 + t * t), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // A J: columns p and q
          const double akp = at(k, p), akq = at(k, q);
          at(k, p) = c * akp - s * akq;
          at(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // J^T (A J): rows p and q
          const double apk = at(p, k), aqk = at(q, k);
          at(p, k) = c * apk - s * aqk;
          at(q, k) = s * apk + c * aqk;
        }
        at(p, q) = at(q, p) = 0.0;  // zero by construction; remove the rounding residue
        if (vectors) {
          for (int64_t k = 0; k < n; ++k) {
            const double vkp = v[static_cast<size_t>(k * n + p)], vkq = v[static_cast<size_t>(k * n + q)];
            v[static_cast<size_t>(k * n + p)] = c * vkp - s * vkq;
            v[static_cast<size_t>(k * n + q)] = s * vkp + c * vkq;
          }
        }
      }
    }
  }
  // Ascending order, eigenvectors permuted with their values.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return at(x, x) < at(y, y); });
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = at(order[static_cast<size_t>(i)], order[static_cast<size_t>(i)]);
  if (vectors) {
    vectors->assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t k = 0; k < n; ++k) {
      for (int64_t i = 0; i < n; ++i) (*vectors)[static_cast<size_t>(k * n + i)] = v[static_cast<size_t>(k * n + order[static_cast<size_t>(i)])];
    }
  }
  return values;
}

namespace {
// c = a b for n x n row-major matrices.
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
  std::vector<double> c(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < n; ++k) {
      const double aik = a[static_cast<size_t>(i * n + k)];
      for (int64_t j = 0; j < n; ++j) c[static_cast<size_t>(i * n + j)] += aik * b[static_cast<size_t>(k * n + j)];
    }
  }
  return c;
}
}  // namespace

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  const int64_t n = a.dim;
  if (b.dim != n || static_cast<int64_t>(a.cov.size()) != n * n || static_cast<int64_t>(b.cov.size()) != n * n) {
    throw std::invalid_argument("frechet_distance: statistics of " + std::to_string(a.dim) + " and " +
                                std::to_string(b.dim) + " dimensions");
  }
  double mean_term = 0, trace_a = 0, trace_b = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = a.mean[static_cast<size_t>(i)] - b.mean[static_cast<size_t>(i)];
    mean_term += d * d;
    trace_a += a.cov[static_cast<size_t>(i * n + i)];
    trace_b += b.cov[static_cast<size_t>(i * n + i)];
  }
  // S_a^(1/2) = V diag(sqrt(max(lambda, 0))) V^T.
  std::vector<double> vec;
  const std::vector<double> lambda = symmetric_eigen(a.cov, n, &vec);
  std::vector<double> scaled(static_cast<size_t>(n * n));  // V diag(sqrt(lambda))
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      scaled[static_cast<size_t>(i * n + j)] = vec[static_cast<size_t>(i * n + j)] * std::sqrt(std::max(lambda[static_cast<size_t>(j)], 0.0));
    }
  }
  std::vector<double> root(static_cast<size_t>(n * n), 0.0);  // scaled V^T
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += scaled[static_cast<size_t>(i * n + k)] * vec[static_cast<size_t>(j * n + k)];
      root[static_cast<size_t>(i * n + j)] = s;
    }
  }
  std::vector<double> m = matmul(matmul(root, b.cov, n), root, n);
  for (int64_t i = 0; i < n; ++i) {  // symmetric up to rounding: make it exactly so
    for (int64_t j = i + 1; j < n; ++j) {
      const double s = 0.5 * (m[static_cast<size_t>(i * n + j)] + m[static_cast<size_t>(j * n + i)]);
      m[static_cast<size_t>(i * n + j)] = m[static_cast<size_t>(j * n + i)] = s;
    }
  }
  double trace_root = 0;
  for (double mu : symmetric_eigen(std::move(m), n)) trace_root += std::sqrt(std::max(mu, 0.0));
  return mean_term + trace_a + trace_b - 2 * trace_root;
}

}  // namespace ll::models
