// test_loader.cpp: the shuffle, the batches, and the background thread of DataLoader.
//
// The reference for every batch is the synchronous computation: shuffled_indices (or file order),
// cut into batches, gathered with gather_images. The loader's worker thread must reproduce it
// exactly, whatever the timing, across epoch restarts and destruction mid-epoch.
#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "data/loader.h"

namespace ll::data {
namespace {

// n images of c x h x w with distinct, known pixel values; label of image i is i % 10.
Dataset synthetic(int64_t n, int64_t c = 1, int64_t h = 2, int64_t w = 3) {
  Dataset ds;
  ds.name = "synthetic";
  ds.n = n;
  ds.channels = c;
  ds.height = h;
  ds.width = w;
  ds.images.resize(static_cast<size_t>(n * c * h * w));
  for (size_t i = 0; i < ds.images.size(); ++i) ds.images[i] = static_cast<uint8_t>((i * 7 + i / 5) % 256);
  for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int32_t>(i % 10));
  return ds;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

bool is_permutation_of_iota(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v == iota(static_cast<int64_t>(v.size()));
}

// What a synchronous loader would return for one epoch.
std::vector<Batch> reference_epoch(const Dataset& ds, const LoaderOptions& opt, int64_t epoch) {
  const std::vector<int64_t> order = opt.shuffle ? shuffled_indices(ds.n, opt.seed, epoch) : iota(ds.n);
  std::vector<Batch> batches;
  for (int64_t begin = 0; begin < ds.n; begin += opt.batch_size) {
    const int64_t end = std::min(begin + opt.batch_size, ds.n);
    if (opt.drop_last && end - begin < opt.batch_size) break;
    Batch b;
    b.indices.assign(order.begin() + begin, order.begin() + end);
    b.images = gather_images(ds, b.indices, opt.scale);
    for (const int64_t i : b.indices) b.labels.push_back(ds.labels[i]);
    batches.push_back(std::move(b));
  }
  return batches;
}

// Batches equal bit for bit: indices, labels, shape and every float.
void expect_same_batch(const Batch& got, const Batch& want, const std::string& where) {
  EXPECT_EQ(got.indices, want.indices) << where;
  EXPECT_EQ(got.labels, want.labels) << where;
  ASSERT_TRUE(got.images.defined()) << where;
  EXPECT_TRUE(got.images.is_cpu()) << where;
  EXPECT_EQ(got.images.shape(), want.images.shape()) << where;
  EXPECT_EQ(got.images.to_vector(), want.images.to_vector()) << where;
}

std::vector<Batch> drain(DataLoader& loader) {
  std::vector<Batch> out;
  while (std::optional<Batch> b = loader.next()) out.push_back(std::move(*b));
  return out;
}

TEST(Shuffle, IsAPermutationDeterministicAndVariesWithEpochAndSeed) {
  for (const int64_t n : {0, 1, 2, 3, 10, 1000, 60000}) {
    const std::vector<int64_t> a = shuffled_indices(n, 7, 0);
    ASSERT_EQ(static_cast<int64_t>(a.size()), n);
    EXPECT_TRUE(is_permutation_of_iota(a)) << "n = " << n;
    EXPECT_EQ(a, shuffled_indices(n, 7, 0)) << "n = " << n;
    if (n >= 10) {
      EXPECT_NE(a, shuffled_indices(n, 7, 1)) << "epochs 0 and 1 share an order, n = " << n;
      EXPECT_NE(a, shuffled_indices(n, 8, 0)) << "seeds 7 and 8 share an order, n = " << n;
      EXPECT_NE(a, iota(n)) << "n = " << n;
    }
  }
}

TEST(Shuffle, PinnedOrder) {
  // The order is fixed by the draws: draw k is (philox_raw(seed, epoch, 2k) << 32) |
  // philox_raw(seed, epoch, 2k + 1), and position i swaps with draw % (i + 1), for i = n-1 down to 1.
  // The expected order was computed by a separate Python implementation of Philox and this rule.
  // A change here changes the data order of every training run.
  EXPECT_EQ(shuffled_indices(10, 42, 3), (std::vector<int64_t>{9, 4, 6, 5, 0, 2, 1, 3, 8, 7}));
}

TEST(Shuffle, AllPermutationsEquallyLikely) {
  // 6000 shuffles of 3 elements over seeds: each of the 6 orders about 1000 times (sd ~ 29).
  std::map<std::vector<int64_t>, int> counts;
  for (uint64_t seed = 0; seed < 6000; ++seed) ++counts[shuffled_indices(3, seed, 0)];
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [order, count] : counts) {
    EXPECT_GT(count, 850) << order[0] << order[1] << order[2];
    EXPECT_LT(count, 1150) << order[0] << order[1] << order[2];
  }
}

TEST(GatherImages, ScalesBothWays) {
  Dataset ds = synthetic(2, 1, 1, 4);
  ds.images = {0, 51, 255, 128, 1, 2, 3, 254};
  const Tensor unit = gather_images(ds, {1, 0}, Scale::Unit);
  EXPECT_EQ(unit.shape(), (Shape{2, 1, 1, 4}));
  const std::vector<float> u = unit.to_vector();
  const std::vector<uint8_t> order = {1, 2, 3, 254, 0, 51, 255, 128};
  for (size_t k = 0; k < u.size(); ++k) EXPECT_FLOAT_EQ(u[k], order[k] / 255.0f) << k;
  EXPECT_EQ(u[4], 0.0f);
  EXPECT_EQ(u[6], 1.0f);
  EXPECT_FLOAT_EQ(u[5], 0.2f);

  const std::vector<float> s = gather_images(ds, {1, 0}, Scale::Symmetric).to_vector();
  for (size_t k = 0; k < s.size(); ++k) EXPECT_FLOAT_EQ(s[k], order[k] / 127.5f - 1.0f) << k;
  EXPECT_EQ(s[4], -1.0f);
  EXPECT_EQ(s[6], 1.0f);
  EXPECT_NEAR(s[7], 0.0039215f, 1e-6);  // 128 -> just above 0

  EXPECT_EQ(gather_images(ds, {}, Scale::Unit).shape(), (Shape{0, 1, 1, 4}));
  EXPECT_THROW(gather_images(ds, {2}, Scale::Unit), std::out_of_range);
  EXPECT_THROW(gather_images(ds, {-1}, Scale::Unit), std::out_of_range);
}

TEST(DataLoader, EveryIndexOncePerEpochAndBatchesMatchTheReference) {
  const Dataset ds = synthetic(103, 3, 4, 5);
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.seed = 123;
  opt.scale = Scale::Symmetric;
  DataLoader loader(ds, opt);
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch(epoch);
    const std::vector<Batch> got = drain(loader);
    ASSERT_EQ(got.size(), 11u);
    std::vector<int64_t> seen;
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].images.shape(), (Shape{k + 1 < got.size() ? 10 : 3, 3, 4, 5}));
      seen.insert(seen.end(), got[k].indices.begin(), got[k].indices.end());
      // Each batch is gather_images of its indices, with the matching labels.
      expect_same_batch(got[k], reference_epoch(ds, opt, epoch)[k], "epoch " + std::to_string(epoch));
    }
    EXPECT_TRUE(is_permutation_of_iota(seen));
    EXPECT_EQ(seen, shuffled_indices(ds.n, opt.seed, epoch));
    EXPECT_FALSE(loader.next().has_value());  // stays over
  }
}

