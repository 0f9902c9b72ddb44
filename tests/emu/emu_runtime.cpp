// emu_runtime.cpp: the CUDA emulator's kernel scheduler (fibers, barriers, warps) and runtime API
// (memory, copies, streams, events, errors, the device). See include/ll_emu.h for the overview.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif

// ---- context switch ---------------------------------------------------------------------------
// ll_emu_switch(save, load): pushes the callee-saved registers of the System V x86-64 ABI on the
// current stack, stores the stack pointer in *save, loads `load` as the stack pointer and pops the
// registers saved there; `ret` then resumes the other context. Everything else a call may clobber
// is already dead at a call site, so this is a complete switch between two C++ call chains (the
// MXCSR and x87 control words are shared: kernels do not change them). swapcontext would do the
// same plus a sigprocmask system call per switch, which would dominate the emulation's run time.
extern "C" void ll_emu_switch(void** save, void* load);
asm(R"(
  .text
  .p2align 4
  .globl ll_emu_switch
  .hidden ll_emu_switch
  .type ll_emu_switch, @function
ll_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ll_emu_switch, .-ll_emu_switch
)");

namespace ll::emu {
namespace {

// ---- errors -------------------------------------------------------------------------------------
[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "\nCUDA emulator: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string coords(uint3 v) {
  char s[48];
  std::snprintf(s, sizeof s, "(%u,%u,%u)", v.x, v.y, v.z);
  return s;
}

// The last error, as cudaGetLastError reports and resets it. Nothing in the emulation is sticky:
// the errors it produces (bad arguments, bad launch shapes) are the non-sticky kind.
thread_local cudaError_t t_last_error = cudaSuccess;
cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

// ---- fiber stacks -------------------------------------------------------------------------------
// One stack per thread of the largest block so far, reused by every block of every launch. Each has
// a PROT_NONE guard page below it, so an overflow faults instead of corrupting its neighbour.
constexpr size_t kStackBytes = size_t{128} << 10;

struct StackPool {
  std::vector<char*> tops;  // one past the highest byte of each stack
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));

  void reserve(size_t n) {
    while (tops.size() < n) {
      const size_t bytes = kStackBytes + page;
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) die("cannot map a fiber stack");
      if (mprotect(p, page, PROT_NONE) != 0) die("cannot protect a fiber stack's guard page");
      tops.push_back(static_cast<char*>(p) + bytes);
    }
  }
};

// ---- the block scheduler ------------------------------------------------------------------------
enum class Wait { None, Barrier, Warp };

struct Fiber {
  void* sp = nullptr;
  uint3 tid{0, 0, 0};
  unsigned linear = 0;
  bool done = false;
  Wait wait = Wait::None;
  int barriers = 0;  // __syncthreads() calls so far
};

struct Warp {
  uint64_t slot[2][32];  // double-buffered by operation number parity (see warp_collect)
  uint32_t seq[32];      // warp operations each lane has entered (its current one is seq - 1)
  unsigned exists;       // lanes that exist in this block (a partial last warp has fewer)
};

struct Scheduler {
  const char* kernel = "";
  detail::Body body = nullptr;
  const void* ctx = nullptr;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  unsigned live = 0;
  // The block barrier: threads arrived, the call site they wait at, and a generation number that
  // increments when the barrier opens.
  unsigned arrived = 0;
  const char* barrier_file = "";
  int barrier_line = 0;
  uint64_t generation = 0;
  bool progress = false;
  Fiber* current = nullptr;
  void* scheduler_sp = nullptr;
  StackPool stacks;

  std::string where(const Fiber& f) const {
    return "kernel " + std::string(kernel) + ", block " + coords(detail::t_block_idx) + ", thread " +
           coords(f.tid);
  }

  // Back to the scheduler, which resumes this fiber on its next pass.
  void yield() { ll_emu_switch(&current->sp, scheduler_sp); }

  void run_block(unsigned n);
  [[noreturn]] void diagnose_deadlock();
};

thread_local Scheduler* t_sched = nullptr;

