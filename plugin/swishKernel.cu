/*
 * Swish kernels (see swishKernel.h). All device code of the project lives in this file.
 *
 * Numerics (README "Numerics"). FP32: the sigmoid is evaluated on e = exp(-|t|) with t = beta * x, so exp never
 * overflows; the rounding errors of t and of the exponent's scaling are carried by FMAs and folded back into e,
 * because exp is ill-conditioned for large |t|; the hardware's ex2/rcp approximations are used, the reciprocal with
 * one Newton step. FP16/BF16: x / (1 + 2^(-beta * log2(e) * x)) in FP32 with one ex2.approx and one rcp.approx per
 * element and no correction terms: their relative error (below 2^-16 for |t| <= 80) is far under half an ulp of
 * the 16-bit result, and the short chain keeps these kernels memory-bound (README "Performance"). Where t < -80
 * (results near FP32's subnormal range) a rarely taken branch, shared by all types, scales the power of two so
 * that only the last step rounds into the subnormal range. beta == 0 (x / 2) and |beta| > 2.3e38 (double
 * precision throughout) have their own instantiations. Compile without --use_fast_math / -ftz=true: the final
 * products must keep subnormal results.
 */
#include "swishKernel.h"

#include <array>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>

// Store hint for the vector body: 1 = st.global.cs (evict-first streaming stores), 0 = plain stores.
#ifndef SWISH_STREAMING_STORES
#define SWISH_STREAMING_STORES 0
#endif

// 16-byte packs per thread in the FP16/BF16 vector kernel (all loads are issued before the first is used).
#ifndef SWISH_HALF_PACKS_PER_THREAD
#define SWISH_HALF_PACKS_PER_THREAD 1
#endif

