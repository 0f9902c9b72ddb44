// latent.h: working in a trained model's latent space: encoding data sets, choosing images by
// selectors, paths between codes, concept vectors, PCA, and per-image scores.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "models/vae.h"

namespace ll::models {

// Images of a data set named by a selector:
//   "idx:3,17,42"  those positions (each checked against the data set's size)
//   "label:7"      every image of class 7 (needs labels)
//   "label:7:20"   the first 20 images of class 7 (an error if the class has fewer)
// Indices come back in the order given (idx:) or in data set order (label:). Throws
// std::invalid_argument with the selector and what is wrong.
std::vector<int64_t> select_images(const data::Dataset& dataset, const std::string& selector);

// Rows of a generated batch of n images named by "idx:3,17,42" or "3,17,42", in the order given: a
// GAN has no encoder, so its groups are picked by their index in a batch generated from a seed
// (`latentlab sample --numbered` shows the indices). Throws std::invalid_argument naming the spec.
std::vector<int64_t> select_rows(const std::string& spec, int64_t n);
// The rows of t (n, ...) at `indices`, in that order, as one tensor (k, ...).
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& indices);

// Means of q(z|x) (the codes, for the AE) of the images at `indices` (scaled to [0, 1]), as (n, D)
// on the CPU; no graph recorded. The data set's image size must be the model's.
Tensor encode_means(Autoencoder& model, const data::Dataset& dataset, const std::vector<int64_t>& indices,
                    int64_t batch_size = 256);
// Means and log-variances of every image of the data set, in order: (N, D) each (logvar undefined
// for the AE).
struct Encoded {
  Tensor mu, logvar;
};
Encoded encode_all(Autoencoder& model, const data::Dataset& dataset, int64_t batch_size = 256);

// Per-dimension statistics of encoded codes (N, D) over a data set, accumulated in float64:
//   kl[d]        mean over x of KL(q(z_d|x) || N(0, 1)) = -1/2 (1 + logvar_d - mu_d^2 - exp(logvar_d)),
//                the nats dimension d carries (the VAE's KL term split by dimension; they sum to it);
//                all zero for the AE (no logvar: it has no posterior variance and no prior);
//   mean[d]      mean over x of mu_d;
//   variance[d]  the population variance over x of mu_d (two passes, no cancellation); a dimension
//                is "active" when it exceeds 0.01 (the active units of Burda, Grosse &
//                Salakhutdinov 2016, "Importance weighted autoencoders", section 5.2).
// `ranking` orders the dimensions by KL for a VAE, by variance for an AE, largest first (stable:
// ties keep dimension order). `traverse` prints them; `serve` orders its sliders by them.
struct UnitStats {
  std::vector<double> kl, mean, variance;
  std::vector<bool> active;
  std::vector<int64_t> ranking;
  int64_t active_units = 0;
  static constexpr double kActiveThreshold = 0.01;
};
UnitStats unit_stats(const Encoded& codes);

// Interpolation between codes a and b (each (D)) in `steps` points including both ends, (steps, D).
// Lerp: (1 - t) a + t b. Slerp (Shoemake 1985; White 2016 for generative models): along the great
// circle, sin((1 - t) w) / sin w a + sin(t w) / sin w b with w the angle between a and b; falls back
// to lerp when a and b are (anti)parallel, their angle within 1e-6 rad of 0 or pi, or one is zero.
// The first and last rows are a and b exactly.
enum class PathMode { Lerp, Slerp };
Tensor interpolate(const Tensor& a, const Tensor& b, int64_t steps, PathMode mode);

// Mean of the rows of codes (n, D) -> (D).
Tensor mean_code(const Tensor& codes);

// Principal component analysis of rows (n, D): the top k directions (k, D), unit length, by
// decreasing variance, with their variances, and the projection of the rows onto them (n, k). The
// covariance is computed in float64 and diagonalized by the Jacobi eigenvalue method (exact enough
// for D up to a few hundred; D = 512 takes a couple of seconds). The covariance divides by n - 1
// (numpy.cov); one row gives zero variances. Signs are fixed so that each direction's component
// of largest magnitude (the first of equals) is positive.
struct Pca {
  Tensor mean;        // (D)
  Tensor components;  // (k, D)
  std::vector<double> variances;  // k
  Tensor projected;   // (n, k)
};
Pca pca(const Tensor& rows, int64_t k);

// Area under the ROC curve of scores for two groups: the probability that a random positive scores
// above a random negative (ties count half): the Mann-Whitney statistic, by ranks in O(n log n).
// Both groups must be non-empty and free of NaN.
double auroc(const std::vector<double>& positive_scores, const std::vector<double>& negative_scores);

}  // namespace ll::models
