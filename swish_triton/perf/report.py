"""Sweep rows as a sizing user reads them: a Markdown table and a two-panel PNG, both saying what was measured.

The plot's left panel is p99 latency against throughput, each point labelled with its concurrency, with the
latency objective (``slo_ms``) drawn when given: the highest throughput under the line is the capacity at that SLO.
The right panel is throughput against concurrency (where it stops growing, the server is saturated). Approximate
points (windows that never agreed) are drawn hollow and marked ``~`` in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swish_triton.perf.sweep_rows import PointFailure, SweepRow

PROTOCOL_NAMES = {"grpc": "gRPC", "http": "HTTP"}


def _join(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(v for v in values if v))


def describe(rows: Sequence[SweepRow]) -> str:
    """What was measured, in one line: models, protocols, payload, dtype, cores."""
    if not rows:
        return "no points"
    models = _join([r.model for r in rows])
    labels = _join([r.label for r in rows])
    if labels:
        models += f" ({labels})"
    protocols = _join([PROTOCOL_NAMES.get(r.protocol, r.protocol) for r in rows])
    payload = _join([f"{r.batch_size}×{r.length or '?'} {r.dtype or '?'}" for r in rows])
    cores = sorted({r.host_cores for r in rows})
    shared = {r.client_shares_cores for r in rows}
    core_text = "/".join(str(c) for c in cores) + " cores"
    if shared == {"yes"}:
        core_text = f"client and server on the same {core_text}"
    elif shared == {"no"}:
        core_text = f"client on {core_text}, server on another host"
    else:
        core_text = f"client on {core_text}"
    return f"{models} · {protocols} · {payload} · {core_text}"


def markdown_table(rows: Sequence[SweepRow], failures: Sequence[PointFailure] = ()) -> str:
    lines = [f"Measured: {describe(rows)}", ""] if rows else []
    lines += [
        "| model / config | c | infer/s | p50 ms | p90 ms | p99 ms | avg batch | queue µs | compute µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = "~" if r.approximate else ""
        lines.append(
            f"| {r.series} | {r.concurrency} | {mark}{r.infer_per_s:.0f} | {mark}{r.p50_ms:.2f} | "
            f"{mark}{r.p90_ms:.2f} | {mark}{r.p99_ms:.2f} | {r.average_batch:.2f} | {r.queue_us:.0f} | "
            f"{r.compute_us:.0f} |"
        )
    if any(r.approximate for r in rows):
        lines += [
            "",
            "~ approximate: perf_analyzer's windows did not agree within the stability criterion; the "
            "value is the average of 3 windows.",
        ]
    if failures:
        lines += ["", f"Missing points ({len(failures)}):"] + [f"- {f}" for f in failures]
    if rows:
        r = rows[0]
        settings = _join([x.measurement for x in rows])
        lines += [
            "",
            f"GPU: {r.gpu}; Triton {r.triton_version}; TensorRT {r.tensorrt_version}; commit {r.commit}; "
            f"{r.timestamp}; perf_analyzer: {settings or 'unknown settings'}. Queue and compute are Triton's "
            "per-request averages (a batched request is charged its whole batch's compute).",
        ]
    return "\n".join(lines)


def plot(rows: Sequence[SweepRow], path: Path, title: str | None = None, slo_ms: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, tput_ax) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=120)
    for index, series in enumerate(dict.fromkeys(r.series for r in rows)):
        color = f"C{index % 10}"
        points = sorted((r for r in rows if r.series == series), key=lambda r: r.concurrency)
        x = [p.infer_per_s for p in points]
        lat_ax.plot(x, [p.p99_ms for p in points], color=color, label=series, linewidth=1.2)
        tput_ax.plot([p.concurrency for p in points], x, color=color, label=series, linewidth=1.2)
        for p in points:
            face = "none" if p.approximate else color
            lat_ax.scatter([p.infer_per_s], [p.p99_ms], color=color, facecolors=face, zorder=3, s=28)
            tput_ax.scatter([p.concurrency], [p.infer_per_s], color=color, facecolors=face, zorder=3, s=28)
            lat_ax.annotate(
                f"c={p.concurrency}{'~' if p.approximate else ''}",
                (p.infer_per_s, p.p99_ms),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color=color,
            )
    if slo_ms is not None:
        lat_ax.axhline(slo_ms, color="red", linestyle="--", linewidth=1, label=f"p99 SLO {slo_ms:g} ms")
    lat_ax.set_xlabel("throughput (inferences/s)")
    lat_ax.set_ylabel("p99 latency (ms)")
    lat_ax.set_title("p99 latency vs throughput (labels: concurrency)", fontsize=10)
    tput_ax.set_xlabel("concurrency (requests in flight)")
    tput_ax.set_ylabel("throughput (inferences/s)")
    tput_ax.set_title("throughput vs concurrency", fontsize=10)
    concurrencies = sorted({r.concurrency for r in rows})
    if concurrencies and concurrencies[-1] / max(concurrencies[0], 1) >= 8:
        tput_ax.set_xscale("log", base=2)
    if concurrencies:
        tput_ax.set_xticks(concurrencies, [str(c) for c in concurrencies])
    top = max([r.p99_ms for r in rows] + ([slo_ms] if slo_ms is not None else []), default=1.0)
    lat_ax.set_ylim(0, top * 1.15)  # room for the labels above the highest point
    lat_ax.set_xlim(0, max([r.infer_per_s for r in rows], default=1.0) * 1.1)  # room for the labels on the right
    tput_ax.set_ylim(bottom=0)
    for ax in (lat_ax, tput_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    headline = title or "perf_analyzer sweep"
    note = " · hollow/~ = approximate" if any(r.approximate for r in rows) else ""
    fig.suptitle(f"{headline}\n{describe(rows)}{note}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
