"""The plugin's identity (name, versions, fields), read from the one definition, ``swish_plugin.json`` in this package.

The C++ plugin is generated from the same file at CMake time, so Python and C++ cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from swish_triton.locations import PLUGIN_SPEC_PATH as SPEC_PATH


@dataclass(frozen=True)
class PluginField:
    name: str
    type: str
    default: float


@dataclass(frozen=True)
class PluginSpec:
    name: str
    namespace: str
    version_v3: str
    version_v2: str
    serialization_format_version: int
    fields: tuple[PluginField, ...]
    dtypes: tuple[str, ...]


@lru_cache(maxsize=1)
def load_plugin_spec(path: Path = SPEC_PATH) -> PluginSpec:
    raw = json.loads(Path(path).read_text())
    return PluginSpec(
        name=raw["name"],
        namespace=raw["namespace"],
        version_v3=raw["versions"]["v3"],
        version_v2=raw["versions"]["v2"],
        serialization_format_version=int(raw["serialization_format_version"]),
        fields=tuple(PluginField(f["name"], f["type"], float(f["default"])) for f in raw["fields"]),
        dtypes=tuple(raw["dtypes"]),
    )


def field_default(name: str) -> float:
    """The default of one plugin field (e.g. ``beta``), from the spec."""
    for spec_field in load_plugin_spec().fields:
        if spec_field.name == name:
            return spec_field.default
    raise KeyError(f"the plugin has no field {name!r}")
