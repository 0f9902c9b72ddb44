// mpi_collectives.cpp: the communicator's collectives across real processes. Not one ctest per TEST:
// ctest starts the whole program under mpirun (tests/CMakeLists.txt: dist_mpi_np2, dist_mpi_np3 with
// the MPI backend; dist_nccl_np1 with NCCL, skipped without a GPU), every rank runs every test in the
// same order, and the job fails when any rank fails. So that the ranks stay in step, every test
// makes all its collective calls before it asserts anything (EXPECT, not ASSERT, in between); if
// they fall out of step all the same, the timeout of communicator.h (60 s here) ends the job.
//
// The all-reduce is checked bit for bit: every rank computes every rank's contribution
// (tests/dist/dist_values.h) and their sum_in_fixed_order, which the reduced buffer must equal.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "engine/dist/mpi_communicator.h"
#include "tests/dist/dist_values.h"
#ifdef LATENTLAB_HAS_NCCL
#include "kernels/cuda_runtime.h"
#endif

namespace ll::dist {
namespace {

using test::rank_values;

Communicator* g_comm = nullptr;  // made by main before the tests
std::string g_skip;              // why there is none (the NCCL run without a GPU)

#define LL_REQUIRE_COMM()                      \
  do {                                         \
    if (g_comm == nullptr) GTEST_SKIP() << g_skip; \
  } while (0)

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // (memcmp is not given the null data() of empty vectors: undefined behaviour, UBSan says)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Every rank's contribution and their sum in the fixed order, computed on this rank alone.
std::vector<float> expected_sum(int size, int64_t n, uint64_t seed) {
  std::vector<std::vector<float>> parts;
  std::vector<const float*> pointers;
  for (int r = 0; r < size; ++r) parts.push_back(rank_values(r, n, seed));
  for (const auto& p : parts) pointers.push_back(p.data());
  std::vector<float> sum(static_cast<size_t>(n));
  sum_in_fixed_order(pointers.data(), size, sum.data(), n);
  return sum;
}

bool is_mpi() { return g_comm != nullptr && std::string(g_comm->backend()) == "mpi"; }

TEST(Collectives, KnowTheirPlace) {
  LL_REQUIRE_COMM();
  const char* world = std::getenv("OMPI_COMM_WORLD_SIZE");
  ASSERT_NE(world, nullptr) << "run under Open MPI's mpirun";
  EXPECT_EQ(g_comm->size(), std::atoi(world));
  EXPECT_GE(g_comm->rank(), 0);
  EXPECT_LT(g_comm->rank(), g_comm->size());
}

// ---- host buffers (the MPI backend) --------------------------------------------------------------
TEST(MpiAllReduce, IsTheFixedOrderSumBitForBit) {
  if (!is_mpi()) GTEST_SKIP() << "host buffers: the MPI backend's test";
  // 0 and 1 (some ranks own empty slices), 7 (uneven slices), and a few million floats: three
  // chunks of the default 2^20 and a partial fourth.
  for (int64_t n : {0, 1, 7, 3'500'001}) {
    std::vector<float> data = rank_values(g_comm->rank(), n, 1);
    g_comm->all_reduce_sum(data.data(), n);
    EXPECT_TRUE(same_bits(data, expected_sum(g_comm->size(), n, 1))) << "n = " << n;
  }
}

TEST(MpiAllReduce, DoesNotDependOnTheChunking) {
  if (!is_mpi()) GTEST_SKIP() << "host buffers: the MPI backend's test";
  // A second communicator beside main's, with chunks smaller than the buffer and than the rank
  // count: slices of 0 and 1 elements, and a last chunk of every remainder.
  for (int64_t chunk : {1, 2, 5, 1000}) {
    auto c = make_mpi_communicator(MpiOptions{.timeout_s = 60, .chunk_elements = chunk});
    for (int64_t n : {1, 2, 3, 5, 7, 11, 64, 2049}) {
      std::vector<float> data = rank_values(c->rank(), n, 2);
      c->all_reduce_sum(data.data(), n);
      EXPECT_TRUE(same_bits(data, expected_sum(c->size(), n, 2))) << "n = " << n << ", chunks of " << chunk;
    }
  }
}

TEST(MpiAllReduce, MeanIsTheSumDividedByTheRankCount) {
  if (!is_mpi()) GTEST_SKIP() << "host buffers: the MPI backend's test";
  const int64_t n = 10'000;
  std::vector<float> data = rank_values(g_comm->rank(), n, 3);
  g_comm->all_reduce_mean(data.data(), n);
  std::vector<float> want = expected_sum(g_comm->size(), n, 3);
  for (float& x : want) x /= static_cast<float>(g_comm->size());
  EXPECT_TRUE(same_bits(data, want));
}

TEST(MpiAllReduce, RepeatsItself) {
  if (!is_mpi()) GTEST_SKIP() << "host buffers: the MPI backend's test";
  // The same inputs twice (timing differs between the runs): the same bits, on every rank (the
  // ranks' results are compared through all_gather).
  const int64_t n = 100'003;
  std::vector<float> a = rank_values(g_comm->rank(), n, 4), b = a;
  g_comm->all_reduce_sum(a.data(), n);
  if (g_comm->rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  g_comm->all_reduce_sum(b.data(), n);
  uint64_t hash = 1469598103934665603ull;  // FNV-1a of the result's bytes
  for (size_t i = 0; i < a.size() * sizeof(float); ++i) hash = (hash ^ reinterpret_cast<const unsigned char*>(a.data())[i]) * 1099511628211ull;
  std::vector<uint64_t> hashes(static_cast<size_t>(g_comm->size()));
  g_comm->all_gather(&hash, hashes.data(), sizeof hash);
  EXPECT_TRUE(same_bits(a, b));
  for (uint64_t h : hashes) EXPECT_EQ(h, hashes[0]);
}

// ---- host calls (every backend) ----------------------------------------------------------------
TEST(Collectives, BroadcastFromEveryRoot) {
  LL_REQUIRE_COMM();
  for (int root = 0; root < g_comm->size(); ++root) {
    std::vector<unsigned char> bytes(1000);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(g_comm->rank() == root ? i * 7 + root : 0);
    g_comm->broadcast(bytes.data(), bytes.size(), root);
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i] != static_cast<unsigned char>(i * 7 + root)) {
        ADD_FAILURE() << "byte " << i << " from root " << root;
        break;
      }
    }
  }
  g_comm->broadcast(nullptr, 0, 0);  // nothing, and no exchange
  EXPECT_THROW(g_comm->broadcast(nullptr, 0, g_comm->size()), std::invalid_argument);  // local check, no exchange
  EXPECT_THROW(g_comm->broadcast(nullptr, 0, -1), std::invalid_argument);
}