[[noreturn]] void fiber_main() {
  Scheduler& s = *t_sched;
  try {
    s.body(s.ctx);
  } catch (const std::exception& e) {
    die(s.where(*s.current) + ": exception escaped a kernel: " + e.what());
  } catch (...) {
    die(s.where(*s.current) + ": exception escaped a kernel");
  }
  Fiber& f = *s.current;
  f.done = true;
  --s.live;
  s.progress = true;
  if (s.arrived > 0) {
    die(s.where(f) + " exited while " + std::to_string(s.arrived) +
        " other thread(s) of its block wait at __syncthreads() (a divergent barrier: undefined "
        "behaviour, usually a hang, on a GPU)");
  }
  ll_emu_switch(&f.sp, s.scheduler_sp);
  __builtin_unreachable();
}

void Scheduler::run_block(unsigned n) {
  stacks.reserve(n);
  fibers.assign(n, Fiber{});
  const dim3 bd = detail::t_block_dim;
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = fibers[i];
    f.linear = i;
    f.tid = uint3{i % bd.x, i / bd.x % bd.y, i / (bd.x * bd.y)};
    // The initial frame ll_emu_switch pops: six callee-saved registers, then fiber_main as the
    // return address, then a null "return address" of fiber_main itself. fiber_main is entered
    // with rsp = 8 (mod 16), as after a call.
    auto* frame = reinterpret_cast<void**>(stacks.tops[i] - 64);
    for (int r = 0; r < 6; ++r) frame[r] = nullptr;
    frame[6] = reinterpret_cast<void*>(&fiber_main);
    frame[7] = nullptr;
    f.sp = frame;
  }
  warps.assign((n + 31) / 32, Warp{});
  for (size_t w = 0; w < warps.size(); ++w) {
    const unsigned lanes = std::min(32u, n - static_cast<unsigned>(w) * 32);
    warps[w].exists = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  }
  live = n;
  arrived = 0;
  generation = 0;
  // Threads of a block run one after another between barriers. Where a kernel lacks a barrier it
  // needs, one order may still give the right result (thread t reads what t - 1 wrote, and t - 1 ran
  // first); the other order does not. So odd-numbered blocks run their threads in reverse.
  const dim3 gd = detail::t_grid_dim;
  const uint3 bi = detail::t_block_idx;
  const bool reverse = (bi.x + gd.x * (uint64_t{bi.y} + uint64_t{gd.y} * bi.z)) % 2 == 1;
  while (live > 0) {
    progress = false;
    for (unsigned k = 0; k < n; ++k) {
      Fiber& f = fibers[reverse ? n - 1 - k : k];
      if (f.done) continue;
      current = &f;
      detail::t_thread_idx = f.tid;
      ll_emu_switch(&scheduler_sp, f.sp);
    }
    if (live > 0 && !progress) diagnose_deadlock();
  }
  current = nullptr;
}

// Every live thread waits and none can go on: say who waits where.
void Scheduler::diagnose_deadlock() {
  std::string m = "kernel " + std::string(kernel) + ", block " + coords(detail::t_block_idx) +
                  ": deadlock, no thread can proceed:";
  int shown = 0;
  for (const Fiber& f : fibers) {
    if (f.done || shown >= 8) continue;
    ++shown;
    m += "\n  thread " + coords(f.tid) +
         (f.wait == Wait::Barrier ? " waits at __syncthreads() #" + std::to_string(f.barriers)
                                  : " waits at warp operation #" +
                                        std::to_string(warps[f.linear / 32].seq[f.linear % 32]));
  }
  m += "\n(threads of one warp in different barriers or warp operations: undefined behaviour on a GPU)";
  die(m);
}

std::mutex g_launch_mutex;  // one grid at a time: __shared__ (static) memory is per process

bool valid_launch(const LaunchConfig& c, std::string* why) {
  const dim3 g = c.grid, b = c.block;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024) {
    *why = "block " + coords(b) + " (at most 1024 threads, 1024 x 1024 x 64)";
    return false;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    *why = "grid " + coords(g) + " (x < 2^31, y and z < 65536, none 0)";
    return false;
  }
  if (c.shared_bytes > 48 * 1024) {
    *why = "dynamic shared memory of " + std::to_string(c.shared_bytes) + " bytes";
    return false;
  }
  return true;
}

}  // namespace

