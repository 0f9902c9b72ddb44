// fid.h: the Frechet distance between two Gaussians fitted to feature vectors.
//
//   FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))        (Dowson & Landau 1982)
//
// S_a S_b is not symmetric, but it is similar to the symmetric positive semi-definite
// M = S_a^(1/2) S_b S_a^(1/2) (multiply by S_a^(-1/2) and S_a^(1/2)), so tr((S_a S_b)^(1/2)) is the
// sum of the square roots of M's eigenvalues. Both square roots come from symmetric
// eigendecompositions (cyclic Jacobi rotations in float64, Golub & Van Loan, Matrix Computations,
// 4th ed., section 8.5), where rounding can only leave eigenvalues slightly below zero: those are
// clipped to zero. This avoids the general matrix square root (scipy.linalg.sqrtm, used by the
// reference implementations), which returns complex parts for singular covariances;
// tests/models/test_fid.cpp checks the two against each other on fixtures.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace ll::models {

struct GaussianStats {
  int64_t dim = 0, count = 0;
  std::vector<double> mean;  // dim
  std::vector<double> cov;   // dim x dim, row-major; divided by count - 1 (numpy.cov's default)
};

// Statistics of the rows of `features` (N, dim), N >= 2, accumulated in float64.
GaussianStats gaussian_stats(const Tensor& features);

double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// Eigenvalues (ascending) of the symmetric n x n matrix `a` (row-major); with `vectors`, the
// matching orthonormal eigenvectors as its columns (row-major n x n).
std::vector<double> symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>* vectors = nullptr);

}  // namespace ll::models
