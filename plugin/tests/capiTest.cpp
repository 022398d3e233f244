/*
 * Test of the C ABI (swishCApi.h) on a GPU, small enough to run under compute-sanitizer (memcheck, racecheck):
 * every dtype, sizes around the vector width, every element offset, in place, guard zones around the output,
 * two non-default streams at once, and every argument error. Prints "N passed, M failed"; exits non-zero on failure.
 */
#include "swishCApi.h"
#include "testCheck.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace
{

swishtest::Tally gResults;

void check(bool ok, std::string const& what)
{
    gResults.check(ok, ok ? what : what + " (last error: " + swish_last_error() + ")");
}

size_t sizeOf(int dtype)
{
    return dtype == SWISH_DTYPE_FLOAT32 ? 4 : 2;
}

char const* nameOf(int dtype)
{
    return dtype == SWISH_DTYPE_FLOAT32 ? "fp32" : dtype == SWISH_DTYPE_FLOAT16 ? "fp16" : "bf16";
}

float decode(int dtype, unsigned char const* p)
{
    if (dtype == SWISH_DTYPE_FLOAT32)
    {
        float v;
        std::memcpy(&v, p, 4);
        return v;
    }
    if (dtype == SWISH_DTYPE_FLOAT16)
    {
        __half h;
        std::memcpy(&h, p, 2);
        return __half2float(h);
    }
    __nv_bfloat16 b;
    std::memcpy(&b, p, 2);
    return __bfloat162float(b);
}

void encode(int dtype, float v, unsigned char* p)
{
    if (dtype == SWISH_DTYPE_FLOAT32)
    {
        std::memcpy(p, &v, 4);
    }
    else if (dtype == SWISH_DTYPE_FLOAT16)
    {
        __half h = __float2half_rn(v);
        std::memcpy(p, &h, 2);
    }
    else
    {
        __nv_bfloat16 b = __float2bfloat16_rn(v);
        std::memcpy(p, &b, 2);
    }
}

bool close(int dtype, float x, float got, float beta)
{
    double const ref = x / (1.0 + std::exp(-static_cast<double>(beta) * x));
    double const tol = dtype == SWISH_DTYPE_FLOAT32 ? 2e-6 : (dtype == SWISH_DTYPE_FLOAT16 ? 2e-3 : 1.6e-2);
    // Absolute slack: the spacing of the type's subnormals (FP16 results below 6.1e-5 lose relative precision).
    double const atol = dtype == SWISH_DTYPE_FLOAT16 ? 0x1p-24 : 1e-37;
    return std::fabs(got - ref) <= tol * std::fabs(ref) + atol;
}

constexpr size_t kGuard = 64; // bytes of poison kept on each side of every output

// Runs one case at element offset `offset` (input and output offsets may differ), checks values and guards.
void runCase(int dtype, int64_t n, int inOffset, int outOffset, float beta, bool inPlace, cudaStream_t stream)
{
    size_t const es = sizeOf(dtype);
    size_t const bytes = static_cast<size_t>(n) * es;
    size_t const total = bytes + 2 * kGuard + 16 * es;
    std::vector<unsigned char> hostIn(total, 0);
    std::mt19937 gen(static_cast<uint32_t>(n * 131 + inOffset * 7 + outOffset));
    std::normal_distribution<float> normal(0.F, 3.F);
    std::vector<float> xs(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
    {
        encode(dtype, normal(gen), &hostIn[kGuard + static_cast<size_t>(inOffset) * es + static_cast<size_t>(i) * es]);
        xs[static_cast<size_t>(i)] = decode(dtype, &hostIn[kGuard + static_cast<size_t>(inOffset) * es + i * es]);
    }
    unsigned char* dIn = nullptr;
    unsigned char* dOut = nullptr;
    CUDA_OK(cudaMalloc(&dIn, total));
    CUDA_OK(cudaMemcpy(dIn, hostIn.data(), total, cudaMemcpyHostToDevice));
    if (inPlace)
    {
        dOut = dIn;
        outOffset = inOffset;
    }
    else
    {
        CUDA_OK(cudaMalloc(&dOut, total));
        CUDA_OK(cudaMemset(dOut, 0xA5, total));
    }
    void const* in = dIn + kGuard + static_cast<size_t>(inOffset) * es;
    void* out = dOut + kGuard + static_cast<size_t>(outOffset) * es;
    int const rc = swish_forward(dtype, in, out, n, beta, stream);
    CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<unsigned char> hostOut(total);
    CUDA_OK(cudaMemcpy(hostOut.data(), dOut, total, cudaMemcpyDeviceToHost));

    std::string const label = std::string(nameOf(dtype)) + " n=" + std::to_string(n) + " offsets " +
                              std::to_string(inOffset) + "/" + std::to_string(outOffset) + (inPlace ? " in place" : "");
    check(rc == SWISH_STATUS_SUCCESS, label + ": status");
    bool valuesOk = true;
    size_t const first = kGuard + static_cast<size_t>(outOffset) * es;
    for (int64_t i = 0; i < n && valuesOk; ++i)
    {
        valuesOk = close(dtype, xs[static_cast<size_t>(i)], decode(dtype, &hostOut[first + i * es]), beta);
    }
    check(valuesOk, label + ": values");
    bool guardsOk = true;
    for (size_t b = 0; b < total && guardsOk; ++b)
    {
        if (b >= first && b < first + bytes)
        {
            continue;
        }
        guardsOk = inPlace ? hostOut[b] == hostIn[b] : hostOut[b] == 0xA5;
    }
    check(guardsOk, label + ": nothing outside the output range written");
    if (!inPlace)
    {
        CUDA_OK(cudaFree(dOut));
    }
    CUDA_OK(cudaFree(dIn));
}

void testArguments()
{
    float* buf = nullptr;
    CUDA_OK(cudaMalloc(&buf, 4096));
    float const nan = std::numeric_limits<float>::quiet_NaN();
    float const inf = std::numeric_limits<float>::infinity();
    struct Bad
    {
        char const* what;
        int dtype;
        void const* in;
        void* out;
        int64_t n;
        float beta;
    };
    auto* bytes = reinterpret_cast<unsigned char*>(buf);
    Bad const bad[] = {
        {"unknown dtype", 7, buf, buf + 256, 16, 1.F},
        {"negative dtype", -1, buf, buf + 256, 16, 1.F},
        {"negative n", SWISH_DTYPE_FLOAT32, buf, buf + 256, -1, 1.F},
        {"NaN beta", SWISH_DTYPE_FLOAT32, buf, buf + 256, 16, nan},
        {"inf beta", SWISH_DTYPE_FLOAT32, buf, buf + 256, 16, inf},
        {"null input", SWISH_DTYPE_FLOAT32, nullptr, buf + 256, 16, 1.F},
        {"null output", SWISH_DTYPE_FLOAT32, buf, nullptr, 16, 1.F},
        {"input not aligned to fp32", SWISH_DTYPE_FLOAT32, bytes + 1, buf + 256, 16, 1.F},
        {"output not aligned to fp16", SWISH_DTYPE_FLOAT16, buf, bytes + 513, 16, 1.F},
        {"partial overlap", SWISH_DTYPE_FLOAT32, buf, buf + 8, 16, 1.F},
        {"n overflowing the address space", SWISH_DTYPE_FLOAT32, buf, buf + 256, INT64_MAX / 2, 1.F},
    };
    for (Bad const& b : bad)
    {
        int const rc = swish_forward(b.dtype, b.in, b.out, b.n, b.beta, nullptr);
        check(rc == SWISH_STATUS_INVALID_ARGUMENT && std::strlen(swish_last_error()) > 0,
            std::string("rejects ") + b.what);
    }
    check(swish_forward(SWISH_DTYPE_FLOAT32, nullptr, nullptr, 0, 1.F, nullptr) == SWISH_STATUS_SUCCESS &&
              swish_last_error()[0] == '\0',
        "n = 0 with null pointers succeeds and clears the error text");
    check(swish_abi_version() == SWISH_ABI_VERSION, "ABI version");
    CUDA_OK(cudaFree(buf));
}

} // namespace

int main()
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    {
        std::printf("no CUDA device\n");
        return 1;
    }
    testArguments();

    cudaStream_t streams[2];
    CUDA_OK(cudaStreamCreateWithFlags(&streams[0], cudaStreamNonBlocking));
    CUDA_OK(cudaStreamCreateWithFlags(&streams[1], cudaStreamNonBlocking));
    int const dtypes[] = {SWISH_DTYPE_FLOAT32, SWISH_DTYPE_FLOAT16, SWISH_DTYPE_BFLOAT16};
    int64_t const sizes[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1023, 1025, 4099, (1 << 16) + 3};
    int caseIndex = 0;
    for (int dtype : dtypes)
    {
        for (int64_t n : sizes)
        {
            for (int offset = 0; offset < 4; ++offset)
            {
                cudaStream_t const s = streams[caseIndex++ % 2];
                runCase(dtype, n, offset, offset, 1.F, false, s);             // same alignment: vector path
                runCase(dtype, n, offset, (offset + 1) % 4, -0.5F, false, s); // different alignment: scalar path
            }
            runCase(dtype, n, 1, 1, 1.702F, true, streams[0]);
        }
    }

    // Two streams at once: both launched before either is waited on.
    {
        int64_t const n = (1 << 20) + 5;
        float *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
        CUDA_OK(cudaMalloc(&a, n * 4));
        CUDA_OK(cudaMalloc(&b, n * 4));
        CUDA_OK(cudaMalloc(&c, n * 4));
        CUDA_OK(cudaMalloc(&d, n * 4));
        std::vector<float> host(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
        {
            host[static_cast<size_t>(i)] = static_cast<float>((i % 2001) - 1000) * 0.01F;
        }
        CUDA_OK(cudaMemcpy(a, host.data(), n * 4, cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(c, host.data(), n * 4, cudaMemcpyHostToDevice));
        int const r0 = swish_forward(SWISH_DTYPE_FLOAT32, a, b, n, 1.F, streams[0]);
        int const r1 = swish_forward(SWISH_DTYPE_FLOAT32, c, d, n, 0.F, streams[1]);
        CUDA_OK(cudaStreamSynchronize(streams[0]));
        CUDA_OK(cudaStreamSynchronize(streams[1]));
        std::vector<float> outB(static_cast<size_t>(n));
        std::vector<float> outD(static_cast<size_t>(n));
        CUDA_OK(cudaMemcpy(outB.data(), b, n * 4, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(outD.data(), d, n * 4, cudaMemcpyDeviceToHost));
        bool ok = r0 == 0 && r1 == 0;
        for (int64_t i = 0; i < n && ok; ++i)
        {
            ok = close(SWISH_DTYPE_FLOAT32, host[i], outB[i], 1.F) && outD[i] == 0.5F * host[i];
        }
        check(ok, "two streams at once (beta 1 and beta 0)");
        CUDA_OK(cudaFree(a));
        CUDA_OK(cudaFree(b));
        CUDA_OK(cudaFree(c));
        CUDA_OK(cudaFree(d));
    }
    CUDA_OK(cudaStreamDestroy(streams[0]));
    CUDA_OK(cudaStreamDestroy(streams[1]));
    std::printf("capi test: %d passed, %d failed\n", gResults.passed, gResults.failed);
    return gResults.failed == 0 ? 0 : 1;
}
