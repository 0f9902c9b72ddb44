// biased.h: a binary task with a known, rare subgroup, made from a labeled data set, for the
// debiasing experiment of `latentlab train dbvae` (models/dbvae.h).
//
// Amini, Soleimany, Schwarting, Bhatia & Rus ("Uncovering and Mitigating Algorithmic Bias through
// Learned Latent Structure", AIES 2019) train a face detector whose positive class hides an
// under-represented subgroup (darker-skinned faces), and measure accuracy per subgroup on a balanced
// test set. The same shape, from class labels: the positive side is the `majority` classes plus the
// `minority` classes, the negative side the `negative` classes. In the training split the minority
// is thinned to `minority_fraction` of the positive side (its first images in file order, so the
// set is the same on every machine); the test split keeps every image of the listed classes, so
// that each subgroup has enough images to measure its accuracy (Fashion-MNIST: 1,000 per class).
//
//   default task on Fashion-MNIST: positive = T-shirt/top (0) with Shirt (6) as 2% of the positives,
//   negative = Pullover (2) and Coat (4): shirts look more like pullovers and coats than like
//   T-shirts, so a classifier that sees few of them tends to call them negative.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace ll::data {

struct BiasedTask {
  std::vector<int32_t> majority{0}, minority{6}, negative{2, 4};
  double minority_fraction = 0.02;  // of the training split's positive side, in (0, 1)
  // Throws std::invalid_argument naming the fault (empty or overlapping class lists, a fraction
  // outside (0, 1), a class beyond `num_classes` when that is > 0).
  void validate(int64_t num_classes = 0) const;
  std::string to_json() const;
  static BiasedTask from_json(const std::string& text);  // throws std::invalid_argument
  // "0,3" -> {0, 3}; throws std::invalid_argument naming `flag` on anything else.
  static std::vector<int32_t> parse_classes(const std::string& text, const std::string& flag);
};

enum Subgroup : uint8_t { kNegative = 0, kMajority = 1, kMinority = 2 };
const char* subgroup_name(uint8_t group);  // "negative", "majority", "minority"

struct BiasedData {
  Dataset data;                    // labels: 1 positive (majority or minority), 0 negative
  std::vector<int32_t> source;     // each image's class in the source data set
  std::vector<uint8_t> group;      // each image's Subgroup
  std::vector<int64_t> source_index;  // each image's index in the source data set
  int64_t count(uint8_t g) const;
};

// The images of `src` whose class is in the task, in file order. thin_minority (the training
// split): the minority keeps round(f / (1 - f) * majority images) of its first images (at least one),
// so it is the fraction f of the positive side; otherwise (the test split) it keeps all of them.
// Throws std::invalid_argument when src has no labels or a class of the task has no image.
BiasedData make_biased_binary(const Dataset& src, const BiasedTask& task, bool thin_minority);

}  // namespace ll::data
