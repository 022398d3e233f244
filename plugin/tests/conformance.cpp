/*
 * Conformance driver for the Swish plugin: drives both plugin interfaces the way TensorRT does, without libnvinfer.
 *
 * The plugin sources are compiled into this executable (see CMakeLists.txt, target swish_conformance), and this file
 * supplies what they take from libnvinfer at link time (getPluginRegistry, getLogger) plus the objects TensorRT
 * would hand them (IExprBuilder / IDimensionExpr, IPluginResourceContext, IErrorRecorder). Build it against each
 * TensorRT header set; run it on a GPU. Prints "N passed, M failed"; exits non-zero on any failure.
 */
#include "swishFormats.h"
#include "testSupport.h"
#include "swishPlugin.h"
#include "swishPluginLegacy.h"
#include "swishPluginSpec.h"

#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" // the V2 interfaces are deprecated; this tests them

using namespace nvinfer1;
using namespace swishtest;

// Entry point of swishPluginEntryPoints.cpp (compiled into this driver as well).
extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);

namespace
{

// ------------------------------------------------------------------------------------------------------------
// Results
// ------------------------------------------------------------------------------------------------------------
Tally gResults;
int gSkipped = 0;
bool gHaveGpu = false;

void check(bool ok, std::string const& what)
{
    gResults.check(ok, what);
}

// ------------------------------------------------------------------------------------------------------------
// What libnvinfer would provide
// ------------------------------------------------------------------------------------------------------------
class TestLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kERROR)
        {
            ++errors;
            last = msg != nullptr ? msg : "";
        }
        else if (severity == Severity::kWARNING)
        {
            ++warnings;
            lastWarning = msg != nullptr ? msg : "";
        }
        if (severity <= Severity::kWARNING && std::getenv("SWISH_CONFORMANCE_VERBOSE") != nullptr)
        {
            std::printf("  [logger] %s\n", msg != nullptr ? msg : "");
        }
    }
    int errors{0};
    int warnings{0};
    std::string last;
    std::string lastWarning;
};

TestLogger& testLogger()
{
    static TestLogger logger;
    return logger;
}

class TestRegistry : public IPluginRegistry
{
public:
    struct Entry
    {
        IPluginCreatorInterface* creator;
        std::string kind;
        std::string name;
        std::string version;
        std::string ns;
    };

    bool registerCreator(IPluginCreatorInterface& creator, AsciiChar const* const pluginNamespace) noexcept override
    {
        Entry entry{&creator, creator.getInterfaceInfo().kind, "", "", pluginNamespace ? pluginNamespace : ""};
        if (entry.kind == "PLUGIN CREATOR_V3ONE")
        {
            auto& c = static_cast<IPluginCreatorV3One&>(creator);
            entry.name = c.getPluginName();
            entry.version = c.getPluginVersion();
        }
        else if (entry.kind == "PLUGIN CREATOR_V1")
        {
            auto& c = static_cast<IPluginCreator&>(creator);
            entry.name = c.getPluginName();
            entry.version = c.getPluginVersion();
        }
        else
        {
            return false;
        }
        for (Entry const& e : entries)
        {
            if (e.name == entry.name && e.version == entry.version && e.ns == entry.ns)
            {
                return false; // TensorRT refuses duplicates too
            }
        }
        entries.push_back(entry);
        return true;
    }
    IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override
    {
        list.clear();
        for (Entry const& e : entries)
        {
            list.push_back(e.creator);
        }
        *numCreators = static_cast<int32_t>(list.size());
        return list.data();
    }
    IPluginCreatorInterface* getCreator(
        AsciiChar const* const name, AsciiChar const* const version, AsciiChar const* const ns) noexcept override
    {
        for (Entry const& e : entries)
        {
            if (e.name == name && e.version == version && e.ns == (ns ? ns : ""))
            {
                return e.creator;
            }
        }
        return nullptr;
    }
    bool deregisterCreator(IPluginCreatorInterface const&) noexcept override
    {
        return false;
    }
    IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const numCreators) noexcept override
    {
        return getAllCreators(numCreators);
    }
    void setErrorRecorder(IErrorRecorder* const) noexcept override {}
    IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return nullptr;
    }
    bool isParentSearchEnabled() const override
    {
        return false;
    }
    void setParentSearchEnabled(bool const) override {}
    PluginLibraryHandle loadLibrary(AsciiChar const*) noexcept override
    {
        return nullptr;
    }
    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
    IPluginResource* acquirePluginResource(AsciiChar const*, IPluginResource*) noexcept override
    {
        return nullptr;
    }
    int32_t releasePluginResource(AsciiChar const*) noexcept override
    {
        return -1;
    }
#if NV_TENSORRT_MAJOR < 11
    bool registerCreator(IPluginCreator& creator, AsciiChar const* const pluginNamespace) noexcept override
    {
        return registerCreator(static_cast<IPluginCreatorInterface&>(creator), pluginNamespace);
    }
    IPluginCreator* const* getPluginCreatorList(int32_t* const numCreators) const noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }
    IPluginCreator* getPluginCreator(
        AsciiChar const* const name, AsciiChar const* const version, AsciiChar const* const ns) noexcept override
    {
        IPluginCreatorInterface* c = getCreator(name, version, ns);
        return c != nullptr && std::string(c->getInterfaceInfo().kind) == "PLUGIN CREATOR_V1"
                   ? static_cast<IPluginCreator*>(c)
                   : nullptr;
    }
    bool deregisterCreator(IPluginCreator const&) noexcept override
    {
        return false;
    }
#endif
    ~TestRegistry() noexcept override = default;

    std::vector<Entry> entries;
    mutable std::vector<IPluginCreatorInterface*> list;
};

TestRegistry& testRegistry()
{
    static TestRegistry registry;
    return registry;
}

} // namespace

extern "C" IPluginRegistry* getPluginRegistry() noexcept
{
    return &testRegistry();
}

extern "C" ILogger* getLogger() noexcept
{
    return &testLogger();
}

