// test_emulator.cu: the CUDA emulator's own tests (built with LATENTLAB_CUDA_EMULATION only, through
// the same launch rewrite as kernels/cuda): launch shapes and their errors, the built-in indices,
// shared memory with __syncthreads, the warp operations, the divergent-barrier and warp diagnoses,
// cuBLAS's column-major semantics and checks, and cuRAND's Philox against values printed by the
// real cuRAND headers (CUDA 13, host branch: curand_kernel.h compiled by nvcc with
// QUALIFIERS = static inline __host__ __device__).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand_kernel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

template <typename T>
struct Device {
  explicit Device(size_t n) : n(n) { EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess); }
  ~Device() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  void put(const std::vector<T>& h) {
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  size_t n;
  T* p = nullptr;
};

__global__ void write_ids(int* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[block * blockDim.x * blockDim.y * blockDim.z + thread] = static_cast<int>(block * 1000 + thread);
}

TEST(Emulator, GridsAndBlocksCoverEveryThreadOnce) {
  const dim3 grid(3, 2, 2), block(4, 3, 5);
  Device<int> out(12 * 60);
  write_ids<<<grid, block>>>(out.p);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> h = out.get();
  for (int b = 0; b < 12; ++b) {
    for (int t = 0; t < 60; ++t) EXPECT_EQ(h[b * 60 + t], b * 1000 + t);
  }
}

