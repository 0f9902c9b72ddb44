// runtime.cu: device discovery, the compute stream, the caching device allocator, pinned memory,
// copies and the cuBLAS handle (declared in kernels/cuda_runtime.h and kernels/cuda/common.cuh).
#include <algorithm>
#include <atomic>
#include <cstdlib>
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

Stream create_stream() {
  cudaStream_t s = nullptr;
  LL_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void destroy_stream(Stream stream) {
  if (stream == nullptr || stream == compute_stream()) return;
  LL_CUDA_CHECK(cudaStreamSynchronize(stream));
  LL_CUDA_CHECK(cudaStreamDestroy(stream));
}

// ---- caching allocator ------------------------------------------------------------------------
// Stream-ordered reuse (the rule of PyTorch's CUDACachingAllocator and of cudaMallocAsync pools):
// a block belongs to the stream it was allocated for, and may be used on others once
// record_stream() has named them. free_device() records an event on each of those streams, so the
// freed block carries "the work queued so far on every stream that used it". A later request on
// stream S takes, by preference, a block of S whose other streams' events have completed; failing
// that, any block of the size, after making S wait (cudaStreamWaitEvent, on the GPU, no host wait)
// for each event of another stream that has not completed. Work on S itself needs no event: S
// runs its own work in order. So a scratch buffer may be freed right after the kernels using it
// are enqueued, whatever stream they run on.
//
// CUDA graphs (begin_capture .. end_capture): while the compute stream captures, its blocks come
// from a private pool of the graph (PyTorch's rule for graph-private memory pools): blocks freed
// during the capture, and the graph's allocations, stay reserved for the graph until
// destroy_graph(), because every replay writes the same addresses; outside requests never get
// them. Inside the capture no event is recorded (an event recorded in a capture cannot be waited
// for outside it); the stream's own order protects reuse within the graph.
//
// Debug mode: LATENTLAB_CUDA_POISON_FREED=1 in the environment fills every freed block with 0xFF
// bytes (NaN as float and as double) on its stream, after the work that used it, so a read of
// freed memory turns results into NaN instead of plausible stale values.
namespace {

// Sizes are rounded up to 512 bytes (small) or 1 MiB (large), so that nearby sizes share blocks and
// every block is aligned far beyond the 16 bytes of vectorized loads (cudaMalloc gives 256).
size_t round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{1} << 20;
  const size_t unit = bytes < kLarge ? kSmall : kLarge;
  return (bytes + unit - 1) / unit * unit;
}

struct LiveBlock {
  size_t size = 0;
  Stream stream = nullptr;             // allocated for
  std::vector<Stream> other_streams;   // also used on (record_stream)
  int pool = 0;                        // the graph pool that owns it (0: the shared cache)
};

struct StreamEvent {
  Stream stream;
  cudaEvent_t event;  // recorded on `stream` when the block was freed
};

struct FreeBlock {
  void* p = nullptr;
  Stream stream = nullptr;
  std::vector<StreamEvent> events;
};

bool poison_freed_from_env() {
  const char* v = std::getenv("LATENTLAB_CUDA_POISON_FREED");
  return v != nullptr && v[0] != '\0' && std::string(v) != "0";
}

struct DeviceCache {
  std::mutex mutex;
  std::multimap<size_t, FreeBlock> free_blocks;     // rounded size -> block
  std::unordered_map<void*, LiveBlock> live_blocks;  // block -> its size and streams
  std::vector<cudaEvent_t> spare_events;             // recycled, timing disabled
  DeviceAllocatorStats stats;
  bool poison = poison_freed_from_env();
  int capture_pool = 0;  // the pool of the capture in progress on compute_stream(), 0: none
  int next_pool = 1;
  std::unordered_map<int, std::multimap<size_t, void*>> pool_free;  // pool -> its freed blocks

  cudaEvent_t new_event() {
    if (!spare_events.empty()) {
      cudaEvent_t e = spare_events.back();
      spare_events.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    LL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }

  // Ready for `stream`: every event of another stream has completed.
  static bool ready_for(const FreeBlock& b, Stream stream) {
    for (const StreamEvent& e : b.events) {
      if (e.stream != stream && cudaEventQuery(e.event) != cudaSuccess) return false;
    }
    return true;
  }

  // Hands `b` to `stream`: makes the stream wait for the other streams' pending work on it.
  void take(FreeBlock& b, Stream stream) {
    for (const StreamEvent& e : b.events) {
      if (e.stream != stream && cudaEventQuery(e.event) != cudaSuccess) {
        LL_CUDA_CHECK(cudaStreamWaitEvent(stream, e.event, 0));
        ++stats.cross_stream_waits;
      }
      spare_events.push_back(e.event);
    }
    b.events.clear();
  }

  void release_locked() {
    if (free_blocks.empty()) return;
    // Blocks may carry events of any stream: wait for the whole device.
    LL_CUDA_CHECK(cudaDeviceSynchronize());
    for (auto& [size, b] : free_blocks) {
      for (const StreamEvent& e : b.events) LL_CUDA_CHECK(cudaEventDestroy(e.event));
      LL_CUDA_CHECK(cudaFree(b.p));
      stats.cached_bytes -= size;
    }
    free_blocks.clear();
    for (cudaEvent_t e : spare_events) LL_CUDA_CHECK(cudaEventDestroy(e));
    spare_events.clear();
  }
};

DeviceCache& cache() {
  static DeviceCache* c = new DeviceCache;  // leaked on purpose: outlives static destructors
  return *c;
}

}  // namespace

void* malloc_device(size_t bytes, Stream stream) {
  if (bytes == 0) return nullptr;
  if (stream == nullptr) stream = compute_stream();
  const size_t size = round_size(bytes);
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  void* p = nullptr;
  const int pool = stream == compute_stream() ? c.capture_pool : 0;
  if (pool) {
    // The graph's own freed blocks first, then a shared one that only this stream used (no event
    // of another stream to wait for inside the capture), else cudaMalloc (the capture is relaxed).
    auto& own = c.pool_free[pool];
    if (auto it = own.find(size); it != own.end()) {
      p = it->second;
      own.erase(it);
      c.stats.cached_bytes -= size;
      ++c.stats.hits;
    } else {
      auto [first, last] = c.free_blocks.equal_range(size);
      for (auto it = first; it != last; ++it) {
        const FreeBlock& b = it->second;
        if (b.stream == stream && std::all_of(b.events.begin(), b.events.end(),
                                              [&](const StreamEvent& e) { return e.stream == stream; })) {
          p = b.p;
          for (const StreamEvent& e : b.events) c.spare_events.push_back(e.event);
          c.free_blocks.erase(it);
          c.stats.cached_bytes -= size;
          ++c.stats.hits;
          break;
        }
      }
    }
    if (p) {
      c.live_blocks.emplace(p, LiveBlock{size, stream, {}, pool});
      c.stats.live_bytes += size;
      c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.live_bytes);
      return p;
    }
  }
  auto [first, last] = c.free_blocks.equal_range(size);
  auto pick = last;
  for (auto it = first; it != last; ++it) {  // a block of this stream, ready
    if (it->second.stream == stream && DeviceCache::ready_for(it->second, stream)) { pick = it; break; }
  }
  if (pick == last) {
    for (auto it = first; it != last; ++it) {  // any ready block
      if (DeviceCache::ready_for(it->second, stream)) { pick = it; break; }
    }
  }
  if (pick == last && first != last) pick = first;  // still in use elsewhere: the stream waits for it
  if (pick != last) {
    c.take(pick->second, stream);
    p = pick->second.p;
    c.free_blocks.erase(pick);
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
  c.live_blocks.emplace(p, LiveBlock{size, stream, {}, pool});
  c.stats.live_bytes += size;
  c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.live_bytes);
  return p;
}