namespace
{

// ------------------------------------------------------------------------------------------------------------
// What TensorRT hands to plugins
// ------------------------------------------------------------------------------------------------------------
class DimExprImpl : public apiv::VDimensionExpr
{
public:
    DimExprImpl(bool constant, int64_t value)
        : mConstant(constant)
        , mValue(value)
    {
    }
    bool isConstant() const override
    {
        return mConstant;
    }
    int64_t getConstantValue() const override
    {
        return mConstant ? mValue : std::numeric_limits<int64_t>::min();
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    bool mConstant;
    int64_t mValue;
};

class DimExpr : public IDimensionExpr
{
public:
    explicit DimExpr(apiv::VDimensionExpr* impl)
    {
        mImpl = impl;
    }
    ~DimExpr() noexcept override = default;
};

// Owns every expression it makes, as TensorRT's builder does.
class ExprBuilderImpl : public apiv::VExprBuilder
{
public:
    IDimensionExpr const* constant(int64_t value) override
    {
        return make(true, value);
    }
    IDimensionExpr const* symbol()
    {
        return make(false, 0);
    }
    IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override
    {
        if (!a.isConstant() || !b.isConstant())
        {
            return make(false, 0);
        }
        int64_t const x = a.getConstantValue();
        int64_t const y = b.getConstantValue();
        switch (op)
        {
        case DimensionOperation::kSUM:
            return make(true, x + y);
        case DimensionOperation::kPROD:
            return make(true, x * y);
        case DimensionOperation::kMAX:
            return make(true, x > y ? x : y);
        case DimensionOperation::kMIN:
            return make(true, x < y ? x : y);
        case DimensionOperation::kSUB:
            return make(true, x - y);
        case DimensionOperation::kEQUAL:
            return make(true, x == y ? 1 : 0);
        case DimensionOperation::kLESS:
            return make(true, x < y ? 1 : 0);
        case DimensionOperation::kFLOOR_DIV:
            return y == 0 ? nullptr : make(true, x / y);
        case DimensionOperation::kCEIL_DIV:
            return y == 0 ? nullptr : make(true, (x + y - 1) / y);
        }
        return nullptr;
    }
    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }

private:
    IDimensionExpr const* make(bool constant, int64_t value)
    {
        mImpls.emplace_back(constant, value);
        mExprs.emplace_back(&mImpls.back());
        return &mExprs.back();
    }
    std::deque<DimExprImpl> mImpls;
    std::deque<DimExpr> mExprs;
};

class ExprBuilder : public IExprBuilder
{
public:
    explicit ExprBuilder(apiv::VExprBuilder* impl)
    {
        mImpl = impl;
    }
    ~ExprBuilder() noexcept override = default;
};

// ------------------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------------------
DataType const kSupported[] = {DataType::kFLOAT, DataType::kHALF, DataType::kBF16};
constexpr int32_t kNbDataTypes = 12;     // kFLOAT .. kE8M0 in 10.16 and 11.1
constexpr int32_t kNbTensorFormats = 13; // kLINEAR .. kDHWC

bool isSupported(DataType t)
{
    return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16;
}

// The supported (type, format) pairs written out independently of swishFormats.h (the README table), so that a
// change to the plugin's table has to be made here too. Rank: the minimum rank of the format.
struct ExpectedPair
{
    DataType type;
    TensorFormat format;
    int32_t minRank;
};
ExpectedPair const kExpectedPairs[] = {
    {DataType::kFLOAT, TensorFormat::kLINEAR, 0},
    {DataType::kHALF, TensorFormat::kLINEAR, 0},
    {DataType::kBF16, TensorFormat::kLINEAR, 0},
    {DataType::kFLOAT, TensorFormat::kCHW32, 3},
    {DataType::kFLOAT, TensorFormat::kHWC, 3},
    {DataType::kFLOAT, TensorFormat::kDHWC, 4},
    {DataType::kHALF, TensorFormat::kCHW2, 3},
    {DataType::kHALF, TensorFormat::kHWC8, 3},
    {DataType::kHALF, TensorFormat::kHWC16, 3},
    {DataType::kHALF, TensorFormat::kCHW32, 3},
    {DataType::kHALF, TensorFormat::kDHWC8, 4},
    {DataType::kHALF, TensorFormat::kCDHW32, 4},
    {DataType::kBF16, TensorFormat::kCHW2, 3},
    {DataType::kBF16, TensorFormat::kHWC8, 3},
    {DataType::kBF16, TensorFormat::kDHWC8, 4},
};
std::vector<std::vector<int64_t>> const kMatrixShapes = {{-1, 8}, {-1, 3, 5}, {2, 3, -1, 7}, {2, 3, 4, 5, 6}};
// Accepted (type, format) pairs summed over the ranks of kMatrixShapes (2, 3, 4, 5): 3 + 11 + 15 + 15.
constexpr int kExpectedPairsAccepted = 44;

bool expectAccepted(int32_t type, int32_t format, std::vector<int64_t> const& dims)
{
    for (ExpectedPair const& e : kExpectedPairs)
    {
        if (static_cast<int32_t>(e.type) == type && static_cast<int32_t>(e.format) == format &&
            static_cast<int32_t>(dims.size()) >= e.minRank)
        {
            return true;
        }
    }
    return false;
}

template <typename Creator>
Creator* findCreator(char const* version, char const* kind)
{
    IPluginCreatorInterface* c = getPluginRegistry()->getCreator(swish::spec::kPLUGIN_NAME, version, "");
    if (c == nullptr || std::string(c->getInterfaceInfo().kind) != kind)
    {
        return nullptr;
    }
    return static_cast<Creator*>(c);
}

// Expects `call` to fail: returns true if it did and the logger (or recorder) saw an error.
template <typename F>
bool failsWithLoggedError(F&& call)
{
    int const before = testLogger().errors;
    bool const failed = call();
    return failed && testLogger().errors > before;
}

// ------------------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------------------
void testRegistration()
{
    auto& reg = testRegistry();
    check(reg.entries.size() == 2, "static registration registered 2 creators");
    auto* v3 = findCreator<IPluginCreatorV3One>(swish::spec::kPLUGIN_VERSION_V3, "PLUGIN CREATOR_V3ONE");
    auto* v2 = findCreator<IPluginCreator>(swish::spec::kPLUGIN_VERSION_V2, "PLUGIN CREATOR_V1");
    check(v3 != nullptr, "V3 creator registered under SwishPlugin/2");
    check(v2 != nullptr, "V2 creator registered under SwishPlugin/1");
    if (v3 != nullptr)
    {
        check(std::strcmp(v3->getPluginName(), "SwishPlugin") == 0, "V3 creator name");
        check(std::strcmp(v3->getPluginVersion(), "2") == 0, "V3 creator version");
        check(std::strcmp(v3->getPluginNamespace(), "") == 0, "V3 creator namespace");
        PluginFieldCollection const* names = v3->getFieldNames();
        check(names != nullptr && names->nbFields == 1 && std::strcmp(names->fields[0].name, "beta") == 0 &&
                  names->fields[0].type == PluginFieldType::kFLOAT32 && names->fields[0].length == 1,
            "V3 getFieldNames lists beta:float32[1]");
    }
    if (v2 != nullptr)
    {
        check(std::strcmp(v2->getPluginName(), "SwishPlugin") == 0, "V2 creator name");
        check(std::strcmp(v2->getPluginVersion(), "1") == 0, "V2 creator version");
        PluginFieldCollection const* names = v2->getFieldNames();
        check(names != nullptr && names->nbFields == 1 && std::strcmp(names->fields[0].name, "beta") == 0,
            "V2 getFieldNames lists beta");
    }
    // A second registration of the same creator must be refused (duplicate), not crash.
    swish::SwishPluginV3Creator another;
    check(!reg.registerCreator(another, ""), "duplicate registration refused");

    int32_t nb = 0;
    IPluginCreatorInterface* const* creators = getCreators(nb);
    // The loadable library's creators must have unique names (TensorRT's deregisterLibrary removes them by name).
    check(nb == 1 && creators != nullptr, "getCreators entry point returns 1 creator");
    if (nb == 1 && creators != nullptr)
    {
        check(std::string(creators[0]->getInterfaceInfo().kind) == "PLUGIN CREATOR_V3ONE",
            "getCreators returns the V3ONE creator");
    }
}

void testV3Creation(IPluginCreatorV3One* creator)
{
    float beta = 0.5F;
    float nanBeta = std::numeric_limits<float>::quiet_NaN();
    float infBeta = std::numeric_limits<float>::infinity();
    double beta64 = 1.702;
    double hugeBeta64 = 1e300;
    int32_t intBeta = 1;
    int32_t version = swish::spec::kSERIALIZATION_FORMAT_VERSION;
    int32_t badVersion = version + 1;
    float twoBetas[2] = {1.F, 2.F};

    for (TensorRTPhase phase : {TensorRTPhase::kBUILD, TensorRTPhase::kRUNTIME})
    {
        std::string const p = phase == TensorRTPhase::kBUILD ? "build" : "runtime";
        bool const build = phase == TensorRTPhase::kBUILD;

        // No fields: build phase takes the defaults; runtime phase needs what getFieldsToSerialize wrote.
        {
            std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", nullptr, phase));
            check((plugin != nullptr) == build, p + ": createPlugin with no fields");
            if (plugin)
            {
                auto* impl = dynamic_cast<swish::SwishPluginV3*>(plugin.get());
                check(impl != nullptr && impl->params().beta == 1.0F, p + ": default beta is 1.0");
            }
        }
        {
            Fields f;
            f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
            std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), phase));
            check((plugin != nullptr) == build, p + ": createPlugin with beta only");
        }
        {
            Fields f;
            f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
            f.fields.emplace_back("serialization_format_version", &version, PluginFieldType::kINT32, 1);
            std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), phase));
            check(plugin != nullptr, p + ": createPlugin with beta and format version");
            auto* impl = dynamic_cast<swish::SwishPluginV3*>(plugin.get());
            check(impl != nullptr && impl->params().beta == 0.5F, p + ": beta 0.5 taken");
        }
        {
            Fields f;
            f.fields.emplace_back("beta", &beta64, PluginFieldType::kFLOAT64, 1);
            f.fields.emplace_back("serialization_format_version", &version, PluginFieldType::kINT32, 1);
            std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), phase));
            auto* impl = dynamic_cast<swish::SwishPluginV3*>(plugin.get());
            check(impl != nullptr && impl->params().beta == 1.702F, p + ": float64 beta accepted");
        }
        struct Bad
        {
            char const* what;
            std::vector<PluginField> fields;
        };
        std::vector<Bad> bad = {
            {"NaN beta", {{"beta", &nanBeta, PluginFieldType::kFLOAT32, 1}}},
            {"inf beta", {{"beta", &infBeta, PluginFieldType::kFLOAT32, 1}}},
            {"float64 beta beyond float32", {{"beta", &hugeBeta64, PluginFieldType::kFLOAT64, 1}}},
            {"int32 beta", {{"beta", &intBeta, PluginFieldType::kINT32, 1}}},
            {"beta of length 2", {{"beta", twoBetas, PluginFieldType::kFLOAT32, 2}}},
            {"beta of length 0", {{"beta", &beta, PluginFieldType::kFLOAT32, 0}}},
            {"beta with null data", {{"beta", nullptr, PluginFieldType::kFLOAT32, 1}}},
            {"duplicate beta",
                {{"beta", &beta, PluginFieldType::kFLOAT32, 1}, {"beta", &beta, PluginFieldType::kFLOAT32, 1}}},
            {"null field name", {{nullptr, &beta, PluginFieldType::kFLOAT32, 1}}},
            {"unknown format version", {{"beta", &beta, PluginFieldType::kFLOAT32, 1},
                                           {"serialization_format_version", &badVersion, PluginFieldType::kINT32, 1}}},
            {"format version as float", {{"beta", &beta, PluginFieldType::kFLOAT32, 1},
                                            {"serialization_format_version", &beta, PluginFieldType::kFLOAT32, 1}}},
        };
        if (!build)
        {
            bad.push_back({"missing format version", {{"beta", &beta, PluginFieldType::kFLOAT32, 1}}});
            bad.push_back({"missing beta", {{"serialization_format_version", &version, PluginFieldType::kINT32, 1}}});
        }
        for (Bad& b : bad)
        {
            Fields f;
            f.fields = b.fields;
            check(failsWithLoggedError(
                      [&]
                      {
                          std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), phase));
                          return plugin == nullptr;
                      }),
                p + ": createPlugin rejects " + b.what + " with a logged error");
        }
        {
            // Fields the plugin does not know (e.g. extra ONNX node attributes) are ignored with a warning.
            int32_t const warningsBefore = testLogger().warnings;
            Fields f;
            f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
            f.fields.emplace_back("alpha", &beta, PluginFieldType::kFLOAT32, 1);
            f.fields.emplace_back("serialization_format_version", &version, PluginFieldType::kINT32, 1);
            std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), phase));
            auto* impl = dynamic_cast<swish::SwishPluginV3*>(plugin.get());
            check(impl != nullptr && impl->params().beta == 0.5F, p + ": createPlugin ignores an unknown field");
            check(testLogger().warnings == warningsBefore + 1 &&
                      testLogger().lastWarning.find("'alpha': unknown field, ignored") != std::string::npos,
                p + ": the unknown field is logged as a warning");
        }
        {
            PluginFieldCollection weird{3, nullptr};
            check(creator->createPlugin("swish", &weird, phase) == nullptr, p + ": fields count with null array");
            PluginFieldCollection negative{-1, nullptr};
            check(creator->createPlugin("swish", &negative, phase) == nullptr, p + ": negative field count");
        }
    }
}

