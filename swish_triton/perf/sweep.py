"""perf_analyzer sweeps over models x protocols x concurrencies x options, with Triton's own statistics per point.

Each point is one perf_analyzer run at one concurrency, bracketed by Triton's per-model statistics, so the average
batch the dynamic batcher formed, and the queue and compute time per request, belong to that point alone. Results
are CSV rows (with GPU, Triton and TensorRT versions, commit and timestamp), a Markdown table and a PNG plot of
throughput against p99 latency, one line per model/configuration.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tritonclient.http as httpclient

from swish_triton.locations import checkout_root
from swish_triton.perf.perf_analyzer import concurrency_sweep
from swish_triton.perf.server_stats import batching_stats


@dataclass(frozen=True)
class SweepRow:
    timestamp: str
    label: str
    model: str
    protocol: str
    shared_memory: str
    batch_size: int
    concurrency: int
    infer_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    inference_count: int
    execution_count: int
    average_batch: float
    queue_us: float
    compute_us: float
    gpu: str
    triton_version: str
    tensorrt_version: str
    commit: str

    @property
    def series(self) -> str:
        """One line in the plot and one group in the table."""
        parts = [self.label or self.model, self.protocol]
        if self.shared_memory != "none":
            parts.append(f"{self.shared_memory} shm")
        if self.batch_size != 1:
            parts.append(f"b={self.batch_size}")
        return " ".join(parts)


@dataclass(frozen=True)
class Environment:
    gpu: str
    triton_version: str
    tensorrt_version: str
    commit: str


def gpu_name() -> str:
    if shutil.which("nvidia-smi") is None:
        return "none"
    proc = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True
    )
    first = proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else ""
    return first.replace(", ", " driver ") if first else "none"


def tensorrt_version(model_repository: Path | None = None) -> str:
    """The TensorRT the served plans were built with (their JSON records), else the one importable here."""
    if model_repository is not None:
        for record in sorted(model_repository.glob("*/1/model.plan.json")):
            try:
                return str(json.loads(record.read_text())["tensorrt_version"])
            except (ValueError, KeyError):
                continue
    try:
        import tensorrt

        return str(getattr(tensorrt, "__version__", "none"))
    except ImportError:
        return "none"


def git_commit() -> str:
    if shutil.which("git") is None:
        return "unknown"
    head = subprocess.run(
        ["git", "-C", str(checkout_root() or Path.cwd()), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(checkout_root() or Path.cwd()), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def environment(http_url: str, model_repository: Path | None = None) -> Environment:
    client = httpclient.InferenceServerClient(http_url)
    try:
        triton = str(client.get_server_metadata().get("version", "unknown"))
    finally:
        client.close()
    return Environment(gpu_name(), triton, tensorrt_version(model_repository), git_commit())


def shared_memory_args(kind: str, output_bytes: int) -> list[str]:
    if kind == "none":
        return []
    if kind not in ("system", "cuda"):
        raise ValueError(f"shared memory must be none, system or cuda, not {kind!r}")
    return ["--shared-memory", kind, "--output-shared-memory-size", str(output_bytes)]


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
    stability_percentage: int = 10,
    max_trials: int = 10,
    label: str = "",
    model_repository: Path | None = None,
    progress: Callable[[str], None] | None = print,
) -> list[SweepRow]:
    """Every combination, one perf_analyzer run per point. Raises RuntimeError when perf_analyzer fails."""
    env = environment(http_url, model_repository)
    rows: list[SweepRow] = []
    total = len(models) * len(protocols) * len(shared_memory) * len(concurrencies)
    for model in models:
        for protocol in protocols:
            url = http_url if protocol == "http" else grpc_url
            for shm in shared_memory:
                extra = [
                    f"--stability-percentage={stability_percentage}",
                    f"--max-trials={max_trials}",
                    *shared_memory_args(shm, batch_size * length * 8),
                ]
                for c in concurrencies:
                    before = batching_stats(http_url, model)
                    (point,) = concurrency_sweep(
                        model,
                        url,
                        protocol,
                        (c, c, 1),
                        shape=f"INPUT0:{length}",
                        batch_size=batch_size,
                        measurement_ms=measurement_ms,
                        extra_args=extra,
                    )
                    delta = batching_stats(http_url, model) - before
                    requests = max(delta.inference_count // max(batch_size, 1), 1)
                    row = SweepRow(
                        timestamp=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        label=label,
                        model=model,
                        protocol=protocol,
                        shared_memory=shm,
                        batch_size=batch_size,
                        concurrency=c,
                        infer_per_s=point.throughput,
                        p50_ms=point.p50_ms,
                        p90_ms=point.p90_ms,
                        p99_ms=point.p99_ms,
                        inference_count=delta.inference_count,
                        execution_count=delta.execution_count,
                        average_batch=delta.average_batch,
                        queue_us=delta.queue_ns / requests / 1000,
                        compute_us=delta.compute_infer_ns / max(delta.execution_count, 1) / 1000,
                        **asdict(env),
                    )
                    rows.append(row)
                    if progress:
                        progress(
                            f"[{len(rows)}/{total}] {row.series} c={c}: {row.infer_per_s:.0f} infer/s, "
                            f"p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms, avg batch {row.average_batch:.2f}"
                        )
    return rows


def append_csv(rows: Sequence[SweepRow], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(SweepRow)])
        if new:
            writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def read_csv(path: Path) -> list[SweepRow]:
    types = {f.name: f.type for f in fields(SweepRow)}
    casts: dict[str, Callable[[str], object]] = {"int": int, "float": float, "str": str}
    with open(path, newline="") as f:
        return [SweepRow(**{k: casts[str(types[k])](v) for k, v in row.items()}) for row in csv.DictReader(f)]


def markdown_table(rows: Sequence[SweepRow]) -> str:
    lines = [
        "| model / config | c | infer/s | p50 ms | p90 ms | p99 ms | avg batch | queue µs | compute µs/exec |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.series} | {r.concurrency} | {r.infer_per_s:.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.average_batch:.2f} | {r.queue_us:.0f} | {r.compute_us:.0f} |"
        )
    if rows:
        r = rows[0]
        lines.append("")
        lines.append(
            f"GPU: {r.gpu}; Triton {r.triton_version}; TensorRT {r.tensorrt_version}; commit {r.commit}; {r.timestamp}"
        )
    return "\n".join(lines)


def plot(rows: Sequence[SweepRow], path: Path, title: str = "Throughput vs p99 latency") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for series in dict.fromkeys(r.series for r in rows):
        points = sorted((r for r in rows if r.series == series), key=lambda r: r.concurrency)
        ax.plot([p.infer_per_s for p in points], [p.p99_ms for p in points], marker="o", label=series)
        for p in points:
            ax.annotate(
                f"c={p.concurrency}", (p.infer_per_s, p.p99_ms), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
    ax.set_xlabel("throughput (inferences/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