namespace detail {

unsigned lane_id() { return t_sched->current->linear % 32; }

const uint64_t* warp_collect(unsigned mask, uint64_t bits, const char* what) {
  Scheduler& s = *t_sched;
  Fiber& f = *s.current;
  const unsigned lane = f.linear % 32;
  Warp& w = s.warps[f.linear / 32];
  if (!(mask >> lane & 1u)) die(s.where(f) + ": " + what + " with a mask that leaves out the calling lane");
  if (mask & ~w.exists) {
    die(s.where(f) + ": " + what + " names lanes that do not exist (mask " + std::to_string(mask) +
        ", the warp has lanes " + std::to_string(w.exists) + ")");
  }
  const uint32_t k = w.seq[lane];
  w.slot[k & 1][lane] = bits;
  w.seq[lane] = k + 1;
  s.progress = true;
  for (;;) {
    bool ready = true;
    for (unsigned j = 0; j < 32; ++j) {
      if (!(mask >> j & 1u)) continue;
      if (w.seq[j] > k + 2) {
        // Lane j entered operation k + 2 and overwrote this one's slot (k and k + 2 share a
        // buffer): only possible with masks that differ between lanes.
        die(s.where(f) + ": " + what + ": lanes of one warp are out of step (masks differ between lanes)");
      }
      if (w.seq[j] < k + 1) {
        if (s.fibers[f.linear / 32 * 32 + j].done) {
          die(s.where(f) + ": " + what + " waits for lane " + std::to_string(j) +
              ", which exited without reaching it (every lane in the mask must call it)");
        }
        ready = false;
        break;
      }
    }
    if (ready) break;
    f.wait = Wait::Warp;
    s.yield();
  }
  if (f.wait != Wait::None) s.progress = true;
  f.wait = Wait::None;
  return w.slot[k & 1];
}

void die_shfl_source(const char* what, unsigned src, unsigned mask) {
  die(t_sched->where(*t_sched->current) + ": " + what + " reads lane " + std::to_string(src) +
      ", which is not in the mask " + std::to_string(mask) + " (an undefined value on a GPU)");
}

}  // namespace detail

void run_grid(const char* kernel, const LaunchConfig& c, detail::Body body, const void* ctx) {
  std::string why;
  if (!valid_launch(c, &why)) {
    // The runtime rejects the launch, runs nothing and reports it at the next cudaGetLastError.
    record(cudaErrorInvalidConfiguration);
    std::fprintf(stderr, "CUDA emulator: launch of %s rejected: %s\n", kernel, why.c_str());
    return;
  }
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  static Scheduler* sched = new Scheduler;  // leaked: kernels may run from static destructors
  if (t_sched) die(std::string("kernel ") + kernel + " launched from inside a kernel");
  Scheduler& s = *sched;
  t_sched = &s;
  s.kernel = kernel;
  s.body = body;
  s.ctx = ctx;
  detail::t_grid_dim = c.grid;
  detail::t_block_dim = c.block;
  const unsigned n = c.block.x * c.block.y * c.block.z;
  for (unsigned z = 0; z < c.grid.z; ++z) {
    for (unsigned y = 0; y < c.grid.y; ++y) {
      for (unsigned x = 0; x < c.grid.x; ++x) {
        detail::t_block_idx = uint3{x, y, z};
        s.run_block(n);
      }
    }
  }
  t_sched = nullptr;
}

// ---- device memory ------------------------------------------------------------------------------
namespace {

struct Allocations {
  std::mutex mutex;
  std::map<uintptr_t, size_t> device;  // base -> bytes
  std::map<uintptr_t, size_t> pinned;
};
Allocations& allocations() {
  static Allocations* a = new Allocations;  // leaked on purpose: outlives static destructors
  return *a;
}

bool in_range(const std::map<uintptr_t, size_t>& m, const void* p, size_t bytes) {
  const auto q = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(q);
  if (it == m.begin()) return false;
  --it;
  return q >= it->first && q + bytes <= it->first + it->second && q + bytes >= q;
}

void* host_alloc(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  return std::aligned_alloc(256, rounded);
}

}  // namespace

bool is_device_range(const void* p, size_t bytes) {
  Allocations& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  return in_range(a.device, p, bytes);
}

}  // namespace ll::emu

using ll::emu::allocations;
using ll::emu::record;

// ---- the runtime API ----------------------------------------------------------------------------
struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded;
};

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "latentlab CUDA emulator (CPU)");
  prop->totalGlobalMem = size_t{80} << 30;  // an H100's, nominally; host memory is what limits
  prop->sharedMemPerBlock = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->clockRate = 1980000;
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 50 << 20;
  prop->unifiedAddressing = 1;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return record(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) { return cudaDriverGetVersion(version); }
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* device) {
  if (!device) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceReset() { return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return record(cudaErrorInvalidValue);
  const size_t pages = static_cast<size_t>(sysconf(_SC_PHYS_PAGES));
  const size_t avail = static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES));
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  *total_bytes = pages * page;
  *free_bytes = avail * page;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = ll::emu::t_last_error;
  ll::emu::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return ll::emu::t_last_error; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}
