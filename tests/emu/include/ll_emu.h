// ll_emu.h: a CPU emulation of the small part of the CUDA programming model latentlab uses, so that
// the unchanged kernels/cuda sources and the unchanged tests/cuda suite compile with g++ and run on
// a machine without a GPU (CMake option LATENTLAB_CUDA_EMULATION; see tests/emu/README.md).
//
// What is emulated
// - Kernels and launches. Every `K<<<grid, block, smem, stream>>>(args)` is rewritten at build time
//   (tests/emu/rewrite_launches.py) into ::ll::emu::launch(...), which checks the launch shape the
//   way the GPU does (a bad one sets cudaErrorInvalidConfiguration for cudaGetLastError; more
//   threads than the kernel's __launch_bounds__, cudaErrorLaunchOutOfResources) and queues the grid
//   on its stream. When it runs, blocks run one after another on one OS thread, and within a block
//   every CUDA thread is a stackful coroutine (a fiber, switched by a few lines of x86-64 assembly),
//   so that __syncthreads() and the warp shuffles have their real meaning. The order of the blocks,
//   and of the threads between two barriers, is a seeded random permutation (LL_EMU_SEED, printed
//   with every abort), so that a missing barrier gives wrong results for some seed.
// - Shared memory. `__shared__` is `static` (blocks run one at a time, so a function-static array is
//   exactly one block's shared memory); the rewrite registers each array, which is poisoned with NaN
//   bytes at the start of every block (a read before a write shows) and counted against the 48 KB of
//   static shared memory a block may have.
// - Barriers and warps, strictly. __syncthreads() waits for every thread of the block; a thread that
//   exits while others wait at a barrier, a barrier after a thread exited, or threads waiting at
//   different __syncthreads() call sites abort with a message naming the kernel (each is undefined
//   behaviour, usually a hang, on a GPU). __shfl_*_sync / __ballot_sync wait for every lane named in the mask;
//   a named lane that exited, that does not exist (partial warp), or a caller outside its own mask
//   aborts likewise. Warps are 32 consecutive linear thread ids, as on the GPU.
// - threadIdx, blockIdx, blockDim, gridDim, warpSize; dim3, uint3 and the vector types; the
//   intrinsics our kernels call, the fast ones (__expf, __logf, __sinf, __fdividef, ...) approximated
//   within the CUDA guide's error bounds (below), and a*b+c contracted into fused multiply-adds as
//   nvcc does (-ffp-contract=fast, except in the files the CUDA build compiles with -fmad=false).
// - The runtime (cuda_runtime.h): host memory behind cudaMalloc (256-byte aligned, filled with
//   0xFF bytes, i.e. NaNs, so a kernel reading memory nobody wrote shows it), range-checked copies
//   and memsets; per-stream queues that run only at synchronization points (stream, event and device
//   syncs, blocking copies, queries), with events, cudaStreamWaitEvent and the legacy default
//   stream's implicit synchronization, so work read before its synchronization shows stale values;
//   stream capture into graphs (cudaStreamBeginCapture .. cudaGraphLaunch), refusing what a GPU
//   refuses during a capture; one device that says it is an emulator; cudaGetLastError semantics.
// - cuBLAS (cublas_v2.h): cublasSgemm / cublasSgemmStridedBatched in cuBLAS's column-major
//   semantics, with its argument checks, through OpenBLAS, the K dimension summed in blocks in an
//   order unlike OpenBLAS's, and with TF32 rounding of the inputs in CUBLAS_TF32_TENSOR_OP_MATH.
// - cuRAND's device API for Philox4_32_10 (curand_kernel.h), written from the cuRAND headers'
//   documented algorithm, independently of kernels/common/philox.h; curand_normal* take cuRAND's
//   host branch (precise sinf/cosf where the GPU uses __sincosf).
// - cuDNN's convolution API as kernels/cuda/cudnn_conv.cu calls it (cudnn.h, emu_cudnn.cpp):
//   descriptors, algorithm rankings and workspaces checked as cuDNN checks them, over a direct CPU
//   convolution queued on the handle's stream (not cuDNN's algorithms or their rounding).
//
// What is not: cuBLAS, cuRAND and cuDNN themselves (the emulation is our reading of their
// documentation), GPU timing, true concurrency (streams run one at a time, at synchronization
// points: a missing event wait shows as a stale read, not as a race report), memory-model effects
// (every write is visible at once; missing __syncwarp or __threadfence is not caught), the exact
// ulp errors of the GPU's fast intrinsics, atomics, dynamic shared memory, device-side
// printf/assert, and out-of-bounds accesses inside kernels (they touch host memory: run under
// valgrind or ASan to catch them).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers -------------------------------------------------------------------------------
#define __global__
#define __host__
#define __device__
#define __forceinline__ inline
// __launch_bounds__(N): the rewrite step (rewrite_launches.py) reads N and puts
// ::ll::emu::check_launch_bounds(N, "K") first in the kernel's body; launches of such a kernel in the
// same file are rewritten to launch<true>, which learns N before enqueueing (see launch).
#define __launch_bounds__(...)
// `__shared__ T name[...];` stays a function-static variable; the rewrite step appends
// ::ll::emu::shared_var(&name, sizeof(name), "name"), which poisons it at its first use in each block
// and adds it to the block's static shared-memory size (checked against 48 KB).
#define __shared__ static
// __restrict__ is a g++ keyword already.