TEST(Emulator, BadLaunchShapesAreInvalidConfigurations) {
  Device<int> out(1);
  write_ids<<<1, 1025>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // not sticky
  write_ids<<<0, 32>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  write_ids<<<dim3(1, 65536), 32>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  write_ids<<<1, dim3(32, 32, 2)>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  write_ids<<<1, 1, 0, nullptr>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// Reverses each block's 256 values through shared memory.
__global__ void reverse_blocks(const float* x, float* y) {
  __shared__ float tile[256];
  const int i = blockIdx.x * 256 + threadIdx.x;
  tile[threadIdx.x] = x[i];
  __syncthreads();
  y[i] = tile[255 - threadIdx.x];
}

// Each thread reads its left neighbour's value without the barrier it needs.
__global__ void missing_barrier(float* y) {
  __shared__ float tile[64];
  tile[threadIdx.x] = static_cast<float>(blockIdx.x * 64 + threadIdx.x);
  y[blockIdx.x * 64 + threadIdx.x] = threadIdx.x > 0 ? tile[threadIdx.x - 1] : -1.0f;
}

TEST(Emulator, AMissingBarrierGivesWrongResultsInSomeBlock) {
  Device<float> y(128);
  missing_barrier<<<2, 64>>>(y.p);
  const std::vector<float> r = y.get();
  int wrong = 0;
  for (int i = 0; i < 128; ++i) wrong += i % 64 > 0 && r[i] != static_cast<float>(i - 1);
  EXPECT_GT(wrong, 0);  // block 1 runs its threads in reverse: every read is stale
}

TEST(Emulator, SharedMemoryAndBarriers) {
  std::vector<float> h(1024);
  for (int i = 0; i < 1024; ++i) h[i] = static_cast<float>(i);
  Device<float> x(1024), y(1024);
  x.put(h);
  reverse_blocks<<<4, 256>>>(x.p, y.p);
  const std::vector<float> r = y.get();
  for (int i = 0; i < 1024; ++i) EXPECT_EQ(r[i], static_cast<float>(i / 256 * 256 + 255 - i % 256));
}

__global__ void warp_ops(int* out) {
  const int t = static_cast<int>(threadIdx.x);
  int v = t;
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  out[t] = v;                                                      // lane 0: sum of its warp
  out[64 + t] = __shfl_xor_sync(0xffffffffu, t, 1);                 // neighbour
  out[128 + t] = __shfl_sync(0xffffffffu, t * 10, 3);               // lane 3's
  out[192 + t] = __shfl_down_sync(0xffffffffu, t, 2, 8);            // within groups of 8
  out[256 + t] = static_cast<int>(__ballot_sync(0xffffffffu, t % 3 == 0));
}

TEST(Emulator, WarpShufflesAndBallot) {
  Device<int> out(320);
  warp_ops<<<1, 64>>>(out.p);
  const std::vector<int> h = out.get();
  EXPECT_EQ(h[0], 31 * 32 / 2);
  EXPECT_EQ(h[32], (32 + 63) * 32 / 2);
  unsigned ballot0 = 0, ballot1 = 0;
  for (int l = 0; l < 32; ++l) {
    if (l % 3 == 0) ballot0 |= 1u << l;
    if ((32 + l) % 3 == 0) ballot1 |= 1u << l;
  }
  for (int t = 0; t < 64; ++t) {
    EXPECT_EQ(h[64 + t], t ^ 1);
    EXPECT_EQ(h[128 + t], (t / 32 * 32 + 3) * 10);
    EXPECT_EQ(h[192 + t], t % 8 + 2 < 8 ? t + 2 : t);
    EXPECT_EQ(static_cast<unsigned>(h[256 + t]), t < 32 ? ballot0 : ballot1);
  }
}

__global__ void early_exit_then_barrier(int* out, int n) {
  if (static_cast<int>(threadIdx.x) >= n) return;  // the bug: a barrier below, in divergent code
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void barrier_in_branch(int* out) {
  if (threadIdx.x % 2) __syncthreads();
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void shuffle_after_exit(int* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1, 1);
}

// Grids run at synchronization points (streams are asynchronous), so each launch is followed by one.
TEST(EmulatorDeathTest, DivergentBarriersAndWarpsAbortNamingTheKernel) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Device<int> out(64);
  EXPECT_DEATH((early_exit_then_barrier<<<1, 64>>>(out.p, 40), cudaDeviceSynchronize()),
               "early_exit_then_barrier.*__syncthreads.*LL_EMU_SEED=");
  EXPECT_DEATH((barrier_in_branch<<<1, 64>>>(out.p), cudaDeviceSynchronize()),
               "barrier_in_branch.*different __syncthreads.*test_emulator.cu");
  EXPECT_DEATH((shuffle_after_exit<<<1, 32>>>(out.p), cudaDeviceSynchronize()), "shuffle_after_exit.*lane 5");
  EXPECT_DEATH((warp_ops<<<1, 48>>>(out.p), cudaDeviceSynchronize()), "lanes that do not exist");
}

// ---- shared memory: poisoned in every block, 48 KB of static shared memory at most ----------
// The planted bug: only block 0 fills the tile, every block reads it.
__global__ void shared_written_by_block0_only(float* y) {
  __shared__ float tile[32];
  if (blockIdx.x == 0) tile[threadIdx.x] = 1.0f;
  __syncthreads();
  y[blockIdx.x * 32 + threadIdx.x] = tile[threadIdx.x];
}
// The planted bug: reads its neighbour's slot, which nobody writes.
__global__ void shared_read_before_write(float* y) {
  __shared__ float tile[64];
  if (threadIdx.x < 32) tile[threadIdx.x] = 2.0f;
  __syncthreads();
  y[threadIdx.x] = tile[threadIdx.x];
}

TEST(Emulator, SharedMemoryIsPoisonedAtTheStartOfEveryBlock) {
  Device<float> y(96);
  shared_written_by_block0_only<<<3, 32>>>(y.p);
  std::vector<float> r = y.get();
  for (int i = 0; i < 96; ++i) {
    if (i < 32) {
      EXPECT_EQ(r[i], 1.0f);
    } else {
      EXPECT_TRUE(std::isnan(r[i])) << i;  // a GPU gives whatever was there; never block 0's values
    }
  }
  Device<float> z(64);
  shared_read_before_write<<<1, 64>>>(z.p);
  r = z.get();
  for (int i = 0; i < 64; ++i) EXPECT_EQ(std::isnan(r[i]), i >= 32) << i;
}

__global__ void shared_too_large(float* y) {
  __shared__ float big[12289];  // 49156 bytes: ptxas rejects more than 48 KB
  big[threadIdx.x] = 1.0f;
  y[threadIdx.x] = big[threadIdx.x];
}
__global__ void shared_two_halves(float* y) {
  __shared__ float a[6144];  // 24 KB
  __shared__ float b[6145];  // 24 KB + 4: together one float too many
  a[threadIdx.x] = 1.0f;
  b[threadIdx.x] = 2.0f;
  y[threadIdx.x] = a[threadIdx.x] + b[threadIdx.x];
}
__global__ void shared_just_fits(float* y) {
  __shared__ float a[12288];  // exactly 48 KB
  a[threadIdx.x] = 3.0f;
  __syncthreads();
  y[threadIdx.x] = a[threadIdx.x];
}

TEST(EmulatorDeathTest, StaticSharedMemoryOver48KBAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Device<float> y(32);
  shared_just_fits<<<1, 32>>>(y.p);
  EXPECT_EQ(y.get()[5], 3.0f);
  EXPECT_DEATH((shared_too_large<<<1, 32>>>(y.p), cudaDeviceSynchronize()), "shared_too_large.*big.*49156 bytes.*48 KB");
  EXPECT_DEATH((shared_two_halves<<<1, 32>>>(y.p), cudaDeviceSynchronize()), "shared_two_halves.*b.*49156 bytes");
}

// ---- AddressSanitizer on kernels ----------------------------------------------------------------
// In the sanitized build (scripts/sanitize.sh), cudaMalloc gives exactly the bytes asked for and the
// fibers announce their stacks, so one element read past a device buffer by a kernel is an ASan
// report at the access. Elsewhere the test says why it does not run.
#if defined(__SANITIZE_ADDRESS__)
#define LL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LL_TEST_ASAN 1
#endif
#endif

__global__ void copy_one_too_many(const float* x, float* y, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) y[i % n] = x[i];  // i == n reads one past the end of x
}

