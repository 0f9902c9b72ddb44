// test_runtime.cpp: the CUDA device layer: discovery, the caching allocator, copies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/cuda/cuda_harness.h"

namespace ll {
namespace {

using testing::DeviceBuffer;

TEST(CudaRuntime, ReportsWhyThereIsNoGpuOrDescribesIt) {
  std::string why;
  const int n = kernels::cuda::device_count(&why);
  if (n == 0) {
    EXPECT_FALSE(why.empty());
    GTEST_SKIP() << "no GPU: " << why;
  }
  EXPECT_NE(kernels::cuda::device_description(0).find("sm_"), std::string::npos);
}

TEST(CudaRuntime, CachingAllocatorReusesFreedBlocks) {
  LL_REQUIRE_GPU();
  namespace c = kernels::cuda;
  void* a = c::malloc_device(1000);
  const auto before = c::device_allocator_stats();
  c::free_device(a);
  void* b = c::malloc_device(900);  // rounds to the same 1024-byte class
  const auto after = c::device_allocator_stats();
  EXPECT_EQ(a, b);
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.cuda_mallocs, before.cuda_mallocs);
  c::free_device(b);
  // A steady loop of the same sizes makes no new cudaMalloc after its first round.
  { DeviceBuffer<float> x(12345), y(777); }
  const int64_t mallocs = c::device_allocator_stats().cuda_mallocs;
  for (int i = 0; i < 10; ++i) {
    DeviceBuffer<float> x(12345), y(777);
  }
  EXPECT_EQ(c::device_allocator_stats().cuda_mallocs, mallocs);
}

// Size classes (512 bytes below 1 MiB, 1 MiB above), live / cached accounting, release of the
// cache, the peak reset, and a pointer the allocator never handed out.
TEST(CudaRuntime, AllocatorStatsReleaseAndUnknownPointers) {
  LL_REQUIRE_GPU();
  namespace c = kernels::cuda;
  c::release_cached_device_memory();
  const auto s0 = c::device_allocator_stats();
  EXPECT_EQ(s0.cached_bytes, 0u);
  const size_t small = 512, large = size_t{2} << 20;
  void* a = c::malloc_device(1);                        // 512
  void* b = c::malloc_device((size_t{1} << 20) + 1);    // 2 MiB
  const auto s1 = c::device_allocator_stats();
  EXPECT_EQ(s1.live_bytes, s0.live_bytes + small + large);
  EXPECT_GE(s1.peak_bytes, s1.live_bytes);
  EXPECT_EQ(s1.cuda_mallocs, s0.cuda_mallocs + 2);
  c::free_device(a);
  c::free_device(b);
  const auto s2 = c::device_allocator_stats();
  EXPECT_EQ(s2.live_bytes, s0.live_bytes);
  EXPECT_EQ(s2.cached_bytes, small + large);
  c::reset_device_peak_bytes();
  EXPECT_EQ(c::device_allocator_stats().peak_bytes, s0.live_bytes);
  c::release_cached_device_memory();
  EXPECT_EQ(c::device_allocator_stats().cached_bytes, 0u);
  int on_host = 0;
  EXPECT_THROW(c::free_device(&on_host), std::runtime_error);
  EXPECT_EQ(c::device_allocator_stats().live_bytes, s0.live_bytes);
}

TEST(CudaRuntime, CopiesRoundTripAndPinnedCopiesAreAsynchronous) {
  LL_REQUIRE_GPU();
  namespace c = kernels::cuda;
  const std::vector<float> v = testing::random_vector(100003, 7);
  DeviceBuffer<float> d(v);
  DeviceBuffer<float> e(v.size());
  c::memcpy_device_to_device(e.get(), d.get(), v.size() * sizeof(float));
  EXPECT_EQ(e.download(), v);
  float* pinned = static_cast<float*>(c::malloc_pinned(v.size() * sizeof(float)));
  std::copy(v.begin(), v.end(), pinned);
  DeviceBuffer<float> f(v.size());
  c::memcpy_host_to_device_async(f.get(), pinned, v.size() * sizeof(float));
  c::synchronize();
  c::free_pinned(pinned);
  EXPECT_EQ(f.download(), v);
}

// Stream order: a freed block goes first to a request on its own stream; a block freed on one
// stream and taken on another is the same memory (the new stream waits for the old one's event);
// freeing twice is refused.
TEST(CudaRuntime, FreedBlocksGoBackToTheirOwnStreamFirst) {
  LL_REQUIRE_GPU();
  namespace c = kernels::cuda;
  c::release_cached_device_memory();
  const c::Stream other = c::create_stream();
  void* on_compute = c::malloc_device(4096);
  void* on_other = c::malloc_device(4096, other);
  c::free_device(on_compute);
  c::free_device(on_other);
  // Both blocks are cached with the same size; each stream gets its own back.
  void* again_other = c::malloc_device(4096, other);
  void* again_compute = c::malloc_device(4096);
  EXPECT_EQ(again_other, on_other);
  EXPECT_EQ(again_compute, on_compute);
  c::free_device(again_compute);
  // The only cached block of the size now is the compute stream's; the other stream takes it.
  void* taken = c::malloc_device(4096, other);
  EXPECT_EQ(taken, on_compute);
  c::record_stream(taken, c::compute_stream());
  c::free_device(taken);
  c::free_device(again_other);
  EXPECT_THROW(c::free_device(again_other), std::runtime_error);  // a double free
  EXPECT_FALSE(c::is_device_block(again_other));
  c::destroy_stream(other);
  c::release_cached_device_memory();
  EXPECT_EQ(c::device_allocator_stats().cached_bytes, 0u);
}

// The debug mode fills a freed block with 0xFF bytes (NaN) behind the work that used it, so a
// stale pointer reads NaN.
TEST(CudaRuntime, PoisonModeFillsFreedBlocksWithNaN) {
  LL_REQUIRE_GPU();
  namespace c = kernels::cuda;
  c::release_cached_device_memory();
  c::set_poison_freed_device_memory(true);
  const std::vector<float> v = testing::random_vector(1000, 3);
  float* p = static_cast<float*>(c::malloc_device(v.size() * sizeof(float)));
  c::memcpy_host_to_device(p, v.data(), v.size() * sizeof(float));
  c::free_device(p);
  float* q = static_cast<float*>(c::malloc_device(v.size() * sizeof(float)));
  c::set_poison_freed_device_memory(false);
  ASSERT_EQ(q, p);
  std::vector<float> back(v.size(), 0.0f);
  c::memcpy_device_to_host(back.data(), q, back.size() * sizeof(float));
  for (float x : back) ASSERT_TRUE(std::isnan(x));
  c::free_device(q);
  // Off again: a freed block keeps its values.
  float* r = static_cast<float*>(c::malloc_device(v.size() * sizeof(float)));
  c::memcpy_host_to_device(r, v.data(), v.size() * sizeof(float));
  c::free_device(r);
  float* t = static_cast<float*>(c::malloc_device(v.size() * sizeof(float)));
  ASSERT_EQ(t, r);
  c::memcpy_device_to_host(back.data(), t, back.size() * sizeof(float));
  EXPECT_EQ(back, v);
  c::free_device(t);
}

}  // namespace
}  // namespace ll
