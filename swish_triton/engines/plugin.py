"""The Swish plugin as the builder sees it: where libswish.so is, its fingerprint, its fields, and its creator.

The plugin's name, version, namespace and fields come from ``swish_triton/swish_plugin.json`` (the file the C++
plugin is generated from); beta comes from each model's ``config.pbtxt``. The engines use the plugin through
IPluginV3 (TensorRT 10 and later).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swish_triton import settings
from swish_triton.engines.configs import BuildError
from swish_triton.locations import plugin_build_dir
from swish_triton.model_config import BETA_PARAMETER
from swish_triton.plugin_spec import PluginSpec

DEFAULT_PLUGIN_LIB = plugin_build_dir() / "libswish.so"
PLUGIN_INTERFACE = "IPluginV3"


def plugin_lib_path(value: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """--plugin-lib, else $SWISH_PLUGIN_LIB, else .build/plugin/libswish.so (swish_triton.settings' rule)."""
    return Path(settings.resolve("SWISH_PLUGIN_LIB", value or None, environ, DEFAULT_PLUGIN_LIB)[0])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def plugin_fields(spec: PluginSpec, beta: float | None) -> dict[str, float]:
    """The plugin fields a network is built with: the spec's defaults, with the model's beta where given."""
    values = {f.name: f.default for f in spec.fields}
    if BETA_PARAMETER not in values:
        raise BuildError(f"{spec.name} has no field {BETA_PARAMETER!r} (fields: {sorted(values)})")
    if beta is not None:
        values[BETA_PARAMETER] = float(beta)
    return values


def plugin_record(spec: PluginSpec, lib: Path, fields: dict[str, float]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "interface": PLUGIN_INTERFACE,
        "version": spec.version_v3,
        "fields": dict(fields),
        "library": str(lib),
        "sha256": sha256_file(lib) if Path(lib).is_file() else None,
    }


_loaded_plugin_libs: dict[str, Any] = {}


def load_plugin_library(lib: Path, spec: PluginSpec) -> Any:
    """Make the plugin's creator visible in TensorRT's registry and return it.

    Loading the library runs its static REGISTER_TENSORRT_PLUGIN registration. It is loaded here with RTLD_GLOBAL;
    Triton's ``plugins=`` backend option loads it with ``dlopen(RTLD_NOW | RTLD_LOCAL)`` (tensorrt_backend's
    ``src/shared_library.cc``) and LD_PRELOAD loads it globally, which register it the same way because the
    registration runs at load time either way. The registry's ``load_library`` is the fallback for a library that
    exports the getCreators entry points instead.
    """
    import tensorrt as trt

    registry = trt.get_plugin_registry()

    def lookup() -> Any:
        return registry.get_creator(spec.name, spec.version_v3, spec.namespace)

    creator = lookup()
    if creator is not None:
        return creator
    if not Path(lib).is_file():
        raise BuildError(f"plugin library not found: {lib} (build it with `make plugin`, or set SWISH_PLUGIN_LIB)")
    key = str(Path(lib).resolve())
    if key not in _loaded_plugin_libs:
        try:
            _loaded_plugin_libs[key] = ctypes.CDLL(key, mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            raise BuildError(f"cannot load {lib}: {e}") from e
    creator = lookup()
    if creator is None:
        registry.load_library(key)
        creator = lookup()
    if creator is None:
        raise BuildError(
            f"{lib} loaded, but TensorRT's registry has no creator {spec.name!r} version {spec.version_v3!r} "
            f"namespace {spec.namespace!r}: plugin and swish_triton/swish_plugin.json disagree"
        )
    return creator
