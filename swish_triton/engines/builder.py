"""Build the TensorRT engines of the model repository and tell when a plan no longer fits its host.

One table (``ENGINE_MODELS``) names the four TensorRT models and the network each holds. A model's input and output
names and its data type come from its ``config.pbtxt``; the optimization profile comes from ``limits.ENGINE_PROFILE``;
the plugin's name, versions and fields come from ``swish_triton/swish_plugin.json``. Each plan is written with a
JSON record beside it (``model.plan.json``) saying what it was built from and for, so that a later run rebuilds
only what is stale and ``--check`` can say in one line why Triton would refuse a plan.

Only ``build``-side functions need TensorRT; the config, record and staleness logic runs anywhere (CI included).
CLI: ``python -m swish_triton.engines.builder`` or ``python build/build_engine.py``.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import enum
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swish_triton import model_config
from swish_triton.errors import SwishError
from swish_triton.limits import ENGINE_PROFILE, Profile
from swish_triton.locations import build_dir, default_model_repository, plugin_build_dir
from swish_triton.plugin_spec import PluginSpec, load_plugin_spec

if TYPE_CHECKING:
    import tensorrt as trt
    from tritonclient.grpc import model_config_pb2

DEFAULT_MODEL_REPOSITORY = default_model_repository()
DEFAULT_PLUGIN_LIB = plugin_build_dir() / "libswish.so"
# Outside the model repository: Triton treats every folder there as a model.
DEFAULT_CACHE_DIR = build_dir() / "trt_cache"
PLAN_FILENAME = "model.plan"
RECORD_SUFFIX = ".json"
MODEL_VERSION = "1"
REBUILD_HINT = "rebuild with `make engines`"

# Bump when the networks built here change in a way the record cannot see, so that existing plans count as stale.
BUILDER_VERSION = 1

# Triton data types the engines support, with the TensorRT DataType attribute of each.
TRITON_TO_TRT_DTYPE = {"TYPE_FP32": "float32", "TYPE_FP16": "float16", "TYPE_BF16": "bfloat16"}


class Graph(str, enum.Enum):
    """What a model's network computes."""

    PLUGIN = "plugin"  # SwishPlugin from libswish.so
    RELU = "relu"  # TensorRT's built-in ReLU activation: the one-kernel baseline
    NATIVE = "native"  # sigmoid activation * input, from TensorRT's own layers (fused into one kernel)


@dataclass(frozen=True)
class EngineModel:
    """One TensorRT model of the repository: its folder name, network and the data type its config must declare."""

    name: str
    graph: Graph
    data_type: str

    @property
    def needs_plugin(self) -> bool:
        return self.graph is Graph.PLUGIN


ENGINE_MODELS: tuple[EngineModel, ...] = (
    EngineModel("swish", Graph.PLUGIN, "TYPE_FP32"),
    EngineModel("swish_fp16", Graph.PLUGIN, "TYPE_FP16"),
    EngineModel("relu", Graph.RELU, "TYPE_FP32"),
    EngineModel("swish_native", Graph.NATIVE, "TYPE_FP32"),
)
ENGINE_MODEL_NAMES = tuple(m.name for m in ENGINE_MODELS)


class BuildError(SwishError):
    """A model cannot be built or checked; the message is meant for the user as it is."""


# --------------------------------------------------------------------------------------------------------------------
# Model configs (no TensorRT needed)


@dataclass(frozen=True)
class ModelIO:
    """What the engine must match in a model's config.pbtxt."""

    input_name: str
    output_name: str
    data_type: str  # Triton's name, e.g. "TYPE_FP32"
    max_batch_size: int

    def as_record(self) -> dict[str, Any]:
        return {
            "input": self.input_name,
            "output": self.output_name,
            "data_type": self.data_type,
            "max_batch_size": self.max_batch_size,
        }


