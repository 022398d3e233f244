/*
 * SwishPlugin version "1": IPluginV2DynamicExt and its IPluginCreator, for code written against the TensorRT
 * 8.6-10 network API (add_plugin_v2). Deprecated by TensorRT, still compiled against 10.x and 11.x headers.
 * All behaviour comes from swishPluginCore.h, shared with the V3 plugin.
 */
#ifndef SWISH_PLUGIN_LEGACY_H
#define SWISH_PLUGIN_LEGACY_H

#include "swishPluginCore.h"

#include <NvInferRuntime.h>

#include <array>
#include <string>

// IPluginV2DynamicExt and IPluginCreator are marked deprecated; implementing them is the point of this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace swish
{

class SwishPluginV2 final : public nvinfer1::IPluginV2DynamicExt
{
public:
    explicit SwishPluginV2(SwishParams const& params);
    SwishPluginV2(SwishPluginV2 const&) = default;
    SwishPluginV2& operator=(SwishPluginV2 const&) = delete;
    ~SwishPluginV2() override = default;

    // IPluginV2
    char const* getPluginType() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    int32_t getNbOutputs() const noexcept override;
    int32_t initialize() noexcept override;
    void terminate() noexcept override;
    size_t getSerializationSize() const noexcept override;
    void serialize(void* buffer) const noexcept override;
    void destroy() noexcept override;
    void setPluginNamespace(char const* pluginNamespace) noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV2Ext
    nvinfer1::DataType getOutputDataType(
        int32_t index, nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;

    // IPluginV2DynamicExt
    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override;
    nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(
        int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override;
    void configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::PluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

    SwishParams const& params() const noexcept
    {
        return mParams;
    }

private:
    SwishParams mParams;
    std::string mNamespace{spec::kPLUGIN_NAMESPACE};
};

class SwishPluginV2Creator final : public nvinfer1::IPluginCreator
{
public:
    SwishPluginV2Creator();
    ~SwishPluginV2Creator() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV2* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc) noexcept override;
    nvinfer1::IPluginV2* deserializePlugin(
        char const* name, void const* serialData, size_t serialLength) noexcept override;
    void setPluginNamespace(char const* pluginNamespace) noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    std::array<nvinfer1::PluginField, 1> mFieldNames{};
    nvinfer1::PluginFieldCollection mFieldCollection{};
    std::string mNamespace{spec::kPLUGIN_NAMESPACE};
};

} // namespace swish

#pragma GCC diagnostic pop

#endif // SWISH_PLUGIN_LEGACY_H
