"""Build records and staleness (no TensorRT needed).

Each plan is written with a JSON record beside it (``model.plan.json``) saying what it was built from and for: the
config's I/O and beta, the profile, the plugin (fields and libswish.so's SHA-256), the TensorRT release and the GPU.
A later run rebuilds only what is stale, and ``--check`` says in one line why Triton would refuse a plan.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swish_triton.engines.configs import MODEL_VERSION, EngineModel, ModelIO, profile_record
from swish_triton.engines.host import GpuInfo, HostInfo, same_tensorrt_release, short_tensorrt_version
from swish_triton.engines.plugin import plugin_fields, plugin_record
from swish_triton.limits import ENGINE_PROFILE
from swish_triton.plugin_spec import load_plugin_spec

PLAN_FILENAME = "model.plan"
RECORD_SUFFIX = ".json"
REBUILD_HINT = "rebuild with `make engines`"

# Bump when the networks the builder makes change in a way the record cannot see, so that existing plans count as stale.
# 2: beta comes from config.pbtxt and is recorded for every Swish network (swish_native included).
BUILDER_VERSION = 2


def plan_path(model_repository: Path, model: str) -> Path:
    return Path(model_repository) / model / MODEL_VERSION / PLAN_FILENAME


def record_path(plan: Path) -> Path:
    return plan.with_name(plan.name + RECORD_SUFFIX)


def read_record(plan: Path) -> dict[str, Any] | None:
    path = record_path(plan)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename, so a reader (Triton) never sees half a plan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Expected:
    """What a fresh plan's record must say, as known on this host."""

    io: dict[str, Any]
    profile: dict[str, Any]
    plugin: dict[str, Any] | None  # name/version/fields/sha256; None for models without the plugin
    tensorrt_version: str | None  # None: not known here (no TensorRT)
    gpu: GpuInfo | None  # None: not known here (no GPU)
    beta: float | None = None  # the config's beta for the Swish networks (plugin and native); None for ReLU
    builder_version: int = BUILDER_VERSION


def expected_for(model: EngineModel, io: ModelIO, host: HostInfo, plugin_lib: Path) -> Expected:
    plugin = None
    if model.needs_plugin:
        spec = load_plugin_spec()
        plugin = plugin_record(spec, plugin_lib, plugin_fields(spec, io.beta))
    return Expected(
        io.as_record(),
        profile_record(ENGINE_PROFILE, io.input_name),
        plugin,
        host.tensorrt_version,
        host.gpu,
        io.beta,
    )


def host_mismatch(model: str, record: dict[str, Any], host: HostInfo) -> str | None:
    """The one line that says a plan was built for another GPU or TensorRT release than this host's, else None."""
    built_trt = str(record.get("tensorrt_version", "?"))
    built_gpu = record.get("gpu") or {}
    built = GpuInfo(str(built_gpu.get("name", "?")), str(built_gpu.get("compute_capability", "?")))
    trt_differs = host.tensorrt_version is not None and not same_tensorrt_release(built_trt, host.tensorrt_version)
    gpu_differs = host.gpu is not None and host.gpu != built
    if not (trt_differs or gpu_differs):
        return None
    here_gpu = host.gpu.describe() if host.gpu else "an unknown GPU"
    here_trt = f"TensorRT {short_tensorrt_version(host.tensorrt_version)}" if host.tensorrt_version else "no TensorRT"
    return (
        f"{model}: plan built for {built.describe()} with TensorRT {short_tensorrt_version(built_trt)}; "
        f"this host has {here_gpu} with {here_trt}: {REBUILD_HINT}"
    )


def stale_reasons(record: dict[str, Any] | None, plan_exists: bool, expected: Expected) -> list[str]:
    """Why a plan must be rebuilt; empty when it is fresh. Facts unknown on this host are not held against it."""
    if not plan_exists:
        return ["no plan"]
    if record is None:
        return ["no build record beside the plan"]
    reasons = []
    if record.get("builder_version") != expected.builder_version:
        reasons.append(f"builder version {record.get('builder_version')} -> {expected.builder_version}")
    if expected.tensorrt_version and not same_tensorrt_release(
        str(record.get("tensorrt_version", "")), expected.tensorrt_version
    ):
        reasons.append(f"TensorRT {record.get('tensorrt_version')} -> {expected.tensorrt_version}")
    if expected.gpu is not None:
        gpu = record.get("gpu") or {}
        if gpu.get("name") != expected.gpu.name or gpu.get("compute_capability") != expected.gpu.compute_capability:
            reasons.append(
                f"GPU {gpu.get('name')} ({gpu.get('compute_capability')}) -> {expected.gpu.name} "
                f"({expected.gpu.compute_capability})"
            )
    if record.get("io") != expected.io:
        reasons.append(f"config I/O {record.get('io')} -> {expected.io}")
    if record.get("beta") != expected.beta:
        reasons.append(f"beta {record.get('beta')} -> {expected.beta} (config.pbtxt)")
    if record.get("profile") != expected.profile:
        reasons.append(f"profile {record.get('profile')} -> {expected.profile}")
    built_plugin = record.get("plugin")
    if (built_plugin is None) != (expected.plugin is None):
        reasons.append("plugin use changed")
    elif built_plugin is not None and expected.plugin is not None:
        for key in ("name", "version", "namespace", "fields"):
            if built_plugin.get(key) != expected.plugin.get(key):
                reasons.append(f"plugin {key} {built_plugin.get(key)!r} -> {expected.plugin.get(key)!r}")
        if expected.plugin.get("sha256") and built_plugin.get("sha256") != expected.plugin["sha256"]:
            reasons.append(f"{Path(expected.plugin['library']).name} changed (sha256)")
    return reasons


def make_record(model: EngineModel, plan: bytes, expected: Expected, build_seconds: float) -> dict[str, Any]:
    gpu = expected.gpu
    return {
        "model": model.name,
        "graph": model.graph.value,
        "plan": PLAN_FILENAME,
        "plan_bytes": len(plan),
        "plan_sha256": hashlib.sha256(plan).hexdigest(),
        "tensorrt_version": expected.tensorrt_version,
        "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability} if gpu else None,
        "io": expected.io,
        "beta": expected.beta,
        "profile": expected.profile,
        "plugin": expected.plugin,
        "built_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "build_seconds": round(build_seconds, 3),
        "builder_version": expected.builder_version,
        "builder": {"module": "swish_triton.engines", "python": platform.python_version()},
    }