def _model_config_module() -> Any:
    """Triton's model-config schema; a TensorRT container lacks it until tritonclient[grpc] is installed."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as e:
        raise BuildError(
            f"reading config.pbtxt needs Triton's schema from tritonclient ({e}): "
            'pip install "tritonclient[grpc]==2.50.0" (build/README.md)'
        ) from e
    return model_config_pb2


def read_model_config(path: Path) -> model_config_pb2.ModelConfig:
    """Parse a config.pbtxt strictly (``swish_triton.model_config``); errors are BuildErrors naming the file."""
    try:
        return model_config.read_model_config(path)
    except model_config.ModelConfigError as e:
        raise BuildError(str(e)) from e


def model_io(model: EngineModel, model_repository: Path) -> ModelIO:
    """Read and validate the I/O a model's engine must have from its config.pbtxt."""
    model_config_pb2 = _model_config_module()
    path = Path(model_repository) / model.name / "config.pbtxt"
    if not path.is_file():
        raise BuildError(f"{model.name}: no config at {path}")
    cfg = read_model_config(path)
    problems = []
    if cfg.name != model.name:
        problems.append(f"name is {cfg.name!r}, folder is {model.name!r}")
    if cfg.platform != "tensorrt_plan":
        problems.append(f'platform is {cfg.platform!r}, not "tensorrt_plan"')
    if len(cfg.input) != 1 or len(cfg.output) != 1:
        problems.append(f"has {len(cfg.input)} inputs and {len(cfg.output)} outputs, the engine has 1 and 1")
    if cfg.max_batch_size != ENGINE_PROFILE.max_batch:
        problems.append(
            f"max_batch_size is {cfg.max_batch_size}, the engine profile's max batch is {ENGINE_PROFILE.max_batch}"
        )
    if problems:
        raise BuildError(f"{path}: " + "; ".join(problems))
    inp, out = cfg.input[0], cfg.output[0]
    in_type = model_config_pb2.DataType.Name(inp.data_type)
    out_type = model_config_pb2.DataType.Name(out.data_type)
    if list(inp.dims) != [-1] or list(out.dims) != [-1]:
        problems.append(f"dims are {list(inp.dims)} -> {list(out.dims)}, the engine takes [-1] (a batch of vectors)")
    if in_type != out_type:
        problems.append(f"input is {in_type} but output is {out_type}")
    if in_type != model.data_type:
        problems.append(f"data type is {in_type}, the builder's table says {model.data_type}")
    if in_type not in TRITON_TO_TRT_DTYPE:
        problems.append(f"data type {in_type} is not one of {sorted(TRITON_TO_TRT_DTYPE)}")
    if problems:
        raise BuildError(f"{path}: " + "; ".join(problems))
    return ModelIO(inp.name, out.name, in_type, cfg.max_batch_size)


def profile_record(profile: Profile, input_name: str) -> dict[str, Any]:
    lo, opt, hi = profile.shapes()
    return {"input": input_name, "min": list(lo), "opt": list(opt), "max": list(hi)}


# --------------------------------------------------------------------------------------------------------------------
# Host facts: GPU and TensorRT version, without TensorRT where possible


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"

    @property
    def sm(self) -> str:
        return "sm_" + self.compute_capability.replace(".", "")

    def describe(self) -> str:
        return f"{self.name} ({self.sm})"


def _first_visible_device() -> str:
    """nvidia-smi's id of the device CUDA calls 0 (CUDA_VISIBLE_DEVICES may name an index or a UUID)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible or "0"


def parse_nvidia_smi_gpu(text: str) -> GpuInfo | None:
    """Parse one line of ``nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader``."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    name, sep, cc = line.rpartition(",")
    if not sep or not name.strip() or "." not in cc:
        return None
    return GpuInfo(name.strip(), cc.strip())


def _gpu_from_cuda_python() -> GpuInfo | None:
    try:
        from cuda.bindings import driver
    except ImportError:
        return None
    attr = driver.CUdevice_attribute
    if driver.cuInit(0)[0] != driver.CUresult.CUDA_SUCCESS:
        return None
    err, dev = driver.cuDeviceGet(0)
    if err != driver.CUresult.CUDA_SUCCESS:
        return None
    _, raw_name = driver.cuDeviceGetName(256, dev)
    _, major = driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
    _, minor = driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
    name = bytes(raw_name).split(b"\0", 1)[0].decode(errors="replace").strip()
    return GpuInfo(name, f"{major}.{minor}") if name else None


