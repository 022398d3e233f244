"""The builder's view of the plugin (swish_triton.engines.plugin) against the plugin's definition,
swish_triton/swish_plugin.json."""

from __future__ import annotations

import json
from pathlib import Path

from swish_triton.engines import plugin
from swish_triton.plugin_spec import SPEC_PATH, load_plugin_spec


def test_plugin_identity_matches_spec_file(tmp_path: Path) -> None:
    raw = json.loads(SPEC_PATH.read_text())
    spec = load_plugin_spec()
    assert (spec.name, spec.version_v3, spec.version_v2) == ("SwishPlugin", "2", "1")
    assert (raw["name"], raw["versions"]["v3"], raw["versions"]["v2"]) == (spec.name, spec.version_v3, spec.version_v2)
    assert plugin.plugin_fields(spec, None) == {f["name"]: float(f["default"]) for f in raw["fields"]}
    assert all(f["type"] == "float32" for f in raw["fields"]), "the builder passes every field as FLOAT32"
    assert plugin.plugin_fields(spec, 2.0) == {"beta": 2.0}
    lib = tmp_path / "libswish.so"
    lib.write_bytes(b"not really a library")
    rec = plugin.plugin_record(spec, lib, {"beta": 1.0})
    assert (rec["name"], rec["interface"], rec["version"]) == ("SwishPlugin", "IPluginV3", "2")
    assert rec["sha256"] == plugin.sha256_file(lib)