void testV3Build(IPluginCreatorV3One* creator)
{
    float beta = 1.702F;
    Fields f;
    f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
    std::unique_ptr<IPluginV3> plugin(creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
    check(plugin != nullptr, "V3 build plugin created");
    if (!plugin)
    {
        return;
    }
    V3Views v = views(plugin.get());
    check(v.core && v.build && v.runtime, "V3 exposes CORE, BUILD and RUNTIME capabilities");
    if (!(v.core && v.build && v.runtime))
    {
        return;
    }
    check(std::string(v.core->getInterfaceInfo().kind) == "PLUGIN_V3ONE_CORE" &&
              std::string(v.build->getInterfaceInfo().kind) == "PLUGIN_V3ONE_BUILD" &&
              std::string(v.runtime->getInterfaceInfo().kind) == "PLUGIN_V3ONE_RUNTIME",
        "capability interface kinds");
    check(plugin->getCapabilityInterface(static_cast<PluginCapabilityType>(7)) == nullptr,
        "unknown capability type gives nullptr");
    check(std::strcmp(v.core->getPluginName(), "SwishPlugin") == 0 &&
              std::strcmp(v.core->getPluginVersion(), "2") == 0 && std::strcmp(v.core->getPluginNamespace(), "") == 0,
        "V3 core name/version/namespace");
    check(v.build->getNbOutputs() == 1, "V3 getNbOutputs == 1");

    // Output types.
    for (int32_t t = 0; t < kNbDataTypes; ++t)
    {
        DataType const in = static_cast<DataType>(t);
        DataType out = DataType::kINT32;
        int32_t const rc = v.build->getOutputDataTypes(&out, 1, &in, 1);
        if (isSupported(in))
        {
            check(rc == 0 && out == in, std::string("getOutputDataTypes keeps ") + typeName(in));
        }
        else
        {
            check(rc != 0, "getOutputDataTypes rejects DataType " + std::to_string(t));
        }
    }
    {
        DataType in[2] = {DataType::kFLOAT, DataType::kFLOAT};
        DataType out[2];
        check(v.build->getOutputDataTypes(out, 1, in, 2) != 0, "getOutputDataTypes rejects 2 inputs");
        check(v.build->getOutputDataTypes(out, 2, in, 1) != 0, "getOutputDataTypes rejects 2 outputs");
    }

    // Output shapes: every rank, constant and symbolic extents.
    ExprBuilderImpl impl;
    ExprBuilder builder(&impl);
    for (int32_t rank = 0; rank <= Dims::MAX_DIMS; ++rank)
    {
        DimsExprs in{};
        in.nbDims = rank;
        for (int32_t i = 0; i < rank; ++i)
        {
            in.d[i] = (i % 2 == 0) ? impl.symbol() : builder.constant(3 + i);
        }
        DimsExprs out{};
        int32_t const rc = v.build->getOutputShapes(&in, 1, nullptr, 0, &out, 1, builder);
        bool same = rc == 0 && out.nbDims == rank;
        for (int32_t i = 0; same && i < rank; ++i)
        {
            same = out.d[i] == in.d[i];
        }
        check(same, "getOutputShapes is the identity at rank " + std::to_string(rank));
    }
    {
        DimsExprs in[2]{};
        DimsExprs out[2]{};
        check(v.build->getOutputShapes(in, 2, nullptr, 0, out, 1, builder) != 0, "getOutputShapes rejects 2 inputs");
        check(v.build->getOutputShapes(in, 1, in, 1, out, 1, builder) != 0, "getOutputShapes rejects shape inputs");
    }

    // supportsFormatCombination: the whole (type, format) matrix at ranks 2 to 5, position by position as TensorRT asks.
    int matrixOk = 0;
    int matrixBad = 0;
    int pairsAccepted = 0;
    for (std::vector<int64_t> const& dims : kMatrixShapes)
    {
        for (int32_t inType = 0; inType < kNbDataTypes; ++inType)
        {
            for (int32_t inFormat = 0; inFormat < kNbTensorFormats; ++inFormat)
            {
                DynamicPluginTensorDesc io[2] = {
                    makeDynamic(makeDesc(static_cast<DataType>(inType), dims, static_cast<TensorFormat>(inFormat))),
                    makeDynamic(makeDesc(DataType::kFLOAT, dims))};
                bool const want0 = expectAccepted(inType, inFormat, dims);
                (v.build->supportsFormatCombination(0, io, 1, 1) == want0 ? matrixOk : matrixBad)++;
                if (!want0)
                {
                    continue;
                }
                ++pairsAccepted;
                for (int32_t outType = 0; outType < kNbDataTypes; ++outType)
                {
                    for (int32_t outFormat = 0; outFormat < kNbTensorFormats; ++outFormat)
                    {
                        io[1] = makeDynamic(
                            makeDesc(static_cast<DataType>(outType), dims, static_cast<TensorFormat>(outFormat)));
                        bool const want1 = outFormat == inFormat && outType == inType;
                        (v.build->supportsFormatCombination(1, io, 1, 1) == want1 ? matrixOk : matrixBad)++;
                    }
                }
            }
        }
    }
    check(matrixBad == 0 && pairsAccepted == kExpectedPairsAccepted,
        "V3 supportsFormatCombination matrix (" + std::to_string(matrixOk) + " cells right, " +
            std::to_string(matrixBad) + " wrong, " + std::to_string(pairsAccepted) + " (type, format, rank) accepted)");
    {
        DynamicPluginTensorDesc io[2] = {
            makeDynamic(makeDesc(DataType::kFLOAT, {4})), makeDynamic(makeDesc(DataType::kFLOAT, {4}))};
        check(!v.build->supportsFormatCombination(2, io, 1, 1) && !v.build->supportsFormatCombination(-1, io, 1, 1),
            "supportsFormatCombination rejects out-of-range positions");
    }

    // configurePlugin with dynamic (-1) extents, getWorkspaceSize.
    for (DataType t : kSupported)
    {
        DynamicPluginTensorDesc in = makeDynamic(makeDesc(t, {-1, 3, -1}));
        DynamicPluginTensorDesc out = makeDynamic(makeDesc(t, {-1, 3, -1}));
        check(v.build->configurePlugin(&in, 1, &out, 1) == 0, std::string("configurePlugin accepts ") + typeName(t));
        check(v.build->getWorkspaceSize(&in, 1, &out, 1) == 0, "getWorkspaceSize is 0");
    }
    {
        DynamicPluginTensorDesc in = makeDynamic(makeDesc(DataType::kFLOAT, {4}));
        DynamicPluginTensorDesc out = makeDynamic(makeDesc(DataType::kHALF, {4}));
        check(v.build->configurePlugin(&in, 1, &out, 1) != 0, "configurePlugin rejects mixed types");
        DynamicPluginTensorDesc in8 = makeDynamic(makeDesc(DataType::kINT8, {4}));
        DynamicPluginTensorDesc out8 = makeDynamic(makeDesc(DataType::kINT8, {4}));
        check(v.build->configurePlugin(&in8, 1, &out8, 1) != 0, "configurePlugin rejects INT8");
        DynamicPluginTensorDesc inHwc = makeDynamic(makeDesc(DataType::kHALF, {1, 3, 2, 2}, TensorFormat::kHWC8));
        DynamicPluginTensorDesc outHwc = makeDynamic(makeDesc(DataType::kHALF, {1, 3, 2, 2}, TensorFormat::kHWC8));
        check(v.build->configurePlugin(&inHwc, 1, &outHwc, 1) == 0, "configurePlugin accepts FP16 kHWC8");
        DynamicPluginTensorDesc outLinear = makeDynamic(makeDesc(DataType::kHALF, {1, 3, 2, 2}));
        check(v.build->configurePlugin(&inHwc, 1, &outLinear, 1) != 0, "configurePlugin rejects kHWC8 -> kLINEAR");
        DynamicPluginTensorDesc inHwcF = makeDynamic(makeDesc(DataType::kFLOAT, {1, 3, 2, 2}, TensorFormat::kHWC8));
        check(v.build->configurePlugin(&inHwcF, 1, &inHwcF, 1) != 0, "configurePlugin rejects FP32 kHWC8");
        DynamicPluginTensorDesc low = makeDynamic(makeDesc(DataType::kHALF, {3, 2}, TensorFormat::kHWC8));
        check(v.build->configurePlugin(&low, 1, &low, 1) != 0, "configurePlugin rejects kHWC8 at rank 2");
    }

    // getFieldsToSerialize -> runtime-phase createPlugin round trip.
    PluginFieldCollection const* serial = v.runtime->getFieldsToSerialize();
    check(serial != nullptr && serial->nbFields == 2, "getFieldsToSerialize gives 2 fields");
    if (serial != nullptr)
    {
        std::unique_ptr<IPluginV3> restored(creator->createPlugin("swish", serial, TensorRTPhase::kRUNTIME));
        auto* r = dynamic_cast<swish::SwishPluginV3*>(restored.get());
        check(r != nullptr && r->params().beta == 1.702F, "runtime createPlugin from serialized fields keeps beta");
        if (r != nullptr)
        {
            V3Views rv = views(restored.get());
            PluginFieldCollection const* again = rv.runtime->getFieldsToSerialize();
            bool same = again != nullptr && again->nbFields == serial->nbFields;
            for (int32_t i = 0; same && i < again->nbFields; ++i)
            {
                same = std::strcmp(again->fields[i].name, serial->fields[i].name) == 0 &&
                       again->fields[i].type == serial->fields[i].type &&
                       again->fields[i].length == serial->fields[i].length &&
                       std::memcmp(again->fields[i].data, serial->fields[i].data, 4) == 0;
            }
            check(same, "serialized fields round trip bit-exactly");
        }
    }

    // clone: independent object whose fields point into itself.
    IPluginV3* rawClone = plugin->clone();
    check(rawClone != nullptr && rawClone != plugin.get(), "clone gives a new object");
    std::unique_ptr<IPluginV3> cloned(rawClone);
    if (cloned)
    {
        V3Views cv = views(cloned.get());
        PluginFieldCollection const* cf = cv.runtime->getFieldsToSerialize();
        check(cf != nullptr && cf != serial && cf->fields[0].data != serial->fields[0].data,
            "clone's serialized fields are its own");
        plugin.reset(); // the clone must not depend on the original
        float clonedBeta = 0.F;
        std::memcpy(&clonedBeta, cf->fields[0].data, 4);
        check(clonedBeta == 1.702F, "clone keeps beta after the original is destroyed");
    }
}

// Fills `count` random inputs (with some special values), runs `enqueue` through the given runner and compares.
struct GpuCase
{
    DataType type;
    std::vector<int64_t> dims;
    float beta;
};

template <typename Enqueue>
void runOnTwoStreams(std::string const& label, GpuCase const& a, GpuCase const& b, Enqueue&& enqueue)
{
    if (!gHaveGpu)
    {
        ++gSkipped;
        return;
    }
    cudaStream_t streams[2];
    CUDA_OK(cudaStreamCreateWithFlags(&streams[0], cudaStreamNonBlocking));
    CUDA_OK(cudaStreamCreateWithFlags(&streams[1], cudaStreamNonBlocking));
    GpuCase const* cases[2] = {&a, &b};
    std::vector<float> inputs[2];
    std::unique_ptr<DeviceBuffer> in[2];
    std::unique_ptr<DeviceBuffer> out[2];
    for (int s = 0; s < 2; ++s)
    {
        size_t const n = static_cast<size_t>(countOf(cases[s]->dims));
        inputs[s] = roundTo(cases[s]->type, randomInputs(n, 1234U + static_cast<uint32_t>(s)));
        in[s] = std::make_unique<DeviceBuffer>(n * elementSize(cases[s]->type));
        out[s] = std::make_unique<DeviceBuffer>(n * elementSize(cases[s]->type));
        toDevice(cases[s]->type, inputs[s], in[s]->ptr);
        CUDA_OK(cudaMemset(out[s]->ptr, 0xFF, n * elementSize(cases[s]->type))); // NaN poison
    }
    CUDA_OK(cudaDeviceSynchronize());
    int rcs[2];
    for (int s = 0; s < 2; ++s) // both enqueued before either is waited for
    {
        PluginTensorDesc const inDesc = makeDesc(cases[s]->type, cases[s]->dims);
        PluginTensorDesc const outDesc = makeDesc(cases[s]->type, cases[s]->dims);
        rcs[s] = enqueue(s, inDesc, outDesc, in[s]->ptr, out[s]->ptr, streams[s]);
    }
    for (int s = 0; s < 2; ++s)
    {
        CUDA_OK(cudaStreamSynchronize(streams[s]));
        check(rcs[s] == 0, label + ": enqueue on stream " + std::to_string(s) + " returns 0");
        size_t const n = inputs[s].size();
        std::vector<float> got = fromDevice(cases[s]->type, out[s]->ptr, n);
        std::string detail;
        bool const matches = closeToReference(cases[s]->type, inputs[s], got, cases[s]->beta, detail);
        check(matches, label + ": stream " + std::to_string(s) + " " + typeName(cases[s]->type) +
                           " n=" + std::to_string(n) + " matches the reference " + detail);
    }
    CUDA_OK(cudaStreamDestroy(streams[0]));
    CUDA_OK(cudaStreamDestroy(streams[1]));
}

void testV3Runtime(IPluginCreatorV3One* creator)
{
    for (DataType t : kSupported)
    {
        float betas[2] = {1.0F, -0.75F};
        std::unique_ptr<IPluginV3> built[2];
        IPluginV3* attached[2] = {nullptr, nullptr};
        ErrorRecorder recorder;
        ResourceContext context(&recorder);
        for (int s = 0; s < 2; ++s)
        {
            Fields f;
            f.fields.emplace_back("beta", &betas[s], PluginFieldType::kFLOAT32, 1);
            std::unique_ptr<IPluginV3> b(creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
            PluginFieldCollection const* serial = views(b.get()).runtime->getFieldsToSerialize();
            // Deserialization as TensorRT does it: runtime phase from the serialized fields, then attachToContext.
            built[s].reset(creator->createPlugin("swish", serial, TensorRTPhase::kRUNTIME));
            attached[s] = views(built[s].get()).runtime->attachToContext(&context);
        }
        check(attached[0] != nullptr && attached[1] != nullptr && attached[0] != built[0].get() &&
                  attached[0] != attached[1],
            std::string("attachToContext gives independent objects (") + typeName(t) + ")");
        std::unique_ptr<IPluginV3> owned[2] = {
            std::unique_ptr<IPluginV3>(attached[0]), std::unique_ptr<IPluginV3>(attached[1])};
        built[0].reset(); // the attached copies must not depend on what they were attached from
        built[1].reset();
        if (!owned[0] || !owned[1])
        {
            continue;
        }
        V3Views rv[2] = {views(owned[0].get()), views(owned[1].get())};
        GpuCase a{t, {3, 1000, 349}, betas[0]}; // odd count: head, vector body and tail
        GpuCase b{t, {2, 5, 7, 11, 13}, betas[1]};
        for (int s = 0; s < 2; ++s)
        {
            GpuCase const& c = s == 0 ? a : b;
            PluginTensorDesc const d = makeDesc(t, c.dims);
            check(rv[s].runtime->onShapeChange(&d, 1, &d, 1) == 0, "onShapeChange accepts equal shapes");
        }
        runOnTwoStreams(std::string("V3 ") + typeName(t), a, b,
            [&](int s, PluginTensorDesc const& inD, PluginTensorDesc const& outD, void* in, void* out, cudaStream_t st)
            {
                void const* ins[1] = {in};
                void* outs[1] = {out};
                return rv[s].runtime->enqueue(&inD, &outD, ins, outs, nullptr, st);
            });

        // Errors after attachToContext go to the context's error recorder; nothing crashes.
        PluginTensorDesc const in = makeDesc(t, {4});
        PluginTensorDesc const other = makeDesc(t, {5});
        PluginTensorDesc const mixed = makeDesc(t == DataType::kFLOAT ? DataType::kHALF : DataType::kFLOAT, {4});
        int32_t const before = recorder.getNbErrors();
        check(rv[0].runtime->onShapeChange(&in, 1, &other, 1) != 0, "onShapeChange rejects different shapes");
        check(rv[0].runtime->onShapeChange(&in, 1, &mixed, 1) != 0, "onShapeChange rejects mixed types");
        void* nothing[1] = {nullptr};
        check(rv[0].runtime->enqueue(&in, &mixed, const_cast<void const* const*>(nothing), nothing, nullptr, nullptr) !=
                  0,
            "enqueue rejects mixed types");
        check(rv[0].runtime->enqueue(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) != 0,
            "enqueue rejects null descriptors");
        check(recorder.getNbErrors() >= before + 4, "errors after attachToContext reach the error recorder");

        // An empty tensor launches nothing and succeeds, even with null buffers.
        PluginTensorDesc const empty = makeDesc(t, {0, 7});
        check(rv[0].runtime->enqueue(
                  &empty, &empty, const_cast<void const* const*>(nothing), nothing, nullptr, nullptr) == 0,
            "enqueue of an empty tensor succeeds");
    }
}

void testV2(IPluginCreator* creator)
{
    float beta = 1.702F;
    Fields f;
    f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
    IPluginV2* raw = creator->createPlugin("swish", f.get());
    auto* plugin = dynamic_cast<IPluginV2DynamicExt*>(raw);
    check(plugin != nullptr, "V2 createPlugin gives an IPluginV2DynamicExt");
    if (plugin == nullptr)
    {
        return;
    }
    check(std::strcmp(plugin->getPluginType(), "SwishPlugin") == 0 && std::strcmp(plugin->getPluginVersion(), "1") == 0,
        "V2 type and version");
    check(plugin->getNbOutputs() == 1 && plugin->initialize() == 0, "V2 getNbOutputs/initialize");
    for (DataType t : kSupported)
    {
        check(plugin->getOutputDataType(0, &t, 1) == t, std::string("V2 getOutputDataType keeps ") + typeName(t));
    }
    {
        DataType const i8 = DataType::kINT8;
        check(failsWithLoggedError(
                  [&]
                  {
                      plugin->getOutputDataType(0, &i8, 1);
                      return true;
                  }),
            "V2 getOutputDataType reports INT8");
    }
    ExprBuilderImpl impl;
    ExprBuilder builder(&impl);
    DimsExprs in{};
    in.nbDims = 3;
    in.d[0] = impl.symbol();
    in.d[1] = builder.constant(4);
    in.d[2] = impl.symbol();
    DimsExprs out = plugin->getOutputDimensions(0, &in, 1, builder);
    check(out.nbDims == 3 && out.d[0] == in.d[0] && out.d[1] == in.d[1] && out.d[2] == in.d[2],
        "V2 getOutputDimensions is the identity");
    check(plugin->getOutputDimensions(1, &in, 1, builder).nbDims == -1, "V2 getOutputDimensions rejects index 1");

    int matrixBad = 0;
    int matrixOk = 0;
    int pairsAccepted = 0;
    for (std::vector<int64_t> const& dims : kMatrixShapes)
    {
        for (int32_t inType = 0; inType < kNbDataTypes; ++inType)
        {
            for (int32_t inFormat = 0; inFormat < kNbTensorFormats; ++inFormat)
            {
                PluginTensorDesc io[2] = {
                    makeDesc(static_cast<DataType>(inType), dims, static_cast<TensorFormat>(inFormat)),
                    makeDesc(DataType::kFLOAT, dims)};
                bool const want0 = expectAccepted(inType, inFormat, dims);
                (plugin->supportsFormatCombination(0, io, 1, 1) == want0 ? matrixOk : matrixBad)++;
                if (!want0)
                {
                    continue;
                }
                ++pairsAccepted;
                for (int32_t outType = 0; outType < kNbDataTypes; ++outType)
                {
                    for (int32_t outFormat = 0; outFormat < kNbTensorFormats; ++outFormat)
                    {
                        io[1] = makeDesc(static_cast<DataType>(outType), dims, static_cast<TensorFormat>(outFormat));
                        bool const want1 = outFormat == inFormat && outType == inType;
                        (plugin->supportsFormatCombination(1, io, 1, 1) == want1 ? matrixOk : matrixBad)++;
                    }
                }
            }
        }
    }
    check(matrixBad == 0 && pairsAccepted == kExpectedPairsAccepted,
        "V2 supportsFormatCombination matrix (" + std::to_string(matrixOk) + " cells right, " +
            std::to_string(matrixBad) + " wrong, " + std::to_string(pairsAccepted) + " (type, format, rank) accepted)");
    {
        DynamicPluginTensorDesc din = makeDynamic(makeDesc(DataType::kHALF, {-1, 8}));
        plugin->configurePlugin(&din, 1, &din, 1);
        check(plugin->getWorkspaceSize(&din.desc, 1, &din.desc, 1) == 0, "V2 getWorkspaceSize is 0");
    }

    // serialize -> deserializePlugin round trip.
    size_t const size = plugin->getSerializationSize();
    check(size == 8, "V2 serialization size is 8 bytes");
    std::vector<char> blob(size);
    plugin->serialize(blob.data());
    IPluginV2* restored = creator->deserializePlugin("swish", blob.data(), blob.size());
    check(restored != nullptr, "V2 deserializePlugin accepts its own blob");
    if (restored != nullptr)
    {
        std::vector<char> again(restored->getSerializationSize());
        restored->serialize(again.data());
        check(again == blob, "V2 serialize round trip is bit-exact");
        auto* r = dynamic_cast<swish::SwishPluginV2*>(restored);
        check(r != nullptr && r->params().beta == 1.702F, "V2 deserialized beta");
        restored->destroy();
    }

    // Corrupted blobs: nullptr and a logged error, never a crash.
    auto expectRejected = [&](std::vector<char> const& bytes, char const* what)
    {
        check(failsWithLoggedError(
                  [&] {
                      return creator->deserializePlugin(
                                 "swish", bytes.empty() ? nullptr : bytes.data(), bytes.size()) == nullptr;
                  }),
            std::string("V2 deserializePlugin rejects ") + what);
    };
    for (size_t cut = 0; cut < blob.size(); ++cut)
    {
        expectRejected(std::vector<char>(blob.begin(), blob.begin() + static_cast<std::ptrdiff_t>(cut)),
            ("a blob truncated to " + std::to_string(cut) + " bytes").c_str());
    }
    {
        std::vector<char> longer = blob;
        longer.push_back(0);
        expectRejected(longer, "a blob one byte too long");
        longer.resize(64, 0);
        expectRejected(longer, "a 64-byte blob");
    }
    for (int32_t version : {0, 2, -1, 0x7fffffff})
    {
        std::vector<char> bad = blob;
        std::memcpy(bad.data(), &version, 4);
        expectRejected(bad, ("format version " + std::to_string(version)).c_str());
    }
    for (float value : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
             -std::numeric_limits<float>::infinity()})
    {
        std::vector<char> bad = blob;
        std::memcpy(bad.data() + 4, &value, 4);
        expectRejected(bad, ("beta " + std::to_string(value)).c_str());
    }
    check(creator->deserializePlugin("swish", nullptr, 8) == nullptr, "V2 deserializePlugin rejects null data");

    // Clones on two streams at once.
    IPluginV2DynamicExt* clones[2] = {plugin->clone(), plugin->clone()};
    check(clones[0] != nullptr && clones[1] != nullptr && clones[0] != plugin && clones[0] != clones[1],
        "V2 clone gives independent objects");
    plugin->destroy();
    if (clones[0] != nullptr && clones[1] != nullptr)
    {
        for (DataType t : kSupported)
        {
            GpuCase a{t, {1, 1 << 20}, 1.702F};
            GpuCase b{t, {1023}, 1.702F};
            runOnTwoStreams(std::string("V2 ") + typeName(t), a, b,
                [&](int s, PluginTensorDesc const& inD, PluginTensorDesc const& outD, void* in, void* out,
                    cudaStream_t st)
                {
                    void const* ins[1] = {in};
                    void* outs[1] = {out};
                    return clones[s]->enqueue(&inD, &outD, ins, outs, nullptr, st);
                });
        }
        check(clones[0]->enqueue(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) != 0,
            "V2 enqueue rejects null descriptors");
    }
    for (IPluginV2DynamicExt* c : clones)
    {
        if (c != nullptr)
        {
            c->destroy();
        }
    }

    // Build-phase field errors on the V2 creator too (shared parser).
    float nanBeta = std::numeric_limits<float>::quiet_NaN();
    Fields badFields;
    badFields.fields.emplace_back("beta", &nanBeta, PluginFieldType::kFLOAT32, 1);
    check(failsWithLoggedError([&] { return creator->createPlugin("swish", badFields.get()) == nullptr; }),
        "V2 createPlugin rejects NaN beta");
}


// Every supported (type, format) pair with padding (C = 3): enqueue covers the padded buffer, the real elements match
// the reference and the zero padding stays zero, in both interfaces.
void testFormatsGpu(IPluginCreatorV3One* v3Creator, IPluginCreator* v2Creator)
{
    if (!gHaveGpu)
    {
        ++gSkipped;
        return;
    }
    float beta = 1.702F;
    Fields f;
    f.fields.emplace_back("beta", &beta, PluginFieldType::kFLOAT32, 1);
    std::unique_ptr<IPluginV3> v3(v3Creator->createPlugin("swish", f.get(), TensorRTPhase::kBUILD));
    auto* v2 = dynamic_cast<IPluginV2DynamicExt*>(v2Creator->createPlugin("swish", f.get()));
    if (!v3 || v2 == nullptr)
    {
        check(false, "formats: plugins created");
        return;
    }
    IPluginV3OneRuntime* runtime = views(v3.get()).runtime;
    for (FormatCase const& c : formatCases())
    {
        PaddedLayout const layout = paddedLayout(c.dims, c.format);
        std::vector<float> input = roundTo(c.type, randomInputs(static_cast<size_t>(layout.total), 99U));
        for (size_t i = 0; i < input.size(); ++i)
        {
            if (layout.padding[i])
            {
                input[i] = 0.F;
            }
        }
        size_t const bytes = input.size() * elementSize(c.type);
        DeviceBuffer in(bytes);
        DeviceBuffer out(bytes);
        PluginTensorDesc const desc = makeDesc(c.type, c.dims, c.format);
        void const* ins[1] = {in.ptr};
        void* outs[1] = {out.ptr};
        for (int iface = 0; iface < 2; ++iface)
        {
            toDevice(c.type, input, in.ptr);
            CUDA_OK(cudaMemset(out.ptr, 0xFF, bytes)); // NaN poison: every element must be written
            int32_t const rc = iface == 0 ? runtime->enqueue(&desc, &desc, ins, outs, nullptr, nullptr)
                                          : v2->enqueue(&desc, &desc, ins, outs, nullptr, nullptr);
            CUDA_OK(cudaDeviceSynchronize());
            std::vector<float> const got = fromDevice(c.type, out.ptr, input.size());
            std::string detail;
            bool const matches = closeToReference(c.type, input, got, beta, detail);
            bool paddingZero = true;
            for (size_t i = 0; i < got.size(); ++i)
            {
                paddingZero = paddingZero && (!layout.padding[i] || got[i] == 0.F);
            }
            check(rc == 0 && matches && paddingZero,
                std::string(iface == 0 ? "V3 " : "V2 ") + typeName(c.type) + " " + c.formatName + " C=3: " +
                    std::to_string(layout.total) + " elements with padding " + detail);
        }
    }
    v2->destroy();
}
} // namespace