def _gpu_from_nvidia_smi() -> GpuInfo | None:
    cmd = ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", _first_visible_device()]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi_gpu(done.stdout) if done.returncode == 0 else None


def detect_gpu() -> GpuInfo | None:
    """Name and compute capability of CUDA device 0, from cuda-python's driver API or else nvidia-smi; None if none."""
    try:
        gpu = _gpu_from_cuda_python()
    except Exception:  # a driver/bindings mismatch must not stop the nvidia-smi fallback
        gpu = None
    return gpu or _gpu_from_nvidia_smi()


def tensorrt_version_from_int(value: int) -> str:
    """Decode getInferLibVersion(): major * 10000 + minor * 100 + patch (NV_TENSORRT_VERSION_INT)."""
    return f"{value // 10000}.{value // 100 % 100}.{value % 100}"


def import_tensorrt() -> Any:
    """Return the TensorRT module, or raise BuildError saying why it is unusable.

    ``tensorrt-stubs`` installs a ``tensorrt`` folder of .pyi files only, which Python imports as an empty namespace
    package: a successful ``import tensorrt`` is therefore not enough, the module must have ``Builder``.
    """
    try:
        import tensorrt
    except ImportError as e:
        raise BuildError(f"TensorRT's Python package is not importable ({e}); see build/README.md") from e
    if not hasattr(tensorrt, "Builder"):
        raise BuildError(
            "`import tensorrt` found only type stubs (tensorrt-stubs), not TensorRT itself; "
            "build engines in an NGC TensorRT container or a local TensorRT install (build/README.md)"
        )
    return tensorrt


def tensorrt_available() -> bool:
    try:
        import_tensorrt()
    except BuildError:
        return False
    return True


def _tensorrt_version_from_library() -> str | None:
    names = ["libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so"]
    found = ctypes.util.find_library("nvinfer")
    names += [found] if found else []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        fn = getattr(lib, "getInferLibVersion", None)
        if fn is not None:
            fn.restype = ctypes.c_int32
            return tensorrt_version_from_int(int(fn()))
    return None


def detect_tensorrt_version() -> str | None:
    """TensorRT's version from its Python package, else from libnvinfer itself (a Triton container has no bindings)."""
    try:
        return str(import_tensorrt().__version__)
    except BuildError:
        return _tensorrt_version_from_library()


def same_tensorrt_release(a: str, b: str) -> bool:
    """Plans are tied to a TensorRT release: compare major.minor.patch (the library reports no build number)."""
    return a.split(".")[:3] == b.split(".")[:3]


def short_tensorrt_version(v: str) -> str:
    return ".".join(v.split(".")[:3])


@dataclass(frozen=True)
class HostInfo:
    gpu: GpuInfo | None
    tensorrt_version: str | None

    @classmethod
    def detect(cls) -> HostInfo:
        return cls(detect_gpu(), detect_tensorrt_version())


# --------------------------------------------------------------------------------------------------------------------
# The plugin


def plugin_lib_path(value: str | os.PathLike[str] | None = None) -> Path:
    """--plugin-lib, else $SWISH_PLUGIN_LIB, else .build/plugin/libswish.so."""
    return Path(value or os.environ.get("SWISH_PLUGIN_LIB") or DEFAULT_PLUGIN_LIB)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def plugin_interface(tensorrt_version: str) -> str:
    """IPluginV3 from TensorRT 10 on; IPluginV2DynamicExt before (the plugin library registers both)."""
    return "IPluginV3" if int(tensorrt_version.split(".", maxsplit=1)[0]) >= 10 else "IPluginV2DynamicExt"


