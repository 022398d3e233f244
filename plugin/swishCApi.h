/*
 * C ABI of the Swish kernels, exported by libswish_kernels.so and by libswish.so (the TensorRT plugin).
 * Used by the Python ctypes binding (swish_triton/swish_kernels.py) and by the plugin's own enqueue.
 */
#ifndef SWISH_C_API_H
#define SWISH_C_API_H

#include <stdint.h>

#if defined(__GNUC__)
#define SWISH_API __attribute__((visibility("default")))
#else
#define SWISH_API
#endif

#ifdef __cplusplus
extern "C"
{
#endif

/* Bumped when a signature or a code below changes meaning. */
#define SWISH_ABI_VERSION 1

    /* Element types (the values are part of the ABI). */
    enum SwishDType
    {
        SWISH_DTYPE_FLOAT32 = 0,
        SWISH_DTYPE_FLOAT16 = 1,
        SWISH_DTYPE_BFLOAT16 = 2
    };

    /* Return codes (the values are part of the ABI). */
    enum SwishStatus
    {
        SWISH_STATUS_SUCCESS = 0,
        SWISH_STATUS_INVALID_ARGUMENT = 1, /* nothing was launched */
        SWISH_STATUS_CUDA_ERROR = 2,       /* the CUDA runtime refused the launch or a query before it */
        SWISH_STATUS_INTERNAL_ERROR = 3
    };

    /*
     * out[i] = in[i] * sigmoid(beta * in[i]) for i in [0, n), enqueued on `stream` (a cudaStream_t; NULL is the
     * legacy default stream). Asynchronous: returns once the kernel is enqueued.
     * n == 0 succeeds without launching (the pointers may then be NULL). in == out (in place) is allowed; partially
     * overlapping ranges are rejected. Pointers must be device-accessible and aligned to the element size.
     * beta must be finite. Returns a SwishStatus; on failure swish_last_error() describes it.
     */
    SWISH_API int swish_forward(int dtype, const void* in, void* out, int64_t n, float beta, void* stream);

    /*
     * The same in host memory on the calling thread, float32 only (dtype must be SWISH_DTYPE_FLOAT32): for batches
     * too small to repay a trip to the GPU. Synchronous, no CUDA call, works on hosts without a GPU. Within 0.51 ulp of
     * the exact result (plugin/swishHost.cpp). Same argument rules as swish_forward.
     */
    SWISH_API int swish_forward_host(int dtype, const void* in, void* out, int64_t n, float beta);

    /*
     * swish_forward_host over `count` arrays in one call: out[i][j] = Swish(in[i][j]) for j < n[i] (each out[i] may
     * be in[i]). For callers with many small arrays, such as the requests of a dynamic batch computed in place: one
     * call instead of one per array. Every array is checked as swish_forward_host checks its arguments before any is
     * computed, so a refusal (the message names the array) leaves every output untouched. Different arrays must not
     * overlap one another (not checked: like memcpy's arguments). count == 0 succeeds (the lists may then be NULL).
     */
    SWISH_API int swish_forward_host_many(
        int dtype, int64_t count, const void* const* in, void* const* out, const int64_t* n, float beta);

    /* Text of the last failure of a swish_* call on the calling thread; "" after a success. Never NULL. */
    SWISH_API const char* swish_last_error(void);

    /* SWISH_ABI_VERSION of the library (lets a binding check that it matches what it was written for). */
    SWISH_API int swish_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SWISH_C_API_H */
