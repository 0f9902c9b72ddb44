// runtime.cu: device discovery, the compute stream, the caching device allocator, pinned memory,
// copies and the cuBLAS handle (declared in kernels/cuda_runtime.h and kernels/cuda/common.cuh).
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda {

const char* cublas_status_string(cublasStatus_t status) { return cublasGetStatusString(status); }

const char* curand_status_string(curandStatus_t status) {
  switch (status) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR";
    case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE";
    case CURAND_STATUS_PREEXISTING_FAILURE: return "CURAND_STATUS_PREEXISTING_FAILURE";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "CURAND_STATUS_INITIALIZATION_FAILED";
    case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR";
  }
  return "unknown cuRAND status";
}

int device_count(std::string* reason) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    // On machines with the toolkit but no driver this is "CUDA driver version is insufficient for
    // CUDA runtime version": treat any error as "no GPU". Clear the sticky error state.
    if (reason) *reason = cudaGetErrorString(err);
    (void)cudaGetLastError();
    return 0;
  }
  if (n == 0 && reason) *reason = "the CUDA runtime reports no devices";
  return n;
}

std::string device_description(int index) {
  cudaDeviceProp prop{};
  LL_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  int driver = 0;
  LL_CUDA_CHECK(cudaDriverGetVersion(&driver));
  std::ostringstream s;
  s.precision(3);
  s << prop.name << " (sm_" << prop.major << prop.minor << ", "
    << static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0) << " GiB, driver "
    << driver / 1000 << "." << (driver % 1000) / 10 << ")";
  return s.str();
}

Stream compute_stream() {
  // Created once, never destroyed: destroying it from a static destructor could run after the
  // CUDA runtime has shut down.
  static const Stream stream = [] {
    cudaStream_t s = nullptr;
    LL_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
  }();
  return stream;
}

// ---- caching allocator ------------------------------------------------------------------------
namespace {

// Sizes are rounded up to 512 bytes (small) or 1 MiB (large), so that nearby sizes share blocks and
// every block is aligned far beyond the 16 bytes of vectorized loads (cudaMalloc gives 256).
size_t round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{1} << 20;
  const size_t unit = bytes < kLarge ? kSmall : kLarge;
  return (bytes + unit - 1) / unit * unit;
}

struct DeviceCache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;        // rounded size -> block
  std::unordered_map<void*, size_t> live_blocks;   // block -> rounded size
  DeviceAllocatorStats stats;

  void release_locked() {
    if (free_blocks.empty()) return;
    LL_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
    for (auto& [size, p] : free_blocks) {
      LL_CUDA_CHECK(cudaFree(p));
      stats.cached_bytes -= size;
    }
    free_blocks.clear();
  }
};

DeviceCache& cache() {
  static DeviceCache* c = new DeviceCache;  // leaked on purpose: outlives static destructors
  return *c;
}

}  // namespace

void* malloc_device(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = round_size(bytes);
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  void* p = nullptr;
  if (auto it = c.free_blocks.find(size); it != c.free_blocks.end()) {
    p = it->second;
    c.free_blocks.erase(it);
    c.stats.cached_bytes -= size;
    ++c.stats.hits;
  } else {
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      c.release_locked();
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      std::ostringstream s;
      s << "cannot allocate " << bytes << " bytes on the GPU (" << cudaGetErrorString(err) << "; "
        << c.stats.live_bytes << " bytes in use by latentlab)";
      if (err == cudaErrorMemoryAllocation) s << ": use a smaller --batch-size";
      throw CudaError(s.str());
    }
    ++c.stats.cuda_mallocs;
  }
  c.live_blocks.emplace(p, size);
  c.stats.live_bytes += size;
  c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.live_bytes);
  return p;
}

void free_device(void* p) {
  if (!p) return;
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.live_blocks.find(p);
  if (it == c.live_blocks.end()) fail("free_device", "pointer was not allocated by malloc_device", __FILE__, __LINE__);
  const size_t size = it->second;
  c.live_blocks.erase(it);
  c.stats.live_bytes -= size;
  c.stats.cached_bytes += size;
  c.free_blocks.emplace(size, p);
}

void release_cached_device_memory() {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.release_locked();
}

DeviceAllocatorStats device_allocator_stats() {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void reset_device_peak_bytes() {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.peak_bytes = c.stats.live_bytes;
}

// ---- pinned memory and copies -----------------------------------------------------------------
void* malloc_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  LL_CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}
void free_pinned(void* p) {
  if (p) LL_CUDA_CHECK(cudaFreeHost(p));
}

void memcpy_host_to_device(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  LL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, compute_stream()));
  // Pageable sources are staged before the call returns, but a pinned one would be read later:
  // wait so that the caller may reuse `src` whatever memory it is.
  LL_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
}
void memcpy_host_to_device_async(void* dst, const void* pinned_src, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemcpyAsync(dst, pinned_src, bytes, cudaMemcpyHostToDevice, compute_stream()));
}
void memcpy_device_to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  LL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, compute_stream()));
  LL_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
}
void memcpy_device_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, compute_stream()));
}
void memset_device(void* dst, int value, size_t bytes) {
  if (bytes) LL_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, compute_stream()));
}
void synchronize() { LL_CUDA_CHECK(cudaStreamSynchronize(compute_stream())); }

// ---- cuBLAS -----------------------------------------------------------------------------------
namespace {
std::atomic<bool> g_allow_tf32{false};  // set by the main thread, read wherever GEMMs run
}

cublasHandle_t cublas_handle() {
  static const cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    LL_CUBLAS_CHECK(cublasCreate(&h));
    LL_CUBLAS_CHECK(cublasSetStream(h, compute_stream()));
    return h;
  }();
  LL_CUBLAS_CHECK(cublasSetMathMode(handle, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return handle;
}

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

}  // namespace ll::kernels::cuda
