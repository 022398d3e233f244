/*
 * Swish on the CPU, float32 (swishHost.cpp). Exposed through the C ABI as swish_forward_host (swishCApi.h).
 */
#ifndef SWISH_HOST_H
#define SWISH_HOST_H

#include <cstdint>

namespace swish
{

// out[i] = in[i] * sigmoid(beta * in[i]) for i in [0, n), host memory; in == out allowed. beta must be finite.
void swishHostFloat32(float const* in, float* out, int64_t n, float beta);

} // namespace swish

#endif // SWISH_HOST_H