TEST(EmulatorDeathTest, AKernelReadingPastItsBufferIsReportedUnderAsan) {
#ifndef LL_TEST_ASAN
  GTEST_SKIP() << "not an AddressSanitizer build (scripts/sanitize.sh builds one)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Device<float> x(37), y(37);
  x.put(std::vector<float>(37, 1.0f));
  copy_one_too_many<<<1, 36>>>(x.p, y.p, 37);  // i < 37 only: in bounds
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_DEATH((copy_one_too_many<<<1, 38>>>(x.p, y.p, 37), cudaDeviceSynchronize()),
               "heap-buffer-overflow(.|\n)*0 bytes to the right of 148-byte region");  // 37 floats, exactly
#endif
}

// ---- seeded random order of threads and blocks ------------------------------------------------
// Records the order in which threads run (a plain counter: the emulator runs one thread at a time;
// on a GPU this is a race, which is what the emulator's order is there to expose).
int g_counter = 0;
__global__ void record_order(int* order) {
  order[blockIdx.x * blockDim.x + threadIdx.x] = g_counter++;
}

std::vector<int> order_with_seed(uint64_t seed) {
  const uint64_t saved = ll::emu::seed();
  ll::emu::set_seed(seed);
  Device<int> order(8 * 64);
  g_counter = 0;
  record_order<<<8, 64>>>(order.p);
  std::vector<int> r = order.get();
  ll::emu::set_seed(saved);
  return r;
}

TEST(Emulator, ThreadAndBlockOrderIsRandomAndSeeded) {
  const std::vector<int> a = order_with_seed(7), b = order_with_seed(7), c = order_with_seed(8);
  EXPECT_NE(a, c);  // another seed, another order
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 512; ++i) ASSERT_EQ(sorted[i], i);  // every thread once
  int backwards = 0, block_out_of_order = 0;
  for (int i = 1; i < 512; ++i) backwards += a[i] < a[i - 1];
  for (int blk = 1; blk < 8; ++blk) block_out_of_order += a[blk * 64] < a[(blk - 1) * 64];
  EXPECT_GT(backwards, 100);          // neither forward nor reverse order within blocks
  EXPECT_GT(block_out_of_order, 0);   // blocks not in index order
  EXPECT_EQ(a, b);  // the same seed, the same order (set_seed restarts the grid count)
}

