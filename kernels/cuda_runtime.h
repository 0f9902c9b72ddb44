// cuda_runtime.h: the CUDA device layer that the engine sees, with no CUDA header in sight, so
// that CPU-only translation units can include it. Implemented in kernels/cuda/runtime.cu; only
// linked when the build has CUDA (LATENTLAB_HAS_CUDA).
//
// Conventions of the CUDA backend (every kernels/cuda/*.cu follows them):
// - Each op family declares in kernels/<op>.h, in namespace ll::kernels::cuda, the same entry points
//   as its CPU reference in namespace ll::kernels::cpu, with the same parameters (device pointers in
//   place of host pointers) and one more at the end: the Stream to run on.
// - All work goes to one compute stream (compute_stream()); entry points only enqueue work and
//   never synchronize, except where they say so.
// - Device memory comes from the caching allocator below (malloc_device / free_device), so the
//   steady state of a training step makes no cudaMalloc or cudaFree calls.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

struct CUstream_st;  // the CUDA runtime's stream object; cudaStream_t is CUstream_st*

namespace ll::kernels::cuda {

using Stream = CUstream_st*;

// Number of usable GPUs. Any error from the driver or runtime (no driver, driver too old, no
// device) counts as "no GPU": returns 0 and, when `reason` is given, the runtime's own words.
int device_count(std::string* reason);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, driver 13.0)" for device `index`.
std::string device_description(int index);

// The one stream all latentlab work runs on (created on first use, non-blocking with respect to the
// legacy default stream).
Stream compute_stream();
// A further non-blocking stream, for work beside compute_stream() (and for tests of the allocator's
// stream order). destroy_stream waits for the stream's work first.
Stream create_stream();
void destroy_stream(Stream stream);

// ---- device memory: a stream-ordered caching allocator -----------------------------------------
// A freed block goes back to a cache keyed by its (rounded) size and is handed to the next request
// of that size. Each block belongs to the stream it was allocated for (default: compute_stream())
// and to the streams record_stream() adds; freeing it records an event on each of them, and it is
// reused at once on its own stream (stream order protects it), on another stream only after those
// events: the new stream waits for them on the GPU (cudaStreamWaitEvent), the host never does. So
// scratch memory may be freed as soon as the work using it is enqueued, on any stream, provided it
// was allocated for (or recorded on) that stream. When cudaMalloc fails, the cache is released
// and the allocation tried once more. LATENTLAB_CUDA_POISON_FREED=1 (or
// set_poison_freed_device_memory) fills freed blocks with 0xFF bytes, NaN, after their last use.
void* malloc_device(size_t bytes, Stream stream = nullptr);  // nullptr: compute_stream()
void record_stream(void* p, Stream stream);  // `p` is also used on `stream` (until free_device)
// Throws CudaError for a pointer that malloc_device did not hand out or that was freed already.
void free_device(void* p);
bool is_device_block(const void* p);  // handed out by malloc_device and not yet freed
void set_poison_freed_device_memory(bool on);
void release_cached_device_memory();  // cudaFree of every cached block (synchronizes the device)

struct DeviceAllocatorStats {
  size_t live_bytes = 0;     // handed out and not yet freed (rounded sizes)
  size_t peak_bytes = 0;     // the most live at any time since the last reset
  size_t cached_bytes = 0;   // freed, kept for reuse
  int64_t hits = 0;          // requests served from the cache
  int64_t cuda_mallocs = 0;  // requests that went to cudaMalloc
  int64_t cross_stream_waits = 0;  // reuses on another stream that had to wait for an event
};
DeviceAllocatorStats device_allocator_stats();
void reset_device_peak_bytes();

// ---- CUDA graphs: a step recorded once, launched many times -----------------------------------
// begin_capture() puts compute_stream() into stream capture (cudaStreamCaptureModeRelaxed, so that
// the allocator may still cudaMalloc); the work queued until end_capture() is recorded, not run,
// and end_capture() returns it as an executable graph. Device memory allocated or freed on the
// compute stream during the capture belongs to the graph (see the allocator above) until
// destroy_graph(). Inside a capture nothing may wait for the GPU or copy from pageable memory:
// such a call fails (CudaError) and end_capture() then throws the runtime's reason. abort_capture()
// ends a capture after an exception, discarding it. (CUDA C++ Programming Guide, "CUDA Graphs".)
struct GraphExec;
void begin_capture();
GraphExec* end_capture();
void abort_capture() noexcept;
bool capturing();                       // compute_stream() is capturing
void launch_graph(GraphExec* graph);    // queued on compute_stream(), after the work before it
void destroy_graph(GraphExec* graph) noexcept;  // waits for its launches; frees its memory pool

// ---- pinned host memory, for asynchronous host-to-device copies of batches --------------------
void* malloc_pinned(size_t bytes);
void free_pinned(void* p);

// ---- copies, all on compute_stream() -----------------------------------------------------------
// Host to device: returns once `src` may be reused (the runtime stages pageable memory).
void memcpy_host_to_device(void* dst, const void* src, size_t bytes);
// From pinned memory only: returns at once; `src` must stay untouched until the stream passes it.
void memcpy_host_to_device_async(void* dst, const void* pinned_src, size_t bytes);
// Device to host: waits for the stream, so the values are there on return.
void memcpy_device_to_host(void* dst, const void* src, size_t bytes);
void memcpy_device_to_device(void* dst, const void* src, size_t bytes);
void memset_device(void* dst, int value, size_t bytes);
void synchronize();  // waits for compute_stream()

// ---- GEMM precision ---------------------------------------------------------------------------
// cuBLAS GEMMs run in full FP32 by default. allow_tf32(true) lets them use TF32 tensor cores
// (10-bit mantissa inputs, FP32 accumulation): faster, about 1e-3 relative error. Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace ll::kernels::cuda
