/*
 * The Swish plugin inside TensorRT's own runtime: a test driver linked against the TensorRT lean runtime
 * (libnvinfer_lean.so.<major>, PyPI wheel tensorrt-lean-cu13-libs), whose plugin registry, creators and plugin
 * lifetimes are TensorRT's. Nothing here imitates TensorRT: the creators come from the global getPluginRegistry().
 *
 *   swish_trt_runtime_test --loadable libswish_dynamic.so [--static libswish.so] [--gpu]
 *
 * --loadable: IPluginRegistry::loadLibrary (no libnvinfer needed), the V3 creator, deregisterLibrary and reload.
 * --static:   dlopen of libswish.so, whose static registration lands in the same registry (its DT_NEEDED
 *             libnvinfer.so.<major> must resolve: the caller provides it, e.g. a symlink to libnvinfer_lean), the V3
 *             and V2 creators, V2 serialization, deregisterCreator and a reload through dlclose/dlopen; last, that
 *             loadLibrary refuses it (it has no getCreators).
 * Both: V3 plugins created in the build phase, and in the runtime phase from the fields getFieldsToSerialize
 *       produced; corrupted fields refused with a message; unknown fields accepted with a warning; clone and
 *       attachToContext; the supported (type, format) table asked of TensorRT-created plugins.
 * --gpu:      enqueue of TensorRT-created plugins on device buffers against a float64 reference: FP32/FP16/BF16,
 *             five betas, ranks 0-4, out of place and in place, the first enqueue inside a CUDA graph capture,
 *             six threads with attached clones on their own streams, every vectorized format with padding, and the
 *             failure cases, printing where each error message went (ROUTE lines).
 *
 * Without a GPU the lean runtime cannot create an IRuntime (CUDA error 35), so this driver never asks a runtime for
 * its registry. Prints "N passed, M failed"; exits non-zero on any failure.
 */
#include "swishFormats.h"
#include "swishPluginSpec.h"
#include "testSupport.h"

#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" // the V2 interfaces are deprecated; this tests them

using namespace nvinfer1;
using namespace swishtest;

namespace
{

Tally gResults;

void check(bool ok, std::string const& what)
{
    gResults.check(ok, what);
}

// ------------------------------------------------------------------------------------------------------------
// What an application hands to TensorRT
// ------------------------------------------------------------------------------------------------------------
class Logger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        std::lock_guard<std::mutex> lock(mMutex);
        std::string const text = msg != nullptr ? msg : "";
        if (severity <= Severity::kERROR)
        {
            mErrors.push_back(text);
        }
        else if (severity == Severity::kWARNING)
        {
            mWarnings.push_back(text);
        }
    }
    size_t nbErrors()
    {
        std::lock_guard<std::mutex> lock(mMutex);
        return mErrors.size();
    }
    //! The messages logged since `from` (an nbErrors() value) at error level, joined.
    std::string errorsSince(size_t from)
    {
        std::lock_guard<std::mutex> lock(mMutex);
        std::string all;
        for (size_t i = from; i < mErrors.size(); ++i)
        {
            all += mErrors[i] + "\n";
        }
        return all;
    }
    std::string lastWarning()
    {
        std::lock_guard<std::mutex> lock(mMutex);
        return mWarnings.empty() ? "" : mWarnings.back();
    }

private:
    std::mutex mMutex;
    std::vector<std::string> mErrors;
    std::vector<std::string> mWarnings;
};

Logger& appLogger()
{
    static Logger logger;
    return logger;
}

class Finder : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &appLogger();
    }
};

char const* codeName(ErrorCode code)
{
    switch (code)
    {
    case ErrorCode::kSUCCESS: return "kSUCCESS";
    case ErrorCode::kUNSPECIFIED_ERROR: return "kUNSPECIFIED_ERROR";
    case ErrorCode::kINTERNAL_ERROR: return "kINTERNAL_ERROR";
    case ErrorCode::kINVALID_ARGUMENT: return "kINVALID_ARGUMENT";
    case ErrorCode::kINVALID_CONFIG: return "kINVALID_CONFIG";
    case ErrorCode::kFAILED_ALLOCATION: return "kFAILED_ALLOCATION";
    case ErrorCode::kFAILED_INITIALIZATION: return "kFAILED_INITIALIZATION";
    case ErrorCode::kFAILED_EXECUTION: return "kFAILED_EXECUTION";
    case ErrorCode::kFAILED_COMPUTATION: return "kFAILED_COMPUTATION";
    case ErrorCode::kINVALID_STATE: return "kINVALID_STATE";
    case ErrorCode::kUNSUPPORTED_STATE: return "kUNSUPPORTED_STATE";
    }
    return "?";
}

// ------------------------------------------------------------------------------------------------------------
// Plugin helpers
// ------------------------------------------------------------------------------------------------------------
IPluginCreatorV3One* v3Creator(IPluginRegistry* registry)
{
    IPluginCreatorInterface* c =
        registry->getCreator(swish::spec::kPLUGIN_NAME, swish::spec::kPLUGIN_VERSION_V3, swish::spec::kPLUGIN_NAMESPACE);
    return c != nullptr && std::string(c->getInterfaceInfo().kind) == "PLUGIN CREATOR_V3ONE"
        ? static_cast<IPluginCreatorV3One*>(c)
        : nullptr;
}

