/*
 * Helpers shared by the plugin's test drivers (conformance.cpp, trtRuntimeTest.cpp): tensor descriptions and plugin
 * fields, host <-> device copies in the three types, a float64 reference, the comparison, the layout of TensorRT's
 * vectorized formats (which elements of a padded buffer are padding), the error recorder and resource context that
 * attachToContext is handed, and the capability views of a V3 plugin. Header-only; test code, not part of any library.
 */
#ifndef SWISH_TEST_SUPPORT_H
#define SWISH_TEST_SUPPORT_H

#include "swishFormats.h"
#include "testCheck.h"

#include <NvInferRuntime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace swishtest
{

using nvinfer1::DataType;
using nvinfer1::TensorFormat;

inline double swishRef(double x, double beta)
{
    if (std::isnan(x))
    {
        return x;
    }
    return x / (1.0 + std::exp(-beta * x));
}

inline char const* typeName(DataType t)
{
    return t == DataType::kFLOAT ? "FP32" : t == DataType::kHALF ? "FP16" : t == DataType::kBF16 ? "BF16" : "other";
}

//! Plugin fields as TensorRT passes them to createPlugin; the collection points into `fields`, so keep both alive.
struct Fields
{
    std::vector<nvinfer1::PluginField> fields;
    nvinfer1::PluginFieldCollection fc{};
    nvinfer1::PluginFieldCollection const* get()
    {
        fc.nbFields = static_cast<int32_t>(fields.size());
        fc.fields = fields.data();
        return &fc;
    }
};

inline nvinfer1::PluginTensorDesc makeDesc(
    DataType type, std::vector<int64_t> const& dims, TensorFormat format = TensorFormat::kLINEAR)
{
    nvinfer1::PluginTensorDesc d{};
    d.type = type;
    d.format = format;
    d.scale = 1.F;
    d.dims.nbDims = static_cast<int32_t>(dims.size());
    for (size_t i = 0; i < dims.size(); ++i)
    {
        d.dims.d[i] = dims[i];
    }
    return d;
}

//! A fixed shape as a build-time range (min = opt = max).
inline nvinfer1::DynamicPluginTensorDesc makeDynamic(nvinfer1::PluginTensorDesc const& desc)
{
    nvinfer1::DynamicPluginTensorDesc d{};
    d.desc = desc;
    d.min = desc.dims;
    d.opt = desc.dims;
    d.max = desc.dims;
    return d;
}

inline size_t elementSize(DataType t)
{
    return t == DataType::kFLOAT ? 4 : 2;
}

inline void toDevice(DataType t, std::vector<float> const& values, void* dev)
{
    size_t const n = values.size();
    if (t == DataType::kFLOAT)
    {
        CUDA_OK(cudaMemcpy(dev, values.data(), n * 4, cudaMemcpyHostToDevice));
    }
    else if (t == DataType::kHALF)
    {
        std::vector<__half> h(n);
        for (size_t i = 0; i < n; ++i)
        {
            h[i] = __float2half_rn(values[i]);
        }
        CUDA_OK(cudaMemcpy(dev, h.data(), n * 2, cudaMemcpyHostToDevice));
    }
    else
    {
        std::vector<__nv_bfloat16> h(n);
        for (size_t i = 0; i < n; ++i)
        {
            h[i] = __float2bfloat16_rn(values[i]);
        }
        CUDA_OK(cudaMemcpy(dev, h.data(), n * 2, cudaMemcpyHostToDevice));
    }
}

inline std::vector<float> fromDevice(DataType t, void const* dev, size_t n)
{
    std::vector<float> out(n);
    if (t == DataType::kFLOAT)
    {
        CUDA_OK(cudaMemcpy(out.data(), dev, n * 4, cudaMemcpyDeviceToHost));
    }
    else if (t == DataType::kHALF)
    {
        std::vector<__half> h(n);
        CUDA_OK(cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; ++i)
        {
            out[i] = __half2float(h[i]);
        }
    }
    else
    {
        std::vector<__nv_bfloat16> h(n);
        CUDA_OK(cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; ++i)
        {
            out[i] = __bfloat162float(h[i]);
        }
    }
    return out;
}

// Values as the device sees them (rounded to the type) so that the reference starts from the same input.
inline std::vector<float> roundTo(DataType t, std::vector<float> const& v)
{
    std::vector<float> r(v.size());
    for (size_t i = 0; i < v.size(); ++i)
    {
        r[i] = t == DataType::kFLOAT  ? v[i]
               : t == DataType::kHALF ? __half2float(__float2half_rn(v[i]))
                                      : __bfloat162float(__float2bfloat16_rn(v[i]));
    }
    return r;
}

// Worst error relative to max(|ref|, tiny), against a per-type tolerance well above the kernel's bound.
inline bool closeToReference(
    DataType t, std::vector<float> const& in, std::vector<float> const& out, float beta, std::string& detail)
{
    double const tol = t == DataType::kFLOAT ? 2e-6 : (t == DataType::kHALF ? 2e-3 : 1.6e-2);
    for (size_t i = 0; i < in.size(); ++i)
    {
        double const ref = swishRef(in[i], beta);
        double const err = std::fabs(static_cast<double>(out[i]) - ref);
        double const atol = t == DataType::kHALF ? 0x1p-24 : 1e-37; // FP16 subnormal spacing
        if (!(err <= tol * std::fabs(ref) + atol))
        {
            detail = "element " + std::to_string(i) + ": x=" + std::to_string(in[i]) + " got " +
                     std::to_string(out[i]) + " want " + std::to_string(ref);
            return false;
        }
    }
    return true;
}

struct DeviceBuffer
{
    void* ptr{nullptr};
    explicit DeviceBuffer(size_t bytes)
    {
        CUDA_OK(cudaMalloc(&ptr, bytes == 0 ? 1 : bytes));
    }
    ~DeviceBuffer()
    {
        cudaFree(ptr);
    }
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
};


inline int64_t countOf(std::vector<int64_t> const& dims)
{
    int64_t n = 1;
    for (int64_t d : dims)
    {
        n *= d;
    }
    return n;
}

inline std::vector<float> randomInputs(size_t n, uint32_t seed)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.F, 4.F);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
    {
        v[i] = normal(gen);
    }
    float const specials[] = {0.F, -0.F, 1e-30F, -1e-30F, 20.F, -20.F, 88.F, -88.F, 1e4F, -1e4F};
    for (size_t i = 0; i < n && i < sizeof(specials) / sizeof(specials[0]); ++i)
    {
        v[i] = specials[i];
    }
    return v;
}