TEST(Emulator, AMissingBarrierGivesWrongResultsForEverySeed) {
  const uint64_t saved = ll::emu::seed();
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    ll::emu::set_seed(seed);
    Device<float> y(64);
    missing_barrier<<<1, 64>>>(y.p);
    const std::vector<float> r = y.get();
    int wrong = 0;
    for (int i = 1; i < 64; ++i) wrong += r[i] != static_cast<float>(i - 1);
    EXPECT_GT(wrong, 0) << "seed " << seed;
  }
  ll::emu::set_seed(saved);
}

// ---- __launch_bounds__ ---------------------------------------------------------------------------
__global__ void __launch_bounds__(128) bounded_kernel(int* out) { out[threadIdx.y * blockDim.x + threadIdx.x] = 7; }

TEST(Emulator, LaunchBoundsRefuseLargerBlocks) {
  Device<int> out(256);
  cudaMemset(out.p, 0, 256 * sizeof(int));
  bounded_kernel<<<1, 256>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchOutOfResources);
  EXPECT_EQ(out.get()[0], 0);  // nothing ran
  bounded_kernel<<<1, dim3(64, 2)>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(out.get()[127], 7);
}

// ---- asynchronous streams ---------------------------------------------------------------------
__global__ void fill_value(float* y, float v, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = v;
}