def plugin_field_values(spec: PluginSpec, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The plugin fields a network is built with: the spec's defaults, with overrides by name."""
    values = {f.name: f.default for f in spec.fields}
    for name, value in (overrides or {}).items():
        if name not in values:
            raise BuildError(f"{spec.name} has no field {name!r} (fields: {sorted(values)})")
        values[name] = float(value)
    return values


def plugin_record(spec: PluginSpec, lib: Path, tensorrt_version: str, fields: dict[str, float]) -> dict[str, Any]:
    interface = plugin_interface(tensorrt_version)
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "interface": interface,
        "version": spec.version_v3 if interface == "IPluginV3" else spec.version_v2,
        "fields": dict(fields),
        "library": str(lib),
        "sha256": sha256_file(lib) if Path(lib).is_file() else None,
    }


_loaded_plugin_libs: dict[str, Any] = {}


def load_plugin_library(lib: Path, spec: PluginSpec, tensorrt_version: str) -> Any:
    """Make the plugin's creator visible in TensorRT's registry and return it.

    dlopen (RTLD_GLOBAL) runs the library's static REGISTER_TENSORRT_PLUGIN registration, the way Triton's
    ``plugins=`` option and LD_PRELOAD load it; the registry's load_library is the fallback for a library that
    exports the getCreators entry points instead.
    """
    import tensorrt as trt

    registry = trt.get_plugin_registry()
    v3 = plugin_interface(tensorrt_version) == "IPluginV3"
    version = spec.version_v3 if v3 else spec.version_v2

    def lookup() -> Any:
        if v3:
            return registry.get_creator(spec.name, version, spec.namespace)
        return registry.get_plugin_creator(spec.name, version, spec.namespace)

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
            f"{lib} loaded, but TensorRT's registry has no creator {spec.name!r} version {version!r} "
            f"namespace {spec.namespace!r}: plugin and swish_triton/swish_plugin.json disagree"
        )
    return creator


# --------------------------------------------------------------------------------------------------------------------
# Networks and engines (TensorRT needed)


def _trt_dtype(data_type: str) -> trt.DataType:
    import tensorrt as trt

    result: trt.DataType = getattr(trt, TRITON_TO_TRT_DTYPE[data_type])
    return result


def network_flags(tensorrt_version: str) -> int:
    """Strongly typed where TensorRT has the flag (9.x on; always on in 11); explicit batch before TensorRT 10."""
    import tensorrt as trt

    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    if int(tensorrt_version.split(".", maxsplit=1)[0]) < 10 and hasattr(creation, "EXPLICIT_BATCH"):
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    return flags


def populate_network(
    network: trt.INetworkDefinition,
    model: EngineModel,
    io: ModelIO,
    tensorrt_version: str,
    *,
    creator: Any = None,
    fields: dict[str, float] | None = None,
) -> None:
    """Add [batch, length] input -> model's graph -> output to an empty network."""
    import numpy as np
    import tensorrt as trt

    dtype = _trt_dtype(io.data_type)
    x = network.add_input(io.input_name, dtype, trt.Dims2(-1, -1))
    if model.graph is Graph.PLUGIN:
        if creator is None:
            raise BuildError(f"{model.name}: the plugin's creator is needed to build this network")
        spec = load_plugin_spec()
        values = fields if fields is not None else plugin_field_values(spec)
        # The stubs miss pybind's implicit str -> FallbackString conversion that PluginField's name goes through.
        pfc = trt.PluginFieldCollection(
            [
                trt.PluginField(name, np.array([v], dtype=np.float32), trt.PluginFieldType.FLOAT32)  # type: ignore[call-overload]
                for name, v in values.items()
            ]
        )
        if plugin_interface(tensorrt_version) == "IPluginV3":
            plugin = creator.create_plugin(spec.name, pfc, trt.TensorRTPhase.BUILD)
            layer: trt.ILayer = network.add_plugin_v3([x], [], plugin)
        else:
            plugin = creator.create_plugin(spec.name, pfc)
            layer = network.add_plugin_v2([x], plugin)
        if plugin is None:
            raise BuildError(f"{model.name}: {spec.name}'s creator refused the fields {values}")
    elif model.graph is Graph.RELU:
        layer = network.add_activation(x, trt.ActivationType.RELU)
    else:
        beta = plugin_field_values(load_plugin_spec(), fields).get("beta", 1.0)
        scaled = x
        if beta != 1.0:
            np_dtype = np.float16 if io.data_type == "TYPE_FP16" else np.float32
            const = network.add_constant(trt.Dims2(1, 1), trt.Weights(np.array([[beta]], dtype=np_dtype)))
            scaled = network.add_elementwise(x, const.get_output(0), trt.ElementWiseOperation.PROD).get_output(0)
        sig = network.add_activation(scaled, trt.ActivationType.SIGMOID)
        layer = network.add_elementwise(x, sig.get_output(0), trt.ElementWiseOperation.PROD)
    layer.name = f"{model.name}_{model.graph.value}"
    y = layer.get_output(0)
    y.name = io.output_name
    network.mark_output(y)


