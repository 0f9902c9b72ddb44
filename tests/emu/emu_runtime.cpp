// emu_runtime.cpp: the CUDA emulator's kernel scheduler (fibers, barriers, warps) and runtime API
// (memory, copies, streams, events, errors, the device). See include/ll_emu.h for the overview.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "cuda_runtime.h"

// AddressSanitizer (scripts/sanitize.sh builds the emulator with it) keeps a shadow of every stack
// and must be told when execution moves to another one; without it, it takes a fiber's frames for
// the scheduler's (or the other way round) when it unpoisons a stack after an exception or reports
// an access. __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber, declared in
// <sanitizer/common_interface_defs.h> by both GCC and clang, do that around each switch.
#if defined(__SANITIZE_ADDRESS__)
#define LL_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LL_EMU_ASAN 1
#endif
#endif
#ifdef LL_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

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
uint64_t g_seed = 0;  // see seed(); 0 until the first use reads LL_EMU_SEED
uint64_t g_launches = 0;  // grids run so far (each one's order derives from the seed and this)

uint64_t current_seed() {
  if (g_seed == 0) {
    const char* e = std::getenv("LL_EMU_SEED");
    g_seed = e && *e ? std::strtoull(e, nullptr, 0) : 1;
    if (g_seed == 0) g_seed = 1;
  }
  return g_seed;
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "\nCUDA emulator: %s\n(thread and block order: LL_EMU_SEED=%llu, grid #%llu)\n",
               message.c_str(), static_cast<unsigned long long>(current_seed()),
               static_cast<unsigned long long>(g_launches));
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
  void* asan_fake_stack = nullptr;  // AddressSanitizer's state of this fiber while it is switched out
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
  const void* scheduler_stack_bottom = nullptr;  // the scheduler thread's stack, as ASan gave it
  size_t scheduler_stack_size = 0;
  StackPool stacks;
  uint64_t rng = 0;                   // this grid's order (splitmix64 state)
  std::vector<unsigned> order;        // the order of the current pass over the block's threads
  std::vector<const void*> shared;    // __shared__ variables this block has declared so far
  size_t shared_bytes = 0;            // their total size
  size_t dynamic_shared = 0;          // the launch's dynamic shared memory

  uint64_t next() {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // A uniformly random permutation (Fisher-Yates) of v.
  void shuffle(std::vector<unsigned>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[next() % i]);
  }

  std::string where(const Fiber& f) const {
    return "kernel " + std::string(kernel) + ", block " + coords(detail::t_block_idx) + ", thread " +
           coords(f.tid);
  }

  // Back to the scheduler, which resumes this fiber on its next pass; `exiting`: never to resume.
  void yield(bool exiting = false) {
    Fiber& f = *current;
#ifdef LL_EMU_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asan_fake_stack, scheduler_stack_bottom, scheduler_stack_size);
#else
    (void)exiting;
#endif
    ll_emu_switch(&f.sp, scheduler_sp);
#ifdef LL_EMU_ASAN
    __sanitizer_finish_switch_fiber(f.asan_fake_stack, nullptr, nullptr);
#endif
  }
  // From the scheduler into fiber f (stack i of the pool), until it yields.
  void resume(Fiber& f, unsigned i) {
    current = &f;
    detail::t_thread_idx = f.tid;
#ifdef LL_EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, stacks.tops[i] - kStackBytes, kStackBytes);
#else
    (void)i;
#endif
    ll_emu_switch(&scheduler_sp, f.sp);
#ifdef LL_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  }

  void run_block(unsigned n);
  [[noreturn]] void diagnose_deadlock();
};

thread_local Scheduler* t_sched = nullptr;

