// test_communicator.cpp: engine/dist in one process: the fixed reduction order, the single-process
// communicator, the --dist factory and the environment it reads. The MPI backend runs under mpirun
// (tests/dist/mpi_collectives.cpp, ctest dist_mpi_np2 and dist_mpi_np3) and its faults in
// test_dist_faults.cpp; here a build without MPI (or NCCL) says so as a skipped test.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "engine/tensor.h"
#include "tests/dist/dist_values.h"

namespace ll::dist {
namespace {

using test::rank_values;

// The order of communicator.h written as directly as it reads, one element at a time.
float reference_sum(const std::vector<std::vector<float>>& parts, int lo, int hi, size_t i) {
  if (hi - lo == 1) return parts[static_cast<size_t>(lo)][i];
  const int mid = lo + (hi - lo + 1) / 2;
  return reference_sum(parts, lo, mid, i) + reference_sum(parts, mid, hi, i);
}

std::vector<const float*> pointers(const std::vector<std::vector<float>>& parts) {
  std::vector<const float*> p;
  for (const auto& v : parts) p.push_back(v.data());
  return p;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // (memcmp is not given the null data() of empty vectors: undefined behaviour, UBSan says)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST(FixedOrder, IsTheHalvingOfTheHeader) {
  // Sizes around the 1024-element blocks of sum_in_fixed_order, rank counts up to 9 (depth 4).
  for (int count = 1; count <= 9; ++count) {
    for (int64_t n : {0, 1, 7, 1023, 1024, 1025, 3001}) {
      std::vector<std::vector<float>> parts;
      for (int r = 0; r < count; ++r) parts.push_back(rank_values(r, n, 11));
      std::vector<float> want(static_cast<size_t>(n));
      for (size_t i = 0; i < want.size(); ++i) want[i] = reference_sum(parts, 0, count, i);
      std::vector<float> got(static_cast<size_t>(n), -1.0f);
      sum_in_fixed_order(pointers(parts).data(), count, got.data(), n);
      EXPECT_TRUE(same_bits(got, want)) << count << " parts of " << n;
    }
  }
}

TEST(FixedOrder, IsNotAnotherOrder) {
  // Values whose float sum depends on the order: the halving's result is pinned.
  // 3 parts: (1 + 1e8) + -1e8 = 0 (1 is lost in 1e8), where 1 + (1e8 + -1e8) would be 1.
  const std::vector<std::vector<float>> three{{1.0f}, {1e8f}, {-1e8f}};
  float out = -1;
  sum_in_fixed_order(pointers(three).data(), 3, &out, 1);
  EXPECT_EQ(out, 0.0f);
  // 4 parts: (1 + 1e8) + (-1e8 + 1) = 0, where the left fold ((1 + 1e8) + -1e8) + 1 would be 1.
  const std::vector<std::vector<float>> four{{1.0f}, {1e8f}, {-1e8f}, {1.0f}};
  sum_in_fixed_order(pointers(four).data(), 4, &out, 1);
  EXPECT_EQ(out, 0.0f);
  // 2 parts: one addition, x0 + x1.
  const std::vector<std::vector<float>> two{{0.1f}, {0.2f}};
  sum_in_fixed_order(pointers(two).data(), 2, &out, 1);
  EXPECT_EQ(out, 0.1f + 0.2f);
}

TEST(FixedOrder, MayWriteOverAPart) {
  // `out` aliasing a part that later halves still read (the right half's x2 for 3 parts).
  std::vector<std::vector<float>> parts;
  for (int r = 0; r < 3; ++r) parts.push_back(rank_values(r, 2500, 5));
  std::vector<float> want(2500);
  sum_in_fixed_order(pointers(parts).data(), 3, want.data(), 2500);
  sum_in_fixed_order(pointers(parts).data(), 3, parts[2].data(), 2500);
  EXPECT_TRUE(same_bits(parts[2], want));
  EXPECT_THROW(sum_in_fixed_order(nullptr, 0, want.data(), 1), std::invalid_argument);
}

TEST(Local, IsOneRankAndLeavesTheDataAlone) {
  Local c;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
  EXPECT_STREQ(c.backend(), "local");
  std::vector<float> v = rank_values(0, 100, 3);
  const std::vector<float> before = v;
  c.all_reduce_sum(v.data(), 100);
  c.all_reduce_mean(v.data(), 100);
  c.all_reduce_sum(nullptr, 0);
  EXPECT_TRUE(same_bits(v, before));
  EXPECT_THROW(c.all_reduce_sum(v.data(), -1), std::invalid_argument);

  char bytes[4] = {'a', 'b', 'c', 'd'};
  c.broadcast(bytes, 4, 0);
  EXPECT_EQ(std::string(bytes, 4), "abcd");
  EXPECT_THROW(c.broadcast(bytes, 4, 1), std::invalid_argument);
  char all[4] = {};
  c.all_gather(bytes, all, 4);
  EXPECT_EQ(std::string(all, 4), "abcd");
  c.barrier();
  c.check_same("config", "{\"model\": \"vae\"}");  // one rank always agrees with itself
}

// Sets (or, with nullopt, unsets) an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

::testing::AssertionResult throws_saying(const std::function<void()>& f, const std::string& words) {
  try {
    f();
  } catch (const std::exception& e) {
    if (std::string(e.what()).find(words) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "the message \"" << e.what() << "\" lacks \"" << words << "\"";
  }
  return ::testing::AssertionFailure() << "nothing was thrown";
}

TEST(DistFlag, PicksTheBackend) {
  ScopedEnv no_ompi("OMPI_COMM_WORLD_SIZE", std::nullopt), no_pmi("PMI_SIZE", std::nullopt);
  EXPECT_STREQ(make_communicator("none")->backend(), "local");
  EXPECT_STREQ(make_communicator("auto")->backend(), "local");  // no launcher: one process
  EXPECT_STREQ(make_communicator("auto", Device::CUDA)->backend(), "local");
  EXPECT_THROW(make_communicator("mpich"), std::invalid_argument);
  EXPECT_TRUE(throws_saying([] { make_communicator("gloo"); }, "expected auto, none, mpi or nccl"));
  if (!mpi_built()) {
    EXPECT_TRUE(throws_saying([] { make_communicator("mpi"); }, "this build has no MPI"));
    // Under a launcher of 2 processes a build without MPI refuses rather than train twice alone.
    ScopedEnv two("OMPI_COMM_WORLD_SIZE", "2");
    EXPECT_TRUE(throws_saying([] { make_communicator("auto"); }, "each would train alone"));
    ScopedEnv one("OMPI_COMM_WORLD_SIZE", "1");
    EXPECT_STREQ(make_communicator("auto")->backend(), "local");
  }
  if (!nccl_built()) {
    EXPECT_TRUE(throws_saying([] { make_communicator("nccl"); }, "no NCCL backend"));
  }
}

TEST(DistFlag, ReadsTheLauncherAndTheTimeout) {
  {
    ScopedEnv no_ompi("OMPI_COMM_WORLD_SIZE", std::nullopt), no_pmi("PMI_SIZE", std::nullopt);
    EXPECT_EQ(launcher_world_size(), 0);
    ScopedEnv pmi("PMI_SIZE", "4");
    EXPECT_EQ(launcher_world_size(), 4);
    ScopedEnv ompi("OMPI_COMM_WORLD_SIZE", "3");
    EXPECT_EQ(launcher_world_size(), 3);
    ScopedEnv bad("OMPI_COMM_WORLD_SIZE", "three");
    EXPECT_THROW(launcher_world_size(), std::runtime_error);
  }
  ScopedEnv unset("LATENTLAB_DIST_TIMEOUT_S", std::nullopt);
  EXPECT_EQ(timeout_seconds(), 300.0);
  for (const auto& [text, seconds] : std::vector<std::pair<std::string, double>>{{"2.5", 2.5}, {"0", 0.0}, {"60", 60.0}}) {
    ScopedEnv set("LATENTLAB_DIST_TIMEOUT_S", text);
    EXPECT_EQ(timeout_seconds(), seconds) << text;
  }
  for (const char* bad : {"-1", "soon", "5s", "inf", "nan"}) {
    ScopedEnv set("LATENTLAB_DIST_TIMEOUT_S", bad);
    EXPECT_TRUE(throws_saying([] { timeout_seconds(); }, "LATENTLAB_DIST_TIMEOUT_S")) << bad;
  }
}

// Where the build lacks a backend its tests are not built; these say so (a skip, never a pass).
TEST(DistBackends, Mpi) {
  if (!mpi_built()) {
    GTEST_SKIP() << "this build has no MPI (apt-get install openmpi-bin libopenmpi-dev, configure again): "
                    "the MPI communicator and its tests (dist_mpi_np2, dist_mpi_np3, DistFaults.*) are not built";
  }
  SUCCEED() << "MPI built: its tests run under mpirun (ctest -R 'dist_mpi|DistFaults')";
}

// The NCCL backend as one rank in this process (no launcher; MPI's singleton where the build has
// MPI, else Local): start-up on GPU 0, the all-reduces on device memory, the host-side calls. Several
// ranks: dist_nccl_np1 and `mpirun -np 2 dist_collectives nccl` (tests/dist/mpi_collectives.cpp).
TEST(DistBackends, Nccl) {
  if (!nccl_built()) {
    GTEST_SKIP() << "this build has no NCCL backend (it needs the CUDA backend built with nvcc, and "
                    "nccl.h and libnccl.so beside the CUDA toolkit)";
  }
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "NCCL is built but there is no usable GPU here: " << why;
  if (launcher_world_size() > 0) GTEST_SKIP() << "started by an MPI launcher: the one-process check runs without one";
  std::unique_ptr<Communicator> comm = make_communicator("nccl", Device::CUDA);
  ASSERT_STREQ(comm->backend(), "nccl");
  ASSERT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->buffer_device(), Device::CUDA);
  const std::vector<float> values = rank_values(0, 100'003, 9);
  for (bool mean : {false, true}) {
    Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, Device::CUDA);
    if (mean) {
      comm->all_reduce_mean(t.data(), t.numel());
    } else {
      comm->all_reduce_sum(t.data(), t.numel());
    }
    EXPECT_EQ(t.to_vector(), values) << (mean ? "mean" : "sum") << " over one rank changes no float";
  }
  int64_t x = 42, all = 0;
  comm->broadcast(&x, sizeof x, 0);
  comm->all_gather(&x, &all, sizeof x);
  EXPECT_EQ(all, 42);
  comm->barrier();
  comm->check_same("config", "{}");
}

}  // namespace
}  // namespace ll::dist