TEST(Emulator, PinnedAsyncCopiesLandOnlyAtSynchronization) {
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  Device<float> d(256);
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, 256 * sizeof(float)), cudaSuccess);
  for (int i = 0; i < 256; ++i) pinned[i] = -1.0f;
  fill_value<<<2, 128, 0, s>>>(d.p, 5.0f, 256);
  ASSERT_EQ(cudaMemcpyAsync(pinned, d.p, 256 * sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess);
  EXPECT_EQ(pinned[3], -1.0f);  // the planted bug: reading before cudaStreamSynchronize
  EXPECT_EQ(cudaStreamQuery(s), cudaErrorNotReady);
  EXPECT_EQ(cudaStreamQuery(s), cudaSuccess);
  EXPECT_EQ(pinned[3], 5.0f);
  // A pinned source is read when the copy runs, not at the call.
  pinned[0] = 1.0f;
  ASSERT_EQ(cudaMemcpyAsync(d.p, pinned, sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  pinned[0] = 2.0f;  // the planted bug: reusing the staging buffer before the copy is done
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(d.get()[0], 2.0f);
  // A pageable source is staged at the call.
  std::vector<float> pageable(1, 3.0f);
  ASSERT_EQ(cudaMemcpyAsync(d.p, pageable.data(), sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  pageable[0] = 4.0f;
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(d.get()[0], 3.0f);
  cudaFreeHost(pinned);
  cudaStreamDestroy(s);
}

TEST(Emulator, CrossStreamUseNeedsAnEventWait) {
  cudaStream_t a, b;
  ASSERT_EQ(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
  Device<float> x(128), y(128);
  cudaMemsetAsync(x.p, 0, 128 * sizeof(float), a);
  cudaMemsetAsync(y.p, 0, 128 * sizeof(float), a);
  cudaStreamSynchronize(a);
  // The planted bug: b copies x while a's kernel that writes it may not have run; read through b.
  std::vector<float> h(128, -1.0f);
  fill_value<<<1, 128, 0, a>>>(x.p, 11.0f, 128);
  cudaMemcpyAsync(y.p, x.p, 128 * sizeof(float), cudaMemcpyDeviceToDevice, b);
  cudaMemcpyAsync(h.data(), y.p, 128 * sizeof(float), cudaMemcpyDeviceToHost, b);  // pageable: returns when done
  EXPECT_EQ(h[0], 0.0f);  // stale: the race shows
  cudaDeviceSynchronize();
  // With an event wait the copy runs after the kernel.
  cudaEvent_t e;
  cudaEventCreate(&e);
  fill_value<<<1, 128, 0, a>>>(x.p, 13.0f, 128);
  cudaEventRecord(e, a);
  cudaStreamWaitEvent(b, e, 0);
  cudaMemcpyAsync(y.p, x.p, 128 * sizeof(float), cudaMemcpyDeviceToDevice, b);
  cudaMemcpyAsync(h.data(), y.p, 128 * sizeof(float), cudaMemcpyDeviceToHost, b);
  EXPECT_EQ(h[0], 13.0f);
  EXPECT_EQ(cudaEventQuery(e), cudaSuccess);
  cudaEventDestroy(e);
  cudaStreamDestroy(a);
  cudaStreamDestroy(b);
}

__global__ void add_value(float* y, float v, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += v;
}

// Stream capture records instead of running; each launch of the graph runs the recorded work again,
// reading kernel arguments as captured (the planted bug: a value meant to change per launch passed
// by value stays the captured one).
TEST(Emulator, StreamCaptureRecordsAndEachGraphLaunchRepeatsTheWork) {
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  Device<float> d(64);
  cudaMemsetAsync(d.p, 0, 64 * sizeof(float), s);
  float step = 1.0f;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  cudaStreamCaptureStatus status;
  ASSERT_EQ(cudaStreamIsCapturing(s, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  add_value<<<1, 64, 0, s>>>(d.p, step, 64);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(d.get()[5], 0.0f);  // captured, not run
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int i = 0; i < 3; ++i) {
    step = 10.0f;  // too late: the launch argument was captured
    ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  }
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(d.get()[5], 3.0f);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

// What a GPU refuses inside a capture is refused here, and it invalidates the capture.
TEST(Emulator, StreamCaptureRefusesWaitsPageableCopiesAndCapturedEvents) {
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  Device<float> d(16);
  std::vector<float> pageable(16, 1.0f);
  cudaGraph_t graph = nullptr;
  // A host wait inside the capture (the planted bug: an .item() in a captured step).
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  fill_value<<<1, 16, 0, s>>>(d.p, 2.0f, 16);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(graph, nullptr);
  (void)cudaGetLastError();
  // A copy from pageable memory (its source would be read at every launch).
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(d.p, pageable.data(), 16 * sizeof(float), cudaMemcpyHostToDevice, s),
            cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  // cudaMalloc outside the relaxed mode.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 256), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  // An event recorded in a capture cannot be waited for outside it; one recorded outside cannot be
  // waited for inside it.
  cudaEvent_t inside, outside;
  cudaEventCreateWithFlags(&inside, cudaEventDisableTiming);
  cudaEventCreateWithFlags(&outside, cudaEventDisableTiming);
  cudaEventRecord(outside, s);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(inside, s), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(inside), cudaErrorCapturedEvent);
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(inside), cudaErrorCapturedEvent);
  cudaGraphDestroy(graph);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(s, outside, 0), cudaErrorStreamCaptureIsolation);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  // After all that the stream works as before.
  fill_value<<<1, 16, 0, s>>>(d.p, 4.0f, 16);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(d.get()[0], 4.0f);
  cudaEventDestroy(inside);
  cudaEventDestroy(outside);
  cudaStreamDestroy(s);
}

TEST(Emulator, TheLegacyDefaultStreamSynchronizesWithBlockingStreams) {
  cudaStream_t blocking, nonblocking;
  ASSERT_EQ(cudaStreamCreate(&blocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&nonblocking, cudaStreamNonBlocking), cudaSuccess);
  Device<float> x(128);
  std::vector<float> h(128);
  fill_value<<<1, 128, 0, blocking>>>(x.p, 1.0f, 128);
  cudaMemcpy(h.data(), x.p, 128 * sizeof(float), cudaMemcpyDeviceToHost);  // legacy stream: waits for it
  EXPECT_EQ(h[0], 1.0f);
  fill_value<<<1, 128, 0, nonblocking>>>(x.p, 2.0f, 128);
  cudaMemcpy(h.data(), x.p, 128 * sizeof(float), cudaMemcpyDeviceToHost);  // does not wait for it
  EXPECT_EQ(h[0], 1.0f);
  cudaEvent_t e;
  cudaEventCreate(&e);
  cudaEventRecord(e, nonblocking);
  EXPECT_EQ(cudaEventSynchronize(e), cudaSuccess);
  cudaMemcpy(h.data(), x.p, 128 * sizeof(float), cudaMemcpyDeviceToHost);
  EXPECT_EQ(h[0], 2.0f);
  cudaEventDestroy(e);
  cudaStreamDestroy(blocking);
  cudaStreamDestroy(nonblocking);
}

// ---- numerics: fused multiply-adds, fast intrinsics, cuBLAS's order and TF32 ------------------
__global__ void mul_add(const float* a, float* y) { y[0] = a[0] * a[1] + a[2]; }

TEST(Emulator, MultiplyAddsAreContractedAsNvccDoes) {
  // (1 + 2^-12)^2 - 1 - 2^-11: a separate multiply rounds the 2^-24 term away, a fused one keeps it.
  const float e = std::ldexp(1.0f, -12);
  Device<float> a(3), y(1);
  a.put({1.0f + e, 1.0f + e, -(1.0f + 2 * e)});
  mul_add<<<1, 1>>>(a.p, y.p);
  EXPECT_EQ(y.get()[0], std::ldexp(1.0f, -24));
}

TEST(Emulator, FastIntrinsicsAreApproximateWithinTheirBounds) {
  int exp_differs = 0, sin_differs = 0;
  for (int i = -400; i <= 400; ++i) {
    const float x = static_cast<float>(i) / 40.0f;  // [-10, 10]
    const float fe = __expf(x), pe = std::exp(x);
    const float ulp = std::nextafter(pe, INFINITY) - pe;
    EXPECT_LE(std::fabs(fe - pe), (2.0f + std::floor(std::fabs(1.16f * x))) * ulp) << x;
    exp_differs += fe != pe;
    if (std::fabs(x) <= 3.14159f) {
      float s, c;
      __sincosf(x, &s, &c);
      EXPECT_LE(std::fabs(s - std::sin(x)), std::ldexp(1.0f, -21)) << x;  // 2^-21.41 stated
      EXPECT_LE(std::fabs(c - std::cos(x)), std::ldexp(1.0f, -21)) << x;
      sin_differs += s != std::sin(x);
    }
    if (x > 0) {
      const float fl = __logf(x), pl = std::log(x);
      if (x >= 0.5f && x <= 2.0f) {
        EXPECT_LE(std::fabs(fl - pl), std::ldexp(1.0f, -21)) << x;
      } else {
        EXPECT_LE(std::fabs(fl - pl), 3.0f * (std::nextafter(std::fabs(pl), INFINITY) - std::fabs(pl))) << x;
      }
    }
    if (i != 0) {
      const float q = __fdividef(1.0f, x), pq = 1.0f / x;
      EXPECT_LE(std::fabs(q - pq), 2.0f * (std::nextafter(std::fabs(pq), INFINITY) - std::fabs(pq))) << x;
    }
  }
  EXPECT_GT(exp_differs, 100);  // not the precise function
  EXPECT_GT(sin_differs, 10);
  EXPECT_EQ(__fdividef(1.0f, 1e38f), 0.0f);  // |y| in (2^126, 2^128)
}

TEST(Emulator, CublasSumsInKBlocksAndRoundsToTf32WhenAsked) {
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const float one = 1.0f, zero = 0.0f;
  // 1 x 128 times 128 x 1: 2^24, 63 zeros, then 64 ones. Left to right every +1 rounds away
  // (2^24 + 1 is not a float); the emulated cuBLAS adds the second K block (64) first.
  std::vector<float> a(128, 0.0f), b(128, 1.0f);
  a[0] = 16777216.0f;
  for (int i = 64; i < 128; ++i) a[i] = 1.0f;
  Device<float> A(128), B(128), C(1);
  A.put(a);
  B.put(b);
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 128, &one, A.p, 1, B.p, 128, &zero, C.p, 1),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(C.get()[0], 16777216.0f + 64.0f);
  // TF32: 1 + 2^-12 has no TF32 representation (10 mantissa bits): it rounds to 1.
  A.put(std::vector<float>(128, 1.0f + std::ldexp(1.0f, -12)));
  B.put(std::vector<float>(128, 1.0f));
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 128, &one, A.p, 1, B.p, 128, &zero, C.p, 1),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(C.get()[0], 128.0f * (1.0f + std::ldexp(1.0f, -12)));
  ASSERT_EQ(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 128, &one, A.p, 1, B.p, 128, &zero, C.p, 1),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(C.get()[0], 128.0f);
  cublasDestroy(h);
}

// A 2 x 3 times 3 x 2 product, column-major, all four transpose combinations, and the checks.
TEST(Emulator, CublasSgemmIsColumnMajorAndChecksLeadingDimensions) {
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  // A (2 x 3) column-major = [[1 3 5], [2 4 6]]; B (3 x 2) = [[1 4], [2 5], [3 6]].
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, 4, 5, 6};
  // A^T stored: 3 x 2 column-major holding A's rows as columns.
  const std::vector<float> at = {1, 3, 5, 2, 4, 6}, bt = {1, 4, 2, 5, 3, 6};
  const std::vector<float> want = {22, 28, 49, 64};  // A B, column-major
  Device<float> A(6), B(6), C(4);
  const float one = 1.0f, zero = 0.0f;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      A.put(ta ? at : a);
      B.put(tb ? bt : b);
      C.put({NAN, NAN, NAN, NAN});  // beta = 0 must not read C
      ASSERT_EQ(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, 2, 2, 3,
                            &one, A.p, ta ? 3 : 2, B.p, tb ? 2 : 3, &zero, C.p, 2),
                CUBLAS_STATUS_SUCCESS);
      EXPECT_EQ(C.get(), want) << "transa " << ta << " transb " << tb;
    }
  }
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, A.p, 1, B.p, 3, &zero, C.p, 2),
            CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 3, &one, A.p, 2, B.p, 1, &zero, C.p, 2),
            CUBLAS_STATUS_INVALID_VALUE);  // ldb < n for op(B) = B^T
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, A.p, 2, B.p, 3, &zero, C.p, 1),
            CUBLAS_STATUS_INVALID_VALUE);  // ldc < m
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, &one, A.p, 2, B.p, 0, &zero, C.p, 2),
            CUBLAS_STATUS_INVALID_VALUE);  // ldb < max(1, k) even when k = 0
  cublasDestroy(h);
}