def _progress_monitor(label: str, stream: Any) -> trt.IProgressMonitor:
    """A monitor that prints the builder's top-level phases, one line each, so long builds show they are alive."""
    import tensorrt as trt

    class LinePerPhase(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._depth: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
            self._depth[phase_name] = depth
            if depth == 0:
                print(f"  [{label}] {phase_name} ({num_steps} steps)", file=stream, flush=True)

        def phase_finish(self, phase_name: str) -> None:
            self._depth.pop(phase_name, None)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True

    return LinePerPhase()


def timing_cache_path(cache_dir: Path, tensorrt_version: str, gpu: GpuInfo | None) -> Path:
    """One timing cache per TensorRT release and GPU architecture: another one's entries would not apply."""
    arch = gpu.sm if gpu else "unknown-gpu"
    return Path(cache_dir) / f"timing-trt{short_tensorrt_version(tensorrt_version)}-{arch}.cache"


def build_serialized_engine(
    model: EngineModel,
    io: ModelIO,
    *,
    plugin_lib: Path | None = None,
    fields: dict[str, float] | None = None,
    timing_cache: Path | None = None,
    profile: Profile = ENGINE_PROFILE,
    verbose: bool = False,
    progress: Any = None,
) -> bytes:
    """Build one model's engine and return the plan's bytes (reading and updating ``timing_cache`` if given)."""
    import_tensorrt()
    import tensorrt as trt

    version = str(trt.__version__)
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    creator = None
    if model.needs_plugin:
        trt.init_libnvinfer_plugins(logger, "")
        creator = load_plugin_library(plugin_lib_path(plugin_lib), load_plugin_spec(), version)

    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(version))
    populate_network(network, model, io, version, creator=creator, fields=fields)

    config = builder.create_builder_config()
    if not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") and io.data_type == "TYPE_FP16":
        # Only before TensorRT 9 (no strong typing): FP16 I/O needs the builder to allow FP16 kernels.
        config.set_flag(getattr(trt.BuilderFlag, "FP16"))  # noqa: B009  (absent from TensorRT 11's enum)
    if progress is not None:
        config.progress_monitor = _progress_monitor(model.name, progress)

    opt_profile = builder.create_optimization_profile()
    lo, opt, hi = profile.shapes()
    opt_profile.set_shape(io.input_name, trt.Dims2(*lo), trt.Dims2(*opt), trt.Dims2(*hi))
    config.add_optimization_profile(opt_profile)

    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # A cache from another device or release: start from an empty one instead of failing the build.
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BuildError(f"{model.name}: TensorRT failed to build the engine (run with -v for its log)")
    if timing_cache is not None:
        _write_atomic(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))


# --------------------------------------------------------------------------------------------------------------------
# Records and staleness (no TensorRT needed)


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


def _write_atomic(path: Path, data: bytes) -> None:
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
    builder_version: int = BUILDER_VERSION


