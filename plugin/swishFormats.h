/*
 * The (type, format) pairs the Swish plugin accepts, as one table used by the plugin, its tests and the README.
 *
 * Swish is elementwise, so any layout works as long as input and output share it: enqueue runs over the whole
 * buffer, padding included (TensorRT's vectorized formats round the channel extent up to the vector size; swish(0)
 * is 0, so zero padding stays zero). The types per format are those TensorRT's headers document for GPU use
 * (NvInferRuntime.h, enum TensorFormat); kCHW4 (INT8 only) and kCHW16 / kDLA_* (DLA only) are left out.
 */
#ifndef SWISH_FORMATS_H
#define SWISH_FORMATS_H

#include <NvInferRuntime.h>

#include <cstdint>

namespace swish
{

struct FormatRule
{
    nvinfer1::TensorFormat format;
    char const* name;
    int32_t vectorSize;     //!< elements per vector; the channel extent is padded to a multiple of it
    int32_t channelFromEnd; //!< the channel dimension is dims[nbDims - channelFromEnd]; also the minimum rank
    bool fp32;
    bool fp16;
    bool bf16;
};

// clang-format off
inline constexpr FormatRule kFORMAT_RULES[] = {
    {nvinfer1::TensorFormat::kLINEAR,  "kLINEAR",  1,  0, true,  true,  true},
    {nvinfer1::TensorFormat::kCHW2,    "kCHW2",    2,  3, false, true,  true},
    {nvinfer1::TensorFormat::kHWC8,    "kHWC8",    8,  3, false, true,  true},
    {nvinfer1::TensorFormat::kHWC16,   "kHWC16",   16, 3, false, true,  false},
    {nvinfer1::TensorFormat::kCHW32,   "kCHW32",   32, 3, true,  true,  false},
    {nvinfer1::TensorFormat::kHWC,     "kHWC",     1,  3, true,  false, false},
    {nvinfer1::TensorFormat::kDHWC8,   "kDHWC8",   8,  4, false, true,  true},
    {nvinfer1::TensorFormat::kCDHW32,  "kCDHW32",  32, 4, false, true,  false},
    {nvinfer1::TensorFormat::kDHWC,    "kDHWC",    1,  4, true,  false, false},
};
// clang-format on

//! The rule for `format`, or nullptr if the plugin does not accept it.
inline FormatRule const* findFormatRule(nvinfer1::TensorFormat format) noexcept
{
    for (FormatRule const& rule : kFORMAT_RULES)
    {
        if (rule.format == format)
        {
            return &rule;
        }
    }
    return nullptr;
}

//! Whether the plugin accepts `type` in `format` at rank `nbDims` (pass -1 when the rank is not known yet).
inline bool formatAccepts(nvinfer1::TensorFormat format, nvinfer1::DataType type, int32_t nbDims) noexcept
{
    FormatRule const* rule = findFormatRule(format);
    if (rule == nullptr || (nbDims >= 0 && nbDims < rule->channelFromEnd))
    {
        return false;
    }
    switch (type)
    {
    case nvinfer1::DataType::kFLOAT:
        return rule->fp32;
    case nvinfer1::DataType::kHALF:
        return rule->fp16;
    case nvinfer1::DataType::kBF16:
        return rule->bf16;
    default:
        return false;
    }
}

} // namespace swish

#endif // SWISH_FORMATS_H