int main(int argc, char** argv)
{
    bool const requireGpu = argc > 1 && std::strcmp(argv[1], "--require-gpu") == 0;
    int deviceCount = 0;
    gHaveGpu = cudaGetDeviceCount(&deviceCount) == cudaSuccess && deviceCount > 0;
    static_cast<void>(cudaGetLastError());
    std::string deviceName = "no CUDA device: GPU cases skipped";
    if (gHaveGpu)
    {
        int device = 0;
        cudaDeviceProp prop{};
        CUDA_OK(cudaGetDevice(&device));
        CUDA_OK(cudaGetDeviceProperties(&prop, device));
        deviceName = prop.name;
    }
    std::printf("Swish plugin conformance, TensorRT %d.%d headers, %s\n", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR,
        deviceName.c_str());
    if (requireGpu && !gHaveGpu)
    {
        std::printf("FAIL: --require-gpu given but no CUDA device is usable\n");
        return 1;
    }

    testRegistration();
    auto* v3 = findCreator<IPluginCreatorV3One>(swish::spec::kPLUGIN_VERSION_V3, "PLUGIN CREATOR_V3ONE");
    auto* v2 = findCreator<IPluginCreator>(swish::spec::kPLUGIN_VERSION_V2, "PLUGIN CREATOR_V1");
    if (v3 != nullptr)
    {
        testV3Creation(v3);
        testV3Build(v3);
        testV3Runtime(v3);
    }
    if (v2 != nullptr)
    {
        testV2(v2);
    }
    if (v3 != nullptr && v2 != nullptr)
    {
        testFormatsGpu(v3, v2);
    }
    if (gHaveGpu)
    {
        CUDA_OK(cudaDeviceSynchronize());
    }

    std::printf("conformance (TensorRT %d.%d headers): %d passed, %d failed, %d GPU cases skipped\n", NV_TENSORRT_MAJOR,
        NV_TENSORRT_MINOR, gResults.passed, gResults.failed, gSkipped);
    return gResults.failed == 0 ? 0 : 1;
}