def expected_for(
    model: EngineModel,
    io: ModelIO,
    host: HostInfo,
    plugin_lib: Path,
    fields: dict[str, float] | None = None,
) -> Expected:
    plugin = None
    if model.needs_plugin:
        spec = load_plugin_spec()
        # Without TensorRT here, assume the interface the record's TensorRT would use; the version check covers it.
        plugin = plugin_record(spec, plugin_lib, host.tensorrt_version or "10", plugin_field_values(spec, fields))
    return Expected(
        io.as_record(), profile_record(ENGINE_PROFILE, io.input_name), plugin, host.tensorrt_version, host.gpu
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
    if record.get("profile") != expected.profile:
        reasons.append(f"profile {record.get('profile')} -> {expected.profile}")
    built_plugin = record.get("plugin")
    if (built_plugin is None) != (expected.plugin is None):
        reasons.append("plugin use changed")
    elif built_plugin is not None and expected.plugin is not None:
        for key in ("name", "version", "namespace", "fields"):
            if expected.tensorrt_version is None and key == "version":
                continue  # the interface (and so the version) follows the TensorRT release, unknown here
            if built_plugin.get(key) != expected.plugin.get(key):
                reasons.append(f"plugin {key} {built_plugin.get(key)!r} -> {expected.plugin.get(key)!r}")
        if expected.plugin.get("sha256") and built_plugin.get("sha256") != expected.plugin["sha256"]:
            reasons.append(f"{Path(expected.plugin['library']).name} changed (sha256)")
    return reasons


def make_record(
    model: EngineModel,
    plan: bytes,
    expected: Expected,
    build_seconds: float,
) -> dict[str, Any]:
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
        "profile": expected.profile,
        "plugin": expected.plugin,
        "built_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "build_seconds": round(build_seconds, 3),
        "builder_version": expected.builder_version,
        "builder": {"module": __name__, "python": platform.python_version()},
    }


# --------------------------------------------------------------------------------------------------------------------
# Whole-repository operations


@dataclass
class Outcome:
    model: str
    status: str  # "fresh", "built", "stale", "error"
    message: str