void record_stream(void* p, Stream stream) {
  if (!p) return;
  if (stream == nullptr) stream = compute_stream();
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.live_blocks.find(p);
  if (it == c.live_blocks.end()) fail("record_stream", "pointer was not allocated by malloc_device", __FILE__, __LINE__);
  LiveBlock& b = it->second;
  if (stream != b.stream && std::find(b.other_streams.begin(), b.other_streams.end(), stream) == b.other_streams.end()) {
    b.other_streams.push_back(stream);
  }
}

bool is_device_block(const void* p) {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.live_blocks.count(const_cast<void*>(p)) > 0;
}

void free_device(void* p) {
  if (!p) return;
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.live_blocks.find(p);
  if (it == c.live_blocks.end()) {
    fail("free_device", "pointer was not allocated by malloc_device, or was freed already", __FILE__, __LINE__);
  }
  const LiveBlock b = std::move(it->second);
  // A block freed while the compute stream captures may be used by the graph (it was used inside
  // the capture or before it): it joins the graph's pool. A graph's block stays in its pool.
  const int pool = b.pool ? b.pool : (b.stream == compute_stream() ? c.capture_pool : 0);
  if (pool) {
    if (!b.other_streams.empty()) {
      fail("free_device", "a block of a CUDA graph was used on another stream (record_stream)", __FILE__, __LINE__);
    }
    c.live_blocks.erase(it);
    if (c.poison) LL_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, b.size, b.stream));  // in the graph, when capturing
    c.pool_free[pool].emplace(b.size, p);
    c.stats.live_bytes -= b.size;
    c.stats.cached_bytes += b.size;
    return;
  }
  c.live_blocks.erase(it);
  FreeBlock f{p, b.stream, {}};
  for (Stream other : b.other_streams) {
    f.events.push_back({other, c.new_event()});
    LL_CUDA_CHECK(cudaEventRecord(f.events.back().event, other));
  }
  if (c.poison) {
    // After the other streams' work on the block too, then on the block's own stream.
    for (const StreamEvent& e : f.events) LL_CUDA_CHECK(cudaStreamWaitEvent(b.stream, e.event, 0));
    LL_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, b.size, b.stream));
    for (const StreamEvent& e : f.events) c.spare_events.push_back(e.event);
    f.events.clear();
  }
  f.events.push_back({b.stream, c.new_event()});
  LL_CUDA_CHECK(cudaEventRecord(f.events.back().event, b.stream));
  c.stats.live_bytes -= b.size;
  c.stats.cached_bytes += b.size;
  c.free_blocks.emplace(b.size, std::move(f));
}

