"""Whole-repository operations: check every plan against this host and its config, or build the stale ones.

A model that cannot be checked or built (a bad config, a non-finite beta, a plugin that refuses its fields) gets an
``error`` outcome with a one-line message; the other models are still checked or built.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swish_triton.engines.configs import BuildError, EngineModel, model_io
from swish_triton.engines.host import HostInfo, detect_gpu, import_tensorrt
from swish_triton.engines.networks import build_serialized_engine, timing_cache_path
from swish_triton.engines.records import (
    REBUILD_HINT,
    expected_for,
    host_mismatch,
    make_record,
    plan_path,
    read_record,
    record_path,
    stale_reasons,
    write_atomic,
)

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    model: str
    status: str  # "fresh", "built", "stale", "error"
    message: str


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
            expected = expected_for(model, io, host, plugin_lib)
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
        reasons = stale_reasons(record, True, expected)
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
    verbose: bool = False,
) -> list[Outcome]:
    """Build every stale plan of ``models`` (all of them with ``force``), writing plan and record side by side.

    Progress goes to this module's logger, one line a step. No TensorRT or no GPU is a BuildError (nothing can be
    built); a problem with one model is that model's ``error`` outcome.
    """
    trt = import_tensorrt()
    # The GPU TensorRT builds on: CUDA device 0 in CUDA's order (host.py says why not nvidia-smi's GPU 0).
    host = HostInfo(detect_gpu(), str(trt.__version__))
    if host.gpu is None:
        raise BuildError("no CUDA GPU found (the CUDA driver reports none): TensorRT builds on a GPU")
    cache = timing_cache_path(cache_dir, host.tensorrt_version or "", host.gpu)
    outcomes = []
    for i, model in enumerate(models, 1):
        tag = f"[{i}/{len(models)}] {model.name}"
        try:
            io = model_io(model, model_repository)
            plan = plan_path(model_repository, model.name)
            expected = expected_for(model, io, host, plugin_lib)
            record = read_record(plan)
            if record is not None and plan.is_file() and (line := host_mismatch(model.name, record, host)):
                log.info(line.replace(REBUILD_HINT, "rebuilding"))
            reasons = ["--force"] if force else stale_reasons(record, plan.is_file(), expected)
            if not reasons:
                log.info("%s: up to date", tag)
                outcomes.append(Outcome(model.name, "fresh", "up to date"))
                continue
            log.info("%s: building (%s)", tag, "; ".join(reasons))
            start = time.perf_counter()
            data = build_serialized_engine(
                model, io, plugin_lib=plugin_lib, timing_cache=cache, verbose=verbose, progress=True
            )
            seconds = time.perf_counter() - start
            write_atomic(plan, data)
            record = make_record(model, data, expected, seconds)
            write_atomic(record_path(plan), (json.dumps(record, indent=2) + "\n").encode())
            log.info("%s: wrote %s (%.2f MB, %.1f s)", tag, plan, len(data) / 1e6, seconds)
            outcomes.append(Outcome(model.name, "built", str(plan)))
        except BuildError as e:
            log.error("%s: %s", tag, e)
            outcomes.append(Outcome(model.name, "error", str(e)))
    return outcomes