// From the real cuRAND headers (see the file comment): seed, subsequence, offset; then curand()
// twice, curand4, curand_uniform4, curand_normal4, curand_normal twice, curand_uniform.
struct PhiloxCase {
  unsigned long long seed, subsequence, offset;
  unsigned raw[6], uniform4[4], normal4[4], tail[3];
};
const PhiloxCase kPhilox[] = {
    {0ull, 0ull, 0ull, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8, 0xf8e4cca4, 0x5cb200db}, {0x3f31a575, 0x3d17eff6, 0x3c9f5465, 0x3ea38e65}, {0x3ffb065b, 0xbe8a0f97, 0x3eb4029a, 0xbf186c99}, {0x3ee40c4a, 0xbf661976, 0x3f6f3dc3}},
    {42ull, 0ull, 5ull, {0x53ba6cfd, 0x838f5a6e, 0x744e06fb, 0xd36c0225, 0xa8875dcb, 0x9a4d6d99}, {0x3f4609a5, 0x3f3ac704, 0x3f2baf0e, 0x3f161e55}, {0x3f9e1d69, 0xbf24b155, 0x3f08189d, 0xbe85dc83}, {0x3fc7cb39, 0xbf2c766a, 0x3e96416c}},
    {81985529216486895ull, 7ull, 8589934592ull, {0x2a94932e, 0x21434280, 0x8e05c9da, 0xc1fc768a, 0xe6c8dddf, 0x11377b48}, {0x3de2eb99, 0x3eabcff2, 0x3f03b917, 0x3f002625}, {0xbe8c0de5, 0x3f6fef5f, 0x400761e1, 0x3e0281bf}, {0xbf0213f3, 0xbef48c23, 0x3f7ff154}},
    {5ull, 1099511627776ull, 3ull, {0xd3852af5, 0x2698d668, 0x53bf26ed, 0x0894e0b7, 0x199a54d3, 0x1dc5a640}, {0x3f433c25, 0x3f3d3498, 0x3ee936b7, 0x3ed16909}, {0xbfd51dd5, 0x4025973c, 0x3f27fee3, 0xbf73afe7}, {0xbee69bea, 0x3f5c71f4, 0x3e8d77b3}},
    {99ull, 3ull, 68719476737ull, {0x4e2e6831, 0xdc156317, 0x0244c0d1, 0x952f9ebf, 0x8c5dcb7f, 0xd030fad8}, {0x3f705cd1, 0x3f631ca8, 0x3f5c2bf6, 0x3f2841af}, {0xbf48e255, 0xc026a137, 0x3b7ae71f, 0x3fdbac5e}, {0xbf68bec7, 0xbf636596, 0x3f11fd24}},
    {1ull, 18446744073709551615ull, 18446744073709551615ull, {0x673f0d68, 0xfd1f0839, 0xc09b4068, 0x292bafbb, 0xdabe9aed, 0xa5d5db69}, {0x3d41dd8a, 0x3f5a8cc8, 0x3f34ef53, 0x3edfc493}, {0xc000d270, 0xbfdd55b3, 0xbf03adc7, 0xbe205545}, {0xbe4030e6, 0xbfa06d52, 0x3ec74639}},
};

