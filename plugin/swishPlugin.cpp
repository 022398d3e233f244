/*
 * SwishPlugin version "2" (IPluginV3). Every noexcept method that can fail runs its body through swish::guarded,
 * which catches everything and reports it: inside Triton an escaped exception or an abort would take the server down.
 */
#include "swishPlugin.h"

namespace swish
{
namespace
{

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

constexpr float kBetaDefault = spec::kFIELD_BETA_DEFAULT;

} // namespace

SwishPluginV3::SwishPluginV3(SwishParams const& params)
    : mParams(params)
{
    validateParams(mParams);
    bindSerialFields();
}

SwishPluginV3::SwishPluginV3(SwishPluginV3 const& other)
    : nvinfer1::IPluginV3(other)
    , nvinfer1::IPluginV3OneCore(other)
    , nvinfer1::IPluginV3OneBuild(other)
    , nvinfer1::IPluginV3OneRuntime(other)
    , mParams(other.mParams)
    , mRecorder(other.mRecorder)
{
    bindSerialFields(); // the fields point into this object, never into `other`
}

void SwishPluginV3::bindSerialFields() noexcept
{
    mSerialFields[0] = PluginField(spec::kFIELD_BETA, &mParams.beta, PluginFieldType::kFLOAT32, 1);
    mSerialFields[1] =
        PluginField(spec::kFIELD_SERIALIZATION_FORMAT_VERSION, &mFormatVersion, PluginFieldType::kINT32, 1);
    mSerialCollection.nbFields = static_cast<int32_t>(mSerialFields.size());
    mSerialCollection.fields = mSerialFields.data();
}

nvinfer1::IPluginCapability* SwishPluginV3::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept
{
    return guarded<nvinfer1::IPluginCapability*>(
        "getCapabilityInterface", mRecorder, nullptr, [&]() -> nvinfer1::IPluginCapability* {
        switch (type)
        {
        case nvinfer1::PluginCapabilityType::kCORE:
            return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case nvinfer1::PluginCapabilityType::kBUILD:
            return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME:
            return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        }
        throw SwishError("unknown capability type");
    });
}

nvinfer1::IPluginV3* SwishPluginV3::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>("clone", mRecorder, nullptr, [&] {
        return new SwishPluginV3(*this);
    });
}

char const* SwishPluginV3::getPluginName() const noexcept
{
    return spec::kPLUGIN_NAME;
}

char const* SwishPluginV3::getPluginVersion() const noexcept
{
    return spec::kPLUGIN_VERSION_V3;
}

char const* SwishPluginV3::getPluginNamespace() const noexcept
{
    return spec::kPLUGIN_NAMESPACE;
}

int32_t SwishPluginV3::getNbOutputs() const noexcept
{
    return 1;
}

int32_t SwishPluginV3::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    return guarded("getOutputDataTypes", mRecorder, -1, [&] {
        checkIoCount(nbInputs, nbOutputs);
        if (outputTypes == nullptr || inputTypes == nullptr)
        {
            throw SwishError("null type array");
        }
        outputTypes[0] = outputType(inputTypes[0]);
        return 0;
    });
}

int32_t SwishPluginV3::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
    nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    return guarded("getOutputShapes", mRecorder, -1, [&] {
        checkIoCount(nbInputs, nbOutputs);
        if (nbShapeInputs != 0)
        {
            throw SwishError("takes no shape inputs");
        }
        if (inputs == nullptr || outputs == nullptr)
        {
            throw SwishError("null shape array");
        }
        outputs[0] = inputs[0]; // same rank and the same (possibly symbolic) extents
        return 0;
    });
}

bool SwishPluginV3::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return guarded("supportsFormatCombination", mRecorder, false, [&] {
        checkIoCount(nbInputs, nbOutputs);
        if (inOut == nullptr)
        {
            throw SwishError("null descriptor array");
        }
        nvinfer1::PluginTensorDesc const descs[2] = {inOut[0].desc, inOut[1].desc};
        return supportsCombination(pos, descs, nbInputs, nbOutputs);
    });
}

int32_t SwishPluginV3::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", mRecorder, -1, [&] {
        checkIoCount(nbInputs, nbOutputs);
        if (in == nullptr || out == nullptr)
        {
            throw SwishError("null descriptor");
        }
        checkConfiguration(in[0].desc, out[0].desc, false);
        return 0;
    });
}

size_t SwishPluginV3::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    nvinfer1::DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

int32_t SwishPluginV3::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("onShapeChange", mRecorder, -1, [&] {
        checkIoCount(nbInputs, nbOutputs);
        if (in == nullptr || out == nullptr)
        {
            throw SwishError("null descriptor");
        }
        checkConfiguration(in[0], out[0], true);
        static_cast<void>(volume(in[0].dims));
        return 0;
    });
}

int32_t SwishPluginV3::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs, void* const* outputs, void* /*workspace*/,
    cudaStream_t stream) noexcept
{
    return guarded("enqueue", mRecorder, -1, [&] {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            throw SwishError("null descriptor or buffer array");
        }
        enqueueSwish(inputDesc[0], outputDesc[0], inputs[0], outputs[0], mParams.beta, stream);
        return 0;
    });
}

nvinfer1::IPluginV3* SwishPluginV3::attachToContext(nvinfer1::IPluginResourceContext* context) noexcept
{
    return guarded<nvinfer1::IPluginV3*>("attachToContext", mRecorder, nullptr, [&] {
        auto* plugin = new SwishPluginV3(*this);
        plugin->mRecorder = context != nullptr ? context->getErrorRecorder() : nullptr;
        return plugin;
    });
}

nvinfer1::PluginFieldCollection const* SwishPluginV3::getFieldsToSerialize() noexcept
{
    return guarded<nvinfer1::PluginFieldCollection const*>(
        "getFieldsToSerialize", mRecorder, nullptr, [&] {
        validateParams(mParams);
        bindSerialFields();
        return &mSerialCollection;
    });
}

SwishPluginV3Creator::SwishPluginV3Creator()
{
    static float const defaultBeta = kBetaDefault;
    mFieldNames[0] = PluginField(spec::kFIELD_BETA, &defaultBeta, PluginFieldType::kFLOAT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

char const* SwishPluginV3Creator::getPluginName() const noexcept
{
    return spec::kPLUGIN_NAME;
}

char const* SwishPluginV3Creator::getPluginVersion() const noexcept
{
    return spec::kPLUGIN_VERSION_V3;
}

char const* SwishPluginV3Creator::getPluginNamespace() const noexcept
{
    return spec::kPLUGIN_NAMESPACE;
}

nvinfer1::PluginFieldCollection const* SwishPluginV3Creator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

nvinfer1::IPluginV3* SwishPluginV3Creator::createPlugin(
    char const* /*name*/, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept
{
    return guarded<nvinfer1::IPluginV3*>("createPlugin", nullptr, nullptr, [&] {
        FieldPhase const fieldPhase =
            phase == nvinfer1::TensorRTPhase::kRUNTIME ? FieldPhase::kRuntime : FieldPhase::kBuild;
        return new SwishPluginV3(parseFields(fc, fieldPhase, "createPlugin"));
    });
}

#ifndef SWISH_LOADABLE_LIBRARY
// Registers when the library is loaded (dlopen, LD_PRELOAD, Triton's plugins= option).
REGISTER_TENSORRT_PLUGIN(SwishPluginV3Creator);
#endif

} // namespace swish