IPluginCreator* v2Creator(IPluginRegistry* registry)
{
    IPluginCreatorInterface* c =
        registry->getCreator(swish::spec::kPLUGIN_NAME, swish::spec::kPLUGIN_VERSION_V2, swish::spec::kPLUGIN_NAMESPACE);
    return c != nullptr && std::string(c->getInterfaceInfo().kind) == "PLUGIN CREATOR_V1"
        ? static_cast<IPluginCreator*>(c)
        : nullptr;
}

//! Build phase, then the runtime phase from the fields the build-phase plugin serialized (what TensorRT does
//! between building a plan and deserializing it).
std::unique_ptr<IPluginV3> runtimePlugin(IPluginCreatorV3One* creator, float beta)
{
    Fields f;
    f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
    std::unique_ptr<IPluginV3> built(creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
    V3Views const v = views(built.get());
    if (v.runtime == nullptr)
    {
        return nullptr;
    }
    PluginFieldCollection const* serial = v.runtime->getFieldsToSerialize();
    if (serial == nullptr)
    {
        return nullptr;
    }
    return std::unique_ptr<IPluginV3>(creator->createPlugin("swish", serial, TensorRTPhase::kRUNTIME));
}

float serializedBeta(IPluginV3* plugin)
{
    V3Views const v = views(plugin);
    PluginFieldCollection const* fc = v.runtime != nullptr ? v.runtime->getFieldsToSerialize() : nullptr;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        if (std::strcmp(fc->fields[i].name, "beta") == 0 && fc->fields[i].type == PluginFieldType::kFLOAT32)
        {
            float beta = 0.F;
            std::memcpy(&beta, fc->fields[i].data, sizeof(beta));
            return beta;
        }
    }
    return std::numeric_limits<float>::quiet_NaN();
}

