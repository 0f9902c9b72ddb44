// compare.h: the one comparison rule of the test suite (after llm.c's validate_result).
// Element i passes when |got - ref| <= atol + rtol * |ref|. On failure the first few mismatches are
// printed with their indices, and the largest error is reported.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ll::test {

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-4;
};

// Returns a gtest assertion result: EXPECT_TRUE(all_close(...)).
::testing::AssertionResult all_close(const float* got, const double* ref, int64_t n, Tolerance tol,
                                     const std::string& what = "");
::testing::AssertionResult all_close(const float* got, const float* ref, int64_t n, Tolerance tol,
                                     const std::string& what = "");
inline ::testing::AssertionResult all_close(const std::vector<float>& got,
                                            const std::vector<double>& ref, Tolerance tol,
                                            const std::string& what = "") {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
  }
  return all_close(got.data(), ref.data(), static_cast<int64_t>(got.size()), tol, what);
}

// Deterministic random inputs for tests: values uniform in [lo, hi) from a seeded std::mt19937.
std::vector<float> random_vector(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

}  // namespace ll::test
