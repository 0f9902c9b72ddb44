// test_sync_batch_norm.cpp: synchronized batch norm across several processes (engine/ops/norm.h
// sync_batch_norm), the processes played by threads of this one, each a shard of the batch, with an
// in-process all_gather. What P shards compute must be what batch_norm computes on the whole batch:
// the outputs, the input gradients, the weight and bias gradients summed over the shards, and the
// running buffers, to float rounding; and every shard must end with the same running buffers, bit
// for bit. Plain batch_norm per shard (DistributedDataParallel's default) is the control: it differs.
// The single-process arithmetic and its finite-difference check are the sync_batch_norm rows of
// tests/engine/op_cases.h.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "tests/common/compare.h"

namespace ll {
namespace {

// all_gather among `size` threads: each deposits its bytes, the last to arrive wakes the others, and
// every one copies all of them out in rank order. Rounds are counted, so a fast thread cannot mix
// two exchanges.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(static_cast<size_t>(size)) {}

  std::shared_ptr<const BatchNormGroup> member(int rank) {
    auto g = std::make_shared<BatchNormGroup>();
    g->size = size_;
    g->all_gather = [this, rank](const void* mine, void* all, size_t bytes) { gather(rank, mine, all, bytes); };
    return g;
  }

 private:
  void gather(int rank, const void* mine, void* all, size_t bytes) {
    std::unique_lock<std::mutex> lock(mutex_);
    // Wait until the previous round has been read by everyone.
    cv_.wait(lock, [&] { return reading_ == 0; });
    const char* p = static_cast<const char*>(mine);
    slots_[static_cast<size_t>(rank)].assign(p, p + bytes);
    const uint64_t round = round_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      reading_ = size_;
      ++round_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return round_ != round; });
    }
    for (int r = 0; r < size_; ++r) {
      ASSERT_EQ(slots_[static_cast<size_t>(r)].size(), bytes) << "ranks exchanged different sizes";
      std::memcpy(static_cast<char*>(all) + static_cast<size_t>(r) * bytes, slots_[static_cast<size_t>(r)].data(), bytes);
    }
    if (--reading_ == 0) cv_.notify_all();
  }

  int size_;
  std::vector<std::vector<char>> slots_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0, reading_ = 0;
  uint64_t round_ = 0;
};

std::vector<float> uniform(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

// Rows [begin, end) of a row-major tensor with `row` floats per row.
std::vector<float> rows(const std::vector<float>& v, int64_t row, int64_t begin, int64_t end) {
  return {v.begin() + begin * row, v.begin() + end * row};
}

::testing::AssertionResult agree(const std::vector<float>& got, const std::vector<float>& ref, test::Tolerance tol) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << ref.size();
  return test::all_close(got.data(), ref.data(), static_cast<int64_t>(got.size()), tol);
}

struct Result {
  std::vector<float> y, gx, gw, gb, rm, rv;
};

// One shard's forward and backward: loss = sum(y * u) with fixed weights u, so that gy varies.
Result run_shard(const Shape& shape, const std::vector<float>& x_values, const std::vector<float>& u_values,
                 const std::vector<float>& w_values, const std::vector<float>& b_values,
                 const std::shared_ptr<const BatchNormGroup>& group) {
  const int64_t C = shape[1];
  Tensor x = Tensor::from_vector(x_values, shape).set_requires_grad();
  Tensor w = Tensor::from_vector(w_values, {C}).set_requires_grad();
  Tensor b = Tensor::from_vector(b_values, {C}).set_requires_grad();
  Tensor rm = Tensor::from_vector(std::vector<float>(static_cast<size_t>(C), 0.5f), {C});
  Tensor rv = Tensor::from_vector(std::vector<float>(static_cast<size_t>(C), 2.0f), {C});
  const Tensor y = group != nullptr ? sync_batch_norm(x, w, b, rm, rv, group, 0.1f, 1e-5f)
                                    : batch_norm(x, w, b, rm, rv, true, 0.1f, 1e-5f);
  sum(mul(y, Tensor::from_vector(u_values, shape))).backward();
  return {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector(), rm.to_vector(), rv.to_vector()};
}