[[noreturn]] void fiber_main() {
  Scheduler& s = *t_sched;
#ifdef LL_EMU_ASAN
  // The first entry into this stack: ASan learns the scheduler's stack, to switch back to.
  __sanitizer_finish_switch_fiber(nullptr, &s.scheduler_stack_bottom, &s.scheduler_stack_size);
#endif
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
  s.yield(true);
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
  shared.clear();
  shared_bytes = 0;
  // Threads of a block run one after another between barriers, in a random order drawn afresh for
  // every pass (seeded, see seed()): where a kernel lacks a barrier it needs, some order gives a
  // wrong result (thread t reads what t - 1 has not yet written).
  order.resize(n);
  for (unsigned i = 0; i < n; ++i) order[i] = i;
  while (live > 0) {
    progress = false;
    shuffle(order);
    for (unsigned k = 0; k < n; ++k) {
      Fiber& f = fibers[order[k]];
      if (f.done) continue;
      resume(f, order[k]);
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
constexpr size_t kSharedLimit = 48 * 1024;  // static + dynamic shared memory without an opt-in

cudaError_t valid_launch(const LaunchConfig& c, unsigned max_threads, std::string* why) {
  const dim3 g = c.grid, b = c.block;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024) {
    *why = "block " + coords(b) + " (at most 1024 threads, 1024 x 1024 x 64)";
    return cudaErrorInvalidConfiguration;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    *why = "grid " + coords(g) + " (x < 2^31, y and z < 65536, none 0)";
    return cudaErrorInvalidConfiguration;
  }
  if (c.shared_bytes > kSharedLimit) {
    *why = "dynamic shared memory of " + std::to_string(c.shared_bytes) + " bytes";
    return cudaErrorInvalidConfiguration;
  }
  // More threads than the kernel's __launch_bounds__: the driver refuses the launch ("too many
  // resources requested for launch"), as it does when the block needs more registers than exist.
  if (max_threads != 0 && threads > max_threads) {
    *why = "block " + coords(b) + " has " + std::to_string(threads) + " threads, the kernel's __launch_bounds__ " +
           std::to_string(max_threads);
    return cudaErrorLaunchOutOfResources;
  }
  return cudaSuccess;
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

namespace {
// Runs one grid now, on this OS thread (called by the stream queues when its turn comes).
void run_grid_now(const char* kernel, const LaunchConfig& c, detail::Body body, const void* ctx) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  static Scheduler* sched = new Scheduler;  // leaked: kernels may run from static destructors
  if (t_sched) die(std::string("kernel ") + kernel + " launched from inside a kernel");
  Scheduler& s = *sched;
  t_sched = &s;
  s.kernel = kernel;
  s.body = body;
  s.ctx = ctx;
  s.dynamic_shared = c.shared_bytes;
  ++g_launches;
  s.rng = current_seed() * 0x2545f4914f6cdd1dull + g_launches;
  detail::t_grid_dim = c.grid;
  detail::t_block_dim = c.block;
  const unsigned n = c.block.x * c.block.y * c.block.z;
  // Blocks in a random order too (a GPU runs them in any order, many at once): a permutation of
  // the linear block index, shuffled for grids up to 2^20 blocks, an affine map i -> a i + b
  // (mod blocks, a coprime to it) for larger ones.
  const uint64_t gx = c.grid.x, gy = c.grid.y, blocks = gx * gy * c.grid.z;
  std::vector<unsigned> perm;
  uint64_t a = 1, b = 0;
  if (blocks <= (uint64_t{1} << 20)) {
    perm.resize(blocks);
    for (unsigned i = 0; i < blocks; ++i) perm[i] = i;
    s.shuffle(perm);
  } else {
    b = s.next() % blocks;
    for (;;) {
      a = s.next() % blocks | 1;
      uint64_t x = a, y = blocks;
      while (y) { const uint64_t t = x % y; x = y; y = t; }
      if (x == 1) break;
    }
  }
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint64_t l = perm.empty() ? static_cast<uint64_t>((static_cast<unsigned __int128>(a) * i + b) % blocks) : perm[i];
    detail::t_block_idx = uint3{static_cast<unsigned>(l % gx), static_cast<unsigned>(l / gx % gy),
                                static_cast<unsigned>(l / (gx * gy))};
    s.run_block(n);
  }
  t_sched = nullptr;
}
}  // namespace

void enqueue(cudaStream_t stream, std::function<void()> work, const char* what);

void run_grid(const char* kernel, const LaunchConfig& c, detail::Body body, std::shared_ptr<const void> ctx,
              unsigned max_threads) {
  std::string why;
  const cudaError_t e = valid_launch(c, max_threads, &why);
  if (e != cudaSuccess) {
    // The runtime rejects the launch, runs nothing and reports it at the next cudaGetLastError.
    record(e);
    std::fprintf(stderr, "CUDA emulator: launch of %s rejected: %s\n", kernel, why.c_str());
    return;
  }
  const LaunchConfig cfg = c;
  enqueue(c.stream, [kernel, cfg, body, ctx] { run_grid_now(kernel, cfg, body, ctx.get()); }, kernel);
}

uint64_t seed() { return current_seed(); }
void set_seed(uint64_t s) {
  g_seed = s == 0 ? 1 : s;
  g_launches = 0;  // the grids that follow get the orders a fresh process with LL_EMU_SEED=s gives
}

// __shared__ at its declaration: the first thread of a block to reach it fills it with 0xFF bytes
// (a NaN in float and double, -1 in signed integers), as a GPU's shared memory holds whatever the
// previous block left; and the block's static shared memory (plus the dynamic) must fit 48 KB,
// which ptxas enforces at build time ("uses too much shared data").
void shared_var(void* p, size_t bytes, const char* name) {
  Scheduler& s = *t_sched;
  for (const void* q : s.shared) {
    if (q == p) return;
  }
  s.shared.push_back(p);
  s.shared_bytes += bytes;
  if (s.shared_bytes + s.dynamic_shared > kSharedLimit) {
    die("kernel " + std::string(s.kernel) + ": __shared__ " + name + " brings its static shared memory to " +
        std::to_string(s.shared_bytes) + " bytes (+ " + std::to_string(s.dynamic_shared) +
        " dynamic), more than the 48 KB (49152 bytes) a kernel may declare (ptxas: too much shared data)");
  }
  std::memset(p, 0xFF, bytes);
}

namespace detail {
void die_bounds(const char* kernel, unsigned max_threads) {
  const dim3 b = t_block_dim;
  die(std::string("kernel ") + kernel + " runs with block " + coords(b) + ", more threads than its __launch_bounds__(" +
      std::to_string(max_threads) + ") (launched from a file that does not define it, so not refused at the launch)");
}
void die_probe(const char* kernel) {
  die(std::string("kernel ") + kernel + ": the launch-bounds probe did not stop at check_launch_bounds");
}
}  // namespace detail

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
#ifdef LL_EMU_ASAN
  // Exactly the bytes asked for, so that ASan's redzone starts right after the last one: a kernel
  // that reads or writes one element past its buffer is reported where it does it (on a GPU,
  // compute-sanitizer memcheck reports it; the allocation's rounding hides it from the results).
  void* p = nullptr;
  return posix_memalign(&p, 256, std::max<size_t>(bytes, 1)) == 0 ? p : nullptr;
#else
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  return std::aligned_alloc(256, rounded);
#endif
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

// ---- streams and their queues --------------------------------------------------------------
// Work (grids, copies, memsets, library calls, event records) is queued per stream and runs only
// when a synchronization point needs it: cudaStreamSynchronize, cudaDeviceSynchronize,
// cudaEventSynchronize, the blocking copies, cudaFree / cudaFreeHost, and cudaStreamQuery /
// cudaEventQuery (which run the pending work but answer cudaErrorNotReady). Each item depends on the
// one before it in its stream and on the items named at its enqueue: an event's record
// (cudaStreamWaitEvent), and the legacy default stream's implicit synchronization (an item on it
// waits for everything before it on every blocking stream; an item on a blocking stream waits for
// what is before it on the legacy stream; cudaStreamNonBlocking streams take no part).
//
// Stream capture (cudaStreamBeginCapture .. cudaStreamEndCapture, CUDA C++ Programming Guide, "CUDA
// Graphs"): while a stream captures, its work is recorded into a graph instead of queued (one
// stream: the graph is a chain, run in capture order at each cudaGraphLaunch, as a copy of each
// recorded item pushed onto the launch stream). What the GPU refuses during a capture is refused
// here, with the GPU's error, and it invalidates the capture (cudaStreamEndCapture then answers
// cudaErrorStreamCaptureInvalidated): waiting for a capturing stream (cudaStreamSynchronize,
// cudaStreamQuery, cudaDeviceSynchronize, a blocking cudaMemcpy, cudaFree, cudaFreeHost), a copy
// between a capturing stream and pageable host memory, cudaMalloc outside cudaStreamCaptureModeRelaxed,
// and a capturing stream waiting for an event recorded outside the capture
// (cudaErrorStreamCaptureIsolation). An event last recorded inside a capture may not be queried,
// synchronized or waited for outside it (cudaErrorCapturedEvent).
struct Item;
struct CUgraph_st;
struct CUstream_st {
  unsigned flags;
  std::deque<std::shared_ptr<Item>> queue;
  std::shared_ptr<Item> last;
  CUgraph_st* capture = nullptr;  // recording into this graph
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  bool capture_invalid = false;
};
struct Item {
  std::function<void()> work;
  std::vector<std::shared_ptr<Item>> deps;
  CUstream_st* stream = nullptr;
  const char* what = "";
  bool done = false;
};
struct GraphNode {
  std::function<void()> work;
  const char* what;
};
struct CUgraph_st {
  std::vector<GraphNode> nodes;
};
struct CUgraphExec_st {
  std::vector<GraphNode> nodes;
};
struct EventState {
  std::chrono::steady_clock::time_point when;
};
struct CUevent_st {
  std::shared_ptr<Item> marker;  // the record's queue item, null before the first record
  std::shared_ptr<EventState> state;
  bool captured = false;  // last recorded inside a stream capture
};

namespace ll::emu {
namespace {
std::recursive_mutex g_queue_mutex;
CUstream_st g_legacy{cudaStreamDefault, {}, nullptr};
std::vector<CUstream_st*> g_streams;  // created and not destroyed

bool pending(const std::shared_ptr<Item>& it) { return it && !it->done; }

void complete(const std::shared_ptr<Item>& item);
// Runs the first item of `s` (its dependencies first).
void run_front(CUstream_st* s) {
  std::shared_ptr<Item> front = s->queue.front();
  for (const auto& d : front->deps) complete(d);
  if (front->work) front->work();
  front->work = nullptr;  // frees the grid's arguments, the staged copy
  front->deps.clear();
  front->done = true;
  s->queue.pop_front();
}
void complete(const std::shared_ptr<Item>& item) {
  while (pending(item)) run_front(item->stream);
}
void complete_stream(CUstream_st* s) {
  if (pending(s->last)) complete(s->last);
}
void complete_all() {
  complete_stream(&g_legacy);
  for (CUstream_st* s : g_streams) complete_stream(s);
}
CUstream_st* resolve(cudaStream_t s) { return s ? s : &g_legacy; }
bool stream_ok(cudaStream_t s) {
  if (!s) return true;
  return std::find(g_streams.begin(), g_streams.end(), s) != g_streams.end();
}
// The streams capturing now.
std::vector<CUstream_st*> capturing_streams() {
  std::vector<CUstream_st*> v;
  for (CUstream_st* s : g_streams) {
    if (s->capture) v.push_back(s);
  }
  return v;
}
bool capturing(cudaStream_t s) { return s && resolve(s)->capture; }
// A call the GPU refuses during a capture: every capture in progress is invalidated.
cudaError_t capture_violation(cudaError_t e) {
  for (CUstream_st* s : capturing_streams()) s->capture_invalid = true;
  t_last_error = e;
  return e;
}
std::shared_ptr<Item> push(cudaStream_t stream, std::function<void()> work, const char* what,
                           std::shared_ptr<Item> extra = nullptr) {
  CUstream_st* s = resolve(stream);
  if (s->capture) {  // recorded, not run: the item the caller gets is already "done"
    if (work) s->capture->nodes.push_back(GraphNode{std::move(work), what});
    auto it = std::make_shared<Item>();
    it->stream = s;
    it->what = what;
    it->done = true;
    return it;
  }
  auto it = std::make_shared<Item>();
  it->work = std::move(work);
  it->stream = s;
  it->what = what;
  if (pending(extra)) it->deps.push_back(std::move(extra));
  if (s == &g_legacy) {
    for (CUstream_st* t : g_streams) {
      if (!(t->flags & cudaStreamNonBlocking) && pending(t->last)) it->deps.push_back(t->last);
    }
  } else if (!(s->flags & cudaStreamNonBlocking) && pending(g_legacy.last)) {
    it->deps.push_back(g_legacy.last);
  }
  s->queue.push_back(it);
  s->last = it;
  return it;
}
}  // namespace

void enqueue(cudaStream_t stream, std::function<void()> work, const char* what) {
  std::lock_guard<std::recursive_mutex> lock(g_queue_mutex);
  if (!stream_ok(stream)) die(std::string(what) + " enqueued on a stream that does not exist");
  push(stream, std::move(work), what);
}

}  // namespace ll::emu

using ll::emu::g_queue_mutex;
using QueueLock = std::lock_guard<std::recursive_mutex>;

// ---- the runtime API ----------------------------------------------------------------------------
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
cudaError_t cudaDeviceSynchronize() {
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::capturing_streams().empty()) return ll::emu::capture_violation(cudaErrorStreamCaptureUnsupported);
  ll::emu::complete_all();
  return cudaSuccess;
}
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
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
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
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureIsolation: return "cudaErrorStreamCaptureIsolation";
    case cudaErrorCapturedEvent: return "cudaErrorCapturedEvent";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "unrecognized error code";
}