namespace swish
{
namespace detail
{

constexpr int kThreads = 128;         // threads per block (small blocks balance short grids better)
// Grid cap of the vector kernel, in resident waves of the device (SM count x resident blocks per SM, cached per
// device): below the cap every thread handles its packs once and no block loops; above it the blocks loop
// grid-stride. One resident wave that loops measured 0.85-0.93x copy bandwidth on an H100; many short blocks >= 0.99x,
// because blocks then start and finish at different times and loads overlap other blocks' arithmetic
// (docs/plugin.md, "Kernels").
constexpr int64_t kMaxWaves = 256;
constexpr int kScalarUnroll = 8;      // elements in flight per thread in the unaligned fallback
constexpr int kMaxCachedDevices = 64; // launch limits are cached per device ordinal below this

constexpr float kColdBelow = -115.4F; // u = t * log2(e) < -115.4 (t < -80): exp(t) nears FP32's normal range
constexpr float kClampAbsU = 144.F;   // |u| > 144: 2^-|u| is flushed to 0 anyway; keeps the arithmetic finite
constexpr float kLn2 = 0.693147182F;

//! beta * log2(e) as an unevaluated sum hi + lo of floats (computed once per launch, in double, on the host).
struct ScaledBeta
{
    float beta; // for the double-precision cold path
    float hi;
    float lo;
};

template <typename T>
struct Convert;

template <>
struct Convert<float>
{
    static __device__ __forceinline__ float toFloat(float v)
    {
        return v;
    }
    static __device__ __forceinline__ float fromFloat(float v)
    {
        return v;
    }
};

template <>
struct Convert<__half>
{
    using Pair = __half2;
    static __device__ __forceinline__ float toFloat(__half v)
    {
        return __half2float(v);
    }
    static __device__ __forceinline__ __half fromFloat(float v)
    {
        return __float2half_rn(v);
    }
    static __device__ __forceinline__ float2 toFloat2(__half2 v)
    {
        return __half22float2(v);
    }
    static __device__ __forceinline__ __half2 fromFloat2(float lo, float hi)
    {
        return __floats2half2_rn(lo, hi); // one packing conversion (F2FP) for both
    }
};

template <>
struct Convert<__nv_bfloat16>
{
    using Pair = __nv_bfloat162;
    static __device__ __forceinline__ float toFloat(__nv_bfloat16 v)
    {
        return __bfloat162float(v);
    }
    static __device__ __forceinline__ __nv_bfloat16 fromFloat(float v)
    {
        return __float2bfloat16_rn(v);
    }
    static __device__ __forceinline__ float2 toFloat2(__nv_bfloat162 v)
    {
        return __bfloat1622float2(v);
    }
    static __device__ __forceinline__ __nv_bfloat162 fromFloat2(float lo, float hi)
    {
        return __floats2bfloat162_rn(lo, hi);
    }
};

__device__ __forceinline__ float ex2Approx(float v)
{
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
    return r;
}

__device__ __forceinline__ float rcpApprox(float v)
{
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
    return r;
}

// FP32 fast path for every element with t = beta * x >= -80 (README "Numerics"); finite arithmetic for all inputs;
// lowers `uMin` to u where the caller must use swishColdFloat instead (u < kColdBelow). With u = t * log2(e):
// sigmoid(t) = 1 / (1 + e) for t >= 0 and e / (1 + e) for t < 0, where e = 2^-|u| in (0, 1] never overflows.
// u is kept as hi + lo (FMA residual plus the rounding of beta * log2(e)) and lo is folded into e, because exp is
// ill-conditioned for large |t|: rounding u alone would cost a relative error of |t| * 2^-24.
__device__ __forceinline__ float swishFast(float x, ScaledBeta const& b, float& uMin)
{
    float const u = b.hi * x;
    float const uLo = fmaf(b.lo, x, fmaf(b.hi, x, -u)); // u + uLo == beta * log2(e) * x to ~2^-48 (NaN if u is inf)
    uMin = fminf(uMin, u);
    float const e0 = ex2Approx(-fminf(fabsf(u), kClampAbsU));
    // e = 2^-|u + uLo| = e0 * 2^(-sign(u) * uLo) ~ e0 * (1 + c) with c = -sign(u) * uLo * ln2 (|c| < 2^-16). The sign
    // goes in with one bit operation. uLo is not finite only where u is: u = +inf (then c is +inf or NaN, and the
    // clamp to 1 keeps e = 0 * c from becoming NaN) or u = -inf, which is the cold path's.
    float const sUlo = __int_as_float(__float_as_int(uLo) ^ (~__float_as_int(u) & static_cast<int>(0x80000000U)));
    float const c = fminf(kLn2 * sUlo, 1.F);
    float const e = fmaf(e0, c, e0);
    float const d = 1.F + e;
    float r = rcpApprox(d);
    r = fmaf(r, fmaf(-d, r, 1.F), r); // one Newton step: 1 / d to about half an ulp (about one ulp without it)
    return (x * (u < 0.F ? e : 1.F)) * r;
}

// FP16/BF16 fast path, same domain (u >= kColdBelow): x / (1 + 2^v) with v = -u = -beta * log2(e) * x rounded once.
// The error of v (|v| * 2^-23 <= 2^-16 here), of ex2.approx, of 1 + e and of rcp.approx add up to a relative error
// below 2^-15, far under half an ulp of FP16 (2^-11) or BF16 (2^-8), so the rounded result stays within the bound.
// For v > 0 (t < 0), 2^v grows but stays below 2^115.4 on this path, so 1 / (1 + 2^v) stays a normal float.
// Raises `vMax` to v: the caller sends v > 115.4 (t < -80, also x = +-inf with beta * x = -inf, where 2^v = inf would
// give x * 0 = NaN) to the cold path.
__device__ __forceinline__ float swishHalfFast(float x, float negHi, float& vMax)
{
    float const v = negHi * x;
    vMax = fmaxf(vMax, v);
    return x * rcpApprox(1.F + ex2Approx(v));
}

// Rare path: t < -80 (u < -115.4), where exp(t) < 2^-115 so 1 + exp(t) == 1 and y = x * 2^(u + uLo): the power of
// two is split into 2^-n * 2^-f (n integer) so that the product stays normal until ldexpf rounds it once into the
// subnormal range. Float arithmetic only, so that the hot loop carries no double-precision code or call.
__device__ __forceinline__ float swishColdFloat(float x, ScaledBeta const& b)
{
    float const u = b.hi * x;
    float const a = -u; // > 115.4, or +inf
    if (!(a < 300.F))
    {
        return copysignf(0.F, x); // |y| < 2^128 * 2^-300: zero of the sign of x (also x = +-inf, t = -inf)
    }
    float const uLo = fmaf(b.lo, x, fmaf(b.hi, x, -u));
    float const n = floorf(a);
    float const f = a - n; // exact, in [0, 1)
    float const m = x * ex2Approx(-f) * fmaf(kLn2, uLo, 1.F);
    return ldexpf(m, -static_cast<int>(n));
}

// Betas beyond float range once scaled by log2(e) (|beta| > 2.3e38): every element in double. Correct for every
// input and beta != 0; never on the hot path.
__device__ __noinline__ float swishColdPath(float x, float beta)
{
    if (x != x)
    {
        return x;
    }
    if (isinf(x))
    {
        // beta * x = +inf: sigmoid -> 1, the result is x; beta * x = -inf: the sigmoid goes to 0 faster than |x|
        // grows, the limit is a zero of the sign of x.
        return (beta > 0.F) == (x > 0.F) ? x : copysignf(0.F, x);
    }
    double const xd = static_cast<double>(x);
    double const bx = static_cast<double>(beta) * xd; // exact: 24 + 24 significant bits
    return static_cast<float>(xd / (1.0 + exp(-bx)));
}

template <typename T>
struct alignas(16) Pack
{
    static constexpr int kSize = 16 / static_cast<int>(sizeof(T));
    T v[kSize];
};

// Packs per thread in the vector kernel: one 16-byte pack for every type. On an H200, FP16/BF16 with one pack per
// thread ran at 0.994-1.002x copy from 16M to 64M elements and 1.012-1.016x at 256M, against 0.974-0.998x and
// 1.004-1.012x with two packs, in each of five processes (README "Performance"; the swing at 16M seen earlier was
// the benchmark timing the host's launch overhead, not the kernel).
template <typename T>
struct PacksPerThread
{
    static constexpr int value = sizeof(T) == 2 ? SWISH_HALF_PACKS_PER_THREAD : 1;
};

// Kernel modes, chosen per launch on the host.
enum Mode : int
{
    kGeneral = 0,  // beta != 0 and |beta| * log2(e) within float range
    kBetaZero = 1, // x / 2
    kHugeBeta = 2  // |beta| > 2.3e38: double precision for every element
};

// The (rare) cold elements of a pack, redone from the intact input pack.
template <typename T>
__device__ __forceinline__ void swishPackCold(Pack<T> const& in, Pack<T>& out, ScaledBeta const& b)
{
#pragma unroll
    for (int k = 0; k < Pack<T>::kSize; ++k)
    {
        float const x = Convert<T>::toFloat(in.v[k]);
        if (b.hi * x < kColdBelow)
        {
            out.v[k] = Convert<T>::fromFloat(swishColdFloat(x, b));
        }
    }
}

// One pack in, one pack out. The input pack stays intact so that the (rare) cold elements can be redone from it
// without keeping float copies of every element alive.
template <typename T, int kMode>
__device__ __forceinline__ Pack<T> swishPack(Pack<T> const& in, ScaledBeta const& b)
{
    Pack<T> out;
    if (kMode == kHugeBeta)
    {
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k)
        {
            out.v[k] = Convert<T>::fromFloat(swishColdPath(Convert<T>::toFloat(in.v[k]), b.beta));
        }
        return out;
    }
    if (kMode == kBetaZero)
    {
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k)
        {
            out.v[k] = Convert<T>::fromFloat(0.5F * Convert<T>::toFloat(in.v[k])); // x / 2, also for +-inf
        }
        return out;
    }
    bool cold = false;
    if constexpr (sizeof(T) == 2)
    {
        // Pairs: one conversion pair in, one packing conversion out.
        using Pair = typename Convert<T>::Pair;
        Pair const* inPairs = reinterpret_cast<Pair const*>(in.v);
        Pair* outPairs = reinterpret_cast<Pair*>(out.v);
        float const negHi = -b.hi;
        float vMax = -INFINITY; // NaN inputs leave it alone (fmaxf ignores NaN) and propagate through the fast path
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize / 2; ++k)
        {
            float2 const x = Convert<T>::toFloat2(inPairs[k]);
            float const y0 = swishHalfFast(x.x, negHi, vMax);
            float const y1 = swishHalfFast(x.y, negHi, vMax);
            outPairs[k] = Convert<T>::fromFloat2(y0, y1);
        }
        cold = vMax > -kColdBelow;
    }
    else
    {
        float uMin = INFINITY;
#pragma unroll
        for (int k = 0; k < Pack<T>::kSize; ++k)
        {
            out.v[k] = Convert<T>::fromFloat(swishFast(Convert<T>::toFloat(in.v[k]), b, uMin));
        }
        cold = uMin < kColdBelow;
    }
    if (cold)
    {
        swishPackCold(in, out, b);
    }
    return out;
}

