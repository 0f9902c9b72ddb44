#include "tests/common/compare.h"

#include <cmath>
#include <random>
#include <sstream>

namespace ll::test {

namespace {
template <typename Ref>
::testing::AssertionResult all_close_impl(const float* got, const Ref* ref, int64_t n, Tolerance tol,
                                          const std::string& what) {
  int64_t bad = 0;
  double worst = 0.0;
  int64_t worst_i = -1;
  std::ostringstream first;
  for (int64_t i = 0; i < n; ++i) {
    const double g = got[i], r = static_cast<double>(ref[i]);
    const double err = std::fabs(g - r);
    const bool ok = err <= tol.atol + tol.rtol * std::fabs(r) && std::isfinite(g);
    if (!ok) {
      if (bad < 5) first << "\n  [" << i << "] got " << g << " expected " << r << " (|err| " << err << ")";
      ++bad;
    }
    if (!(err <= worst)) {  // also catches NaN
      worst = std::isfinite(err) ? err : INFINITY;
      worst_i = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << n << " elements outside atol " << tol.atol << " + rtol "
         << tol.rtol << "; largest |err| " << worst << " at " << worst_i << first.str();
}
}  // namespace

::testing::AssertionResult all_close(const float* got, const double* ref, int64_t n, Tolerance tol,
                                     const std::string& what) {
  return all_close_impl(got, ref, n, tol, what);
}
::testing::AssertionResult all_close(const float* got, const float* ref, int64_t n, Tolerance tol,
                                     const std::string& what) {
  return all_close_impl(got, ref, n, tol, what);
}

std::vector<float> random_vector(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

}  // namespace ll::test