// ------------------------------------------------------------------------------------------------------------
// Host-side cases (no GPU needed)
// ------------------------------------------------------------------------------------------------------------
//! `messagesReachLogger`: whether this library's messages reach appLogger() (through our finder), so that the
//! refusal messages can be checked here; otherwise they go to stderr, which the calling test reads.
void testV3Host(std::string const& lib, IPluginCreatorV3One* creator, bool messagesReachLogger)
{
    check(std::strcmp(creator->getPluginName(), "SwishPlugin") == 0 &&
              std::strcmp(creator->getPluginVersion(), "2") == 0 && std::strcmp(creator->getPluginNamespace(), "") == 0,
        lib + ": V3 creator name/version/namespace");
    PluginFieldCollection const* names = creator->getFieldNames();
    check(names != nullptr && names->nbFields == 1 && std::strcmp(names->fields[0].name, "beta") == 0,
        lib + ": getFieldNames lists beta");

    // Build phase -> getFieldsToSerialize -> runtime phase, twice over: the fields round-trip bit-exactly.
    for (float beta : {1.F, 0.5F, 1.702F, -1.F, 0.F, 3.0e38F})
    {
        std::unique_ptr<IPluginV3> plugin = runtimePlugin(creator, beta);
        check(plugin != nullptr, lib + ": runtime-phase createPlugin from serialized fields, beta " + std::to_string(beta));
        if (plugin)
        {
            std::unique_ptr<IPluginV3> again(
                creator->createPlugin("swish", views(plugin.get()).runtime->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
            float const got = serializedBeta(again.get());
            check(std::memcmp(&got, &beta, sizeof(beta)) == 0,
                lib + ": beta survives two serialization round trips bit-exactly (" + std::to_string(beta) + ")");
        }
    }
    {
        std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", nullptr, TensorRTPhase::kBUILD));
        check(plugin != nullptr && serializedBeta(plugin.get()) == 1.F, lib + ": no fields in build phase: beta 1");
        V3Views const v = views(plugin.get());
        check(v.core != nullptr && v.build != nullptr && v.runtime != nullptr, lib + ": CORE/BUILD/RUNTIME capabilities");
        if (v.build != nullptr)
        {
            check(v.build->getNbOutputs() == 1, lib + ": getNbOutputs");
            // The supported (type, format) table, asked of a TensorRT-created plugin.
            int wrong = 0;
            int accepted = 0;
            for (std::vector<int64_t> const& dims :
                std::vector<std::vector<int64_t>>{{4, 8}, {2, 3, 5}, {2, 3, 5, 7}, {2, 3, 4, 5, 6}})
            {
                for (int32_t t = 0; t < 12; ++t)
                {
                    for (int32_t f = 0; f < 13; ++f)
                    {
                        DataType const type = static_cast<DataType>(t);
                        TensorFormat const format = static_cast<TensorFormat>(f);
                        DynamicPluginTensorDesc io[2]
                            = {makeDynamic(makeDesc(type, dims, format)), makeDynamic(makeDesc(type, dims, format))};
                        bool const want = swish::formatAccepts(format, type, static_cast<int32_t>(dims.size()));
                        bool const got0 = v.build->supportsFormatCombination(0, io, 1, 1);
                        bool const got1 = got0 && v.build->supportsFormatCombination(1, io, 1, 1);
                        wrong += (got0 != want || (want && !got1)) ? 1 : 0;
                        accepted += got1 ? 1 : 0;
                        if (want)
                        {
                            io[1] = makeDynamic(makeDesc(type, dims)); // another output format
                            wrong += format != TensorFormat::kLINEAR && v.build->supportsFormatCombination(1, io, 1, 1);
                        }
                    }
                }
            }
            check(wrong == 0 && accepted == 44,
                lib + ": supportsFormatCombination follows the (type, format) table (" + std::to_string(accepted) +
                    " accepted at ranks 2-5, " + std::to_string(wrong) + " wrong)");
        }
    }

    // Unknown fields (e.g. an ONNX node's extra attributes): accepted, with a warning.
    {
        float beta = 0.5F;
        int32_t extra = 7;
        Fields f;
        f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
        f.fields.emplace_back("domain_hint", &extra, PluginFieldType::kINT32, 1);
        std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
        check(plugin != nullptr && serializedBeta(plugin.get()) == 0.5F, lib + ": unknown field accepted");
        if (messagesReachLogger)
        {
            check(appLogger().lastWarning().find("'domain_hint': unknown field, ignored") != std::string::npos,
                lib + ": unknown field logged as a warning (" + appLogger().lastWarning() + ")");
        }
    }

    // Corrupted fields: refused (nullptr) with a message naming the problem.
    float nanBeta = std::numeric_limits<float>::quiet_NaN();
    float beta = 1.F;
    int32_t intBeta = 1;
    int32_t version = swish::spec::kSERIALIZATION_FORMAT_VERSION;
    int32_t badVersion = version + 1;
    double hugeBeta = 1e300;
    struct Bad
    {
        char const* what;
        TensorRTPhase phase;
        std::vector<PluginField> fields;
        char const* fragment;
    };
    std::vector<Bad> const bad = {
        {"NaN beta", TensorRTPhase::kBUILD, {{"beta", &nanBeta, PluginFieldType::kFLOAT32, 1}}, "must be finite"},
        {"int32 beta", TensorRTPhase::kBUILD, {{"beta", &intBeta, PluginFieldType::kINT32, 1}}, "expected type float32"},
        {"float64 beta beyond float32", TensorRTPhase::kBUILD, {{"beta", &hugeBeta, PluginFieldType::kFLOAT64, 1}},
            "does not fit float32"},
        {"beta of length 0", TensorRTPhase::kBUILD, {{"beta", &beta, PluginFieldType::kFLOAT32, 0}},
            "exactly one value"},
        {"future format version", TensorRTPhase::kRUNTIME,
            {{"beta", &beta, PluginFieldType::kFLOAT32, 1},
                {"serialization_format_version", &badVersion, PluginFieldType::kINT32, 1}},
            "unsupported serialization format version"},
        {"runtime fields without the format version", TensorRTPhase::kRUNTIME,
            {{"beta", &beta, PluginFieldType::kFLOAT32, 1}}, "serialized fields incomplete"},
        {"runtime fields with a NaN beta", TensorRTPhase::kRUNTIME,
            {{"beta", &nanBeta, PluginFieldType::kFLOAT32, 1},
                {"serialization_format_version", &version, PluginFieldType::kINT32, 1}},
            "must be finite"},
    };
    for (Bad const& b : bad)
    {
        Fields f;
        f.fields = b.fields;
        size_t const before = appLogger().nbErrors();
        std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), b.phase));
        check(plugin == nullptr, lib + ": createPlugin refuses " + b.what);
        if (messagesReachLogger)
        {
            std::string const logged = appLogger().errorsSince(before);
            check(logged.find(std::string("SwishPlugin: createPlugin: ")) != std::string::npos &&
                    logged.find(b.fragment) != std::string::npos,
                lib + ": refusal of " + b.what + " logged with its reason (" + logged + ")");
        }
        else
        {
            std::fprintf(stderr, "EXPECT-STDERR %s\n", b.fragment);
        }
    }

    // clone and attachToContext give independent objects.
    std::unique_ptr<IPluginV3> plugin = runtimePlugin(creator, 1.702F);
    if (plugin)
    {
        ErrorRecorder recorder;
        ResourceContext context(&recorder);
        std::unique_ptr<IPluginV3> clone(plugin->clone());
        std::unique_ptr<IPluginV3> attached(views(plugin.get()).runtime->attachToContext(&context));
        check(clone && attached && clone.get() != plugin.get() && attached.get() != plugin.get(),
            lib + ": clone and attachToContext give new objects");
        plugin.reset();
        check(serializedBeta(clone.get()) == 1.702F && serializedBeta(attached.get()) == 1.702F,
            lib + ": clone and attached copy keep beta after the original is gone");
    }
}