// ---- built-in vector types (alignment as in CUDA's vector_types.h) ---------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }

struct CUstream_st;  // the emulator's stream object (emu_runtime.cpp); cudaStream_t is CUstream_st*
typedef CUstream_st* cudaStream_t;

namespace ll::emu {

namespace detail {
// The running CUDA thread's coordinates. Set by the block scheduler on every switch into a fiber;
// all fibers of a launch run on one OS thread, so thread_local is per launch.
inline thread_local uint3 t_thread_idx{0, 0, 0};
inline thread_local uint3 t_block_idx{0, 0, 0};
inline thread_local dim3 t_block_dim{1, 1, 1};
inline thread_local dim3 t_grid_dim{1, 1, 1};

// A type-erased kernel body: run by every thread of the grid.
using Body = void (*)(const void* ctx);

// Waits until every lane named in `mask` has reached its warp operation number k (this lane's
// current one) and returns that operation's 32 slots, this lane's holding `bits`. The slots stay
// valid until this lane's next warp operation. Aborts on a lane that exited or does not exist.
const uint64_t* warp_collect(unsigned mask, uint64_t bits, const char* what);
unsigned lane_id();

template <typename T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>,
                "warp shuffles of types wider than 8 bytes are not emulated");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
[[noreturn]] void die_shfl_source(const char* what, unsigned src, unsigned mask);
}  // namespace detail

struct LaunchConfig {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
};
inline LaunchConfig config(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t stream = nullptr) {
  return LaunchConfig{grid, block, shared_bytes, stream};
}

// Checks the configuration (setting the last error as the runtime would: an invalid shape, or more
// threads per block than `max_threads`, the kernel's __launch_bounds__, 0 = none) and enqueues the
// grid on c.stream; the grid runs when a synchronization point needs it (emu_runtime.cpp). `ctx`
// (the copied arguments) lives until it has run.
void run_grid(const char* kernel, const LaunchConfig& c, detail::Body body, std::shared_ptr<const void> ctx,
              unsigned max_threads);

namespace detail {
// The launch-bounds probe: launch<true> calls the kernel once on the host with t_probe set; its
// first statement, check_launch_bounds, throws the bound instead of running the body.
inline thread_local bool t_probe = false;
struct BoundsProbe {
  unsigned max_threads;
};
[[noreturn]] void die_bounds(const char* kernel, unsigned max_threads);
[[noreturn]] void die_probe(const char* kernel);
}  // namespace detail

// The first statement of a kernel declared __launch_bounds__(N) (inserted by the rewrite step).
inline void check_launch_bounds(unsigned max_threads, const char* kernel) {
  if (detail::t_probe) throw detail::BoundsProbe{max_threads};
  // A launch from a file that does not define the kernel was not checked at the launch: abort here.
  if (detail::t_block_dim.x * detail::t_block_dim.y * detail::t_block_dim.z > max_threads) {
    detail::die_bounds(kernel, max_threads);
  }
}

// `__shared__ T name` at its declaration (inserted by the rewrite step): see emu_runtime.cpp.
void shared_var(void* p, size_t bytes, const char* name);

