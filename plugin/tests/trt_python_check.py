"""The Swish plugin through TensorRT's Python API (the lean runtime's `tensorrt_lean_bindings`, same API as `tensorrt`).

Run in a process whose PYTHONPATH holds the unpacked lean wheels (tests/plugin/test_tensorrt_runtime.py does that):

    python plugin/tests/trt_python_check.py --loadable libswish_dynamic.so [--static libswish.so]

Checks what the README tells users to do: registry.load_library / deregister_library with the loadable library,
ctypes loading of libswish.so, get_creator(name, version, namespace), create_plugin in build and runtime phases,
V2 serialize -> deserialize_plugin, refusals of bad fields and blobs. The Python bindings cannot enqueue or clone
C++ plugins; plugin/tests/trtRuntimeTest.cpp covers that. Prints one line per check; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import ctypes
import sys

import numpy as np

try:  # the lean runtime's module first: `tensorrt` may be only type stubs (tensorrt-stubs) in a development venv
    import tensorrt_lean_bindings as trt
except ImportError:
    import tensorrt as trt

FAILED: list[str] = []
# trt.PluginField does not keep its NumPy array alive: an array made inline is freed once the statement ends and the
# plugin then reads freed memory (seen here: a NaN beta read back as a valid number). Every array stays referenced.
KEEP_ALIVE: list[np.ndarray] = []


def array(values: list[float] | list[int], dtype: type) -> np.ndarray:
    KEEP_ALIVE.append(np.array(values, dtype))
    return KEEP_ALIVE[-1]


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILED.append(what)


def fields(beta: float, version: int | None = None, extra: bool = False) -> trt.PluginFieldCollection:
    items = [trt.PluginField("beta", array([beta], np.float32), trt.PluginFieldType.FLOAT32)]
    if version is not None:
        items.append(
            trt.PluginField("serialization_format_version", array([version], np.int32), trt.PluginFieldType.INT32)
        )
    if extra:
        items.append(trt.PluginField("onnx_extra_attribute", array([3], np.int32), trt.PluginFieldType.INT32))
    return trt.PluginFieldCollection(items)


def check_v3(lib: str, creator: object) -> None:
    check(isinstance(creator, trt.IPluginCreatorV3One), f"{lib}: get_creator('SwishPlugin', '2', '') is V3")
    check([f.name for f in creator.field_names] == ["beta"], f"{lib}: field_names == ['beta']")
    build = creator.create_plugin("swish", fields(1.702), trt.TensorRTPhase.BUILD)
    check(isinstance(build, trt.IPluginV3), f"{lib}: create_plugin in the build phase")
    runtime = creator.create_plugin("swish", fields(1.702, version=1), trt.TensorRTPhase.RUNTIME)
    check(isinstance(runtime, trt.IPluginV3), f"{lib}: create_plugin in the runtime phase from serialized fields")
    check(
        runtime.get_capability_interface(trt.PluginCapabilityType.RUNTIME) is not None,
        f"{lib}: runtime capability interface",
    )
    check(
        creator.create_plugin("swish", fields(0.5, extra=True), trt.TensorRTPhase.BUILD) is not None,
        f"{lib}: an unknown field is accepted",
    )
    for what, fc, phase in [
        ("a NaN beta", fields(float("nan")), trt.TensorRTPhase.BUILD),
        ("runtime fields without the format version", fields(1.0), trt.TensorRTPhase.RUNTIME),
        ("format version 2", fields(1.0, version=2), trt.TensorRTPhase.RUNTIME),
    ]:
        check(creator.create_plugin("swish", fc, phase) is None, f"{lib}: create_plugin refuses {what}")


def check_loadable(registry: trt.IPluginRegistry, path: str) -> None:
    lib = "libswish_dynamic.so"
    handle = registry.load_library(path)
    check(handle is not None, f"{lib}: registry.load_library")
    check_v3(lib, registry.get_creator("SwishPlugin", "2", ""))
    check(registry.get_creator("SwishPlugin", "1", "") is None, f"{lib}: no second creator of the same name")
    registry.deregister_library(handle)
    check(registry.get_creator("SwishPlugin", "2", "") is None, f"{lib}: deregister_library removes the creator")
    for round_ in range(1, 4):
        again = registry.load_library(path)
        creator = registry.get_creator("SwishPlugin", "2", "")
        ok = again is not None and creator is not None
        ok = ok and creator.create_plugin("swish", fields(0.25), trt.TensorRTPhase.BUILD) is not None
        check(ok, f"{lib}: reload {round_} after deregister_library")
        if again is not None:
            registry.deregister_library(again)


def check_static(registry: trt.IPluginRegistry, path: str) -> None:
    lib = "libswish.so"
    ctypes.CDLL(path)  # static registration into the same registry
    check_v3(lib, registry.get_creator("SwishPlugin", "2", ""))
    v2 = registry.get_creator("SwishPlugin", "1", "")
    check(isinstance(v2, trt.IPluginCreator), f"{lib}: get_creator('SwishPlugin', '1', '') is V2")
    plugin = v2.create_plugin("swish", fields(1.702))
    blob = bytes(plugin.serialize())
    check(len(blob) == 8, f"{lib}: V2 blob of 8 bytes")
    restored = v2.deserialize_plugin("swish", blob)
    check(restored is not None and bytes(restored.serialize()) == blob, f"{lib}: V2 serialize round trip")
    for what, bad in [
        ("a truncated blob", blob[:6]),
        ("a blob one byte too long", blob + b"\0"),
        ("format version 2", (2).to_bytes(4, "little") + blob[4:]),
        ("a NaN beta", blob[:4] + np.array([np.nan], np.float32).tobytes()),
    ]:
        check(v2.deserialize_plugin("swish", bad) is None, f"{lib}: deserialize_plugin refuses {what}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loadable", required=True)
    parser.add_argument("--static")
    args = parser.parse_args()
    print(f"TensorRT Python API {trt.__version__} ({trt.__name__})")
    registry = trt.get_plugin_registry()
    check_loadable(registry, args.loadable)
    if args.static:
        check_static(registry, args.static)
    print(f"python bindings: {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
