"""Which models of a repository the embedded server loads, and why it skips the others.

A model is skipped when this server has no backend for it (the bundled tritonserver has only the Python backend),
when its config.pbtxt does not parse (the reason names the file and line: ``model_config.read_model_config``), or
when a Python-backend model has no ``<version>/model.py`` (tritonserver 2.51 would otherwise wait for it until the
readiness timeout). The last two are *broken* entries: reported and skipped, or fatal with ``strict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from swish_triton.errors import SwishError
from swish_triton.model_config import ModelConfigError, read_model_config

# platform in config.pbtxt -> the backend that serves it (Triton's own mapping for the platforms we use).
PLATFORM_BACKENDS = {
    "tensorrt_plan": "tensorrt",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
}
BACKEND_NAMES = {"tensorrt": "TensorRT", "python": "Python", "onnxruntime": "ONNX Runtime", "pytorch": "PyTorch"}


class LauncherError(SwishError):
    """The server could not be started (or stopped) as asked; the message says why."""


def model_backend(config: model_config_pb2.ModelConfig) -> str:
    if config.backend:
        return config.backend
    return PLATFORM_BACKENDS.get(config.platform, config.platform or "unknown")


@dataclass(frozen=True)
class ModelPlan:
    """Which models of a repository this server will load, and why the others are skipped."""

    load: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    broken: tuple[tuple[str, str], ...] = ()


def python_model_problem(model_dir: Path, config: model_config_pb2.ModelConfig) -> str | None:
    filename = config.default_model_filename or "model.py"
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        return f"{model_dir}: no version folder (expected {model_dir}/1/{filename})"
    if not any((v / filename).is_file() for v in versions):
        return f"{model_dir}: no {filename} in {', '.join(sorted(v.name for v in versions))}/"
    return None


def plan_models(
    repository: Path, backends: set[str], only: Sequence[str] | None = None, strict: bool = False
) -> ModelPlan:
    load: list[str] = []
    skipped: list[tuple[str, str]] = []
    broken: list[tuple[str, str]] = []
    for model_dir in sorted(p for p in repository.iterdir() if (p / "config.pbtxt").is_file()):
        name = model_dir.name
        if only and name not in only:
            continue
        try:
            config = read_model_config(model_dir)
        except ModelConfigError as exc:
            broken.append((name, str(exc)))
            continue
        backend = model_backend(config)
        if backend not in backends:
            skipped.append((name, f"no {BACKEND_NAMES.get(backend, backend)} backend in this server"))
        elif backend == "python" and (problem := python_model_problem(model_dir, config)):
            broken.append((name, problem))
        else:
            load.append(name)
    missing = set(only or ()) - set(load) - {n for n, _ in skipped + broken}
    if missing:
        raise LauncherError(f"no such model in {repository}: {', '.join(sorted(missing))}")
    if strict and broken:
        raise LauncherError("broken model entries (--strict): " + "; ".join(why for _, why in broken))
    return ModelPlan(tuple(load), tuple(skipped), tuple(broken))
