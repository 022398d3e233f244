/*
 * Shared implementation of the Swish plugin (see swishPluginCore.h).
 */
#include "swishPluginCore.h"

#include "swishCApi.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

namespace swish
{
namespace
{

std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

std::string fieldError(char const* name, char const* problem)
{
    return std::string("field '") + (name != nullptr ? name : "<null>") + "': " + problem;
}

float readFloatField(PluginField const& field)
{
    if (field.data == nullptr || field.length != 1)
    {
        throw SwishError(fieldError(field.name, "expected exactly one value"));
    }
    if (field.type == PluginFieldType::kFLOAT32)
    {
        float value = 0.F;
        std::memcpy(&value, field.data, sizeof(value));
        return value;
    }
    if (field.type == PluginFieldType::kFLOAT64)
    {
        double value = 0.0;
        std::memcpy(&value, field.data, sizeof(value));
        if (std::isfinite(value) && std::fabs(value) > static_cast<double>(std::numeric_limits<float>::max()))
        {
            throw SwishError(fieldError(field.name, "value does not fit float32"));
        }
        return static_cast<float>(value);
    }
    throw SwishError(fieldError(field.name, "expected type float32 (kFLOAT32)"));
}

int32_t readInt32Field(PluginField const& field)
{
    if (field.data == nullptr || field.length != 1 || field.type != PluginFieldType::kINT32)
    {
        throw SwishError(fieldError(field.name, "expected exactly one int32 (kINT32) value"));
    }
    int32_t value = 0;
    std::memcpy(&value, field.data, sizeof(value));
    return value;
}

void checkFormatVersion(int32_t version)
{
    if (version != spec::kSERIALIZATION_FORMAT_VERSION)
    {
        throw SwishError("unsupported serialization format version " + std::to_string(version) + " (this build reads " +
                         std::to_string(spec::kSERIALIZATION_FORMAT_VERSION) + ")");
    }
}

// The logger of the moment (see setLoggerFinder in the header), or nullptr.
nvinfer1::ILogger* currentLogger() noexcept
{
    nvinfer1::ILoggerFinder* const finder = gLoggerFinder.load();
    if (finder != nullptr)
    {
        return finder->findLogger();
    }
#ifdef SWISH_LOADABLE_LIBRARY
    return nullptr; // no libnvinfer to ask: a loadable library must not depend on it
#else
    return getLogger();
#endif
}

void logMessage(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept
{
    nvinfer1::ILogger* const logger = currentLogger();
    if (logger != nullptr)
    {
        logger->log(severity, message.c_str());
        return;
    }
    // No logger to ask (TensorRT's lean runtime has no global logger; a loadable library whose finder has none):
    // stderr, so that the reason a plugin failed is never lost.
    std::fprintf(stderr, "[TensorRT plugin] %s: %s\n",
        severity == nvinfer1::ILogger::Severity::kWARNING ? "WARNING" : "ERROR", message.c_str());
}

std::string formatName(nvinfer1::TensorFormat format)
{
    FormatRule const* rule = findFormatRule(format);
    return rule != nullptr ? rule->name : "TensorFormat " + std::to_string(static_cast<int32_t>(format));
}

char const* typeName(DataType type)
{
    switch (type)
    {
    case DataType::kFLOAT:
        return "FP32";
    case DataType::kHALF:
        return "FP16";
    case DataType::kBF16:
        return "BF16";
    default:
        return "an unsupported type";
    }
}

int capiDType(DataType type)
{
    switch (type)
    {
    case DataType::kFLOAT:
        return SWISH_DTYPE_FLOAT32;
    case DataType::kHALF:
        return SWISH_DTYPE_FLOAT16;
    case DataType::kBF16:
        return SWISH_DTYPE_BFLOAT16;
    default:
        throw SwishError(std::string("unsupported data type ") + typeName(type));
    }
}

} // namespace

void validateParams(SwishParams const& params)
{
    if (!std::isfinite(params.beta))
    {
        throw SwishError(std::string("field '") + spec::kFIELD_BETA + "' must be finite");
    }
}

SwishParams parseFields(nvinfer1::PluginFieldCollection const* fc, FieldPhase phase, char const* where)
{
    SwishParams params;
    bool haveBeta = false;
    bool haveVersion = false;
    if (fc != nullptr && fc->nbFields > 0 && fc->fields == nullptr)
    {
        throw SwishError("field collection has fields but a null field array");
    }
    if (fc != nullptr && fc->nbFields < 0)
    {
        throw SwishError("field collection has a negative field count");
    }
    int32_t const nbFields = fc == nullptr ? 0 : fc->nbFields;
    for (int32_t i = 0; i < nbFields; ++i)
    {
        PluginField const& field = fc->fields[i];
        if (field.name == nullptr)
        {
            throw SwishError("field with a null name");
        }
        if (std::strcmp(field.name, spec::kFIELD_BETA) == 0)
        {
            if (haveBeta)
            {
                throw SwishError(fieldError(field.name, "given twice"));
            }
            params.beta = readFloatField(field);
            haveBeta = true;
        }
        else if (std::strcmp(field.name, spec::kFIELD_SERIALIZATION_FORMAT_VERSION) == 0)
        {
            if (haveVersion)
            {
                throw SwishError(fieldError(field.name, "given twice"));
            }
            checkFormatVersion(readInt32Field(field));
            haveVersion = true;
        }
        else
        {
            // TensorRT's ONNX parser hands every attribute of the node to createPlugin; refusing the ones this plugin
            // does not use would make such models fail to parse.
            reportWarning(where, fieldError(field.name, "unknown field, ignored").c_str());
        }
    }
    if (phase == FieldPhase::kRuntime && (!haveBeta || !haveVersion))
    {
        throw SwishError(std::string("serialized fields incomplete: need '") + spec::kFIELD_BETA + "' and '" +
                         spec::kFIELD_SERIALIZATION_FORMAT_VERSION + "'");
    }
    validateParams(params);
    return params;
}

void serialize(SwishParams const& params, void* buffer, size_t size)
{
    if (buffer == nullptr || size < kSERIALIZED_SIZE)
    {
        throw SwishError("serialization buffer too small");
    }
    validateParams(params);
    auto* out = static_cast<char*>(buffer);
    int32_t const version = spec::kSERIALIZATION_FORMAT_VERSION;
    std::memcpy(out, &version, sizeof(version));
    std::memcpy(out + sizeof(version), &params.beta, sizeof(params.beta));
}

SwishParams deserialize(void const* buffer, size_t size)
{
    if (buffer == nullptr)
    {
        throw SwishError("null serialized data");
    }
    if (size < sizeof(int32_t))
    {
        throw SwishError("serialized data of " + std::to_string(size) + " bytes is too short for a format version");
    }
    auto const* in = static_cast<char const*>(buffer);
    int32_t version = 0;
    std::memcpy(&version, in, sizeof(version));
    checkFormatVersion(version);
    if (size != kSERIALIZED_SIZE)
    {
        throw SwishError("serialized data has " + std::to_string(size) + " bytes, format version " +
                         std::to_string(version) + " has " + std::to_string(kSERIALIZED_SIZE));
    }
    SwishParams params;
    std::memcpy(&params.beta, in + sizeof(version), sizeof(params.beta));
    validateParams(params);
    return params;
}

bool isSupportedType(DataType type) noexcept
{
    return type == DataType::kFLOAT || type == DataType::kHALF || type == DataType::kBF16;
}

void checkIoCount(int32_t nbInputs, int32_t nbOutputs)
{
    if (nbInputs != 1 || nbOutputs != 1)
    {
        throw SwishError(
            "expects 1 input and 1 output, got " + std::to_string(nbInputs) + " and " + std::to_string(nbOutputs));
    }
}

DataType outputType(DataType inputType)
{
    if (!isSupportedType(inputType))
    {
        throw SwishError(std::string("input of ") + typeName(inputType) + "; supported: FP32, FP16, BF16");
    }
    return inputType;
}

bool supportsCombination(int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs)
{
    checkIoCount(nbInputs, nbOutputs);
    if (inOut == nullptr || pos < 0 || pos >= nbInputs + nbOutputs)
    {
        throw SwishError("position " + std::to_string(pos) + " out of range");
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos];
    if (!formatAccepts(desc.format, desc.type, desc.dims.nbDims))
    {
        return false;
    }
    // TensorRT asks position by position; the output may only look at the input (positions before it).
    return pos == 0 || (desc.type == inOut[0].type && desc.format == inOut[0].format);
}

void checkConfiguration(nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out, bool checkDims)
{
    if (!isSupportedType(in.type) || in.type != out.type)
    {
        throw SwishError(std::string("input ") + typeName(in.type) + " and output " + typeName(out.type) +
                         ": need the same type among FP32, FP16, BF16");
    }
    if (in.dims.nbDims != out.dims.nbDims || in.dims.nbDims < 0 || in.dims.nbDims > nvinfer1::Dims::MAX_DIMS)
    {
        throw SwishError("input and output ranks differ or are invalid");
    }
    if (in.format != out.format || !formatAccepts(in.format, in.type, in.dims.nbDims))
    {
        throw SwishError(std::string("input ") + formatName(in.format) + " and output " + formatName(out.format) +
                         " at rank " + std::to_string(in.dims.nbDims) + " with " + typeName(in.type) +
                         ": need the same format, one that supports the type at this rank (plugin/README.md)");
    }
    if (checkDims)
    {
        for (int32_t i = 0; i < in.dims.nbDims; ++i)
        {
            if (in.dims.d[i] != out.dims.d[i])
            {
                throw SwishError("output shape differs from the input shape at dimension " + std::to_string(i));
            }
        }
    }
}

int64_t volume(nvinfer1::Dims const& dims)
{
    if (dims.nbDims < 0 || dims.nbDims > nvinfer1::Dims::MAX_DIMS)
    {
        throw SwishError("invalid rank " + std::to_string(dims.nbDims));
    }
    int64_t n = 1;
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        int64_t const d = dims.d[i];
        if (d < 0)
        {
            throw SwishError("unresolved or negative extent at dimension " + std::to_string(i));
        }
        if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
        {
            throw SwishError("element count overflows int64");
        }
        n *= d;
    }
    return n;
}

int64_t paddedVolume(nvinfer1::Dims const& dims, nvinfer1::TensorFormat format)
{
    FormatRule const* rule = findFormatRule(format);
    if (rule == nullptr)
    {
        throw SwishError(std::string("unsupported format ") + formatName(format));
    }
    if (dims.nbDims < rule->channelFromEnd)
    {
        throw SwishError(std::string(rule->name) + " needs rank >= " + std::to_string(rule->channelFromEnd) +
                         ", got " + std::to_string(dims.nbDims));
    }
    nvinfer1::Dims padded = dims;
    if (rule->vectorSize > 1)
    {
        int64_t& channels = padded.d[dims.nbDims - rule->channelFromEnd];
        if (channels < 0)
        {
            throw SwishError("unresolved or negative channel extent");
        }
        int64_t const v = rule->vectorSize;
        if (channels > std::numeric_limits<int64_t>::max() - (v - 1))
        {
            throw SwishError("element count overflows int64");
        }
        channels = (channels + v - 1) / v * v;
    }
    return volume(padded);
}

void enqueueSwish(nvinfer1::PluginTensorDesc const& inDesc, nvinfer1::PluginTensorDesc const& outDesc,
    void const* input, void* output, float beta, cudaStream_t stream)
{
    checkConfiguration(inDesc, outDesc, true);
    // Vectorized formats: the whole padded buffer, so no per-element index arithmetic; padding stays swish(0) = 0.
    int64_t const n = paddedVolume(inDesc.dims, inDesc.format);
    int const status = swish_forward(capiDType(inDesc.type), input, output, n, beta, stream);
    if (status == SWISH_STATUS_CUDA_ERROR)
    {
        throw SwishError(swish_last_error(), nvinfer1::ErrorCode::kFAILED_EXECUTION);
    }
    if (status == SWISH_STATUS_INTERNAL_ERROR)
    {
        throw SwishError(swish_last_error(), nvinfer1::ErrorCode::kINTERNAL_ERROR);
    }
    if (status != SWISH_STATUS_SUCCESS)
    {
        throw SwishError(swish_last_error());
    }
}

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    gLoggerFinder.store(finder);
}