def select_models(names: Iterable[str] | None) -> list[EngineModel]:
    if not names:
        return list(ENGINE_MODELS)
    by_name = {m.name: m for m in ENGINE_MODELS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BuildError(f"unknown model(s) {unknown}; TensorRT models: {list(by_name)}")
    return [by_name[n] for n in names]


def check_models(
    model_repository: Path,
    models: Sequence[EngineModel],
    host: HostInfo,
    plugin_lib: Path,
) -> list[Outcome]:
    """Say, one line a model, whether each plan fits this host and its config (nothing is built)."""
    outcomes = []
    for model in models:
        try:
            io = model_io(model, model_repository)
        except BuildError as e:
            outcomes.append(Outcome(model.name, "error", str(e)))
            continue
        plan = plan_path(model_repository, model.name)
        record = read_record(plan)
        if not plan.is_file():
            outcomes.append(
                Outcome(model.name, "stale", f"{model.name}: no plan at {plan}: build it with `make engines`")
            )
            continue
        if record is not None and (line := host_mismatch(model.name, record, host)):
            outcomes.append(Outcome(model.name, "stale", line))
            continue
        reasons = stale_reasons(record, True, expected_for(model, io, host, plugin_lib))
        if reasons:
            outcomes.append(Outcome(model.name, "stale", f"{model.name}: stale ({'; '.join(reasons)}): {REBUILD_HINT}"))
        else:
            built = record or {}
            gpu = (built.get("gpu") or {}).get("name", "?")
            outcomes.append(
                Outcome(model.name, "fresh", f"{model.name}: OK (TensorRT {built.get('tensorrt_version')}, {gpu})")
            )
    return outcomes


def build_models(
    model_repository: Path,
    models: Sequence[EngineModel],
    *,
    plugin_lib: Path,
    cache_dir: Path,
    force: bool = False,
    fields: dict[str, float] | None = None,
    verbose: bool = False,
    out: Any = sys.stdout,
) -> list[Outcome]:
    """Build every stale plan of ``models`` (all of them with ``force``), writing plan and record side by side."""
    trt = import_tensorrt()
    host = HostInfo(detect_gpu(), str(trt.__version__))
    if host.gpu is None:
        raise BuildError("no CUDA GPU found (cuda-python and nvidia-smi both failed): TensorRT builds on a GPU")
    cache = timing_cache_path(cache_dir, host.tensorrt_version or "", host.gpu)
    outcomes = []
    for i, model in enumerate(models, 1):
        tag = f"[{i}/{len(models)}] {model.name}"
        try:
            io = model_io(model, model_repository)
            plan = plan_path(model_repository, model.name)
            expected = expected_for(model, io, host, plugin_lib, fields)
            record = read_record(plan)
            if record is not None and plan.is_file() and (line := host_mismatch(model.name, record, host)):
                print(line.replace(REBUILD_HINT, "rebuilding"), file=out, flush=True)
            reasons = ["--force"] if force else stale_reasons(record, plan.is_file(), expected)
            if not reasons:
                print(f"{tag}: up to date", file=out, flush=True)
                outcomes.append(Outcome(model.name, "fresh", "up to date"))
                continue
            print(f"{tag}: building ({'; '.join(reasons)})", file=out, flush=True)
            start = time.perf_counter()
            data = build_serialized_engine(
                model, io, plugin_lib=plugin_lib, fields=fields, timing_cache=cache, verbose=verbose, progress=out
            )
            seconds = time.perf_counter() - start
            _write_atomic(plan, data)
            record = make_record(model, data, expected, seconds)
            _write_atomic(record_path(plan), (json.dumps(record, indent=2) + "\n").encode())
            print(f"{tag}: wrote {plan} ({len(data) / 1e6:.2f} MB, {seconds:.1f} s)", file=out, flush=True)
            outcomes.append(Outcome(model.name, "built", str(plan)))
        except BuildError as e:
            print(f"{tag}: {e}", file=out, flush=True)
            outcomes.append(Outcome(model.name, "error", str(e)))
    return outcomes


# --------------------------------------------------------------------------------------------------------------------
# CLI


def _parse_field(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{name}: {value!r} is not a number") from e


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build_engine.py",
        description="Build the TensorRT plans of the model repository (only stale ones), or check them (--check).",
    )
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=f"models to build or check (default: all of {list(ENGINE_MODEL_NAMES)})",
    )
    p.add_argument(
        "--model-repository",
        type=Path,
        default=Path(os.environ.get("SWISH_MODEL_REPOSITORY", DEFAULT_MODEL_REPOSITORY)),
        help="model repository (env SWISH_MODEL_REPOSITORY; default: %(default)s)",
    )
    p.add_argument(
        "--plugin-lib",
        type=Path,
        default=plugin_lib_path(),
        help="libswish.so to load and fingerprint (env SWISH_PLUGIN_LIB; default: %(default)s)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("SWISH_TRT_CACHE_DIR", DEFAULT_CACHE_DIR)),
        help="TensorRT timing caches, one per release and GPU (env SWISH_TRT_CACHE_DIR; default: %(default)s)",
    )
    p.add_argument("--check", action="store_true", help="build nothing: report each plan as OK or why it is stale")
    p.add_argument("--force", action="store_true", help="rebuild even plans that are up to date")
    p.add_argument(
        "--field",
        action="append",
        type=_parse_field,
        default=[],
        metavar="NAME=VALUE",
        help="plugin field for the Swish networks, e.g. beta=1.5 (default: swish_triton/swish_plugin.json's defaults)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="TensorRT's verbose log")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        models = select_models(args.models)
        fields = plugin_field_values(load_plugin_spec(), dict(args.field)) if args.field else None
        if args.check:
            outcomes = check_models(args.model_repository, models, HostInfo.detect(), args.plugin_lib)
            for o in outcomes:
                print(o.message)
            return 0 if all(o.status == "fresh" for o in outcomes) else 1
        outcomes = build_models(
            args.model_repository,
            models,
            plugin_lib=args.plugin_lib,
            cache_dir=args.cache_dir,
            force=args.force,
            fields=fields,
            verbose=args.verbose,
        )
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if all(o.status != "error" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