template <typename T, int kMode>
__device__ __forceinline__ T swishOne(T in, ScaledBeta const& b)
{
    float const x = Convert<T>::toFloat(in);
    if (kMode == kHugeBeta)
    {
        return Convert<T>::fromFloat(swishColdPath(x, b.beta));
    }
    if (kMode == kBetaZero)
    {
        return Convert<T>::fromFloat(0.5F * x);
    }
    if (b.hi * x < kColdBelow)
    {
        return Convert<T>::fromFloat(swishColdFloat(x, b));
    }
    float unused = 0.F;
    if constexpr (sizeof(T) == 2)
    {
        return Convert<T>::fromFloat(swishHalfFast(x, -b.hi, unused));
    }
    else
    {
        return Convert<T>::fromFloat(swishFast(x, b, unused));
    }
}

template <typename T>
__device__ __forceinline__ void storePack(Pack<T>* dst, Pack<T> const& value)
{
#if SWISH_STREAMING_STORES
    __stcs(reinterpret_cast<uint4*>(dst), *reinterpret_cast<uint4 const*>(&value));
#else
    *dst = value;
#endif
}

// Elements [0, head) and [tailStart, n) scalar; the 16-byte-aligned body [head, tailStart) as Pack<T> vectors,
// kPacks per thread (block b covers packs [b * kThreads * kPacks, (b + 1) * kThreads * kPacks), each load coalesced
// across the block), grid-stride beyond the grid cap (kMaxWaves). in and out have the same address modulo 16, so
// one head aligns both. in == out (in place) is allowed, which is why the pointers are not __restrict__.
template <typename T, int kMode>
__global__ void __launch_bounds__(kThreads) swishVectorKernel(
    T const* in, T* out, int64_t head, int64_t nPacks, int64_t tailStart, int64_t n, ScaledBeta beta)
{
    constexpr int kPacks = PacksPerThread<T>::value;
    if (blockIdx.x == 0) // head and tail are shorter than a pack: one uniform test keeps them off other blocks' path
    {
        int const t = static_cast<int>(threadIdx.x);
        if (t < head)
        {
            out[t] = swishOne<T, kMode>(in[t], beta);
        }
        if (t < n - tailStart)
        {
            out[tailStart + t] = swishOne<T, kMode>(in[tailStart + t], beta);
        }
    }

    Pack<T> const* src = reinterpret_cast<Pack<T> const*>(in + head);
    Pack<T>* dst = reinterpret_cast<Pack<T>*>(out + head);
    int64_t const stride = static_cast<int64_t>(gridDim.x) * kThreads * kPacks;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads * kPacks + threadIdx.x; i < nPacks; i += stride)
    {
        // Every load into registers first: passing src[i] by reference lets the compiler read it element by element
        // (in and out may alias), which measured about 2 % below copy bandwidth for FP16/BF16 on an H100.
        Pack<T> values[kPacks];
#pragma unroll
        for (int p = 0; p < kPacks; ++p)
        {
            if (p == 0 || i + p * kThreads < nPacks)
            {
                values[p] = src[i + p * kThreads];
            }
        }
#pragma unroll
        for (int p = 0; p < kPacks; ++p)
        {
            if (p == 0 || i + p * kThreads < nPacks)
            {
                storePack(dst + i + p * kThreads, swishPack<T, kMode>(values[p], beta));
            }
        }
    }
}

