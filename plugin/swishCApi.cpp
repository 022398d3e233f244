/*
 * C ABI of the Swish kernels (swishCApi.h): argument validation, dtype dispatch and thread-local error text.
 * The TensorRT plugin enqueues through swish_forward too, so there is one validation and dispatch path.
 */
#include "swishCApi.h"

#include "swishHost.h"
#include "swishKernel.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

namespace
{

// A plain array, not a std::string: a thread_local with a destructor registers it with the C library
// (__cxa_thread_atexit), which keeps the shared library from being unloaded while the thread lives; the plugin's
// libraries must unload cleanly (dlclose, deregister and reload).
constexpr size_t kMaxErrorLength = 1024;
thread_local char tLastError[kMaxErrorLength] = "";

int fail(int status, std::string const& message) noexcept
{
    size_t const n = message.size() < kMaxErrorLength - 1 ? message.size() : kMaxErrorLength - 1;
    std::memcpy(tLastError, message.data(), n);
    tLastError[n] = '\0';
    return status;
}

size_t elementSize(int dtype)
{
    switch (dtype)
    {
    case SWISH_DTYPE_FLOAT32:
        return 4;
    case SWISH_DTYPE_FLOAT16:
    case SWISH_DTYPE_BFLOAT16:
        return 2;
    default:
        return 0;
    }
}

template <typename T>
cudaError_t dispatch(void const* in, void* out, int64_t n, float beta, cudaStream_t stream)
{
    return swish::swishImpl<T>(stream, static_cast<T const*>(in), static_cast<T*>(out), n, beta);
}

// Why these arguments cannot be computed ("" if they can); `name` starts the message.
std::string invalid(char const* name, int dtype, void const* in, void const* out, int64_t n, float beta)
{
    size_t const size = elementSize(dtype);
    if (size == 0)
    {
        return std::string(name) + ": unknown dtype " + std::to_string(dtype)
            + " (0 = float32, 1 = float16, 2 = bfloat16)";
    }
    if (n < 0)
    {
        return std::string(name) + ": negative element count " + std::to_string(n);
    }
    if (!std::isfinite(beta))
    {
        return std::string(name) + ": beta must be finite";
    }
    if (n == 0)
    {
        return "";
    }
    if (in == nullptr || out == nullptr)
    {
        return std::string(name) + ": null pointer with n > 0";
    }
    auto const inAddr = reinterpret_cast<uintptr_t>(in);
    auto const outAddr = reinterpret_cast<uintptr_t>(out);
    if (inAddr % size != 0 || outAddr % size != 0)
    {
        return std::string(name) + ": pointers must be aligned to the element size (" + std::to_string(size)
            + " bytes)";
    }
    auto const bytes = static_cast<uint64_t>(n) * size;
    if (static_cast<uint64_t>(n) > UINT64_MAX / size || inAddr > UINTPTR_MAX - bytes || outAddr > UINTPTR_MAX - bytes)
    {
        return std::string(name) + ": element count overflows the address space";
    }
    if (inAddr != outAddr && inAddr < outAddr + bytes && outAddr < inAddr + bytes)
    {
        return std::string(name)
            + ": input and output overlap partially (only identical or disjoint ranges are allowed)";
    }
    return "";
}

int forward(int dtype, void const* in, void* out, int64_t n, float beta, void* stream)
{
    std::string const problem = invalid("swish_forward", dtype, in, out, n, beta);
    if (!problem.empty())
    {
        return fail(SWISH_STATUS_INVALID_ARGUMENT, problem);
    }
    if (n == 0)
    {
        return SWISH_STATUS_SUCCESS;
    }

    auto const cudaStream = static_cast<cudaStream_t>(stream);
    cudaError_t status = cudaSuccess;
    switch (dtype)
    {
    case SWISH_DTYPE_FLOAT32:
        status = dispatch<float>(in, out, n, beta, cudaStream);
        break;
    case SWISH_DTYPE_FLOAT16:
        status = dispatch<__half>(in, out, n, beta, cudaStream);
        break;
    default:
        status = dispatch<__nv_bfloat16>(in, out, n, beta, cudaStream);
        break;
    }
    if (status != cudaSuccess)
    {
        return fail(SWISH_STATUS_CUDA_ERROR,
            std::string("swish_forward: CUDA error ") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
    }
    return SWISH_STATUS_SUCCESS;
}

} // namespace

extern "C" int swish_forward(int dtype, const void* in, void* out, int64_t n, float beta, void* stream)
{
    try
    {
        tLastError[0] = '\0';
        return forward(dtype, in, out, n, beta, stream);
    }
    catch (std::exception const& e)
    {
        return fail(SWISH_STATUS_INTERNAL_ERROR, std::string("swish_forward: ") + e.what());
    }
    catch (...)
    {
        return fail(SWISH_STATUS_INTERNAL_ERROR, "swish_forward: unknown exception");
    }
}

extern "C" int swish_forward_host(int dtype, const void* in, void* out, int64_t n, float beta)
{
    try
    {
        tLastError[0] = '\0';
        std::string const problem = invalid("swish_forward_host", dtype, in, out, n, beta);
        if (!problem.empty())
        {
            return fail(SWISH_STATUS_INVALID_ARGUMENT, problem);
        }
        if (dtype != SWISH_DTYPE_FLOAT32)
        {
            return fail(SWISH_STATUS_INVALID_ARGUMENT,
                "swish_forward_host: float32 only (dtype " + std::to_string(dtype) + " given)");
        }
        swish::swishHostFloat32(static_cast<float const*>(in), static_cast<float*>(out), n, beta);
        return SWISH_STATUS_SUCCESS;
    }
    catch (std::exception const& e)
    {
        return fail(SWISH_STATUS_INTERNAL_ERROR, std::string("swish_forward_host: ") + e.what());
    }
    catch (...)
    {
        return fail(SWISH_STATUS_INTERNAL_ERROR, "swish_forward_host: unknown exception");
    }
}

extern "C" int swish_forward_host_many(
    int dtype, int64_t count, const void* const* in, void* const* out, const int64_t* n, float beta)
{
    char const* const name = "swish_forward_host_many";
    try
    {
        tLastError[0] = '\0';
        if (count < 0)
        {
            return fail(SWISH_STATUS_INVALID_ARGUMENT, std::string(name) + ": negative array count "
                    + std::to_string(count));
        }
        if (count > 0 && (in == nullptr || out == nullptr || n == nullptr))
        {
            return fail(SWISH_STATUS_INVALID_ARGUMENT, std::string(name) + ": null list with count > 0");
        }
        if (dtype != SWISH_DTYPE_FLOAT32)
        {
            return fail(SWISH_STATUS_INVALID_ARGUMENT,
                std::string(name) + ": float32 only (dtype " + std::to_string(dtype) + " given)");
        }
        for (int64_t i = 0; i < count; ++i)
        {
            std::string const problem = invalid(name, dtype, in[i], out[i], n[i], beta);
            if (!problem.empty())
            {
                // "<name>: <why>" becomes "<name>: array <i>: <why>".
                return fail(SWISH_STATUS_INVALID_ARGUMENT,
                    std::string(name) + ": array " + std::to_string(i) + problem.substr(std::strlen(name)));
            }
        }
        for (int64_t i = 0; i < count; ++i)
        {
            swish::swishHostFloat32(static_cast<float const*>(in[i]), static_cast<float*>(out[i]), n[i], beta);
        }
        return SWISH_STATUS_SUCCESS;
    }
    catch (std::exception const& e)
    {
        return fail(SWISH_STATUS_INTERNAL_ERROR, std::string(name) + ": " + e.what());
    }
    catch (...)
    {
        return fail(SWISH_STATUS_INTERNAL_ERROR, std::string(name) + ": unknown exception");
    }
}

extern "C" const char* swish_last_error(void)
{
    return tLastError;
}

extern "C" int swish_abi_version(void)
{
    return SWISH_ABI_VERSION;
}