// The batch (N, C, inner...) split into shards of `sizes` rows, one thread each.
void check_shards(const Shape& shape, const std::vector<int64_t>& sizes) {
  const int64_t N = shape[0], C = shape[1];
  const int64_t row = shape_numel(shape) / N;
  // Channels with a large mean and different scales: the merge must keep the variance's precision.
  std::vector<float> x = uniform(shape_numel(shape), 1, -1.0f, 1.0f);
  for (int64_t i = 0; i < shape_numel(shape); ++i) {
    const int64_t c = (i / (row / C)) % C;
    x[static_cast<size_t>(i)] = x[static_cast<size_t>(i)] * static_cast<float>(c + 1) + 3.0f * static_cast<float>(c);
  }
  const std::vector<float> u = uniform(shape_numel(shape), 2, -1.0f, 1.0f);
  const std::vector<float> w = uniform(C, 3, 0.5f, 1.5f), b = uniform(C, 4, -0.5f, 0.5f);
  const Result whole = run_shard(shape, x, u, w, b, nullptr);

  const int P = static_cast<int>(sizes.size());
  ThreadGroup group(P);
  std::vector<Result> parts(static_cast<size_t>(P));
  std::vector<std::thread> threads;
  int64_t begin = 0;
  for (int r = 0; r < P; ++r) {
    const int64_t end = begin + sizes[static_cast<size_t>(r)];
    Shape part_shape = shape;
    part_shape[0] = end - begin;
    threads.emplace_back([&, r, begin, end, part_shape] {
      parts[static_cast<size_t>(r)] =
          run_shard(part_shape, rows(x, row, begin, end), rows(u, row, begin, end), w, b, group.member(r));
    });
    begin = end;
  }
  ASSERT_EQ(begin, N);
  for (std::thread& t : threads) t.join();

  std::vector<float> y, gx, gw(static_cast<size_t>(C), 0.0f), gb(static_cast<size_t>(C), 0.0f);
  for (const Result& p : parts) {
    y.insert(y.end(), p.y.begin(), p.y.end());
    gx.insert(gx.end(), p.gx.begin(), p.gx.end());
    for (int64_t c = 0; c < C; ++c) {
      gw[static_cast<size_t>(c)] += p.gw[static_cast<size_t>(c)];
      gb[static_cast<size_t>(c)] += p.gb[static_cast<size_t>(c)];
    }
  }
  const test::Tolerance tol{2e-6, 1e-5};
  EXPECT_TRUE(agree(y, whole.y, tol));
  EXPECT_TRUE(agree(gx, whole.gx, tol));
  EXPECT_TRUE(agree(gw, whole.gw, tol));
  EXPECT_TRUE(agree(gb, whole.gb, tol));
  for (const Result& p : parts) {
    EXPECT_TRUE(agree(p.rm, whole.rm, tol));
    EXPECT_TRUE(agree(p.rv, whole.rv, tol));
    EXPECT_EQ(p.rm, parts[0].rm) << "every process must hold the same running mean, bit for bit";
    EXPECT_EQ(p.rv, parts[0].rv) << "every process must hold the same running variance, bit for bit";
  }
}

TEST(SyncBatchNorm, TwoEqualShardsAreTheWholeBatch2d) { check_shards({8, 3, 5, 6}, {4, 4}); }
TEST(SyncBatchNorm, UnequalShardsAreTheWholeBatch2d) { check_shards({7, 2, 4, 4}, {2, 5}); }
TEST(SyncBatchNorm, ThreeShardsAreTheWholeBatch1d) { check_shards({9, 5}, {3, 2, 4}); }
TEST(SyncBatchNorm, ShardsOfOneRowAreTheWholeBatch1d) { check_shards({4, 3}, {1, 1, 1, 1}); }
TEST(SyncBatchNorm, AnEmptyShardTakesPart) { check_shards({5, 2, 3}, {3, 0, 2}); }
// The planes layout of the kernels' reductions (inner >= 32) and more shards than cores.
TEST(SyncBatchNorm, FourShardsOfPlanes) { check_shards({8, 4, 8, 8}, {2, 2, 2, 2}); }

// The control: per-shard statistics (plain batch_norm on each shard) are not the whole batch's.
TEST(SyncBatchNorm, PerShardStatisticsDiffer) {
  const Shape shape{8, 2, 3, 3};
  const int64_t row = shape_numel(shape) / 8;
  std::vector<float> x = uniform(shape_numel(shape), 1, -1.0f, 1.0f);
  for (int64_t i = 4 * row; i < 8 * row; ++i) x[static_cast<size_t>(i)] += 1.0f;  // shards of different means
  const std::vector<float> u = uniform(shape_numel(shape), 2, -1.0f, 1.0f), w{1.0f, 1.0f}, b{0.0f, 0.0f};
  const Result whole = run_shard(shape, x, u, w, b, nullptr);
  const Result first = run_shard({4, 2, 3, 3}, rows(x, row, 0, 4), rows(u, row, 0, 4), w, b, nullptr);
  const std::vector<float> whole_first(whole.y.begin(), whole.y.begin() + 4 * row);
  EXPECT_FALSE(agree(first.y, whole_first, {1e-3, 1e-3}));
}

TEST(SyncBatchNorm, RejectsOneValuePerChannelOverAllProcesses) {
  ThreadGroup group(2);
  std::string errors[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      Tensor x = Tensor::ones({r == 0 ? 1 : 0, 3});
      Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
      try {
        sync_batch_norm(x, Tensor(), Tensor(), rm, rv, group.member(r));
      } catch (const std::invalid_argument& e) {
        errors[r] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors) EXPECT_NE(e.find("more than one value per channel over all processes"), std::string::npos) << e;
}

TEST(SyncBatchNorm, ModuleUsesTheGroupInTrainingOnly) {
  // One process: the module with a group computes what it computes without (to rounding), in
  // training; eval mode ignores the group.
  auto plain = nn::BatchNorm2d(3), synced = nn::BatchNorm2d(3);
  auto g = std::make_shared<BatchNormGroup>();
  g->all_gather = [](const void* mine, void* all, size_t bytes) { std::memcpy(all, mine, bytes); };
  synced->sync = g;
  const std::vector<float> v = uniform(2 * 3 * 4 * 4, 5, -2.0f, 2.0f);
  const Tensor x = Tensor::from_vector(v, {2, 3, 4, 4});
  const std::vector<float> a = plain->forward(x).to_vector(), b = synced->forward(x).to_vector();
  EXPECT_TRUE(agree(b, a, {1e-6, 1e-6}));
  EXPECT_TRUE(agree(synced->running_var.to_vector(), plain->running_var.to_vector(), {1e-6, 1e-6}));
  EXPECT_EQ(synced->num_batches_tracked.to_vector(), plain->num_batches_tracked.to_vector());
  g->all_gather = nullptr;  // eval must not exchange anything
  plain->eval();
  synced->eval();
  EXPECT_EQ(synced->forward(x).to_vector(), plain->forward(x).to_vector());
}

}  // namespace
}  // namespace ll
