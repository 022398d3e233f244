"""The networks and their engines (TensorRT 10 or later needed to run; the rest of the package runs without it).

Every network is strongly typed: an FP16 engine takes FP16 tensors, and nothing depends on ``BuilderFlag.FP16``,
which TensorRT 11 removed. The same code builds with TensorRT 10.x and 11.x.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swish_triton.engines.configs import TRITON_TO_TRT_DTYPE, BuildError, EngineModel, Graph, ModelIO
from swish_triton.engines.host import GpuInfo, import_tensorrt, short_tensorrt_version
from swish_triton.engines.plugin import load_plugin_library, plugin_fields, plugin_lib_path
from swish_triton.engines.records import write_atomic
from swish_triton.limits import ENGINE_PROFILE, Profile
from swish_triton.plugin_spec import load_plugin_spec

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)


def _trt_dtype(data_type: str) -> trt.DataType:
    import tensorrt as trt

    result: trt.DataType = getattr(trt, TRITON_TO_TRT_DTYPE[data_type])
    return result


def network_flags() -> int:
    """Strongly typed (the flag is always on in TensorRT 11, where it may be absent from the enum)."""
    import tensorrt as trt

    creation = trt.NetworkDefinitionCreationFlag
    return 1 << int(creation.STRONGLY_TYPED) if hasattr(creation, "STRONGLY_TYPED") else 0


@dataclass(frozen=True)
class NetworkDescription:
    """What a model's network is built from, known without TensorRT: what ``populate_network`` adds."""

    model: str
    graph: Graph
    data_type: str
    beta: float | None  # the Swish graphs' beta (the config's); None for ReLU
    plugin_fields: dict[str, float] | None  # the plugin's fields (beta among them); None without the plugin


def describe_network(model: EngineModel, io: ModelIO) -> NetworkDescription:
    values = plugin_fields(load_plugin_spec(), io.beta)
    return NetworkDescription(
        model.name,
        model.graph,
        io.data_type,
        values["beta"] if model.computes_swish else None,
        values if model.needs_plugin else None,
    )


def populate_network(
    network: trt.INetworkDefinition,
    model: EngineModel,
    io: ModelIO,
    *,
    creator: Any = None,
) -> None:
    """Add [batch, length] input -> model's graph -> output to an empty network; beta comes from ``io`` (the config)."""
    import numpy as np
    import tensorrt as trt

    description = describe_network(model, io)
    x = network.add_input(io.input_name, _trt_dtype(io.data_type), trt.Dims2(-1, -1))
    if description.plugin_fields is not None:
        spec = load_plugin_spec()
        values = description.plugin_fields
        if creator is None:
            raise BuildError(f"{model.name}: the plugin's creator is needed to build this network")
        # PluginField keeps only a pointer into the array's buffer, not the array: the arrays must outlive
        # create_plugin, or the plugin reads freed memory (a NaN beta then reads back as a valid number).
        arrays = {name: np.array([v], dtype=np.float32) for name, v in values.items()}
        # The stubs miss pybind's implicit str -> FallbackString conversion that PluginField's name goes through.
        pfc = trt.PluginFieldCollection(
            [
                trt.PluginField(name, array, trt.PluginFieldType.FLOAT32)  # type: ignore[call-overload]
                for name, array in arrays.items()
            ]
        )
        plugin = creator.create_plugin(spec.name, pfc, trt.TensorRTPhase.BUILD)
        del arrays  # only now may the field buffers go
        # Checked before add_plugin_v3, whose binding takes IPluginV3& and would raise a TypeError on None.
        if plugin is None:
            raise BuildError(f"{model.name}: {spec.name}'s creator refused the fields {values}")
        layer: trt.ILayer = network.add_plugin_v3([x], [], plugin)
    elif model.graph is Graph.RELU:
        layer = network.add_activation(x, trt.ActivationType.RELU)
    else:
        # describe_network gives every Swish graph a beta: the config's, else the plugin's default (swish_plugin.json).
        beta = description.beta
        if beta is None:
            raise BuildError(f"{model.name}: a Swish network without beta")
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


def _progress_monitor(label: str) -> trt.IProgressMonitor:
    """A monitor that logs the builder's top-level phases, one line each, so long builds show they are alive."""
    import tensorrt as trt

    class LinePerPhase(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._depth: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
            self._depth[phase_name] = depth
            if depth == 0:
                log.info("  [%s] %s (%d steps)", label, phase_name, num_steps)

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
    timing_cache: Path | None = None,
    profile: Profile = ENGINE_PROFILE,
    verbose: bool = False,
    progress: bool = False,
) -> bytes:
    """Build one model's engine and return the plan's bytes (reading and updating ``timing_cache`` if given)."""
    import_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    creator = None
    if model.needs_plugin:
        trt.init_libnvinfer_plugins(logger, "")
        creator = load_plugin_library(plugin_lib_path(plugin_lib), load_plugin_spec())

    builder = trt.Builder(logger)
    network = builder.create_network(network_flags())
    populate_network(network, model, io, creator=creator)

    config = builder.create_builder_config()
    if progress:
        config.progress_monitor = _progress_monitor(model.name)

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
        write_atomic(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))
