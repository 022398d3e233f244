"""The repository's TensorRT models and what each engine must match in its ``config.pbtxt`` (no TensorRT needed).

One table (``ENGINE_MODELS``) names the four TensorRT models and the network each holds. A model's input and output
names, its data type and, for the Swish networks, ``beta`` come from its ``config.pbtxt`` (read strictly by
``swish_triton.model_config``); the optimization profile comes from ``limits.ENGINE_PROFILE``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swish_triton import model_config
from swish_triton.errors import SwishError
from swish_triton.limits import ENGINE_PROFILE, Profile
from swish_triton.locations import default_model_repository

if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2

DEFAULT_MODEL_REPOSITORY = default_model_repository()
MODEL_VERSION = "1"

# Triton data types the engines support, with the TensorRT DataType attribute of each.
TRITON_TO_TRT_DTYPE = {"TYPE_FP32": "float32", "TYPE_FP16": "float16", "TYPE_BF16": "bfloat16"}


class BuildError(SwishError):
    """A model cannot be built or checked; the message is meant for the user as it is."""


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

    @property
    def computes_swish(self) -> bool:
        """Whether the network depends on beta (read from the config) or not (ReLU)."""
        return self.graph is not Graph.RELU


ENGINE_MODELS: tuple[EngineModel, ...] = (
    EngineModel("swish", Graph.PLUGIN, "TYPE_FP32"),
    EngineModel("swish_fp16", Graph.PLUGIN, "TYPE_FP16"),
    EngineModel("relu", Graph.RELU, "TYPE_FP32"),
    EngineModel("swish_native", Graph.NATIVE, "TYPE_FP32"),
)
ENGINE_MODEL_NAMES = tuple(m.name for m in ENGINE_MODELS)


def select_models(names: Iterable[str] | None) -> list[EngineModel]:
    """The models named (all of them for none); an unknown name is a BuildError listing the known ones."""
    if not names:
        return list(ENGINE_MODELS)
    by_name = {m.name: m for m in ENGINE_MODELS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BuildError(f"unknown model(s) {unknown}; TensorRT models: {list(by_name)}")
    return [by_name[n] for n in names]


@dataclass(frozen=True)
class ModelIO:
    """What the engine must match in a model's config.pbtxt."""

    input_name: str
    output_name: str
    data_type: str  # Triton's name, e.g. "TYPE_FP32"
    max_batch_size: int
    beta: float | None = None  # the config's beta for the Swish networks; None for ReLU

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
    """Read and validate the I/O (and beta) a model's engine must have from its config.pbtxt."""
    model_config_pb2 = _model_config_module()
    path = Path(model_repository) / model.name / model_config.CONFIG_FILENAME
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
    beta = None
    if model.computes_swish:
        try:
            beta = model_config.model_beta(cfg, str(path))
        except model_config.ModelConfigError as e:
            raise BuildError(str(e)) from e
    return ModelIO(inp.name, out.name, in_type, cfg.max_batch_size, beta)


def profile_record(profile: Profile, input_name: str) -> dict[str, Any]:
    lo, opt, hi = profile.shapes()
    return {"input": input_name, "min": list(lo), "opt": list(opt), "max": list(hi)}