// Device memory is host memory, 256-byte aligned as cudaMalloc's, and filled with 0xFF bytes (a NaN
// in float) so that reading what no kernel wrote shows up in the results.
cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return record(cudaErrorInvalidValue);
  *p = nullptr;
  {  // "potentially unsafe" during a capture not begun in cudaStreamCaptureModeRelaxed
    QueueLock lock(g_queue_mutex);
    for (CUstream_st* s : ll::emu::capturing_streams()) {
      if (s->capture_mode != cudaStreamCaptureModeRelaxed) {
        return ll::emu::capture_violation(cudaErrorStreamCaptureUnsupported);
      }
    }
  }
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
  // As the GPU's cudaFree does (and so refused during a capture).
  if (const cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) return e;
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
  if (const cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) return e;
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
bool is_pinned(const void* p, size_t bytes) {
  auto& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  return ll::emu::in_range(a.pinned, p, bytes);
}
cudaMemcpyKind resolve_kind(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (kind != cudaMemcpyDefault) return kind;
  const bool d = ll::emu::is_device_range(dst, bytes), s = ll::emu::is_device_range(src, bytes);
  return d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
           : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
}
// Queues a copy on `stream` the way the runtime orders it against the host ("API synchronization
// behavior" in the CUDA runtime API reference): from pageable host memory the source is staged at
// the call; to pageable host memory, or with the blocking cudaMemcpy from or to host memory, the
// call returns when the copy is done; to or from pinned memory with cudaMemcpyAsync, and between
// device buffers, it returns at once and the copy runs later.
cudaError_t queue_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream,
                       bool blocking) {
  if (bytes == 0) return cudaSuccess;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return record(cudaErrorInvalidMemcpyDirection);
  if (!dst || !src || !copy_ok(dst, src, bytes, kind)) return record(cudaErrorInvalidValue);
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  kind = resolve_kind(dst, src, bytes, kind);
  const bool host_src = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyHostToHost;
  const bool host_dst = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost;
  if (ll::emu::capturing(stream) &&
      (blocking || (host_src && !is_pinned(src, bytes)) || (host_dst && !is_pinned(dst, bytes)))) {
    return ll::emu::capture_violation(cudaErrorStreamCaptureUnsupported);
  }
  std::shared_ptr<Item> it;
  if (host_src && !is_pinned(src, bytes)) {
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    it = ll::emu::push(stream, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); }, "cudaMemcpy");
  } else {
    it = ll::emu::push(stream, [dst, src, bytes] { std::memmove(dst, src, bytes); }, "cudaMemcpy");
  }
  if ((host_dst && (blocking || !is_pinned(dst, bytes))) || (blocking && host_src)) ll::emu::complete(it);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return queue_copy(dst, src, bytes, kind, nullptr, true);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  return queue_copy(dst, src, bytes, kind, stream, false);
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (!ll::emu::is_device_range(dst, bytes)) return record(cudaErrorInvalidValue);
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  ll::emu::push(stream, [dst, value, bytes] { std::memset(dst, value, bytes); }, "cudaMemset");
  return cudaSuccess;
}
// Asynchronous with respect to the host for device memory, on the legacy default stream.
cudaError_t cudaMemset(void* dst, int value, size_t bytes) { return cudaMemsetAsync(dst, value, bytes, nullptr); }

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!stream) return record(cudaErrorInvalidValue);
  QueueLock lock(g_queue_mutex);
  *stream = new CUstream_st{flags, {}, nullptr};
  ll::emu::g_streams.push_back(*stream);
  return cudaSuccess;
}
// Work still queued runs first (the GPU finishes it after the call returns).
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  QueueLock lock(g_queue_mutex);
  if (!stream || !ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  if (stream->capture) return ll::emu::capture_violation(cudaErrorStreamCaptureUnsupported);
  ll::emu::complete_stream(stream);
  auto& v = ll::emu::g_streams;
  v.erase(std::find(v.begin(), v.end(), stream));
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  if (ll::emu::capturing(stream)) return ll::emu::capture_violation(cudaErrorStreamCaptureUnsupported);
  ll::emu::complete_stream(ll::emu::resolve(stream));
  return cudaSuccess;
}
// Pending work: it runs now, but the answer is "not ready" (it was not done when asked).
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  if (ll::emu::capturing(stream)) return ll::emu::capture_violation(cudaErrorStreamCaptureUnsupported);
  CUstream_st* s = ll::emu::resolve(stream);
  if (!ll::emu::pending(s->last)) return cudaSuccess;
  ll::emu::complete_stream(s);
  return cudaErrorNotReady;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  if (ll::emu::capturing(stream)) {
    // One stream per capture here: an event of the same capture is already behind us; one recorded
    // outside would join outside work into the graph.
    if (event->marker && !event->captured) return ll::emu::capture_violation(cudaErrorStreamCaptureIsolation);
    return cudaSuccess;
  }
  if (event->captured) return record(cudaErrorCapturedEvent);
  if (event->marker) ll::emu::push(stream, nullptr, "cudaStreamWaitEvent", event->marker);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  if (!event) return record(cudaErrorInvalidValue);
  *event = new CUevent_st{nullptr, std::make_shared<EventState>()};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  QueueLock lock(g_queue_mutex);
  delete event;  // a pending record still runs: it holds the state
  return cudaSuccess;
}
// A marker in the stream's queue; it takes the host time when it runs.
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  auto st = event->state;
  event->captured = ll::emu::capturing(stream);
  event->marker = ll::emu::push(stream, [st] { st->when = std::chrono::steady_clock::now(); }, "cudaEventRecord");
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  QueueLock lock(g_queue_mutex);
  if (event->captured) return record(cudaErrorCapturedEvent);
  ll::emu::complete(event->marker);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  QueueLock lock(g_queue_mutex);
  if (event->captured) return record(cudaErrorCapturedEvent);
  if (!ll::emu::pending(event->marker)) return cudaSuccess;
  ll::emu::complete(event->marker);
  return cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return record(cudaErrorInvalidValue);
  if (!start || !end) return record(cudaErrorInvalidResourceHandle);
  QueueLock lock(g_queue_mutex);
  if (start->captured || end->captured) return record(cudaErrorCapturedEvent);
  if (!start->marker || !end->marker) return record(cudaErrorInvalidResourceHandle);
  if (!start->marker->done || !end->marker->done) return record(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->state->when - start->state->when).count();
  return cudaSuccess;
}