void reportError(
    char const* where, char const* what, nvinfer1::IErrorRecorder* recorder, nvinfer1::ErrorCode code) noexcept
{
    try
    {
        std::string const message = std::string(spec::kPLUGIN_NAME) + ": " + where + ": " + what;
        logMessage(nvinfer1::ILogger::Severity::kERROR, message);
        if (recorder != nullptr)
        {
            recorder->reportError(code, message.c_str());
        }
    }
    catch (...)
    {
        // Reporting must not throw out of a noexcept interface method; nothing better can be done here.
    }
}

void reportWarning(char const* where, char const* what) noexcept
{
    try
    {
        logMessage(nvinfer1::ILogger::Severity::kWARNING, std::string(spec::kPLUGIN_NAME) + ": " + where + ": " + what);
    }
    catch (...)
    {
        // As in reportError.
    }
}

void reportCurrentException(char const* where, nvinfer1::IErrorRecorder* recorder) noexcept
{
    try
    {
        throw;
    }
    catch (SwishError const& e)
    {
        reportError(where, e.what(), recorder, e.code());
    }
    catch (std::bad_alloc const&)
    {
        reportError(where, "out of host memory", recorder, nvinfer1::ErrorCode::kFAILED_ALLOCATION);
    }
    catch (std::exception const& e)
    {
        reportError(where, e.what(), recorder, nvinfer1::ErrorCode::kINTERNAL_ERROR);
    }
    catch (...)
    {
        reportError(where, "unknown exception", recorder, nvinfer1::ErrorCode::kINTERNAL_ERROR);
    }
}

} // namespace swish
