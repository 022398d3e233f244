/*
 * Swish kernels: y = x * sigmoid(beta * x), elementwise, on a CUDA stream.
 *
 * This header is free of TensorRT types: it is shared by the TensorRT plugin, the C ABI (swishCApi.h) and the
 * TensorRT-free libswish_kernels.so. It is plain C++ (no kernel syntax) so that host compilers can include it.
 */
#ifndef SWISH_KERNEL_H
#define SWISH_KERNEL_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace swish
{

//! Launches y[i] = x[i] * sigmoid(beta * x[i]) for i in [0, n) on `stream`; FP16/BF16 are computed in FP32.
//!
//! Preconditions (checked by the C ABI, swish_forward, which is the entry point callers should use): n >= 0;
//! when n > 0, both pointers are device pointers aligned to sizeof(T) and the ranges are identical (in place) or
//! disjoint; beta is finite. Any alignment beyond sizeof(T) and any n are handled (16-byte vector body, scalar
//! head and tail). n == 0 launches nothing.
//!
//! \return cudaSuccess, or the error of the launch (never an error left pending by earlier, unrelated calls).
template <typename T>
cudaError_t swishImpl(cudaStream_t stream, T const* input, T* output, int64_t n, float beta);

extern template cudaError_t swishImpl<float>(cudaStream_t, float const*, float*, int64_t, float);
extern template cudaError_t swishImpl<__half>(cudaStream_t, __half const*, __half*, int64_t, float);
extern template cudaError_t swishImpl<__nv_bfloat16>(
    cudaStream_t, __nv_bfloat16 const*, __nv_bfloat16*, int64_t, float);

} // namespace swish

#endif // SWISH_KERNEL_H
