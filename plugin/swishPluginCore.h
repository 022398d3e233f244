/*
 * The one implementation behind both plugin interfaces (V3 "2" in swishPlugin.h, V2 "1" in swishPluginLegacy.h):
 * field parsing and validation, serialization, type/format support, shape rules and kernel dispatch.
 * Errors are thrown as SwishError and turned into logger / error-recorder reports by reportError().
 */
#ifndef SWISH_PLUGIN_CORE_H
#define SWISH_PLUGIN_CORE_H

#include "swishPluginSpec.h"

#include <NvInferRuntime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace swish
{

//! A validation failure: reported, never fatal.
class SwishError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

struct SwishParams
{
    float beta{spec::kFIELD_BETA_DEFAULT};
};

//! Throws SwishError unless every parameter is valid (beta finite).
void validateParams(SwishParams const& params);

//! Build phase: every field is optional (defaults from the JSON), the format-version field is accepted if it is
//! current. Runtime phase (fields from getFieldsToSerialize): every field and the format version are required.
//! Unknown, duplicate or mistyped fields, and invalid values, throw SwishError. fc may be nullptr in build phase.
enum class FieldPhase
{
    kBuild,
    kRuntime
};
SwishParams parseFields(nvinfer1::PluginFieldCollection const* fc, FieldPhase phase);

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

//! supportsFormatCombination for position pos of (input, output): linear format, a supported type, and the output
//! of the input's type. Throws only for an out-of-range pos or wrong counts.
bool supportsCombination(int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs);

//! Checks a configuration TensorRT hands over (configurePlugin / onShapeChange): supported equal types, linear,
//! same rank; with checkDims also equal extents (runtime shapes, where no dimension is -1).
void checkConfiguration(nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out, bool checkDims);

//! Product of the extents; throws for negative extents and overflow.
int64_t volume(nvinfer1::Dims const& dims);

//! enqueue for both interfaces: validates the descriptors and launches the kernel through the C ABI.
void enqueueSwish(nvinfer1::PluginTensorDesc const& inDesc, nvinfer1::PluginTensorDesc const& outDesc,
    void const* input, void* output, float beta, cudaStream_t stream);

//! Where reportError finds its logger: TensorRT's global getLogger() unless a library loaded through
//! IPluginRegistry::loadLibrary was handed an ILoggerFinder (swishPluginEntryPoints.cpp).
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Logs "SwishPlugin: <where>: <what>" as an error through TensorRT's logger (getLogger()) and, when given, the
//! error recorder. Never throws.
void reportError(char const* where, char const* what, nvinfer1::IErrorRecorder* recorder = nullptr) noexcept;
void reportError(char const* where, std::exception const& e, nvinfer1::IErrorRecorder* recorder = nullptr) noexcept;

} // namespace swish

#endif // SWISH_PLUGIN_CORE_H
