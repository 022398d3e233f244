"""Image-build check: loading libswish.so registers the SwishPlugin creator statically (no GPU needed).

Triton's ``--backend-config=tensorrt,plugins=`` option and ``LD_PRELOAD`` only load the library, so a plugin that
registers nothing at load time builds fine and fails only when Triton deserializes the first engine. Run in the
plugin build stage of docker/Dockerfile:

    python3 check_plugin_registration.py .build/plugin/libswish.so swish_triton/swish_plugin.json
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(__file__).name} LIBSWISH_SO SWISH_PLUGIN_JSON", file=sys.stderr)
        return 2
    lib, spec_path = Path(argv[0]).resolve(), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    name, version, namespace = spec["name"], spec["versions"]["v3"], spec["namespace"]

    import tensorrt as trt

    registry = trt.get_plugin_registry()
    if registry.get_creator(name, version, namespace) is not None:
        print(f"error: {name} version {version} is registered before loading {lib}", file=sys.stderr)
        return 1
    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    if registry.get_creator(name, version, namespace) is None:
        print(
            f"error: loading {lib} registered no {name} version {version} namespace {namespace!r}: "
            "the plugin must register statically (REGISTER_TENSORRT_PLUGIN)",
            file=sys.stderr,
        )
        return 1
    print(f"{lib.name} registers {name} version {version} when loaded (TensorRT {trt.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
