// emu_cublas.cpp: cublasSgemm and cublasSgemmStridedBatched for the CUDA emulator, with cuBLAS's
// column-major semantics (cuBLAS Library User Guide, "cublas<t>gemm()"):
//   C = alpha op(A) op(B) + beta C,  op(A) m x k, op(B) k x n, C m x n, all column-major;
//   A is stored m x k (lda >= max(1, m)) when transa == N, k x m (lda >= max(1, k)) otherwise;
//   B is stored k x n (ldb >= max(1, k)) when transb == N, n x k (ldb >= max(1, n)) otherwise;
//   ldc >= max(1, m). Any violation, or m, n, k or batchCount < 0, is CUBLAS_STATUS_INVALID_VALUE.
// beta == 0 does not read C (NaNs there do not propagate). The operands must lie in device memory
// (cudaMalloc): a range outside every allocation aborts with a message, where a GPU would fault.
// Not OpenBLAS's result bit for bit, as cuBLAS's is not: K is split into blocks of kKBlock, each
// block's product is computed by OpenBLAS into a scratch matrix, and the blocks are summed from the
// last to the first, then C = alpha sum + beta C (a summation order unlike OpenBLAS's own, so a test
// that wants CPU bits from a GPU GEMM fails here as it would on the GPU). With the math mode
// CUBLAS_TF32_TENSOR_OP_MATH, A and B are first rounded to TF32 (10 explicit mantissa bits, round to
// nearest with ties away from zero, as cvt.rna.tf32.f32), the tensor cores' input precision.
// The product is queued on the handle's stream (ll::emu::enqueue) and runs when the stream syncs;
// arguments are checked at the call.
#include <cblas.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cublas_v2.h"

#include <algorithm>

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
};

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
  }
  return "unknown error";
}

namespace {

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "\nCUDA emulator (cuBLAS): %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

bool op_ok(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }
int max1(int v) { return v > 1 ? v : 1; }

// A column-major rows x cols matrix with leading dimension ld at p must be device memory.
void check_operand(const char* fn, const char* name, const float* p, int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return;
  const size_t elems = static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows);
  if (!p || !ll::emu::is_device_range(p, elems * sizeof(float))) {
    die(std::string(fn) + ": operand " + name + " (" + std::to_string(rows) + " x " + std::to_string(cols) +
        ", ld " + std::to_string(ld) + ") is not inside one device allocation (a GPU would fault)");
  }
}

constexpr int kKBlock = 64;

// x rounded to TF32: keep 10 mantissa bits, round half away from zero (NaN and Inf unchanged).
float tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}
// A rows x cols column-major operand (ld) copied compactly with each value rounded to TF32.
std::vector<float> tf32_copy(const float* p, int rows, int cols, int ld) {
  std::vector<float> out(static_cast<size_t>(rows) * cols);
  for (int j = 0; j < cols; ++j) {
    for (int i = 0; i < rows; ++i) out[static_cast<size_t>(j) * rows + i] = tf32(p[static_cast<size_t>(j) * ld + i]);
  }
  return out;
}

// One product; arguments already validated.
void sgemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
               const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc, bool use_tf32) {
  if (k == 0 || alpha == 0.0f) {
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        float& c = C[static_cast<size_t>(j) * ldc + i];
        c = beta == 0.0f ? 0.0f : beta * c;
      }
    }
    return;
  }
  const bool an = ta == CUBLAS_OP_N, bn = tb == CUBLAS_OP_N;
  std::vector<float> a32, b32;
  if (use_tf32) {
    a32 = tf32_copy(A, an ? m : k, an ? k : m, lda);
    b32 = tf32_copy(B, bn ? k : n, bn ? n : k, ldb);
    A = a32.data();
    lda = an ? m : k;
    B = b32.data();
    ldb = bn ? k : n;
  }
  // sum = the K blocks' products, added from the last block to the first.
  std::vector<float> sum(static_cast<size_t>(m) * n, 0.0f), part(static_cast<size_t>(m) * n);
  const int blocks = (k + kKBlock - 1) / kKBlock;
  for (int blk = blocks - 1; blk >= 0; --blk) {
    const int k0 = blk * kKBlock, kb = std::min(kKBlock, k - k0);
    // Block k0..k0+kb of op(A)'s columns and op(B)'s rows.
    const float* Ab = an ? A + static_cast<size_t>(k0) * lda : A + k0;
    const float* Bb = bn ? B + k0 : B + static_cast<size_t>(k0) * ldb;
    cblas_sgemm(CblasColMajor, an ? CblasNoTrans : CblasTrans, bn ? CblasNoTrans : CblasTrans, m, n, kb, 1.0f,
                Ab, lda, Bb, ldb, 0.0f, part.data(), m);
    for (size_t e = 0; e < sum.size(); ++e) sum[e] += part[e];
  }
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      float& c = C[static_cast<size_t>(j) * ldc + i];
      const float v = alpha * sum[static_cast<size_t>(j) * m + i];
      c = beta == 0.0f ? v : v + beta * c;  // beta = 0: C is not read (NaNs there do not propagate)
    }
  }
}

bool tf32_mode(cublasHandle_t h) {
  return (h->mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
}

cublasStatus_t validate(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                        int k, const float* alpha, int lda, int ldb, const float* beta, int ldc) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!op_ok(ta) || !op_ok(tb) || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < max1(ta == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < max1(tb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < max1(m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                           int m, int n, int k, const float* alpha, const float* A, int lda,
                           const float* B, int ldb, const float* beta, float* C, int ldc) {
  const cublasStatus_t st = validate(handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc);
  if (st != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0) return st;
  if (k > 0 && *alpha != 0.0f) {
    check_operand("cublasSgemm", "A", A, transa == CUBLAS_OP_N ? m : k, transa == CUBLAS_OP_N ? k : m, lda);
    check_operand("cublasSgemm", "B", B, transb == CUBLAS_OP_N ? k : n, transb == CUBLAS_OP_N ? n : k, ldb);
  }
  check_operand("cublasSgemm", "C", C, m, n, ldc);
  const float al = *alpha, be = *beta;
  const bool t = tf32_mode(handle);
  ll::emu::enqueue(handle->stream, [=] { sgemm_one(transa, transb, m, n, k, al, A, lda, B, ldb, be, C, ldc, t); },
                   "cublasSgemm");
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb,
                                         long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batchCount) {
  const cublasStatus_t st = validate(handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (batchCount < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
  const float al = *alpha, be = *beta;
  const bool t = tf32_mode(handle);
  for (int b = 0; b < batchCount; ++b) {
    const float* Ab = A + b * strideA;
    const float* Bb = B + b * strideB;
    float* Cb = C + b * strideC;
    if (k > 0 && *alpha != 0.0f) {
      check_operand("cublasSgemmStridedBatched", "A", Ab, transa == CUBLAS_OP_N ? m : k,
                    transa == CUBLAS_OP_N ? k : m, lda);
      check_operand("cublasSgemmStridedBatched", "B", Bb, transb == CUBLAS_OP_N ? k : n,
                    transb == CUBLAS_OP_N ? n : k, ldb);
    }
    check_operand("cublasSgemmStridedBatched", "C", Cb, m, n, ldc);
    ll::emu::enqueue(handle->stream,
                     [=] { sgemm_one(transa, transb, m, n, k, al, Ab, lda, Bb, ldb, be, Cb, ldc, t); },
                     "cublasSgemmStridedBatched");
  }
  return CUBLAS_STATUS_SUCCESS;
}