// `K<<<c>>>(a...)` becomes launch("K", config(c), [&](auto&&... p) { K(p...); }, a...): the
// arguments are evaluated and copied once, as the runtime copies them at the launch, and each
// thread calls the kernel with copies of those (implicit conversions and template argument
// deduction happen exactly as for the original call). kBounded: the kernel has __launch_bounds__
// (its body starts with check_launch_bounds), so one probe call learns the bound.
template <bool kBounded = false, typename F, typename... A>
void launch(const char* kernel, const LaunchConfig& c, F call, A&&... a) {
  struct Ctx {
    F call;
    std::tuple<std::decay_t<A>...> args;
  };
  // nvcc rejects kernels whose parameters exceed 32764 bytes (CUDA 12.1+, Volta and later).
  static_assert(sizeof(std::tuple<std::decay_t<A>...>) <= 32764, "kernel parameters exceed 32764 bytes");
  auto ctx = std::make_shared<const Ctx>(Ctx{call, std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)});
  unsigned max_threads = 0;
  if constexpr (kBounded) {
    detail::t_probe = true;
    try {
      std::apply(ctx->call, ctx->args);
    } catch (const detail::BoundsProbe& b) {
      max_threads = b.max_threads;
    }
    detail::t_probe = false;
    if (max_threads == 0) detail::die_probe(kernel);
  }
  run_grid(kernel, c, [](const void* p) {
    const Ctx& x = *static_cast<const Ctx*>(p);
    std::apply(x.call, x.args);
  }, ctx, max_threads);
}

// The seed of the thread and block order (LL_EMU_SEED, default 1); set_seed changes it for the
// launches that follow (tests).
uint64_t seed();
void set_seed(uint64_t s);

}  // namespace ll::emu

// ---- built-in variables ----------------------------------------------------------------------
#define threadIdx (static_cast<const uint3&>(::ll::emu::detail::t_thread_idx))
#define blockIdx (static_cast<const uint3&>(::ll::emu::detail::t_block_idx))
#define blockDim (static_cast<const dim3&>(::ll::emu::detail::t_block_dim))
#define gridDim (static_cast<const dim3&>(::ll::emu::detail::t_grid_dim))
constexpr int warpSize = 32;

