// test_gradient_sum.cpp: the pieces of engine/dist/data_parallel.h on one process: how a batch is
// split, and that the parts' gradients are added in the fixed order and written back.
#include <gtest/gtest.h>

#include <vector>

#include "engine/dist/communicator.h"
#include "engine/dist/data_parallel.h"
#include "engine/ops/ops.h"

namespace ll::dist {
namespace {

TEST(ShardRows, ContiguousPartsDifferingByAtMostOne) {
  for (int64_t rows : {0, 1, 2, 5, 16, 17, 128}) {
    for (int64_t parts : {1, 2, 3, 7}) {
      int64_t next = 0, smallest = rows, largest = 0;
      for (int64_t p = 0; p < parts; ++p) {
        const Rows r = shard_rows(rows, parts, p);
        EXPECT_EQ(r.begin, next) << rows << " " << parts << " " << p;
        next = r.end;
        smallest = std::min(smallest, r.size());
        largest = std::max(largest, r.size());
      }
      EXPECT_EQ(next, rows);
      EXPECT_LE(largest - smallest, 1);
    }
  }
  EXPECT_EQ(shard_rows(16, 3, 1).begin, 5);
  EXPECT_EQ(shard_rows(16, 3, 1).end, 10);
  EXPECT_EQ(shard_rows(2, 3, 0).size(), 0);  // fewer rows than parts: an empty part
  EXPECT_THROW(shard_rows(4, 0, 0), std::invalid_argument);
  EXPECT_THROW(shard_rows(4, 2, 2), std::invalid_argument);
}

TEST(GradientSum, AddsThePartsInTheFixedOrderAndWritesTheGradientsBack) {
  Tensor w = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  Tensor b = Tensor::from_vector({0.5f}, {1}).set_requires_grad();
  GradientSum gs({w, b}, 1);
  Local one;
  // Three parts: loss_k = c_k * sum(w * w) + d_k * b, so grad w = 2 c_k w, grad b = d_k.
  const std::vector<float> c = {0.1f, 1e8f, -1e8f}, d = {1, 2, 0};
  std::vector<std::vector<float>> parts;
  for (size_t k = 0; k < c.size(); ++k) {
    w.zero_grad();
    b.zero_grad();
    add(scale(sum(mul(w, w)), c[k]), scale(sum(b), d[k])).backward();
    gs.add_part({static_cast<float>(k + 1)});
    std::vector<float> flat = w.grad().to_vector();
    flat.push_back(b.grad().to_vector()[0]);
    flat.push_back(static_cast<float>(k + 1));
    parts.push_back(flat);
  }
  gs.add_empty_part();
  parts.push_back(std::vector<float>(5, 0.0f));
  const std::vector<float> scalars = gs.finish(one);
  // The reference: sum_in_fixed_order of the same four parts ((p0 + p1) + (p2 + p3)), whose float
  // additions are not associative here (1e8 cancels): the order is what the test pins down.
  std::vector<const float*> ptrs;
  for (const auto& p : parts) ptrs.push_back(p.data());
  std::vector<float> want(5);
  sum_in_fixed_order(ptrs.data(), 4, want.data(), 5);
  const std::vector<float> gw = w.grad().to_vector();
  EXPECT_EQ(gw, (std::vector<float>{want[0], want[1], want[2]}));
  EXPECT_EQ(b.grad().to_vector()[0], want[3]);
  EXPECT_EQ(scalars, (std::vector<float>{want[4]}));
  EXPECT_EQ(scalars[0], 6.0f);
  EXPECT_THROW(gs.finish(one), std::logic_error);  // the parts were used
  EXPECT_THROW(gs.add_part({}), std::invalid_argument);
}

TEST(GradientSum, AParameterWithoutGradientCountsAsZeros) {
  Tensor w = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  Tensor unused = Tensor::from_vector({7}, {1}).set_requires_grad();
  GradientSum gs({w, unused}, 0);
  Local one;
  w.zero_grad();
  sum(w).backward();
  gs.add_part({});
  gs.finish(one);
  EXPECT_EQ(unused.grad().to_vector(), (std::vector<float>{0}));
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{1, 1}));
}

TEST(SumOverRanks, OneProcessKeepsTheValues) {
  Local one;
  EXPECT_EQ(sum_over_ranks(one, {1.5, -2.0, 1e300}), (std::vector<double>{1.5, -2.0, 1e300}));
  Tensor t = Tensor::from_vector({3, 4}, {2});
  broadcast_tensors(one, {t});
  EXPECT_EQ(t.to_vector(), (std::vector<float>{3, 4}));
}

}  // namespace
}  // namespace ll::dist
