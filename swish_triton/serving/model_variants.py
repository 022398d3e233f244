"""Model-repository variants for benchmarks: the same model under another name with batching, instance count or
device changed, written to a scratch repository so that the checked-in configs stay the single source."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from swish_triton.model_config import read_model_config


@dataclass(frozen=True)
class Variant:
    name: str
    base: str
    dynamic_batching: bool = True
    instances: int | None = None
    queue_delay_us: int | None = None
    kind: str | None = None  # instance_group kind, e.g. "KIND_CPU"
    parameters: tuple[tuple[str, str], ...] = ()


def write_variant(source_repository: Path, target_repository: Path, variant: Variant) -> Path:
    """Copy ``variant.base`` to ``target_repository/variant.name`` with the variant's config changes."""
    source = source_repository / variant.base
    target = target_repository / variant.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    config = read_model_config(source)
    config.name = variant.name
    if not variant.dynamic_batching:
        config.ClearField("dynamic_batching")
    elif variant.queue_delay_us is not None:
        config.dynamic_batching.max_queue_delay_microseconds = variant.queue_delay_us
    for group in config.instance_group:
        if variant.instances is not None:
            group.count = variant.instances
        if variant.kind is not None:
            group.kind = model_config_pb2.ModelInstanceGroup.Kind.Value(variant.kind)
    for key, value in variant.parameters:
        config.parameters[key].CopyFrom(model_config_pb2.ModelParameter(string_value=value))
    (target / "config.pbtxt").write_text(text_format.MessageToString(config))
    return target


def write_repository(source_repository: Path, target_repository: Path, variants: list[Variant]) -> Path:
    target_repository.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        write_variant(source_repository, target_repository, variant)
    return target_repository