// Fallback when in and out differ in alignment modulo 16: element-wide accesses, still coalesced.
template <typename T, int kMode>
__global__ void __launch_bounds__(kThreads) swishScalarKernel(T const* in, T* out, int64_t n, ScaledBeta beta)
{
    int64_t const gridThreads = static_cast<int64_t>(gridDim.x) * kThreads;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; base < n;
         base += gridThreads * kScalarUnroll)
    {
        T values[kScalarUnroll];
#pragma unroll
        for (int u = 0; u < kScalarUnroll; ++u)
        {
            int64_t const i = base + u * gridThreads;
            if (i < n)
            {
                values[u] = in[i];
            }
        }
#pragma unroll
        for (int u = 0; u < kScalarUnroll; ++u)
        {
            int64_t const i = base + u * gridThreads;
            if (i < n)
            {
                out[i] = swishOne<T, kMode>(values[u], beta);
            }
        }
    }
}

// Most blocks that are resident at once on the current device for `kernel`: a grid-stride launch larger than
// this only adds a partial last wave. Cached per (kernel, device), since the query costs microseconds.
template <typename Kernel>
cudaError_t residentGridLimit(Kernel kernel, std::array<std::atomic<int>, kMaxCachedDevices>& cache, int64_t& limit)
{
    int device = 0;
    cudaError_t status = cudaGetDevice(&device);
    if (status != cudaSuccess)
    {
        return status;
    }
    bool const cacheable = device >= 0 && device < kMaxCachedDevices;
    if (cacheable)
    {
        int const cached = cache[static_cast<size_t>(device)].load(std::memory_order_relaxed);
        if (cached > 0)
        {
            limit = cached;
            return cudaSuccess;
        }
    }
    int smCount = 0;
    status = cudaDeviceGetAttribute(&smCount, cudaDevAttrMultiProcessorCount, device);
    if (status != cudaSuccess)
    {
        return status;
    }
    int blocksPerSm = 0;
    status = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocksPerSm, kernel, kThreads, 0);
    if (status != cudaSuccess)
    {
        return status;
    }
    int const value = smCount * (blocksPerSm > 0 ? blocksPerSm : 1);
    if (cacheable)
    {
        cache[static_cast<size_t>(device)].store(value, std::memory_order_relaxed);
    }
    limit = value;
    return cudaSuccess;
}