TEST(DataLoader, SameSeedSameBatchesAcrossLoadersDifferentAcrossEpochs) {
  const Dataset ds = synthetic(50);
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.seed = 5;
  DataLoader a(ds, opt), b(ds, opt);
  a.start_epoch(2);
  b.start_epoch(2);
  const std::vector<Batch> ga = drain(a), gb = drain(b);
  ASSERT_EQ(ga.size(), gb.size());
  for (size_t k = 0; k < ga.size(); ++k) expect_same_batch(ga[k], gb[k], "batch " + std::to_string(k));
  a.start_epoch(3);
  EXPECT_NE(a.next()->indices, ga[0].indices);
}

TEST(DataLoader, NoShuffleIsFileOrder) {
  const Dataset ds = synthetic(10);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.shuffle = false;
  DataLoader loader(ds, opt);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    std::vector<int64_t> seen;
    for (const Batch& b : drain(loader)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    EXPECT_EQ(seen, iota(10));
  }
}

TEST(DataLoader, DropLast) {
  const Dataset ds = synthetic(10);
  struct Case {
    int64_t batch;
    bool drop_last;
    int64_t batches, last_size;
  };
  for (const Case c : {Case{3, false, 4, 1}, Case{3, true, 3, 3}, Case{5, false, 2, 5}, Case{5, true, 2, 5},
                       Case{10, true, 1, 10}, Case{12, false, 1, 10}, Case{12, true, 0, 0}, Case{1, true, 10, 1}}) {
    LoaderOptions opt;
    opt.batch_size = c.batch;
    opt.drop_last = c.drop_last;
    DataLoader loader(ds, opt);
    EXPECT_EQ(loader.batches_per_epoch(), c.batches);
    loader.start_epoch(0);
    const std::vector<Batch> got = drain(loader);
    ASSERT_EQ(static_cast<int64_t>(got.size()), c.batches) << c.batch << " " << c.drop_last;
    if (!got.empty()) {
      EXPECT_EQ(static_cast<int64_t>(got.back().indices.size()), c.last_size);
    }
  }
}

TEST(DataLoader, UnlabeledDataGivesEmptyLabels) {
  Dataset ds = synthetic(7);
  ds.labels.clear();
  LoaderOptions opt;
  opt.batch_size = 3;
  DataLoader loader(ds, opt);
  for (const Batch& b : drain(loader)) {
    EXPECT_TRUE(b.labels.empty());
    EXPECT_FALSE(b.indices.empty());
  }
}

