/*
 * SwishPlugin version "1" (IPluginV2DynamicExt). Every noexcept method catches everything and reports through
 * swish::reportError (TensorRT's logger; V2 plugins have no error recorder).
 */
#include "swishPluginLegacy.h"

#include <exception>

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
    try
    {
        swish::serialize(mParams, buffer, kSERIALIZED_SIZE);
    }
    catch (std::exception const& e)
    {
        reportError("serialize", e);
    }
    catch (...)
    {
        reportError("serialize", "unknown exception");
    }
}

void SwishPluginV2::destroy() noexcept
{
    delete this;
}

void SwishPluginV2::setPluginNamespace(char const* pluginNamespace) noexcept
{
    try
    {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (std::exception const& e)
    {
        reportError("setPluginNamespace", e);
    }
    catch (...)
    {
        reportError("setPluginNamespace", "unknown exception");
    }
}

char const* SwishPluginV2::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

DataType SwishPluginV2::getOutputDataType(int32_t index, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    try
    {
        checkIoCount(nbInputs, index == 0 ? 1 : index + 1);
        if (inputTypes == nullptr)
        {
            throw SwishError("null type array");
        }
        return outputType(inputTypes[0]);
    }
    catch (std::exception const& e)
    {
        reportError("getOutputDataType", e);
    }
    catch (...)
    {
        reportError("getOutputDataType", "unknown exception");
    }
    return DataType::kFLOAT; // the method has no error return; the error is reported above
}

nvinfer1::IPluginV2DynamicExt* SwishPluginV2::clone() const noexcept
{
    try
    {
        return new SwishPluginV2(*this);
    }
    catch (std::exception const& e)
    {
        reportError("clone", e);
    }
    catch (...)
    {
        reportError("clone", "unknown exception");
    }
    return nullptr;
}

nvinfer1::DimsExprs SwishPluginV2::getOutputDimensions(int32_t outputIndex, nvinfer1::DimsExprs const* inputs,
    int32_t nbInputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    try
    {
        checkIoCount(nbInputs, outputIndex == 0 ? 1 : outputIndex + 1);
        if (inputs == nullptr)
        {
            throw SwishError("null shape array");
        }
        return inputs[0];
    }
    catch (std::exception const& e)
    {
        reportError("getOutputDimensions", e);
    }
    catch (...)
    {
        reportError("getOutputDimensions", "unknown exception");
    }
    nvinfer1::DimsExprs invalid{};
    invalid.nbDims = -1;
    return invalid;
}

bool SwishPluginV2::supportsFormatCombination(
    int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    try
    {
        return supportsCombination(pos, inOut, nbInputs, nbOutputs);
    }
    catch (std::exception const& e)
    {
        reportError("supportsFormatCombination", e);
    }
    catch (...)
    {
        reportError("supportsFormatCombination", "unknown exception");
    }
    return false;
}

void SwishPluginV2::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        checkIoCount(nbInputs, nbOutputs);
        if (in == nullptr || out == nullptr)
        {
            throw SwishError("null descriptor");
        }
        checkConfiguration(in[0].desc, out[0].desc, false);
    }
    catch (std::exception const& e)
    {
        reportError("configurePlugin", e);
    }
    catch (...)
    {
        reportError("configurePlugin", "unknown exception");
    }
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
    try
    {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            throw SwishError("null descriptor or buffer array");
        }
        enqueueSwish(inputDesc[0], outputDesc[0], inputs[0], outputs[0], mParams.beta, stream);
        return 0;
    }
    catch (std::exception const& e)
    {
        reportError("enqueue", e);
    }
    catch (...)
    {
        reportError("enqueue", "unknown exception");
    }
    return -1;
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
    try
    {
        auto* plugin = new SwishPluginV2(parseFields(fc, FieldPhase::kBuild));
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (std::exception const& e)
    {
        reportError("createPlugin", e);
    }
    catch (...)
    {
        reportError("createPlugin", "unknown exception");
    }
    return nullptr;
}

nvinfer1::IPluginV2* SwishPluginV2Creator::deserializePlugin(
    char const* /*name*/, void const* serialData, size_t serialLength) noexcept
{
    try
    {
        auto* plugin = new SwishPluginV2(deserialize(serialData, serialLength));
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (std::exception const& e)
    {
        reportError("deserializePlugin", e);
    }
    catch (...)
    {
        reportError("deserializePlugin", "unknown exception");
    }
    return nullptr;
}

void SwishPluginV2Creator::setPluginNamespace(char const* pluginNamespace) noexcept
{
    try
    {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (std::exception const& e)
    {
        reportError("setPluginNamespace", e);
    }
    catch (...)
    {
        reportError("setPluginNamespace", "unknown exception");
    }
}

char const* SwishPluginV2Creator::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

#ifndef SWISH_NO_STATIC_REGISTRATION
// Registers when the library is loaded (dlopen, LD_PRELOAD, Triton's plugins= option).
REGISTER_TENSORRT_PLUGIN(SwishPluginV2Creator);
#endif

} // namespace swish

#pragma GCC diagnostic pop