const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "unrecognized error code";
}

// Device memory is host memory, 256-byte aligned as cudaMalloc's, and filled with 0xFF bytes (a NaN
// in float) so that reading what no kernel wrote shows up in the results.
cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return record(cudaErrorInvalidValue);
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  void* q = ll::emu::host_alloc(bytes);
  if (!q) return record(cudaErrorMemoryAllocation);
  std::memset(q, 0xFF, bytes);
  auto& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.device.emplace(reinterpret_cast<uintptr_t>(q), bytes);
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.device.find(reinterpret_cast<uintptr_t>(p));
  if (it == a.device.end()) return record(cudaErrorInvalidValue);
  a.device.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  if (!p) return record(cudaErrorInvalidValue);
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  void* q = ll::emu::host_alloc(bytes);
  if (!q) return record(cudaErrorMemoryAllocation);
  auto& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.pinned.emplace(reinterpret_cast<uintptr_t>(q), bytes);
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) { return cudaMallocHost(p, bytes); }

cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  auto& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.pinned.find(reinterpret_cast<uintptr_t>(p));
  if (it == a.pinned.end()) return record(cudaErrorInvalidValue);
  a.pinned.erase(it);
  std::free(p);
  return cudaSuccess;
}

namespace {
// A copy's device side must lie inside one allocation, as the runtime checks (with unified
// addressing a host pointer where a device pointer belongs is an invalid argument). Host sides
// cannot be checked.
bool copy_ok(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  auto& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  const bool dst_dev = ll::emu::in_range(a.device, dst, bytes);
  const bool src_dev = ll::emu::in_range(a.device, src, bytes);
  switch (kind) {
    case cudaMemcpyHostToHost: return true;
    case cudaMemcpyHostToDevice: return dst_dev;
    case cudaMemcpyDeviceToHost: return src_dev;
    case cudaMemcpyDeviceToDevice: return dst_dev && src_dev;
    case cudaMemcpyDefault: return true;
  }
  return false;
}
bool stream_ok(cudaStream_t) { return true; }
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return record(cudaErrorInvalidMemcpyDirection);
  if (!dst || !src || !copy_ok(dst, src, bytes, kind)) return record(cudaErrorInvalidValue);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
// Streams run their work at enqueue: the copy is done when the call returns.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (!stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!ll::emu::is_device_range(dst, bytes)) return record(cudaErrorInvalidValue);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (!stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  return cudaMemset(dst, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!stream) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return record(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned) {
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  if (!event) return record(cudaErrorInvalidValue);
  *event = new CUevent_st{{}, false};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}
// Events record host time: the work before them has run by then.
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return record(cudaErrorInvalidValue);
  if (!start || !end) return record(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

namespace ll::emu {

// __syncthreads: every live thread of the block arrives at the same call site, then all go on.
void syncthreads(const char* file, int line) {
  Scheduler& s = *t_sched;
  Fiber& f = *s.current;
  if (s.live < s.fibers.size()) {
    die(s.where(f) + ": __syncthreads() at " + file + ":" + std::to_string(line) + " after " +
        std::to_string(s.fibers.size() - s.live) +
        " thread(s) of the block exited (a divergent barrier: undefined behaviour on a GPU)");
  }
  ++f.barriers;
  if (s.arrived == 0) {
    s.barrier_file = file;
    s.barrier_line = line;
  } else if (line != s.barrier_line || std::strcmp(file, s.barrier_file) != 0) {
    die(s.where(f) + ": threads wait at different __syncthreads(): this one at " + file + ":" +
        std::to_string(line) + ", " + std::to_string(s.arrived) + " other(s) at " + s.barrier_file +
        ":" + std::to_string(s.barrier_line) + " (a divergent barrier: undefined behaviour on a GPU)");
  }
  ++s.arrived;
  s.progress = true;
  if (s.arrived == s.live) {  // the last one opens the barrier
    s.arrived = 0;
    ++s.generation;
    return;
  }
  const uint64_t gen = s.generation;
  f.wait = Wait::Barrier;
  while (s.generation == gen) s.yield();
  f.wait = Wait::None;
  s.progress = true;
}

}  // namespace ll::emu
