// test_biased.cpp: the biased binary task of the DB-VAE experiment (data/biased.h): which images
// it keeps, how it labels them, and the errors of a bad task.
#include <gtest/gtest.h>

#include <stdexcept>

#include "data/biased.h"

namespace ll::data {
namespace {

// 40 images of 2x2: image i has class i % 4 and every pixel = i (so the test can tell images apart).
Dataset four_classes() {
  Dataset d;
  d.name = "toy";
  d.n = 40;
  d.height = d.width = 2;
  for (int i = 0; i < 40; ++i) {
    d.labels.push_back(i % 4);
    for (int p = 0; p < 4; ++p) d.images.push_back(static_cast<uint8_t>(i));
  }
  return d;
}

TEST(BiasedTask, TrainingSplitThinsTheMinorityToItsFraction) {
  BiasedTask t;
  t.majority = {0};
  t.minority = {1};
  t.negative = {2, 3};
  t.minority_fraction = 1.0 / 6.0;  // m / (m + 10) = 1/6  =>  m = 2
  const BiasedData b = make_biased_binary(four_classes(), t, true);
  EXPECT_EQ(b.count(kMajority), 10);
  EXPECT_EQ(b.count(kMinority), 2);
  EXPECT_EQ(b.count(kNegative), 20);
  ASSERT_EQ(b.data.n, 32);
  ASSERT_EQ(b.data.images.size(), 32u * 4u);
  // File order kept; the minority is its first images (sources 1 and 5); labels binary.
  std::vector<int64_t> minority_sources;
  for (int64_t i = 0; i < b.data.n; ++i) {
    const int64_t s = b.source_index[static_cast<size_t>(i)];
    EXPECT_EQ(b.data.images[static_cast<size_t>(i * 4)], s) << "image " << i;
    EXPECT_EQ(b.source[static_cast<size_t>(i)], s % 4);
    EXPECT_EQ(b.data.labels[static_cast<size_t>(i)], s % 4 <= 1 ? 1 : 0);
    if (b.group[static_cast<size_t>(i)] == kMinority) minority_sources.push_back(s);
    if (i > 0) EXPECT_GT(s, b.source_index[static_cast<size_t>(i - 1)]);
  }
  EXPECT_EQ(minority_sources, (std::vector<int64_t>{1, 5}));
}

TEST(BiasedTask, TestSplitKeepsEverySubgroupWhole) {
  BiasedTask t;
  t.majority = {0};
  t.minority = {1};
  t.negative = {3};
  t.minority_fraction = 0.02;
  const BiasedData b = make_biased_binary(four_classes(), t, false);
  EXPECT_EQ(b.count(kMajority), 10);
  EXPECT_EQ(b.count(kMinority), 10);
  EXPECT_EQ(b.count(kNegative), 10);  // class 2 is in no list: left out
  // At least one minority image even when the fraction rounds to none.
  EXPECT_EQ(make_biased_binary(four_classes(), t, true).count(kMinority), 1);
}

TEST(BiasedTask, BadTasksAreRefusedNamingTheFault) {
  BiasedTask t;
  t.majority = {0};
  t.minority = {0};
  t.negative = {2};
  EXPECT_THROW(t.validate(), std::invalid_argument);  // a class in two lists
  t.minority = {1};
  t.minority_fraction = 1.0;
  EXPECT_THROW(t.validate(), std::invalid_argument);
  t.minority_fraction = 0.1;
  EXPECT_NO_THROW(t.validate(4));
  t.negative = {7};
  EXPECT_THROW(t.validate(4), std::invalid_argument);
  EXPECT_THROW(make_biased_binary(four_classes(), t, true), std::invalid_argument);  // no image of class 7
  Dataset unlabeled = four_classes();
  unlabeled.labels.clear();
  t.negative = {2};
  EXPECT_THROW(make_biased_binary(unlabeled, t, true), std::invalid_argument);
  EXPECT_EQ(BiasedTask::parse_classes("2,4", "--negative"), (std::vector<int32_t>{2, 4}));
  EXPECT_THROW(BiasedTask::parse_classes("2,x", "--negative"), std::invalid_argument);
  EXPECT_THROW(BiasedTask::parse_classes("", "--negative"), std::invalid_argument);
  const BiasedTask back = BiasedTask::from_json(t.to_json());
  EXPECT_EQ(back.negative, t.negative);
  EXPECT_DOUBLE_EQ(back.minority_fraction, 0.1);
}

}  // namespace
}  // namespace ll::data
