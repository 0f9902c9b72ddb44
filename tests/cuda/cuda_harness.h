// cuda_harness.h: what the CUDA parity tests share.
//
// Every test starts with LL_REQUIRE_GPU(): where no GPU is usable (CI, laptops, machines with the
// toolkit but no driver) the test is reported SKIPPED with the runtime's reason, never passed. In the
// emulated build (tests/emu) the emulator is the GPU.
// DeviceBuffer holds device memory from the caching allocator with host round trips; random_vector
// gives seeded inputs (never all zeros, never all one sign unless asked).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/device.h"
#include "kernels/cuda_runtime.h"
#include "tests/common/compare.h"

#define LL_REQUIRE_GPU()                                       \
  do {                                                         \
    std::string ll_why_;                                       \
    if (!::ll::cuda_available(&ll_why_)) {                     \
      GTEST_SKIP() << "no GPU: " << ll_why_;                   \
    }                                                          \
  } while (0)

// In the CPU emulation of CUDA (tests/emu, LATENTLAB_CUDA_EMULATION) a test whose premise holds only
// on a GPU (timing, asynchrony, fast-intrinsic error bounds) skips, saying why; on a GPU it runs.
#ifdef LATENTLAB_CUDA_EMULATION
#define LL_SKIP_IN_EMULATION(why) GTEST_SKIP() << "CUDA emulator: " << (why)
#else
#define LL_SKIP_IN_EMULATION(why) \
  do {                            \
  } while (0)
#endif

namespace ll::testing {

inline kernels::cuda::Stream stream() { return kernels::cuda::compute_stream(); }

// Device memory for `n` values of T, freed on destruction.
template <typename T = float>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n), p_(static_cast<T*>(kernels::cuda::malloc_device(n * sizeof(T)))) {}
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { kernels::cuda::free_device(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    kernels::cuda::memcpy_host_to_device(p_, host.data(), host.size() * sizeof(T));
  }
  // Waits for the compute stream, then copies back.
  std::vector<T> download() const {
    std::vector<T> host(n_);
    kernels::cuda::memcpy_device_to_host(host.data(), p_, n_ * sizeof(T));
    return host;
  }
  // Fills with a byte pattern that is a NaN in float, so values a kernel forgot to write show up.
  void poison() { kernels::cuda::memset_device(p_, 0xFF, n_ * sizeof(T)); }

 private:
  size_t n_;
  T* p_;
};

// `n` floats uniform in [lo, hi), from a fixed seed.
inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(g);
  return v;
}

// all_close on two vectors of one length: a GPU result against its CPU reference.
inline ::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& ref,
                                        test::Tolerance tol, const std::string& what) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
  }
  return test::all_close(got.data(), ref.data(), static_cast<int64_t>(got.size()), tol, what);
}

// The same bits (the determinism checks: two runs of one kernel on one GPU).
inline bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  // (memcmp's pointers must not be null even for 0 bytes, and an empty vector's data() may be)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace ll::testing