// ---- CUDA graphs -------------------------------------------------------------------------------
struct GraphExec {
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
};

namespace {
// Ends the pool of a graph: its freed blocks go back to the shared cache behind an event of the
// compute stream (after every launch queued so far), its live blocks become ordinary ones.
void release_pool(int pool) {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.capture_pool == pool) c.capture_pool = 0;
  for (auto& [p, b] : c.live_blocks) {
    if (b.pool == pool) b.pool = 0;
  }
  auto it = c.pool_free.find(pool);
  if (it == c.pool_free.end()) return;
  const Stream s = compute_stream();
  for (const auto& [size, p] : it->second) {
    FreeBlock f{p, s, {}};
    f.events.push_back({s, c.new_event()});
    LL_CUDA_CHECK(cudaEventRecord(f.events.back().event, s));
    c.free_blocks.emplace(size, std::move(f));
  }
  c.pool_free.erase(it);
}
}  // namespace

bool capturing() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  LL_CUDA_CHECK(cudaStreamIsCapturing(compute_stream(), &status));
  return status != cudaStreamCaptureStatusNone;
}

void begin_capture() {
  DeviceCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.capture_pool) fail("begin_capture", "a capture is already in progress", __FILE__, __LINE__);
    c.capture_pool = c.next_pool++;
  }
  const cudaError_t err = cudaStreamBeginCapture(compute_stream(), cudaStreamCaptureModeRelaxed);
  if (err != cudaSuccess) {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.capture_pool = 0;
    LL_CUDA_CHECK(err);
  }
}

GraphExec* end_capture() {
  DeviceCache& c = cache();
  int pool = 0;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    pool = c.capture_pool;
    c.capture_pool = 0;
  }
  if (!pool) fail("end_capture", "no capture is in progress", __FILE__, __LINE__);
  cudaGraph_t graph = nullptr;
  const cudaError_t err = cudaStreamEndCapture(compute_stream(), &graph);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    release_pool(pool);
    throw CudaError(std::string("the CUDA graph capture failed: ") + cudaGetErrorString(err) +
                    " (a captured step may not wait for the GPU or copy from pageable host memory)");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ierr = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (ierr != cudaSuccess) {
    (void)cudaGetLastError();
    release_pool(pool);
    LL_CUDA_CHECK(ierr);
  }
  return new GraphExec{exec, pool};
}

void abort_capture() noexcept {
  DeviceCache& c = cache();
  int pool = 0;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    pool = c.capture_pool;
    c.capture_pool = 0;
  }
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(compute_stream(), &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
  if (pool) {
    try {
      release_pool(pool);
    } catch (...) {
    }
  }
}

void launch_graph(GraphExec* g) { LL_CUDA_CHECK(cudaGraphLaunch(g->exec, compute_stream())); }

void destroy_graph(GraphExec* g) noexcept {
  if (!g) return;
  try {
    synchronize();  // no launch of it is left in flight
    LL_CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    release_pool(g->pool);
  } catch (...) {
  }
  delete g;
}

void set_poison_freed_device_memory(bool on) {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.poison = on;
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