//! Where the elements of a tensor of `dims` in `format` lie in its buffer: the buffer's element count (the channel
//! extent padded to the vector size) and, per element, whether it is padding (a channel index >= the real extent).
struct PaddedLayout
{
    int64_t total{0};
    std::vector<bool> padding;
};

inline PaddedLayout paddedLayout(std::vector<int64_t> const& dims, TensorFormat format)
{
    swish::FormatRule const* rule = swish::findFormatRule(format);
    PaddedLayout layout;
    layout.total = countOf(dims);
    if (rule == nullptr || rule->vectorSize == 1 || static_cast<int32_t>(dims.size()) < rule->channelFromEnd)
    {
        layout.padding.assign(static_cast<size_t>(layout.total), false);
        return layout;
    }
    size_t const c = dims.size() - static_cast<size_t>(rule->channelFromEnd);
    int64_t const channels = dims[c];
    int64_t const v = rule->vectorSize;
    int64_t const padded = (channels + v - 1) / v * v;
    int64_t spatial = 1; // extents after the channel dimension
    for (size_t i = c + 1; i < dims.size(); ++i)
    {
        spatial *= dims[i];
    }
    int64_t outer = 1;
    for (size_t i = 0; i < c; ++i)
    {
        outer *= dims[i];
    }
    layout.total = outer * padded * spatial;
    layout.padding.resize(static_cast<size_t>(layout.total));
    // Vector-minor formats (kHWC8, kHWC16, kDHWC8) store [outer][spatial][padded channels]; vector-major ones (kCHW2,
    // kCHW32, kCDHW32) store [outer][padded / v][spatial][v].
    bool const minor = format == TensorFormat::kHWC8 || format == TensorFormat::kHWC16 || format == TensorFormat::kDHWC8;
    for (int64_t i = 0; i < layout.total; ++i)
    {
        int64_t channel = 0;
        if (minor)
        {
            channel = i % padded;
        }
        else
        {
            int64_t const lane = i % v;
            int64_t const block = (i / (v * spatial)) % (padded / v);
            channel = block * v + lane;
        }
        layout.padding[static_cast<size_t>(i)] = channel >= channels;
    }
    return layout;
}

