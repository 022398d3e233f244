/*
 * Entry points of libswish_dynamic.so, the loadable plugin library for IPluginRegistry::loadLibrary (trtexec
 * --dynamicPlugins, Python's registry.load_library, plans that carry their plugins through setPluginsToSerialize).
 *
 * Built like TensorRT's own libnvinfer_vc_plugin.so: compiled with SWISH_LOADABLE_LIBRARY (no static registration, no
 * reference to libnvinfer, so it loads into the lean and dispatch runtimes), linked --no-undefined, and exporting
 * these two functions only (plugin/swishLoadable.map). It logs through the ILoggerFinder that loadLibrary hands over.
 *
 * It offers the V3 creator only: TensorRT's deregisterLibrary removes creators by name, so two creators of one name
 * (SwishPlugin "2" and "1") leave one behind and every later loadLibrary of the library is refused as a duplicate.
 * The deprecated V2 plugin ("1") stays in libswish.so.
 */
#include "swishPlugin.h"

#include <NvInferRuntime.h>

#include <array>

// TENSORRTAPI exports only inside TensorRT's own build; these must be exported from this library.
#define SWISH_ENTRY_POINT __attribute__((visibility("default")))

extern "C" SWISH_ENTRY_POINT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    swish::setLoggerFinder(finder);
}

extern "C" SWISH_ENTRY_POINT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static swish::SwishPluginV3Creator v3Creator;
    static std::array<nvinfer1::IPluginCreatorInterface*, 1> const creators{&v3Creator};
    nbCreators = static_cast<int32_t>(creators.size());
    return creators.data();
}