TEST(Collectives, AllGatherIsInRankOrder) {
  LL_REQUIRE_COMM();
  const int64_t mine[2] = {g_comm->rank(), 100 + g_comm->rank()};
  std::vector<int64_t> all(2 * static_cast<size_t>(g_comm->size()), -1);
  g_comm->all_gather(mine, all.data(), sizeof mine);
  // In place: this rank's part already where it goes.
  std::vector<int64_t> in_place(2 * static_cast<size_t>(g_comm->size()), -1);
  in_place[2 * g_comm->rank()] = mine[0];
  in_place[2 * g_comm->rank() + 1] = mine[1];
  g_comm->all_gather(in_place.data() + 2 * g_comm->rank(), in_place.data(), sizeof mine);
  for (int r = 0; r < g_comm->size(); ++r) {
    EXPECT_EQ(all[2 * r], r);
    EXPECT_EQ(all[2 * r + 1], 100 + r);
  }
  EXPECT_EQ(in_place, all);
}

TEST(Collectives, BarrierWaitsForTheLastRank) {
  LL_REQUIRE_COMM();
  using Clock = std::chrono::steady_clock;
  g_comm->barrier();  // start together
  const auto start = Clock::now();
  // Rank 0 comes 0.5 s late; the others left the first barrier at about the same time as it did
  // (a loaded machine may delay them by tens of milliseconds, hence 0.25 s, not 0.5 s).
  if (g_comm->rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  g_comm->barrier();
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(waited, 0.25) << "rank " << g_comm->rank() << " left the barrier before rank 0 came";
}

TEST(Collectives, CheckSameAgreesAndNamesTheFirstDifference) {
  LL_REQUIRE_COMM();
  const int rank = g_comm->rank(), size = g_comm->size();
  g_comm->check_same("config", "{\"model\": \"vae\", \"batch\": 64}");  // the same everywhere: returns

  // Ranks 1 .. size-1 differ (each its own way): every rank throws, naming rank 1, the key, and the
  // first differing character (26: the batch size's first digit).
  std::string message;
  try {
    g_comm->check_same("config", rank == 0 ? "{\"model\": \"vae\", \"batch\": 64}" : "{\"model\": \"vae\", \"batch\": " + std::to_string(31 + rank) + "}");
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("ranks disagree on config: rank 1 differs from rank 0 at character 26"), std::string::npos) << message;
  EXPECT_NE(message.find("rank 0 has \"{\"model\": \"vae\", \"batch\": 64}\""), std::string::npos) << message;
  EXPECT_NE(message.find("rank 1 has \"{\"model\": \"vae\", \"batch\": 32}\""), std::string::npos) << message;

  // Only the last rank differs, deep in a long text: an excerpt around the difference.
  std::string long_text(5000, 'x');
  if (rank == size - 1) long_text[4000] = 'y';
  message.clear();
  try {
    g_comm->check_same("weights", long_text);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  const std::string last = "rank " + std::to_string(size - 1);
  EXPECT_NE(message.find("ranks disagree on weights: " + last + " differs from rank 0 at character 4000"), std::string::npos) << message;
  EXPECT_NE(message.find("...\"xxxx"), std::string::npos) << message;
  EXPECT_LT(message.size(), 400u) << "the message should show an excerpt, not the whole text";

  // Different keys: the ranks are out of step.
  message.clear();
  try {
    g_comm->check_same(rank == 0 ? "config" : "model", "same");
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("out of step: rank 0 checks \"config\" where rank 1 checks \"model\""), std::string::npos) << message;
  g_comm->barrier();  // still in step
}

#ifdef LATENTLAB_HAS_NCCL
// ---- device buffers (the NCCL backend; UNVERIFIED until it runs on a GPU) -----------------------
TEST(NcclAllReduce, AgreesWithTheFixedOrderToRounding) {
  LL_REQUIRE_COMM();
  if (std::string(g_comm->backend()) != "nccl") GTEST_SKIP() << "device buffers: the NCCL backend's test";
  const int size = g_comm->size();
  for (bool mean : {false, true}) {
    const int64_t n = 1'000'003;
    const std::vector<float> mine = rank_values(g_comm->rank(), n, 5);
    void* device = kernels::cuda::malloc_device(static_cast<size_t>(n) * sizeof(float));
    kernels::cuda::memcpy_host_to_device(device, mine.data(), static_cast<size_t>(n) * sizeof(float));
    if (mean) {
      g_comm->all_reduce_mean(static_cast<float*>(device), n);
    } else {
      g_comm->all_reduce_sum(static_cast<float*>(device), n);
    }
    std::vector<float> got(static_cast<size_t>(n));
    kernels::cuda::memcpy_device_to_host(got.data(), device, static_cast<size_t>(n) * sizeof(float));
    kernels::cuda::free_device(device);
    // NCCL's order is its own: within 2 P float32 roundings of the sum of magnitudes.
    std::vector<float> want = expected_sum(size, n, 5);
    std::vector<double> magnitude(static_cast<size_t>(n), 0.0);
    for (int r = 0; r < size; ++r) {
      const std::vector<float> v = rank_values(r, n, 5);
      for (size_t i = 0; i < v.size(); ++i) magnitude[i] += std::abs(v[i]);
    }
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double w = mean ? want[i] / static_cast<double>(size) : want[i];
      const double m = mean ? magnitude[i] / size : magnitude[i];
      if (std::abs(got[i] - w) > 2.0 * size * 6e-8 * m + 1e-30) ++bad;
    }
    EXPECT_EQ(bad, 0) << (mean ? "mean" : "sum") << ": " << bad << " elements beyond rounding";
    if (size == 1) {
      EXPECT_TRUE(same_bits(got, mine)) << "one rank: the data unchanged";
    }
  }
}
#endif

}  // namespace
}  // namespace ll::dist

// Prints this rank's failures (ranks other than 0 do not print gtest's progress, which would
// interleave with rank 0's).
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
  }

 private:
  int rank_;
};

// dist_collectives [mpi|nccl]: the backend to test (default mpi).
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string backend = argc > 1 ? argv[1] : "mpi";
  std::unique_ptr<ll::dist::Communicator> comm;
  std::string why;
  if (backend == "nccl" && !ll::cuda_available(&why)) {
    ll::dist::g_skip = "no GPU: " + why;
  } else {
    comm = ll::dist::make_communicator(backend, backend == "nccl" ? ll::Device::CUDA : ll::Device::CPU);
    ll::dist::g_comm = comm.get();
  }
  if (comm && comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(comm->rank()));
  }
  const int32_t failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  if (!comm) return failed;
  // The job's verdict, on every rank.
  std::vector<int32_t> all(static_cast<size_t>(comm->size()));
  comm->all_gather(&failed, all.data(), sizeof failed);
  int any = 0;
  for (int32_t f : all) any |= f;
  if (comm->rank() == 0 && any && !failed) std::fprintf(stderr, "another rank failed (its lines above start with [rank N])\n");
  comm.reset();
  return any;
}
