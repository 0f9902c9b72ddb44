// elementwise.h: the small arithmetic the engine needs between ops (and for gradient accumulation).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels::cpu {
void fill(float* y, float value, int64_t n);
void copy(const float* x, float* y, int64_t n);
void add(const float* a, const float* b, float* y, int64_t n);  // y = a + b
void sub(const float* a, const float* b, float* y, int64_t n);  // y = a - b
void mul(const float* a, const float* b, float* y, int64_t n);  // y = a * b
void scale(const float* x, float alpha, float* y, int64_t n);   // y = alpha * x
void add_scalar(const float* x, float c, float* y, int64_t n);  // y = x + c
void axpy(float alpha, const float* x, float* y, int64_t n);    // y += alpha * x
void exp(const float* x, float* y, int64_t n);                  // y = exp(x)
void log(const float* x, float* y, int64_t n);                  // y = log(x)
// Copies `outer` rows of `len` floats: dst[o * dst_stride + dst_offset + j] =
// src[o * src_stride + src_offset + j]. Concatenation and narrowing along a dimension.
void copy_rows(const float* src, int64_t src_stride, int64_t src_offset, float* dst,
               int64_t dst_stride, int64_t dst_offset, int64_t outer, int64_t len);
// Transpose of a (rows, cols) matrix into (cols, rows).
void transpose2d(const float* x, float* y, int64_t rows, int64_t cols);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/elementwise.cu): the arguments of cpu::, device pointers, on `stream`.
void fill(float* y, float value, int64_t n, Stream stream);
void copy(const float* x, float* y, int64_t n, Stream stream);
void add(const float* a, const float* b, float* y, int64_t n, Stream stream);
void sub(const float* a, const float* b, float* y, int64_t n, Stream stream);
void mul(const float* a, const float* b, float* y, int64_t n, Stream stream);
void scale(const float* x, float alpha, float* y, int64_t n, Stream stream);
void add_scalar(const float* x, float c, float* y, int64_t n, Stream stream);
void axpy(float alpha, const float* x, float* y, int64_t n, Stream stream);
void exp(const float* x, float* y, int64_t n, Stream stream);
void log(const float* x, float* y, int64_t n, Stream stream);
void copy_rows(const float* src, int64_t src_stride, int64_t src_offset, float* dst,
               int64_t dst_stride, int64_t dst_offset, int64_t outer, int64_t len, Stream stream);
void transpose2d(const float* x, float* y, int64_t rows, int64_t cols, Stream stream);
}  // namespace ll::kernels::cuda
