/*
 * SwishPlugin version "2": IPluginV3 (IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime) and its
 * IPluginCreatorV3One. All behaviour comes from swishPluginCore.h, shared with the V2 plugin (swishPluginLegacy.h).
 */
#ifndef SWISH_PLUGIN_H
#define SWISH_PLUGIN_H

#include "swishPluginCore.h"

#include <NvInferRuntime.h>

#include <array>

namespace swish
{

class SwishPluginV3 final : public nvinfer1::IPluginV3,
                            public nvinfer1::IPluginV3OneCore,
                            public nvinfer1::IPluginV3OneBuild,
                            public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit SwishPluginV3(SwishParams const& params);
    SwishPluginV3(SwishPluginV3 const& other);
    SwishPluginV3& operator=(SwishPluginV3 const&) = delete;
    ~SwishPluginV3() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
        int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

    SwishParams const& params() const noexcept
    {
        return mParams;
    }

private:
    void bindSerialFields() noexcept;

    SwishParams mParams;
    int32_t mFormatVersion{spec::kSERIALIZATION_FORMAT_VERSION};
    nvinfer1::IErrorRecorder* mRecorder{nullptr}; // set by attachToContext; owned by the execution context
    std::array<nvinfer1::PluginField, 2> mSerialFields{};
    nvinfer1::PluginFieldCollection mSerialCollection{};
};

class SwishPluginV3Creator final : public nvinfer1::IPluginCreatorV3One
{
public:
    SwishPluginV3Creator();
    ~SwishPluginV3Creator() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::array<nvinfer1::PluginField, 1> mFieldNames{};
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

} // namespace swish

#endif // SWISH_PLUGIN_H