unsigned bits(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(Emulator, CurandPhiloxMatchesTheCurandHeaders) {
  for (const PhiloxCase& c : kPhilox) {
    SCOPED_TRACE(::testing::Message() << "seed " << c.seed << " subsequence " << c.subsequence << " offset " << c.offset);
    curandStatePhilox4_32_10_t s;
    curand_init(c.seed, c.subsequence, c.offset, &s);
    EXPECT_EQ(curand(&s), c.raw[0]);
    EXPECT_EQ(curand(&s), c.raw[1]);
    const uint4 q = curand4(&s);
    EXPECT_EQ(q.x, c.raw[2]);
    EXPECT_EQ(q.y, c.raw[3]);
    EXPECT_EQ(q.z, c.raw[4]);
    EXPECT_EQ(q.w, c.raw[5]);
    const float4 u = curand_uniform4(&s);
    EXPECT_EQ(bits(u.x), c.uniform4[0]);
    EXPECT_EQ(bits(u.y), c.uniform4[1]);
    EXPECT_EQ(bits(u.z), c.uniform4[2]);
    EXPECT_EQ(bits(u.w), c.uniform4[3]);
    const float4 n = curand_normal4(&s);
    EXPECT_EQ(bits(n.x), c.normal4[0]);
    EXPECT_EQ(bits(n.y), c.normal4[1]);
    EXPECT_EQ(bits(n.z), c.normal4[2]);
    EXPECT_EQ(bits(n.w), c.normal4[3]);
    EXPECT_EQ(bits(curand_normal(&s)), c.tail[0]);
    EXPECT_EQ(bits(curand_normal(&s)), c.tail[1]);
    EXPECT_EQ(bits(curand_uniform(&s)), c.tail[2]);
  }
}

TEST(Emulator, CopiesCheckTheirDeviceSide) {
  Device<float> d(4);
  std::vector<float> h(8);
  EXPECT_EQ(cudaMemcpy(d.p, h.data(), 8 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), h.data() + 4, 4 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(d.p + 1, 0, 3 * sizeof(float)), cudaSuccess);
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_NE(std::string(prop.name).find("emulator"), std::string::npos);
}

}  // namespace
