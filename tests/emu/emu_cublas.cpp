// emu_cublas.cpp: cublasSgemm and cublasSgemmStridedBatched for the CUDA emulator, with cuBLAS's
// column-major semantics (cuBLAS Library User Guide, "cublas<t>gemm()"):
//   C = alpha op(A) op(B) + beta C,  op(A) m x k, op(B) k x n, C m x n, all column-major;
//   A is stored m x k (lda >= max(1, m)) when transa == N, k x m (lda >= max(1, k)) otherwise;
//   B is stored k x n (ldb >= max(1, k)) when transb == N, n x k (ldb >= max(1, n)) otherwise;
//   ldc >= max(1, m). Any violation, or m, n, k or batchCount < 0, is CUBLAS_STATUS_INVALID_VALUE.
// beta == 0 does not read C (NaNs there do not propagate). The operands must lie in device memory
// (cudaMalloc): a range outside every allocation aborts with a message, where a GPU would fault.
// The math mode is recorded only: GEMMs are full FP32 (OpenBLAS), TF32 is not emulated.
#include <cblas.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cublas_v2.h"

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

// One product; arguments already validated.
void sgemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
               const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (beta == 0.0f) {
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) C[static_cast<size_t>(j) * ldc + i] = 0.0f;
    }
  }
  if (k == 0 || alpha == 0.0f) {
    if (beta != 0.0f && beta != 1.0f) {
      for (int j = 0; j < n; ++j) {
        for (int i = 0; i < m; ++i) C[static_cast<size_t>(j) * ldc + i] *= beta;
      }
    }
    return;
  }
  cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
              tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
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
  sgemm_one(transa, transb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
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
    sgemm_one(transa, transb, m, n, k, *alpha, Ab, lda, Bb, ldb, *beta, Cb, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}
