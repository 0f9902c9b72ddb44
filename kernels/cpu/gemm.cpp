// gemm.cpp: C = alpha op(A) op(B) + beta C through OpenBLAS's cblas_sgemm (see kernels/gemm.h).
//
// Everything is row-major and contiguous, so the leading dimension of a stored matrix is its number
// of columns: A is M x K (lda = K) or, transposed, K x M (lda = M); B is K x N (ldb = N) or N x K
// (ldb = K); C is M x N (ldc = N).
//
// Threads: OpenMP only. Debian's default OpenBLAS runs its own pthreads, which busy-wait between
// calls; beside our OpenMP loops (whose threads busy-wait too) on the same cores the two pools
// starve each other: a DCGAN conv layer (bench_conv) took 36 ms that way against 8 ms with either
// pool quiet. So OpenBLAS is switched to one thread, and gemm cuts C into tiles along its longer
// side, one single-threaded cblas_sgemm per tile, the tiles shared by an OpenMP loop. The tiling
// depends on the shape alone, never on the thread count, and no tile splits the K sum, so C is
// bit-identical for any number of threads. Called inside an OpenMP parallel region, the loop runs
// on the calling thread.
#include "kernels/gemm.h"

#include <cblas.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace ll::kernels::cpu {

namespace {
// Debian's libopenblas0 takes 32-bit integers (blasint); the 64-bit build is another package.
int blas_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw std::invalid_argument(std::string("gemm: ") + what + " = " + std::to_string(v) +
                                " is negative or does not fit the BLAS integer (32 bits)");
  }
  return static_cast<int>(v);
}

// Once per process. Only for OpenBLAS's pthreads build (openblas_get_parallel() == 1): its OpenMP
// build already runs single-threaded inside our parallel regions, and there
// openblas_set_num_threads would also set OpenMP's thread count for the whole program.
void blas_single_threaded() {
  static const bool done = [] {
    if (openblas_get_parallel() == 1) openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

// Below this many multiply-adds one call on one thread is as fast as splitting.
constexpr int64_t kSplitMacs = int64_t{1} << 20;
// Tiles are at least about this wide, and at most kMaxTiles of them (each tile packs the other
// operand again).
constexpr int64_t kMinTile = 64;
constexpr int64_t kMaxTiles = 16;
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C) {
  const int m = blas_int(M, "M"), n = blas_int(N, "N"), k = blas_int(K, "K");
  if (m == 0 || n == 0) return;  // C is empty
  if (k == 0) {
    // The product is an empty sum. BLAS would scale C by beta too, but rejects lda = 0, so do it
    // here; beta = 0 writes zeros without reading C (BLAS semantics: NaNs in C do not survive).
    const int64_t mn = M * N;
    if (beta == 0.0f) {
      std::fill(C, C + mn, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t i = 0; i < mn; ++i) C[i] *= beta;
    }
    return;
  }
  blas_single_threaded();
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  const int lda = trans_a ? m : k;
  const int ldb = trans_b ? k : n;

  // Cut the longer side of C into a power-of-two number of near-equal tiles (boundaries on
  // multiples of 16, the micro-kernels' width), so that 2, 4, 8 ... threads share them evenly.
  const bool split_rows = M >= N;
  const int64_t side = split_rows ? M : N;
  int64_t tiles = 1;
  if (M * N * K >= kSplitMacs) {
    while (tiles * 2 <= kMaxTiles && side / (tiles * 2) >= kMinTile) tiles *= 2;
  }
  auto boundary = [&](int64_t t) { return t == tiles ? side : side * t / tiles / 16 * 16; };

#pragma omp parallel for schedule(static) if (tiles > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t begin = boundary(t);
    const int len = static_cast<int>(boundary(t + 1) - begin);
    if (split_rows) {
      // rows [begin, begin + len) of C and of op(A), i.e. of A, or columns of A when transposed
      const float* a = trans_a ? A + begin : A + begin * K;
      cblas_sgemm(CblasRowMajor, ta, tb, len, n, k, alpha, a, lda, B, ldb, beta, C + begin * N, n);
    } else {
      // columns [begin, begin + len) of C and of op(B)
      const float* b = trans_b ? B + begin * K : B + begin;
      cblas_sgemm(CblasRowMajor, ta, tb, m, len, k, alpha, A, lda, b, ldb, beta, C + begin, n);
    }
  }
}

// ---- OpenBLAS's kernel set (kernels/gemm.h) ----------------------------------------------------

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name ? name : "";
}

std::string better_blas_core() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";  // chosen by the user (or by us)
  // OpenBLAS 0.3.21's x86-64 kernel sets without AVX2 (its driver/others/dynamic.c names).
  static constexpr std::array<const char*, 14> kPreAvx2 = {
      "prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom",
      "opteron", "opteron(sse3)", "barcelona", "bobcat", "bulldozer", "piledriver", "steamroller"};
  std::string core = blas_core_name();
  for (char& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool old = false;
  for (const char* name : kPreAvx2) old = old || core == name;
  if (!old) return "";
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void restart_with_better_blas_core(char** argv) {
  const std::string core = better_blas_core();
  if (core.empty() || argv == nullptr || argv[0] == nullptr) return;
  // OPENBLAS_CORETYPE is set before the restart, so the restarted program finds it and goes on.
  if (setenv("OPENBLAS_CORETYPE", core.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when the restart failed (no /proc): run on with the kernels we have. The variable
  // stays set (harmless: OpenBLAS has read it already) so that child processes get the fast ones.
}

}  // namespace ll::kernels::cpu
