/*
 * SwishPlugin version "1" (IPluginV2DynamicExt). Every noexcept method that can fail runs its body through
 * swish::guarded, which catches everything and reports it through TensorRT's logger (V2 plugins have no error
 * recorder).
 */
#include "swishPluginLegacy.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace swish
{
namespace
{

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

} // namespace

SwishPluginV2::SwishPluginV2(SwishParams const& params)
    : mParams(params)
{
    validateParams(mParams);
}

char const* SwishPluginV2::getPluginType() const noexcept
{
    return spec::kPLUGIN_NAME;
}

char const* SwishPluginV2::getPluginVersion() const noexcept
{
    return spec::kPLUGIN_VERSION_V2;
}

int32_t SwishPluginV2::getNbOutputs() const noexcept
{
    return 1;
}

int32_t SwishPluginV2::initialize() noexcept
{
    return 0;
}

void SwishPluginV2::terminate() noexcept {}

size_t SwishPluginV2::getSerializationSize() const noexcept
{
    return kSERIALIZED_SIZE;
}

void SwishPluginV2::serialize(void* buffer) const noexcept
{
    guardedVoid("serialize", nullptr, [&] {
        swish::serialize(mParams, buffer, kSERIALIZED_SIZE);
    });
}

void SwishPluginV2::destroy() noexcept
{
    delete this;
}

void SwishPluginV2::setPluginNamespace(char const* pluginNamespace) noexcept
{
    guardedVoid("setPluginNamespace", nullptr, [&] {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    });
}

char const* SwishPluginV2::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

DataType SwishPluginV2::getOutputDataType(int32_t index, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    // The method has no error return: on failure the error is reported and FP32 returned.
    return guarded("getOutputDataType", nullptr, DataType::kFLOAT, [&] {
        checkIoCount(nbInputs, index == 0 ? 1 : index + 1);
        if (inputTypes == nullptr)
        {
            throw SwishError("null type array");
        }
        return outputType(inputTypes[0]);
    });
}

nvinfer1::IPluginV2DynamicExt* SwishPluginV2::clone() const noexcept
{
    return guarded<nvinfer1::IPluginV2DynamicExt*>("clone", nullptr, nullptr, [&] { return new SwishPluginV2(*this); });
}

nvinfer1::DimsExprs SwishPluginV2::getOutputDimensions(int32_t outputIndex, nvinfer1::DimsExprs const* inputs,
    int32_t nbInputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    nvinfer1::DimsExprs invalid{};
    invalid.nbDims = -1;
    return guarded("getOutputDimensions", nullptr, invalid, [&] {
        checkIoCount(nbInputs, outputIndex == 0 ? 1 : outputIndex + 1);
        if (inputs == nullptr)
        {
            throw SwishError("null shape array");
        }
        return inputs[0];
    });
}

bool SwishPluginV2::supportsFormatCombination(
    int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return guarded("supportsFormatCombination", nullptr, false,
        [&] { return supportsCombination(pos, inOut, nbInputs, nbOutputs); });
}

void SwishPluginV2::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    guardedVoid("configurePlugin", nullptr, [&] {
        checkIoCount(nbInputs, nbOutputs);
        if (in == nullptr || out == nullptr)
        {
            throw SwishError("null descriptor");
        }
        checkConfiguration(in[0].desc, out[0].desc, false);
    });
}

size_t SwishPluginV2::getWorkspaceSize(nvinfer1::PluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    nvinfer1::PluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

int32_t SwishPluginV2::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs, void* const* outputs, void* /*workspace*/,
    cudaStream_t stream) noexcept
{
    return guarded("enqueue", nullptr, -1, [&] {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            throw SwishError("null descriptor or buffer array");
        }
        enqueueSwish(inputDesc[0], outputDesc[0], inputs[0], outputs[0], mParams.beta, stream);
        return 0;
    });
}

SwishPluginV2Creator::SwishPluginV2Creator()
{
    static float const defaultBeta = spec::kFIELD_BETA_DEFAULT;
    mFieldNames[0] = PluginField(spec::kFIELD_BETA, &defaultBeta, PluginFieldType::kFLOAT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

char const* SwishPluginV2Creator::getPluginName() const noexcept
{
    return spec::kPLUGIN_NAME;
}

char const* SwishPluginV2Creator::getPluginVersion() const noexcept
{
    return spec::kPLUGIN_VERSION_V2;
}

nvinfer1::PluginFieldCollection const* SwishPluginV2Creator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

nvinfer1::IPluginV2* SwishPluginV2Creator::createPlugin(
    char const* /*name*/, nvinfer1::PluginFieldCollection const* fc) noexcept
{
    return guarded<nvinfer1::IPluginV2*>("createPlugin", nullptr, nullptr, [&] {
        auto* plugin = new SwishPluginV2(parseFields(fc, FieldPhase::kBuild, "createPlugin"));
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    });
}

nvinfer1::IPluginV2* SwishPluginV2Creator::deserializePlugin(
    char const* /*name*/, void const* serialData, size_t serialLength) noexcept
{
    return guarded<nvinfer1::IPluginV2*>("deserializePlugin", nullptr, nullptr, [&] {
        auto* plugin = new SwishPluginV2(deserialize(serialData, serialLength));
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    });
}

void SwishPluginV2Creator::setPluginNamespace(char const* pluginNamespace) noexcept
{
    guardedVoid("setPluginNamespace", nullptr, [&] {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    });
}

char const* SwishPluginV2Creator::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

#ifndef SWISH_LOADABLE_LIBRARY
// Registers when the library is loaded (dlopen, LD_PRELOAD, Triton's plugins= option).
REGISTER_TENSORRT_PLUGIN(SwishPluginV2Creator);
#endif

} // namespace swish

#pragma GCC diagnostic pop
