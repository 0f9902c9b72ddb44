// hd.h: the one macro that lets a per-element formula be compiled for both backends.
//
// Every formula in kernels/common/ is an inline function marked LL_HD. The CPU loop in
// kernels/cpu/ and the CUDA kernel in kernels/cuda/ both call it, so the two backends differ only
// in how they walk the data, and a CPU test already checks the arithmetic the GPU will do.
#pragma once

#if defined(__CUDACC__)
#define LL_HD __host__ __device__ __forceinline__
#else
#define LL_HD inline
#endif