// V2 (libswish.so only): serialize -> deserializePlugin through TensorRT's registry, corrupted blobs refused.
void testV2Host(IPluginCreator* creator)
{
    float beta = 1.702F;
    Fields f;
    f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
    IPluginV2* plugin = creator->createPlugin("swish", f.get());
    check(plugin != nullptr, "libswish.so: V2 createPlugin");
    if (plugin == nullptr)
    {
        return;
    }
    std::vector<char> blob(plugin->getSerializationSize());
    plugin->serialize(blob.data());
    check(blob.size() == 8, "libswish.so: V2 blob of 8 bytes");
    IPluginV2* restored = creator->deserializePlugin("swish", blob.data(), blob.size());
    check(restored != nullptr, "libswish.so: V2 deserializePlugin of its own blob");
    if (restored != nullptr)
    {
        std::vector<char> again(restored->getSerializationSize());
        restored->serialize(again.data());
        check(again == blob, "libswish.so: V2 serialization round trip is bit-exact");
        restored->destroy();
    }
    plugin->destroy();
    struct Bad
    {
        char const* what;
        std::vector<char> bytes;
        char const* fragment;
    };
    std::vector<char> future = blob;
    int32_t const v2 = 2;
    std::memcpy(future.data(), &v2, 4);
    std::vector<char> nan = blob;
    float const nanBeta = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(nan.data() + 4, &nanBeta, 4);
    std::vector<Bad> const bad = {
        {"a truncated blob", std::vector<char>(blob.begin(), blob.begin() + 6), "has 6 bytes"},
        {"a blob one byte too long", [&] { auto b = blob; b.push_back(0); return b; }(), "has 9 bytes"},
        {"format version 2", future, "unsupported serialization format version 2"},
        {"a NaN beta", nan, "must be finite"},
        {"a 2-byte blob", std::vector<char>(2, 0), "too short"},
    };
    for (Bad const& b : bad)
    {
        IPluginV2* p = creator->deserializePlugin("swish", b.bytes.data(), b.bytes.size());
        check(p == nullptr, std::string("libswish.so: V2 deserializePlugin refuses ") + b.what);
        std::fprintf(stderr, "EXPECT-STDERR %s\n", b.fragment);
        if (p != nullptr)
        {
            p->destroy();
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// GPU cases
// ------------------------------------------------------------------------------------------------------------
struct Run
{
    std::vector<float> input;
    std::unique_ptr<DeviceBuffer> in;
    std::unique_ptr<DeviceBuffer> out;
};

Run prepare(DataType type, size_t n, uint32_t seed, bool inPlace)
{
    Run r;
    r.input = roundTo(type, randomInputs(n, seed));
    r.in = std::make_unique<DeviceBuffer>(n * elementSize(type));
    toDevice(type, r.input, r.in->ptr);
    if (!inPlace)
    {
        r.out = std::make_unique<DeviceBuffer>(n * elementSize(type));
        CUDA_OK(cudaMemset(r.out->ptr, 0xFF, n * elementSize(type))); // NaN poison
    }
    return r;
}

bool matches(DataType type, Run const& r, float beta, std::string& detail)
{
    void const* result = r.out ? r.out->ptr : r.in->ptr;
    return closeToReference(type, r.input, fromDevice(type, result, r.input.size()), beta, detail);
}

int32_t enqueueV3(IPluginV3OneRuntime* runtime, PluginTensorDesc const& desc, void const* in, void* out, cudaStream_t s)
{
    void const* ins[1] = {in};
    void* outs[1] = {out};
    return runtime->enqueue(&desc, &desc, ins, outs, nullptr, s);
}

//! The first enqueue of this library in the process, inside a CUDA graph capture (TensorRT captures plans that way).
void testGraphCaptureFirst(std::string const& lib, IPluginCreatorV3One* creator)
{
    for (DataType type : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
    {
        std::unique_ptr<IPluginV3> plugin = runtimePlugin(creator, 1.F);
        IPluginV3OneRuntime* runtime = views(plugin.get()).runtime;
        std::vector<int64_t> const dims{4, 1000, 33};
        Run r = prepare(type, static_cast<size_t>(countOf(dims)), 7U, false);
        cudaStream_t stream{};
        CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
        PluginTensorDesc const desc = makeDesc(type, dims);
        int32_t const rc = enqueueV3(runtime, desc, r.in->ptr, r.out->ptr, stream);
        cudaGraph_t graph{};
        cudaError_t const ended = cudaStreamEndCapture(stream, &graph);
        cudaGraphExec_t exec{};
        bool ok = rc == 0 && ended == cudaSuccess && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
        ok = ok && cudaGraphLaunch(exec, stream) == cudaSuccess && cudaStreamSynchronize(stream) == cudaSuccess;
        std::string detail;
        check(ok && matches(type, r, 1.F, detail),
            lib + ": " + typeName(type) + " first enqueue inside a CUDA graph capture, replayed " + detail);
        if (exec != nullptr)
        {
            cudaGraphExecDestroy(exec);
        }
        if (graph != nullptr)
        {
            cudaGraphDestroy(graph);
        }
        CUDA_OK(cudaStreamDestroy(stream));
    }
}

void testEnqueueMatrix(std::string const& lib, IPluginCreatorV3One* creator, int& cases)
{
    std::vector<std::vector<int64_t>> const shapes = {{}, {1023}, {7, 129}, {3, 5, 67}, {2, 3, 5, 31}};
    ErrorRecorder recorder;
    ResourceContext context(&recorder);
    for (DataType type : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
    {
        for (float beta : {1.F, 0.5F, 1.702F, -1.F, 0.F})
        {
            std::unique_ptr<IPluginV3> built = runtimePlugin(creator, beta);
            std::unique_ptr<IPluginV3> plugin(views(built.get()).runtime->attachToContext(&context));
            IPluginV3OneRuntime* runtime = views(plugin.get()).runtime;
            for (std::vector<int64_t> const& dims : shapes)
            {
                PluginTensorDesc const desc = makeDesc(type, dims);
                check(runtime->onShapeChange(&desc, 1, &desc, 1) == 0, lib + ": onShapeChange");
                for (bool inPlace : {false, true})
                {
                    Run r = prepare(type, static_cast<size_t>(countOf(dims)), 11U + static_cast<uint32_t>(dims.size()),
                        inPlace);
                    void* out = inPlace ? r.in->ptr : r.out->ptr;
                    int32_t const rc = enqueueV3(runtime, desc, r.in->ptr, out, nullptr);
                    CUDA_OK(cudaDeviceSynchronize());
                    std::string detail;
                    check(rc == 0 && matches(type, r, beta, detail),
                        lib + ": " + typeName(type) + " beta " + std::to_string(beta) + " rank " +
                            std::to_string(dims.size()) + (inPlace ? " in place " : " ") + detail);
                    ++cases;
                }
            }
        }
    }
    check(recorder.getNbErrors() == 0, lib + ": no errors recorded by the successful enqueues");
}

void testThreads(std::string const& lib, IPluginCreatorV3One* creator, int nbThreads)
{
    std::unique_ptr<IPluginV3> built = runtimePlugin(creator, 1.702F);
    IPluginV3OneRuntime* shared = views(built.get()).runtime;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < nbThreads; ++t)
    {
        threads.emplace_back(
            [&, t]
            {
                ErrorRecorder recorder;
                ResourceContext context(&recorder);
                std::unique_ptr<IPluginV3> mine(shared->attachToContext(&context));
                IPluginV3OneRuntime* runtime = views(mine.get()).runtime;
                DataType const type = t % 3 == 0 ? DataType::kFLOAT : t % 3 == 1 ? DataType::kHALF : DataType::kBF16;
                cudaStream_t stream{};
                CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
                for (int i = 0; i < 20; ++i)
                {
                    std::vector<int64_t> const dims{1 + i, 4099 + 64 * t};
                    Run r = prepare(type, static_cast<size_t>(countOf(dims)), static_cast<uint32_t>(100 * t + i), false);
                    PluginTensorDesc const desc = makeDesc(type, dims);
                    int32_t const rc = enqueueV3(runtime, desc, r.in->ptr, r.out->ptr, stream);
                    CUDA_OK(cudaStreamSynchronize(stream));
                    std::string detail;
                    if (rc != 0 || !matches(type, r, 1.702F, detail))
                    {
                        ++failures;
                    }
                }
                CUDA_OK(cudaStreamDestroy(stream));
            });
    }
    for (std::thread& t : threads)
    {
        t.join();
    }
    check(failures == 0,
        lib + ": " + std::to_string(nbThreads) + " threads x 20 enqueues with attached clones on their own streams (" +
            std::to_string(failures.load()) + " failed)");
}

void testFormats(std::string const& lib, IPluginCreatorV3One* creator, IPluginCreator* legacy, int& cases)
{
    float const beta = 1.702F;
    std::unique_ptr<IPluginV3> plugin = runtimePlugin(creator, beta);
    IPluginV3OneRuntime* runtime = views(plugin.get()).runtime;
    IPluginV2DynamicExt* v2 = nullptr;
    if (legacy != nullptr)
    {
        float b = beta;
        Fields f;
        f.fields.emplace_back("beta", &b, PluginFieldType::kFLOAT32, 1);
        v2 = dynamic_cast<IPluginV2DynamicExt*>(legacy->createPlugin("swish", f.get()));
    }
    for (FormatCase const& c : formatCases())
    {
        PaddedLayout const layout = paddedLayout(c.dims, c.format);
        std::vector<float> input = roundTo(c.type, randomInputs(static_cast<size_t>(layout.total), 5U));
        for (size_t i = 0; i < input.size(); ++i)
        {
            input[i] = layout.padding[i] ? 0.F : input[i];
        }
        size_t const bytes = input.size() * elementSize(c.type);
        DeviceBuffer in(bytes);
        DeviceBuffer out(bytes);
        PluginTensorDesc const desc = makeDesc(c.type, c.dims, c.format);
        for (int iface = 0; iface < (v2 != nullptr ? 2 : 1); ++iface)
        {
            toDevice(c.type, input, in.ptr);
            CUDA_OK(cudaMemset(out.ptr, 0xFF, bytes));
            void const* ins[1] = {in.ptr};
            void* outs[1] = {out.ptr};
            check((iface == 0 ? runtime->onShapeChange(&desc, 1, &desc, 1) : 0) == 0, lib + ": onShapeChange format");
            int32_t const rc = iface == 0 ? runtime->enqueue(&desc, &desc, ins, outs, nullptr, nullptr)
                                          : v2->enqueue(&desc, &desc, ins, outs, nullptr, nullptr);
            CUDA_OK(cudaDeviceSynchronize());
            std::vector<float> const got = fromDevice(c.type, out.ptr, input.size());
            std::string detail;
            bool const close = closeToReference(c.type, input, got, beta, detail);
            size_t nbPadding = 0;
            bool paddingZero = true;
            for (size_t i = 0; i < got.size(); ++i)
            {
                nbPadding += layout.padding[i] ? 1 : 0;
                paddingZero = paddingZero && (!layout.padding[i] || got[i] == 0.F);
            }
            check(rc == 0 && close && paddingZero,
                lib + (iface == 0 ? ": V3 " : ": V2 ") + typeName(c.type) + " " + c.formatName + " C=3, " +
                    std::to_string(got.size()) + " elements of which " + std::to_string(nbPadding) + " padding " +
                    detail);
            ++cases;
        }
    }
    if (v2 != nullptr)
    {
        v2->destroy();
    }
}

//! Failure cases: what comes back, and where the message went (ROUTE lines, read by the calling test and the
//! report).
void testFailureRouting(std::string const& lib, IPluginCreatorV3One* creator)
{
    std::unique_ptr<IPluginV3> built = runtimePlugin(creator, 1.F);
    ErrorRecorder recorder;
    ResourceContext context(&recorder);
    std::unique_ptr<IPluginV3> plugin(views(built.get()).runtime->attachToContext(&context));
    IPluginV3OneRuntime* runtime = views(plugin.get()).runtime;
    DeviceBuffer buffer(4096);

    auto route = [&](char const* what, int32_t rc, ErrorCode want, size_t loggerBefore, int32_t recorderBefore)
    {
        bool const recorded = recorder.getNbErrors() > recorderBefore;
        ErrorCode const code = recorded ? recorder.getErrorCode(recorder.getNbErrors() - 1) : ErrorCode::kSUCCESS;
        std::string const desc = recorded ? recorder.getErrorDesc(recorder.getNbErrors() - 1) : "";
        bool const logged = appLogger().nbErrors() > loggerBefore;
        std::printf("ROUTE %s | %s | rc=%d | recorder=%s \"%s\" | logger=%s\n", lib.c_str(), what, rc,
            recorded ? codeName(code) : "-", desc.c_str(), logged ? "yes" : "no (stderr)");
        check(rc != 0 && recorded && code == want, lib + ": " + what + " reported as " + codeName(want));
    };

    {
        size_t const l0 = appLogger().nbErrors();
        int32_t const r0 = recorder.getNbErrors();
        PluginTensorDesc const in = makeDesc(DataType::kHALF, {1, 3, 4, 4}, TensorFormat::kHWC8);
        PluginTensorDesc const out = makeDesc(DataType::kHALF, {1, 3, 4, 4});
        void const* ins[1] = {buffer.ptr};
        void* outs[1] = {buffer.ptr};
        int32_t const rc = runtime->enqueue(&in, &out, ins, outs, nullptr, nullptr);
        route("enqueue kHWC8 -> kLINEAR", rc, ErrorCode::kINVALID_ARGUMENT, l0, r0);
    }
    {
        // A CUDA failure that leaves the context usable: a launch on the legacy default stream while another
        // (blocking) stream is being captured is refused with cudaErrorStreamCaptureImplicit.
        cudaStream_t capturing{};
        CUDA_OK(cudaStreamCreate(&capturing));
        CUDA_OK(cudaStreamBeginCapture(capturing, cudaStreamCaptureModeGlobal));
        size_t const l0 = appLogger().nbErrors();
        int32_t const r0 = recorder.getNbErrors();
        PluginTensorDesc const desc = makeDesc(DataType::kFLOAT, {1024});
        int32_t const rc = enqueueV3(runtime, desc, buffer.ptr, buffer.ptr, nullptr);
        cudaGraph_t graph{};
        static_cast<void>(cudaStreamEndCapture(capturing, &graph));
        if (graph != nullptr)
        {
            cudaGraphDestroy(graph);
        }
        static_cast<void>(cudaGetLastError());
        CUDA_OK(cudaStreamDestroy(capturing));
        route("enqueue whose launch CUDA refuses", rc, ErrorCode::kFAILED_EXECUTION, l0, r0);
        std::string const desc0 = recorder.getNbErrors() > r0 ? recorder.getErrorDesc(recorder.getNbErrors() - 1) : "";
        check(desc0.find("CUDA error") != std::string::npos, lib + ": the CUDA error is named (" + desc0 + ")");
        // The context is still usable afterwards.
        Run r = prepare(DataType::kFLOAT, 1024, 3U, false);
        int32_t const after = enqueueV3(runtime, desc, r.in->ptr, r.out->ptr, nullptr);
        CUDA_OK(cudaDeviceSynchronize());
        std::string detail;
        check(after == 0 && matches(DataType::kFLOAT, r, 1.F, detail), lib + ": enqueue works after the refused one");
    }
    {
        size_t const l0 = appLogger().nbErrors();
        float nanBeta = std::numeric_limits<float>::quiet_NaN();
        Fields f;
        f.fields.emplace_back("beta", &nanBeta, PluginFieldType::kFLOAT32, 1);
        std::unique_ptr<IPluginV3> refused(creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
        bool const logged = appLogger().nbErrors() > l0;
        std::printf("ROUTE %s | createPlugin NaN beta | result=%s | recorder=- (creators have none) | logger=%s\n",
            lib.c_str(), refused ? "plugin" : "nullptr", logged ? "yes" : "no (stderr)");
        check(refused == nullptr, lib + ": createPlugin refuses a NaN beta");
    }
}

void testGpu(std::string const& lib, IPluginCreatorV3One* creator, IPluginCreator* legacy)
{
    testGraphCaptureFirst(lib, creator); // before any other enqueue of this library
    int cases = 0;
    testEnqueueMatrix(lib, creator, cases);
    testThreads(lib, creator, 6);
    int formatCasesRun = 0;
    testFormats(lib, creator, legacy, formatCasesRun);
    testFailureRouting(lib, creator);
    std::printf("%s: %d enqueue cases (3 types x 5 betas x ranks 0-4 x in/out of place), %d format cases\n",
        lib.c_str(), cases, formatCasesRun);
}

// ------------------------------------------------------------------------------------------------------------
// The two libraries
// ------------------------------------------------------------------------------------------------------------
using SetLoggerFinder = void (*)(ILoggerFinder*);

void testLoadable(IPluginRegistry* registry, ErrorRecorder& registryRecorder, std::string const& path, bool gpu)
{
    std::string const lib = "libswish_dynamic.so";
    IPluginRegistry::PluginLibraryHandle handle = registry->loadLibrary(path.c_str());
    check(handle != nullptr, lib + ": loadLibrary (no libnvinfer on the loader path)");
    if (handle == nullptr)
    {
        for (int32_t i = 0; i < registryRecorder.getNbErrors(); ++i)
        {
            std::printf("  registry: %s\n", registryRecorder.getErrorDesc(i));
        }
        return;
    }
    IPluginCreatorV3One* creator = v3Creator(registry);
    check(creator != nullptr, lib + ": SwishPlugin/2 registered as an IPluginCreatorV3One");
    check(registry->getCreator("SwishPlugin", "1", "") == nullptr, lib + ": no V2 creator (names unique)");

    // What TensorRT's own logger finder does with the plugin's messages, then ours.
    {
        float nanBeta = std::numeric_limits<float>::quiet_NaN();
        Fields f;
        f.fields.emplace_back("beta", &nanBeta, PluginFieldType::kFLOAT32, 1);
        size_t const l0 = appLogger().nbErrors();
        std::unique_ptr<IPluginV3> refused(creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
        std::printf("ROUTE %s | createPlugin NaN beta, TensorRT's logger finder | result=%s | logger=%s\n",
            lib.c_str(), refused ? "plugin" : "nullptr",
            appLogger().nbErrors() > l0 ? "application logger" : "not the application logger (see stderr)");
    }
    void* self = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    auto setFinder = self != nullptr ? reinterpret_cast<SetLoggerFinder>(dlsym(self, "setLoggerFinder")) : nullptr;
    check(setFinder != nullptr, lib + ": setLoggerFinder is exported");
    static Finder finder;
    if (setFinder != nullptr)
    {
        setFinder(&finder); // from here on the library logs to appLogger(), through a finder as TensorRT hands over
    }
    if (self != nullptr)
    {
        dlclose(self);
    }
    if (creator != nullptr)
    {
        testV3Host(lib, creator, setFinder != nullptr);
        if (gpu)
        {
            testGpu(lib, creator, nullptr);
        }
    }

    // deregisterLibrary removes the creator; the library loads again, repeatedly.
    registry->deregisterLibrary(handle);
    check(registry->getCreator("SwishPlugin", "2", "") == nullptr, lib + ": deregisterLibrary removes SwishPlugin/2");
    for (int round = 1; round <= 3; ++round)
    {
        int32_t const errors0 = registryRecorder.getNbErrors();
        IPluginRegistry::PluginLibraryHandle again = registry->loadLibrary(path.c_str());
        IPluginCreatorV3One* reloaded = v3Creator(registry);
        std::unique_ptr<IPluginV3> plugin = reloaded != nullptr ? runtimePlugin(reloaded, 0.25F) : nullptr;
        check(again != nullptr && reloaded != nullptr && plugin != nullptr && serializedBeta(plugin.get()) == 0.25F &&
                registryRecorder.getNbErrors() == errors0,
            lib + ": reload " + std::to_string(round) + " after deregisterLibrary registers and creates again");
        plugin.reset();
        if (again != nullptr)
        {
            registry->deregisterLibrary(again);
        }
    }
}

void testStatic(IPluginRegistry* registry, ErrorRecorder& registryRecorder, std::string const& path, bool gpu)
{
    std::string const lib = "libswish.so";
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    check(handle != nullptr, lib + ": dlopen registers statically" + (handle ? "" : std::string(": ") + dlerror()));
    if (handle == nullptr)
    {
        return;
    }
    IPluginCreatorV3One* creator = v3Creator(registry);
    IPluginCreator* legacy = v2Creator(registry);
    check(creator != nullptr && legacy != nullptr, lib + ": SwishPlugin/2 (V3) and SwishPlugin/1 (V2) registered");
    if (creator != nullptr)
    {
        // libswish.so logs through libnvinfer's getLogger(), which the lean runtime leaves null without an IRuntime:
        // its messages then go to stderr (checked by the calling test).
        testV3Host(lib, creator, false);
    }
    if (legacy != nullptr)
    {
        testV2Host(legacy);
    }
    if (gpu && creator != nullptr)
    {
        testGpu(lib, creator, legacy);
    }

    // Deregister both creators, unload, load again: static registration runs again.
    bool const removed = creator != nullptr && legacy != nullptr && registry->deregisterCreator(*creator) &&
        registry->deregisterCreator(*legacy);
    check(removed && registry->getCreator("SwishPlugin", "2", "") == nullptr &&
            registry->getCreator("SwishPlugin", "1", "") == nullptr,
        lib + ": deregisterCreator removes both creators");
    dlclose(handle);
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    IPluginCreatorV3One* again = v3Creator(registry);
    std::unique_ptr<IPluginV3> plugin = again != nullptr ? runtimePlugin(again, 0.25F) : nullptr;
    check(handle != nullptr && again != nullptr && v2Creator(registry) != nullptr && plugin != nullptr,
        lib + ": reload after deregistration registers both creators again");
    plugin.reset();

    // loadLibrary refuses the statically registering library, and says so through the registry's recorder. Last:
    // whatever the refusal leaves registered is not used again.
    if (again != nullptr)
    {
        registry->deregisterCreator(*again);
    }
    if (IPluginCreator* v2 = v2Creator(registry))
    {
        registry->deregisterCreator(*v2);
    }
    int32_t const errors0 = registryRecorder.getNbErrors();
    IPluginRegistry::PluginLibraryHandle refused = registry->loadLibrary(path.c_str());
    std::string const why = registryRecorder.getNbErrors() > errors0
        ? registryRecorder.getErrorDesc(registryRecorder.getNbErrors() - 1)
        : std::string("(no message)");
    std::printf("ROUTE %s | loadLibrary(libswish.so) | handle=%s | registry recorder=\"%s\"\n", lib.c_str(),
        refused ? "non-null" : "nullptr", why.c_str());
    check(refused == nullptr && registryRecorder.getNbErrors() > errors0,
        lib + ": loadLibrary refuses the statically registering library with a message");
}

} // namespace

int main(int argc, char** argv)
{
    std::string loadable;
    std::string statik;
    bool gpu = false;
    for (int i = 1; i < argc; ++i)
    {
        std::string const arg = argv[i];
        if (arg == "--loadable" && i + 1 < argc)
        {
            loadable = argv[++i];
        }
        else if (arg == "--static" && i + 1 < argc)
        {
            statik = argv[++i];
        }
        else if (arg == "--gpu")
        {
            gpu = true;
        }
        else
        {
            std::fprintf(stderr, "usage: %s --loadable libswish_dynamic.so [--static libswish.so] [--gpu]\n", argv[0]);
            return 2;
        }
    }
    std::printf("TensorRT runtime %d (library %d.%d.%d), built against the %d.%d headers\n", getInferLibMajorVersion(),
        getInferLibMajorVersion(), getInferLibMinorVersion(), getInferLibPatchVersion(), NV_TENSORRT_MAJOR,
        NV_TENSORRT_MINOR);

    std::unique_ptr<IRuntime> runtime;
    if (gpu)
    {
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
        {
            std::printf("FAIL: --gpu given but no CUDA device is usable\n");
            return 1;
        }
        cudaDeviceProp prop{};
        CUDA_OK(cudaGetDeviceProperties(&prop, 0));
        // With a GPU the lean runtime can make an IRuntime; it does not change where plugins log (ROUTE lines).
        runtime.reset(createInferRuntime(appLogger()));
        std::printf("GPU: %s; createInferRuntime %s\n", prop.name, runtime ? "succeeded" : "failed");
    }

    // The global registry (never IRuntime::getPluginRegistry: without a GPU there is no IRuntime).
    IPluginRegistry* registry = getPluginRegistry();
    if (registry == nullptr)
    {
        std::printf("FAIL: getPluginRegistry() returned nullptr\n");
        return 1;
    }
    ErrorRecorder registryRecorder;
    registry->setErrorRecorder(&registryRecorder);

    if (!loadable.empty())
    {
        testLoadable(registry, registryRecorder, loadable, gpu);
    }
    if (!statik.empty())
    {
        testStatic(registry, registryRecorder, statik, gpu);
    }
    registry->setErrorRecorder(nullptr);
    if (gpu)
    {
        CUDA_OK(cudaDeviceSynchronize());
    }
    std::printf("TensorRT %d runtime test: %d passed, %d failed\n", getInferLibMajorVersion(), gResults.passed, gResults.failed);
    return gResults.failed == 0 ? 0 : 1;
}