//! One enqueue case per supported (type, format) pair of swishFormats.h, with a channel extent of 3 so that every
//! vectorized format pads (C = 3 in kHWC8 is 5 elements of padding per pixel).
struct FormatCase
{
    DataType type;
    TensorFormat format;
    char const* formatName;
    std::vector<int64_t> dims;
};

inline std::vector<FormatCase> formatCases()
{
    std::vector<FormatCase> cases;
    for (swish::FormatRule const& rule : swish::kFORMAT_RULES)
    {
        std::vector<int64_t> dims = rule.channelFromEnd == 4 ? std::vector<int64_t>{2, 3, 4, 5, 6}
                                                              : std::vector<int64_t>{2, 3, 17, 9};
        for (DataType type : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
        {
            if (swish::formatAccepts(rule.format, type, static_cast<int32_t>(dims.size())))
            {
                cases.push_back({type, rule.format, rule.name, dims});
            }
        }
    }
    return cases;
}

//! An IErrorRecorder that keeps every reported error (thread-safe: clones on several threads may share one).
class ErrorRecorder : public nvinfer1::IErrorRecorder
{
public:
    int32_t getNbErrors() const noexcept override
    {
        std::lock_guard<std::mutex> lock(mMutex);
        return static_cast<int32_t>(mErrors.size());
    }
    nvinfer1::ErrorCode getErrorCode(int32_t i) const noexcept override
    {
        std::lock_guard<std::mutex> lock(mMutex);
        return mErrors.at(static_cast<size_t>(i)).first;
    }
    ErrorDesc getErrorDesc(int32_t i) const noexcept override
    {
        std::lock_guard<std::mutex> lock(mMutex);
        return mErrors.at(static_cast<size_t>(i)).second.c_str();
    }
    bool hasOverflowed() const noexcept override
    {
        return false;
    }
    void clear() noexcept override
    {
        std::lock_guard<std::mutex> lock(mMutex);
        mErrors.clear();
    }
    bool reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept override
    {
        std::lock_guard<std::mutex> lock(mMutex);
        mErrors.emplace_back(code, desc != nullptr ? desc : "");
        return true;
    }
    RefCount incRefCount() noexcept override
    {
        return ++mRefs;
    }
    RefCount decRefCount() noexcept override
    {
        return --mRefs;
    }

private:
    mutable std::mutex mMutex;
    std::vector<std::pair<nvinfer1::ErrorCode, std::string>> mErrors;
    std::atomic<RefCount> mRefs{0};
};

//! What an execution context hands to attachToContext: no allocator, the given recorder.
class ResourceContext : public nvinfer1::IPluginResourceContext
{
public:
    explicit ResourceContext(nvinfer1::IErrorRecorder* recorder)
        : mRecorder(recorder)
    {
    }
    nvinfer1::IGpuAllocator* getGpuAllocator() const noexcept override
    {
        return nullptr;
    }
    nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return mRecorder;
    }

private:
    nvinfer1::IErrorRecorder* mRecorder;
};

//! The three capability interfaces of a V3 plugin (all null for a null plugin).
struct V3Views
{
    nvinfer1::IPluginV3OneCore* core{nullptr};
    nvinfer1::IPluginV3OneBuild* build{nullptr};
    nvinfer1::IPluginV3OneRuntime* runtime{nullptr};
};

inline V3Views views(nvinfer1::IPluginV3* plugin)
{
    using nvinfer1::PluginCapabilityType;
    V3Views v;
    if (plugin != nullptr)
    {
        v.core = static_cast<nvinfer1::IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
        v.build =
            static_cast<nvinfer1::IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
        v.runtime =
            static_cast<nvinfer1::IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    }
    return v;
}

} // namespace swishtest

#endif // SWISH_TEST_SUPPORT_H