template <typename T, int kMode>
cudaError_t launchAs(cudaStream_t stream, T const* input, T* output, int64_t n, ScaledBeta beta)
{
    auto const inAddr = reinterpret_cast<uintptr_t>(input);
    auto const outAddr = reinterpret_cast<uintptr_t>(output);
    int64_t gridLimit = 1;
    cudaError_t status = cudaSuccess;

    if (inAddr % 16U == outAddr % 16U)
    {
        static std::array<std::atomic<int>, kMaxCachedDevices> cache{};
        status = residentGridLimit(swishVectorKernel<T, kMode>, cache, gridLimit);
        if (status != cudaSuccess)
        {
            return status;
        }
        int64_t const packSize = Pack<T>::kSize;
        int64_t const misalignment = static_cast<int64_t>(inAddr % 16U) / static_cast<int64_t>(sizeof(T));
        int64_t const head = misalignment == 0 ? 0 : (n < packSize - misalignment ? n : packSize - misalignment);
        int64_t const nPacks = (n - head) / packSize;
        int64_t const tailStart = head + nPacks * packSize;
        int64_t const packsPerBlock = static_cast<int64_t>(kThreads) * PacksPerThread<T>::value;
        int64_t blocks = (nPacks + packsPerBlock - 1) / packsPerBlock;
        gridLimit = gridLimit * kMaxWaves;
        gridLimit = gridLimit > INT32_MAX ? INT32_MAX : gridLimit;
        blocks = blocks < 1 ? 1 : (blocks > gridLimit ? gridLimit : blocks);
        swishVectorKernel<T, kMode>
            <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(input, output, head, nPacks, tailStart, n, beta);
    }
    else
    {
        static std::array<std::atomic<int>, kMaxCachedDevices> cache{};
        status = residentGridLimit(swishScalarKernel<T, kMode>, cache, gridLimit);
        if (status != cudaSuccess)
        {
            return status;
        }
        int64_t blocks = (n + kThreads - 1) / kThreads;
        blocks = blocks > gridLimit ? gridLimit : blocks;
        swishScalarKernel<T, kMode><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(input, output, n, beta);
    }
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch(cudaStream_t stream, T const* input, T* output, int64_t n, float beta)
{
    if (n <= 0)
    {
        return n == 0 ? cudaSuccess : cudaErrorInvalidValue;
    }
    // Clear an error left pending by an earlier, unrelated call so that it is not reported as ours. Sticky errors
    // (a corrupted context) come back from the launch itself.
    static_cast<void>(cudaGetLastError());
    double const scaled = static_cast<double>(beta) * 1.4426950408889634; // log2(e)
    bool const huge = !(std::fabs(scaled) <= static_cast<double>(FLT_MAX));
    float const hi = huge ? 0.F : static_cast<float>(scaled);
    float const lo = huge ? 0.F : static_cast<float>(scaled - static_cast<double>(hi));
    ScaledBeta const b{beta, hi, lo};
    if (beta == 0.F)
    {
        return launchAs<T, kBetaZero>(stream, input, output, n, b);
    }
    return huge ? launchAs<T, kHugeBeta>(stream, input, output, n, b)
                : launchAs<T, kGeneral>(stream, input, output, n, b);
}

} // namespace detail

template <typename T>
cudaError_t swishImpl(cudaStream_t stream, T const* input, T* output, int64_t n, float beta)
{
    return detail::launch<T>(stream, input, output, n, beta);
}

template cudaError_t swishImpl<float>(cudaStream_t, float const*, float*, int64_t, float);
template cudaError_t swishImpl<__half>(cudaStream_t, __half const*, __half*, int64_t, float);
template cudaError_t swishImpl<__nv_bfloat16>(cudaStream_t, __nv_bfloat16 const*, __nv_bfloat16*, int64_t, float);

} // namespace swish
