"""perf_analyzer sweeps over models x protocols x concurrencies x options, with Triton's own statistics per point.

Each point is one perf_analyzer run at one concurrency, bracketed by Triton's per-model statistics, so the average
batch the dynamic batcher formed, and the queue and compute time per request, belong to that point alone.

A sweep never loses or hides work: every finished point is handed to ``on_row`` as it completes (the CLI appends it
to the CSV at once), a point that fails is recorded with its reason and the sweep goes on, and at the end
``SweepIncomplete`` names every missing point. A point whose windows never agree is re-measured over three windows
and kept, flagged ``stable=no`` (``on_unstable="approximate"``), unless the caller asks for ``"fail"``.

Rows carry what was measured (model, protocol, payload length and dtype, batch, concurrency, the client's cores and
whether it shared them with the server), the measurement settings, Triton's view of the point and the versions
(GPU, Triton, TensorRT, commit, timestamp). ``swish_triton.perf.report`` renders them as Markdown and PNG.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from swish_triton.errors import SwishError
from swish_triton.locations import build_dir
from swish_triton.perf.input_data import KINDS, input_data_args
from swish_triton.perf.perf_analyzer import (
    DEFAULT_MAX_RSS_MB,
    MeasurementSettings,
    measure_point,
)
from swish_triton.perf.report import markdown_table, plot  # noqa: F401 - re-exported for existing callers
from swish_triton.perf.run_environment import client_cores, environment, server_is_local
from swish_triton.perf.server_stats import batching_stats, http_client
from swish_triton.perf.sweep_rows import (  # noqa: F401 - COLUMNS and COLUMN_DEFAULTS re-exported
    COLUMN_DEFAULTS,
    COLUMNS,
    PointFailure,
    SweepPointSpec,
    SweepRow,
)

logger = logging.getLogger(__name__)


class SweepIncomplete(SwishError):
    """Some requested points were not measured. ``rows`` holds the finished ones, ``failures`` the rest and why."""

    def __init__(self, rows: Sequence[SweepRow], failures: Sequence[PointFailure]) -> None:
        self.rows = list(rows)
        self.failures = list(failures)
        total = len(self.rows) + len(self.failures)
        names = "; ".join(str(f) for f in self.failures[:3])
        more = f"; and {len(self.failures) - 3} more" if len(self.failures) > 3 else ""
        super().__init__(f"{len(self.failures)} of {total} sweep points missing: {names}{more}")


@dataclass(frozen=True)
class ModelInput:
    name: str
    datatype: str


def model_input(http_url: str, model: str) -> ModelInput:
    with http_client(http_url) as client:
        inputs = client.get_model_metadata(model)["inputs"]
    if len(inputs) != 1:
        raise SwishError(f"{model} has {len(inputs)} inputs; the sweep drives single-input models")
    return ModelInput(inputs[0]["name"], inputs[0]["datatype"])


def shared_memory_args(kind: str, output_bytes: int) -> list[str]:
    if kind == "none":
        return []
    if kind not in ("system", "cuda"):
        raise ValueError(f"shared memory must be none, system or cuda, not {kind!r}")
    return ["--shared-memory", kind, "--output-shared-memory-size", str(output_bytes)]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}" if not isinstance(exc, SwishError) else text[0]


def run_sweep(
    http_url: str,
    grpc_url: str,
    models: Sequence[str],
    protocols: Sequence[str] = ("grpc",),
    concurrencies: Sequence[int] = (1, 2, 4, 8),
    shared_memory: Sequence[str] = ("none",),
    batch_size: int = 1,
    length: int = 1024,
    measurement_ms: int = 2000,
    stability_percentage: float = 10,
    max_trials: int = 10,
    label: str = "",
    model_repository: Path | None = None,
    progress: Callable[[str], None] | None = print,
    *,
    settings: MeasurementSettings | None = None,
    on_unstable: str = "approximate",
    on_row: Callable[[SweepRow], None] | None = None,
    max_rss_mb: float = DEFAULT_MAX_RSS_MB,
    point_timeout_s: float | None = None,
    input_data: str = "random",
) -> list[SweepRow]:
    """Every combination, one perf_analyzer run per point; returns the rows when every point was measured.

    ``settings`` (else time windows of ``measurement_ms`` with ``stability_percentage``/``max_trials``) say how a
    point is measured, ``input_data`` what the input holds (``swish_triton.perf.input_data``). Each finished row goes
    to ``on_row`` at once. A failed point does not stop the sweep; at the end ``SweepIncomplete`` carries the
    finished rows and every missing point with its reason. Ctrl-C ends the sweep the same way, naming the points it
    did not reach.
    """
    settings = settings or MeasurementSettings(
        window_ms=measurement_ms, stability_percentage=stability_percentage, max_trials=max_trials
    )
    env = environment(http_url, model_repository)
    cores = client_cores()
    rows: list[SweepRow] = []
    failures: list[PointFailure] = []
    specs = [
        SweepPointSpec(m, p, shm, c) for m in models for p in protocols for shm in shared_memory for c in concurrencies
    ]
    inputs: dict[str, ModelInput | str] = {}
    for index, spec in enumerate(specs):
        url = http_url if spec.protocol == "http" else grpc_url
        try:
            if spec.model not in inputs:
                try:
                    inputs[spec.model] = model_input(http_url, spec.model)
                except Exception as exc:  # noqa: BLE001 - the model's points fail with this reason
                    inputs[spec.model] = f"no metadata for {spec.model}: {_one_line(exc)}"
            info = inputs[spec.model]
            if isinstance(info, str):
                raise SwishError(info)
            before = batching_stats(http_url, spec.model)
            measured = measure_point(
                spec.model,
                url,
                spec.protocol,
                spec.concurrency,
                shape=f"{info.name}:{length}",
                batch_size=batch_size,
                settings=settings,
                extra_args=[
                    *shared_memory_args(spec.shared_memory, batch_size * length * 8),
                    *input_data_args(input_data, info.name, info.datatype, length, build_dir() / "perf-inputs"),
                ],
                on_unstable=on_unstable,
                max_rss_mb=max_rss_mb,
                timeout=point_timeout_s,
            )
            delta = batching_stats(http_url, spec.model) - before
        except KeyboardInterrupt:
            failures += [PointFailure(s, "not reached: interrupted") for s in specs[index:]]
            break
        except Exception as exc:  # noqa: BLE001 - perf_analyzer, the statistics, the server: the point is lost, not the sweep
            failures.append(PointFailure(spec, _one_line(exc)))
            if progress:
                progress(f"[{index + 1}/{len(specs)}] {spec}: FAILED: {_one_line(exc)}")
            continue
        requests = delta.success_count or max(delta.inference_count // max(batch_size, 1), 1)
        point = measured.point
        row = SweepRow(
            timestamp=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            label=label,
            model=spec.model,
            protocol=spec.protocol,
            shared_memory=spec.shared_memory,
            batch_size=batch_size,
            concurrency=spec.concurrency,
            infer_per_s=point.throughput,
            p50_ms=point.p50_ms,
            p90_ms=point.p90_ms,
            p99_ms=point.p99_ms,
            inference_count=delta.inference_count,
            execution_count=delta.execution_count,
            average_batch=delta.average_batch,
            queue_us=delta.queue_ns / requests / 1000,
            compute_us=delta.compute_infer_ns / requests / 1000,
            **asdict(env),
            length=length,
            dtype=info.datatype,
            host_cores=cores,
            client_shares_cores=server_is_local(url),
            stable="yes" if measured.stable else "no",
            measurement=(settings if measured.stable else settings.approximate()).describe(),
            compute_input_us=delta.compute_input_ns / requests / 1000,
            compute_output_us=delta.compute_output_ns / requests / 1000,
            requests_per_s=point.throughput / max(batch_size, 1),
            input_data=input_data if input_data in KINDS else Path(input_data).name,
        )
        rows.append(row)
        if on_row:
            on_row(row)
        if progress:
            flag = f" (approximate: {measured.note})" if not measured.stable else ""
            progress(
                f"[{index + 1}/{len(specs)}] {row.series} c={spec.concurrency}: {row.infer_per_s:.0f} infer/s, "
                f"p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms, avg batch {row.average_batch:.2f}{flag}"
            )
    if failures:
        raise SweepIncomplete(rows, failures)
    return rows


def _upgrade(row: dict[str, str]) -> dict[str, object]:
    """A row of a file written before ``requests_per_s`` existed: then ``compute_us`` was per execution (a batch);
    convert it to today's per-request figure so that one file holds one meaning per column."""
    out: dict[str, object] = {**COLUMN_DEFAULTS, **row}
    if not row.get("requests_per_s"):
        try:
            batch = max(int(row["batch_size"]), 1)
            requests = max(int(row["inference_count"]) // batch, 1)
            out["compute_us"] = float(row["compute_us"]) * int(row["execution_count"]) / requests
            out["requests_per_s"] = float(row["infer_per_s"]) / batch
        except (KeyError, ValueError):
            out["requests_per_s"] = ""
    return out


def append_csv(rows: Sequence[SweepRow], path: Path) -> None:
    """Append rows (flushed to disk); a file from an older version (other columns) first gets today's header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = COLUMNS
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="") as f:
            old_header = next(csv.reader(f), [])
        if old_header != COLUMNS:
            with open(path, newline="") as f:
                old = list(csv.DictReader(f))
            header = COLUMNS + [c for c in old_header if c not in COLUMNS]
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=header, restval="")
                writer.writeheader()
                writer.writerows(_upgrade(row) for row in old)
            tmp.replace(path)
            logger.info("%s: rewrote its header with the current columns", path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        if new:
            writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
        f.flush()
        os.fsync(f.fileno())


def read_csv(path: Path) -> list[SweepRow]:
    """Rows of a sweep CSV, old or new: columns this version does not know are ignored, missing ones defaulted."""
    types = {f.name: str(f.type) for f in fields(SweepRow)}
    casts: dict[str, Callable[[str], object]] = {"int": int, "float": float, "str": str}
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            # An empty cell of a column that has a default (one an older file lacked) takes the default.
            values = {
                k: casts[types[k]](v)
                for k, v in raw.items()
                if k in types and v is not None and (v != "" or k not in COLUMN_DEFAULTS)
            }
            rows.append(SweepRow(**values))  # type: ignore[arg-type]
    return rows
