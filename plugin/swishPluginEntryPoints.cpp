/*
 * Entry points of libswish_dynamic.so, the variant for IPluginRegistry::loadLibrary (trtexec --dynamicPlugins,
 * Python's registry.load_library, plugins serialized into version-compatible engines). That variant is compiled with
 * SWISH_NO_STATIC_REGISTRATION: loadLibrary registers what getCreators returns and would refuse duplicates.
 */
#include "swishPlugin.h"
#include "swishPluginLegacy.h"

#include <NvInferRuntime.h>

#include <array>

// TENSORRTAPI exports only inside TensorRT's own build; these must be exported from this library.
#define SWISH_ENTRY_POINT __attribute__((visibility("default")))

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

extern "C" SWISH_ENTRY_POINT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    swish::setLoggerFinder(finder);
}

extern "C" SWISH_ENTRY_POINT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static swish::SwishPluginV3Creator v3Creator;
    static swish::SwishPluginV2Creator v2Creator;
    static std::array<nvinfer1::IPluginCreatorInterface*, 2> const creators{&v3Creator, &v2Creator};
    nbCreators = static_cast<int32_t>(creators.size());
    return creators.data();
}

#pragma GCC diagnostic pop