// ---- synchronization -------------------------------------------------------------------------
// __syncthreads() carries its call site, so that threads waiting at different barriers (divergent
// code: "allowed in conditional code only if the conditional evaluates identically across the
// entire thread block", CUDA C++ Programming Guide) are told apart.
namespace ll::emu {
void syncthreads(const char* file, int line);
}
#define __syncthreads() ::ll::emu::syncthreads(__FILE__, __LINE__)

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  const uint64_t* s = ::ll::emu::detail::warp_collect(mask, ::ll::emu::detail::to_bits(var), "__shfl_sync");
  const unsigned lane = ::ll::emu::detail::lane_id(), w = static_cast<unsigned>(width);
  const unsigned src = lane / w * w + static_cast<unsigned>(src_lane) % w;
  if (!(mask >> src & 1u)) ::ll::emu::detail::die_shfl_source("__shfl_sync", src, mask);
  return ::ll::emu::detail::from_bits<T>(s[src]);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  const uint64_t* s = ::ll::emu::detail::warp_collect(mask, ::ll::emu::detail::to_bits(var), "__shfl_down_sync");
  const unsigned lane = ::ll::emu::detail::lane_id(), w = static_cast<unsigned>(width);
  if (lane % w + delta >= w) return var;  // beyond the segment: the lane's own value
  const unsigned src = lane + delta;
  if (!(mask >> src & 1u)) ::ll::emu::detail::die_shfl_source("__shfl_down_sync", src, mask);
  return ::ll::emu::detail::from_bits<T>(s[src]);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  const uint64_t* s = ::ll::emu::detail::warp_collect(mask, ::ll::emu::detail::to_bits(var), "__shfl_up_sync");
  const unsigned lane = ::ll::emu::detail::lane_id(), w = static_cast<unsigned>(width);
  if (lane % w < delta) return var;
  const unsigned src = lane - delta;
  if (!(mask >> src & 1u)) ::ll::emu::detail::die_shfl_source("__shfl_up_sync", src, mask);
  return ::ll::emu::detail::from_bits<T>(s[src]);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  const uint64_t* s = ::ll::emu::detail::warp_collect(mask, ::ll::emu::detail::to_bits(var), "__shfl_xor_sync");
  const unsigned lane = ::ll::emu::detail::lane_id(), w = static_cast<unsigned>(width);
  const unsigned src = lane ^ static_cast<unsigned>(lane_mask);
  if (src / w != lane / w || src >= 32) return var;  // outside the segment: the lane's own value
  if (!(mask >> src & 1u)) ::ll::emu::detail::die_shfl_source("__shfl_xor_sync", src, mask);
  return ::ll::emu::detail::from_bits<T>(s[src]);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const uint64_t* s = ::ll::emu::detail::warp_collect(mask, predicate != 0, "__ballot_sync");
  unsigned r = 0;
  for (unsigned j = 0; j < 32; ++j) {
    if ((mask >> j & 1u) && s[j]) r |= 1u << j;
  }
  return r;
}
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == mask; }
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
// Every write is visible at once in the emulation: a fence or warp barrier has nothing to do.
inline void __syncwarp(unsigned = 0xffffffffu) {}
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- intrinsics ------------------------------------------------------------------------------
// The fast approximations are modelled on how the GPU computes them (the special function unit's
// ex2.approx / lg2.approx / sin.approx / rcp.approx, CUDA C++ Programming Guide, "Intrinsic
// Functions"): the argument is scaled in float exactly as the GPU scales it (x * log2(e) for __expf,
// x / 2 pi for __sinf), the unit's result is the correctly rounded value with its last mantissa bit
// cleared (a deterministic error of up to 1 ulp, inside the unit's stated ~2 ulp), and the scaling
// back is a float multiply. The resulting errors stay inside the guide's bounds: __expf 2 +
// floor(|1.16 x|) ulp; __logf 2^-21.41 absolute in [0.5, 2], 3 ulp elsewhere; __sinf / __cosf
// 2^-21.41 absolute in [-pi, pi]; __fdividef 2 ulp for |y| in [2^-126, 2^126] and 0 for |y| in
// (2^126, 2^128); __powf via exp2(y log2 x). They are not the precise functions, so a test whose
// tolerance is tighter than these bounds fails here as on the GPU.
namespace ll::emu::detail {
inline float sfu_round(double v) {
  float f = static_cast<float>(v);
  if (!std::isfinite(f) || f == 0.0f) return f;
  return __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, f) & ~1u);
}
inline float ex2_approx(float t) { return sfu_round(std::exp2(static_cast<double>(t))); }
inline float lg2_approx(float x) { return sfu_round(std::log2(static_cast<double>(x))); }
inline float rcp_approx(float x) { return sfu_round(1.0 / static_cast<double>(x)); }
// sin.approx / cos.approx of 2 pi t, t = x / (2 pi) rounded to float.
inline float sin_approx(float x) {
  const float t = x * 0.159154943091895336f;
  return sfu_round(std::sin(6.283185307179586 * static_cast<double>(t)));
}
inline float cos_approx(float x) {
  const float t = x * 0.159154943091895336f;
  return sfu_round(std::cos(6.283185307179586 * static_cast<double>(t)));
}
}  // namespace ll::emu::detail
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
inline int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
inline double __longlong_as_double(long long x) { return __builtin_bit_cast(double, x); }
inline long long __double_as_longlong(double x) { return __builtin_bit_cast(long long, x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32);
}
// The _rn intrinsics are never contracted on a GPU; the emulated kernels are compiled with
// -ffp-contract=fast, so these keep their products and sums apart with an opaque barrier.
inline float ll_emu_opaque(float v) {
  __asm__("" : "+x"(v));
  return v;
}
inline float __fmul_rn(float a, float b) { return ll_emu_opaque(a * b); }
inline float __fadd_rn(float a, float b) { return ll_emu_opaque(a + b); }
inline float __fsub_rn(float a, float b) { return ll_emu_opaque(a - b); }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double ll_emu_opaque(double v) {
  __asm__("" : "+x"(v));
  return v;
}
inline double __dmul_rn(double a, double b) { return ll_emu_opaque(a * b); }
inline double __dadd_rn(double a, double b) { return ll_emu_opaque(a + b); }
inline float __fdividef(float a, float b) {
  const float ab = std::fabs(b);
  if (ab > 8.507059173e37f && ab <= 3.402823466e38f) return std::isinf(a) ? NAN : 0.0f;  // (2^126, 2^128)
  return a * ::ll::emu::detail::rcp_approx(b);
}
inline float __expf(float x) { return ::ll::emu::detail::ex2_approx(x * 1.44269504088896341f); }
inline float __exp10f(float x) { return ::ll::emu::detail::ex2_approx(x * 3.32192809488736235f); }
inline float __logf(float x) { return ::ll::emu::detail::lg2_approx(x) * 0.693147180559945309f; }
inline float __log2f(float x) { return ::ll::emu::detail::lg2_approx(x); }
inline float __log10f(float x) { return ::ll::emu::detail::lg2_approx(x) * 0.301029995663981195f; }
inline float __sinf(float x) { return ::ll::emu::detail::sin_approx(x); }
inline float __cosf(float x) { return ::ll::emu::detail::cos_approx(x); }
inline float __powf(float a, float b) { return ::ll::emu::detail::ex2_approx(b * ::ll::emu::detail::lg2_approx(a)); }
inline float __tanf(float x) { return __fdividef(__sinf(x), __cosf(x)); }
inline void __sincosf(float x, float* s, float* c) {
  *s = __sinf(x);
  *c = __cosf(x);
}
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