// ---- stream capture and graphs ------------------------------------------------------------------
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  QueueLock lock(g_queue_mutex);
  // The legacy default stream cannot capture.
  if (!stream || !ll::emu::stream_ok(stream)) return record(cudaErrorStreamCaptureUnsupported);
  if (stream->capture) return record(cudaErrorInvalidValue);
  if (mode < cudaStreamCaptureModeGlobal || mode > cudaStreamCaptureModeRelaxed) return record(cudaErrorInvalidValue);
  stream->capture = new CUgraph_st;
  stream->capture_mode = mode;
  stream->capture_invalid = false;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!graph) return record(cudaErrorInvalidValue);
  *graph = nullptr;
  QueueLock lock(g_queue_mutex);
  if (!stream || !ll::emu::stream_ok(stream) || !stream->capture) return record(cudaErrorInvalidValue);
  CUgraph_st* g = stream->capture;
  stream->capture = nullptr;
  if (stream->capture_invalid) {
    stream->capture_invalid = false;
    delete g;
    return record(cudaErrorStreamCaptureInvalidated);
  }
  *graph = g;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!status) return record(cudaErrorInvalidValue);
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  const CUstream_st* s = ll::emu::resolve(stream);
  *status = !s->capture            ? cudaStreamCaptureStatusNone
            : s->capture_invalid ? cudaStreamCaptureStatusInvalidated
                                 : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!exec || !graph) return record(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}
// Each launch queues copies of the recorded items, in order, behind the stream's work.
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return record(cudaErrorInvalidValue);
  QueueLock lock(g_queue_mutex);
  if (!ll::emu::stream_ok(stream)) return record(cudaErrorInvalidResourceHandle);
  for (const GraphNode& n : exec->nodes) ll::emu::push(stream, n.work, n.what);
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;  // queued copies of its items still run: they own their arguments
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
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
