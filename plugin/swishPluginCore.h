/*
 * The one implementation behind both plugin interfaces (V3 "2" in swishPlugin.h, V2 "1" in swishPluginLegacy.h):
 * field parsing and validation, serialization, type/format support, shape rules and kernel dispatch.
 * Errors are thrown as SwishError and turned into logger / error-recorder reports by guarded() / reportError().
 */
#ifndef SWISH_PLUGIN_CORE_H
#define SWISH_PLUGIN_CORE_H

#include "swishFormats.h"
#include "swishPluginSpec.h"

#include <NvInferRuntime.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace swish
{

//! A failure of one interface call: reported with its TensorRT error code, never fatal.
class SwishError : public std::runtime_error
{
public:
    explicit SwishError(std::string const& what, nvinfer1::ErrorCode code = nvinfer1::ErrorCode::kINVALID_ARGUMENT)
        : std::runtime_error(what)
        , mCode(code)
    {
    }
    nvinfer1::ErrorCode code() const noexcept
    {
        return mCode;
    }

private:
    nvinfer1::ErrorCode mCode;
};

struct SwishParams
{
    float beta{spec::kFIELD_BETA_DEFAULT};
};

//! Throws SwishError unless every parameter is valid (beta finite).
void validateParams(SwishParams const& params);

//! Build phase: every field is optional (defaults from the JSON), the format-version field is accepted if it is
//! current. Runtime phase (fields from getFieldsToSerialize): every field and the format version are required.
//! Duplicate or mistyped fields and invalid values throw SwishError. Fields the plugin does not know are ignored
//! with a warning through TensorRT's logger (`where` names the caller), so that TensorRT's ONNX parser can pass a
//! node's extra attributes. fc may be nullptr in build phase.
enum class FieldPhase
{
    kBuild,
    kRuntime
};
SwishParams parseFields(nvinfer1::PluginFieldCollection const* fc, FieldPhase phase, char const* where);

//! V2 byte format: int32 format version, then float32 beta, little-endian (host order), no padding.
constexpr size_t kSERIALIZED_SIZE = sizeof(int32_t) + sizeof(float);
void serialize(SwishParams const& params, void* buffer, size_t size);
SwishParams deserialize(void const* buffer, size_t size);

//! FP32, FP16, BF16.
bool isSupportedType(nvinfer1::DataType type) noexcept;

//! Throws unless the plugin is used with exactly one input and one output.
void checkIoCount(int32_t nbInputs, int32_t nbOutputs);

//! The output type for the given input type; throws for unsupported types.
nvinfer1::DataType outputType(nvinfer1::DataType inputType);

//! supportsFormatCombination for position pos of (input, output): a (type, format) pair of kFORMAT_RULES that fits
//! the rank, and the output in the input's type and format. Throws only for an out-of-range pos or wrong counts.
bool supportsCombination(int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs);

//! Checks a configuration TensorRT hands over (configurePlugin / onShapeChange): equal types and formats forming a
//! supported pair, same rank; with checkDims also equal extents (runtime shapes, where no dimension is -1).
void checkConfiguration(nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out, bool checkDims);

//! Product of the extents; throws for negative extents and overflow.
int64_t volume(nvinfer1::Dims const& dims);

//! Elements in a buffer of `dims` laid out in `format`: the volume with the channel extent rounded up to the
//! format's vector size (what enqueue processes). Throws for formats outside kFORMAT_RULES, too small ranks,
//! negative extents and overflow.
int64_t paddedVolume(nvinfer1::Dims const& dims, nvinfer1::TensorFormat format);

//! enqueue for both interfaces: validates the descriptors and launches the kernel through the C ABI over the padded
//! volume. A CUDA failure throws SwishError with ErrorCode::kFAILED_EXECUTION.
void enqueueSwish(nvinfer1::PluginTensorDesc const& inDesc, nvinfer1::PluginTensorDesc const& outDesc,
    void const* input, void* output, float beta, cudaStream_t stream);

//! Where the plugin finds TensorRT's logger. The statically registering libswish.so asks libnvinfer's global
//! getLogger(). The loadable library (SWISH_LOADABLE_LIBRARY: no libnvinfer dependency, like TensorRT's own
//! libnvinfer_vc_plugin.so) only has the ILoggerFinder that IPluginRegistry::loadLibrary hands to its
//! setLoggerFinder entry point (swishPluginEntryPoints.cpp); it asks the finder on every message, because the
//! logger behind it may change. Without a logger, messages go to stderr (and the error recorder, where there is one).
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Logs "SwishPlugin: <where>: <what>" as an error through TensorRT's logger and, when given, reports it with `code`
//! to the error recorder. Never throws.
void reportError(char const* where, char const* what, nvinfer1::IErrorRecorder* recorder = nullptr,
    nvinfer1::ErrorCode code = nvinfer1::ErrorCode::kINVALID_ARGUMENT) noexcept;

//! Logs "SwishPlugin: <where>: <what>" as a warning through TensorRT's logger. Never throws.
void reportWarning(char const* where, char const* what) noexcept;

//! Reports the exception in flight (call only inside a catch block): SwishError with its own code,
//! std::bad_alloc as kFAILED_ALLOCATION, anything else as kINTERNAL_ERROR.
void reportCurrentException(char const* where, nvinfer1::IErrorRecorder* recorder) noexcept;

//! The one catch-and-report wrapper of every noexcept interface method: runs body() and returns its result; if it
//! throws, reports the exception (reportCurrentException) and returns `fallback`. Nothing escapes: inside Triton an
//! escaped exception would terminate the server.
template <typename R, typename Body>
R guarded(char const* where, nvinfer1::IErrorRecorder* recorder, R fallback, Body&& body) noexcept
{
    try
    {
        return std::forward<Body>(body)();
    }
    catch (...)
    {
        reportCurrentException(where, recorder);
    }
    return fallback;
}

//! guarded() for methods that return nothing.
template <typename Body>
void guardedVoid(char const* where, nvinfer1::IErrorRecorder* recorder, Body&& body) noexcept
{
    try
    {
        std::forward<Body>(body)();
    }
    catch (...)
    {
        reportCurrentException(where, recorder);
    }
}

} // namespace swish

#endif // SWISH_PLUGIN_CORE_H
