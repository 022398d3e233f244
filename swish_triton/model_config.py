"""The one reader of Triton ``config.pbtxt`` files, and the model parameters every part of the project shares.

Parsing is strict (Triton's own schema, ``model_config.proto``): an unknown field or a wrong type is an error that
names the file and the line. ``beta`` has its single home here: every Swish model's ``config.pbtxt`` carries
``parameters { key: "beta" ... }`` (TensorRT models included), and the engine builder, its staleness check, the
validation client and the Python models all read it through :func:`model_beta`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from swish_triton.errors import SwishError

if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2

CONFIG_FILENAME = "config.pbtxt"
BETA_PARAMETER = "beta"


class ModelConfigError(SwishError):
    """A config.pbtxt that cannot be read, does not parse, or holds an invalid value; the message names the file."""


def _schema() -> type[model_config_pb2.ModelConfig]:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.ModelConfig


def config_path(model_dir: Path) -> Path:
    return Path(model_dir) / CONFIG_FILENAME


def parse_model_config(text: str, source: str = "<config.pbtxt>") -> model_config_pb2.ModelConfig:
    """Parse config.pbtxt text strictly; errors name ``source`` and the line/column protobuf reports."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, _schema()())
    except text_format.ParseError as exc:
        # protobuf's message starts with "line:column : ..." (or just the text where it has no position).
        raise ModelConfigError(f"{source}:{exc}") from exc


def read_model_config(path: Path) -> model_config_pb2.ModelConfig:
    """Read a model's config: ``path`` is the config.pbtxt itself or the model's folder."""
    path = Path(path)
    if path.is_dir():
        path = config_path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelConfigError(f"{path}: cannot read the model config: {exc.strerror or exc}") from exc
    return parse_model_config(text, str(path))


def string_parameter(config: model_config_pb2.ModelConfig, key: str) -> str | None:
    """The ``string_value`` of parameter ``key``, or None where the config does not set it."""
    if key not in config.parameters:
        return None
    return config.parameters[key].string_value


def parse_beta(text: str | None, source: str = "beta") -> float:
    """beta from its text form; the plugin's default where unset; a clear error unless it is a finite number."""
    if text is None or text.strip() == "":
        from swish_triton.plugin_spec import field_default

        return field_default(BETA_PARAMETER)
    try:
        beta = float(text)
    except ValueError:
        raise ModelConfigError(f"{source}: beta must be a number, got {text!r}") from None
    if not math.isfinite(beta):
        raise ModelConfigError(f"{source}: beta must be finite, got {text!r}")
    return beta


def model_beta(config: model_config_pb2.ModelConfig, source: str | None = None) -> float:
    """The model's beta: its ``beta`` parameter, else the plugin's default (``swish_plugin.json``)."""
    return parse_beta(string_parameter(config, BETA_PARAMETER), f"{source or config.name}: parameter beta")
