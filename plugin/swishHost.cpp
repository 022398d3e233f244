/*
 * Swish on the CPU in float32, for callers that have a small batch in host memory (the Triton Python-backend model
 * computes batches below its gpu_min_elements here: a GPU round trip costs more than the work). One pass over the
 * data, no allocation, no library call per element, written so that the compiler vectorises the loop.
 *
 * Accuracy: every step runs in double precision and the result is rounded to float32 once, so it is within about
 * 0.51 ulp of x * sigmoid(beta * x) for every float32 x and finite beta, subnormal results included:
 *   - t = -beta * x is exact in double (two 24-bit significands);
 *   - t is clamped to [-kClamp, kClamp]: below -kClamp, 1 + e^t rounds to 1 in double; above kClamp the true
 *     |result| is below |x| * e^-kClamp < FLT_MAX * e^-200, far under the smallest float32 subnormal, and the
 *     computation still gives that tiny value, which rounds to +-0;
 *   - e^t = 2^k * e^r with k = round(t / ln 2) and |r| <= ln(2) / 2, r from a two-part ln 2 (Cody and Waite), e^r
 *     from its Taylor series to degree 8 (truncation below 6e-10 relative);
 *   - x / (1 + e^t), rounded to float32.
 * Limits: x = +-inf gives the limits (inf or -0 for beta > 0, mirrored for beta < 0; x / 2 for beta = 0), NaN
 * stays NaN. No branch per element: the clamps are selects, the rounding to an integer is the add-and-subtract of
 * 1.5 * 2^52, and 2^k is built from its bits.
 */
#include "swishHost.h"

#include <cfloat>
#include <cstdint>
#include <cstring>

namespace swish
{
namespace
{

// The loops are inlined into each target clone of swishHostFloat32 below, so that each clone vectorises them.
#if defined(__GNUC__)
#define SWISH_HOST_INLINE inline __attribute__((always_inline))
#else
#define SWISH_HOST_INLINE inline
#endif

constexpr double kClamp = 200.0;
constexpr double kLog2e = 1.4426950408889634074;
// ln 2 in two parts: the high part has 32 significant bits, so k * kLn2Hi is exact for |k| < 2^20.
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kRound = 6755399441055744.0; // 1.5 * 2^52: adding and subtracting it rounds to an integer

SWISH_HOST_INLINE double bitsToDouble(uint64_t bits)
{
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

SWISH_HOST_INLINE uint64_t doubleToBits(double d)
{
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    return bits;
}

// e^r for |r| <= ln(2) / 2 + a little: Horner's scheme over 1/k!, k = 0..8 (truncation below 6e-10 relative, a
// hundredth of a float32 ulp).
SWISH_HOST_INLINE double expSmall(double r)
{
    double p = 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    return p * r + 1.0;
}

// in == out is allowed (each element is read before it is written); the compiler checks other overlaps at run time.
template <int kSign>
SWISH_HOST_INLINE void swishLoop(float const* in, float* out, int64_t n, double negBeta)
{
    for (int64_t i = 0; i < n; ++i)
    {
        double x = in[i];
        double t = negBeta * x;
        t = t > kClamp ? kClamp : t;
        t = t < -kClamp ? -kClamp : t;
        // beta > 0: x = -inf would meet an infinite denominator; the largest finite x gives the limit, -0.
        if (kSign > 0)
        {
            x = x < -static_cast<double>(FLT_MAX) ? -static_cast<double>(FLT_MAX) : x;
        }
        else
        {
            x = x > static_cast<double>(FLT_MAX) ? static_cast<double>(FLT_MAX) : x;
        }
        double const shifted = t * kLog2e + kRound;
        double const k = shifted - kRound;
        double const r = (t - k * kLn2Hi) - k * kLn2Lo;
        // The low bits of `shifted` hold k (two's complement within the 52-bit significand): 2^k from its bits.
        uint64_t const kBits = doubleToBits(shifted);
        double const scale = bitsToDouble((kBits + 1023u) << 52);
        double const e = expSmall(r) * scale;
        out[i] = static_cast<float>(x / (1.0 + e));
    }
}

} // namespace

// x86-64: copies of the loop for AVX-512F (eight doubles per instruction), AVX2 (four) and the baseline (two); the
// loader picks the widest the CPU reports (ISA flags, not CPU models or levels, which virtual machines often hide). The build gives this file -fno-trapping-math so that the clamps become selects (CMakeLists.txt).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void swishHostFloat32(float const* in, float* out, int64_t n, float beta)
{
    double const negBeta = -static_cast<double>(beta);
    if (beta > 0.0f)
    {
        swishLoop<1>(in, out, n, negBeta);
    }
    else if (beta < 0.0f)
    {
        swishLoop<-1>(in, out, n, negBeta);
    }
    else
    {
        // sigmoid(0) = 1/2 everywhere, the infinities included (-beta * inf would be NaN in the loop).
        for (int64_t i = 0; i < n; ++i)
        {
            out[i] = in[i] * 0.5f;
        }
    }
}

} // namespace swish