TEST(DataLoader, NextBeforeStartEpochStartsEpochZero) {
  const Dataset ds = synthetic(20);
  LoaderOptions opt;
  opt.batch_size = 6;
  DataLoader loader(ds, opt);
  const std::vector<Batch> got = drain(loader);
  const std::vector<Batch> want = reference_epoch(ds, opt, 0);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) expect_same_batch(got[k], want[k], "batch " + std::to_string(k));
}

TEST(DataLoader, BackgroundThreadMatchesSynchronousWhateverTheTiming) {
  const Dataset ds = synthetic(300, 1, 28, 28);
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.seed = 99;
  DataLoader loader(ds, opt);
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    loader.start_epoch(epoch);
    const std::vector<Batch> want = reference_epoch(ds, opt, epoch);
    for (size_t k = 0; k < want.size(); ++k) {
      // A slow consumer on odd epochs (the worker waits on a full slot), a fast one on even epochs
      // (the consumer waits on the worker).
      if (epoch % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::optional<Batch> b = loader.next();
      ASSERT_TRUE(b.has_value());
      expect_same_batch(*b, want[k], "epoch " + std::to_string(epoch) + " batch " + std::to_string(k));
    }
    EXPECT_FALSE(loader.next().has_value());
  }
}

TEST(DataLoader, RestartingAnEpochMidWay) {
  const Dataset ds = synthetic(100);
  LoaderOptions opt;
  opt.batch_size = 7;
  opt.seed = 3;
  DataLoader loader(ds, opt);
  loader.start_epoch(0);
  loader.next();
  loader.next();
  // Epoch 1 from its beginning: the leftovers of epoch 0 (one maybe being built) are dropped.
  loader.start_epoch(1);
  std::vector<Batch> got = drain(loader);
  std::vector<Batch> want = reference_epoch(ds, opt, 1);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) expect_same_batch(got[k], want[k], "epoch 1 batch " + std::to_string(k));

  // The same epoch again, restarted many times at every stage, without draining.
  for (int round = 0; round < 200; ++round) {
    loader.start_epoch(0);
    for (int k = 0; k < round % 4; ++k) loader.next();
  }
  loader.start_epoch(0);
  got = drain(loader);
  want = reference_epoch(ds, opt, 0);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) expect_same_batch(got[k], want[k], "epoch 0 batch " + std::to_string(k));
}

TEST(DataLoader, DestroyingAtAnyPointIsClean) {
  const Dataset ds = synthetic(64, 1, 28, 28);
  LoaderOptions opt;
  opt.batch_size = 8;
  for (int stage = 0; stage < 5; ++stage) {
    DataLoader loader(ds, opt);   // stage 0: never started
    if (stage >= 1) loader.start_epoch(0);  // stage 1: destroyed while building the first batch
    for (int k = 0; k < stage - 1; ++k) ASSERT_TRUE(loader.next().has_value());  // mid-epoch
    if (stage == 4) drain(loader);  // after the end of the epoch
  }
}

TEST(DataLoader, WorkerErrorsReachTheCaller) {
  Dataset ds = synthetic(12);
  LoaderOptions opt;
  opt.batch_size = 5;
  DataLoader loader(ds, opt);
  // Broken before the first epoch (the worker does not touch the data set until then): the worker's
  // gather_images throws, and next() rethrows it in the caller's thread, every time.
  ds.images.pop_back();
  loader.start_epoch(0);
  EXPECT_THROW(loader.next(), std::invalid_argument);
  EXPECT_THROW(loader.next(), std::invalid_argument);
  // Repaired: a new epoch runs normally.
  ds.images.push_back(0);
  loader.start_epoch(0);
  EXPECT_EQ(drain(loader).size(), 3u);
}

TEST(DataLoader, RejectsBadOptions) {
  const Dataset ds = synthetic(4);
  LoaderOptions opt;
  opt.batch_size = 0;
  EXPECT_THROW(DataLoader(ds, opt), std::invalid_argument);
  opt.batch_size = -3;
  EXPECT_THROW(DataLoader(ds, opt), std::invalid_argument);
}

TEST(Loader, RandomSubsetIsSeededSortedAndWhole) {
  const std::vector<int64_t> a = random_subset(100, 10, 7, 1), b = random_subset(100, 10, 7, 1), c = random_subset(100, 10, 7, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 10u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());  // no repeats
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), 100);
  std::vector<int64_t> first(10);
  std::iota(first.begin(), first.end(), int64_t{0});
  EXPECT_NE(a, first);  // not the first 10
  std::vector<int64_t> all(100);
  std::iota(all.begin(), all.end(), int64_t{0});
  EXPECT_EQ(random_subset(100, 0, 7, 1), all);
  EXPECT_EQ(random_subset(100, 100, 7, 1), all);
  EXPECT_EQ(random_subset(100, 500, 7, 1), all);
}

}  // namespace
}  // namespace ll::data
