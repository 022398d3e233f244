#!/usr/bin/env python3
"""Serving benchmark: the Swish Python-backend model against an identity model of the same backend, batching on
and off, 1/2/4 instances, HTTP vs gRPC, system shared memory on and off. One embedded tritonserver serves every
variant side by side; perf_analyzer measures each point; the bars of shared/ANCHORS.md are computed as ratios.

    python bench/serving_bench.py --out results/serving          # make bench
    python bench/serving_bench.py --quick                         # a shorter run

Writes <out>.csv (appended), <out>.md and <out>.png and prints the table and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from swish_triton.model_variants import Variant, write_repository
from swish_triton.perf_sweep import SweepRow, append_csv, markdown_table, plot, run_sweep
from swish_triton.triton_launcher import TritonServer, free_port

REPO = Path(__file__).resolve().parent.parent

VARIANTS = [
    Variant("swish_b2", "swish_py"),
    Variant("swish_nobatch", "swish_py", dynamic_batching=False),
    Variant("swish_b1", "swish_py", instances=1),
    Variant("swish_b4", "swish_py", instances=4),
    Variant("identity_b2", "identity_py"),
]


def point(rows: list[SweepRow], label: str, c: int, protocol: str = "grpc", shm: str = "none") -> SweepRow | None:
    for r in rows:
        if r.label == label and r.concurrency == c and r.protocol == protocol and r.shared_memory == shm:
            return r
    return None


def ratios(rows: list[SweepRow]) -> list[str]:
    lines = []
    for c in (32, 64):
        s, i = point(rows, "swish_b2", c), point(rows, "identity_b2", c)
        if s and i:
            lines.append(f"throughput swish / identity at c={c}: {s.infer_per_s / i.infer_per_s:.2f} (bar >= 0.9)")
    s, n = point(rows, "swish_b2", 32), point(rows, "swish_nobatch", 32)
    if s and n:
        lines.append(f"dynamic batching / none at c=32: {s.infer_per_s / n.infer_per_s:.2f} (bar >= 3)")
    s, i = point(rows, "swish_b2", 1), point(rows, "identity_b2", 1)
    if s and i:
        lines.append(
            f"p50 at c=1 swish / identity: {s.p50_ms / i.p50_ms:.2f} (bar <= 1.2); "
            f"p99 at c=1: swish {s.p99_ms:.2f} ms, identity {i.p99_ms:.2f} ms"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "serving")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--measurement-interval", type=int, default=1500, help="ms per perf_analyzer window")
    parser.add_argument("--quick", action="store_true", help="fewer variants and points (a smoke run)")
    parser.add_argument("--log", type=Path, default=None, help="tritonserver log file")
    args = parser.parse_args(argv)

    variants = VARIANTS[:2] + VARIANTS[-1:] if args.quick else VARIANTS
    concurrency = [1, 8] if args.quick else args.concurrency
    with tempfile.TemporaryDirectory() as tmp:
        repo = write_repository(REPO / "model_repository", Path(tmp) / "repo", variants)
        server = TritonServer(
            repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(), log_path=args.log
        )
        rows: list[SweepRow] = []
        with server:
            common = dict(measurement_ms=args.measurement_interval, max_trials=10, stability_percentage=20)
            for v in variants:
                rows += run_sweep(
                    server.http_url, server.grpc_url, [v.name], ["grpc"], concurrency, label=v.name, **common
                )  # type: ignore[arg-type]
            # Protocol and shared memory, on the main configuration and the identity model.
            for name in ("swish_b2", "identity_b2"):
                rows += run_sweep(server.http_url, server.grpc_url, [name], ["http"], concurrency, label=name, **common)  # type: ignore[arg-type]
                rows += run_sweep(
                    server.http_url,
                    server.grpc_url,
                    [name],
                    ["grpc"],
                    concurrency,
                    shared_memory=["system"],
                    label=name,
                    **common,
                )  # type: ignore[arg-type]
            where = [line for line in server.log_tail(400).splitlines() if "Swish with beta" in line]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    append_csv(rows, args.out.with_suffix(".csv"))
    summary = ratios(rows)
    text = markdown_table(rows) + "\n\n" + "\n".join(f"- {line}" for line in summary) + "\n"
    args.out.with_suffix(".md").write_text(text)
    plot(
        [r for r in rows if r.protocol == "grpc" and r.shared_memory == "none"],
        args.out.with_suffix(".png"),
        "Python backend, gRPC, 1x1024 FP32: throughput vs p99",
    )
    print(text)
    print("\n".join(where[:2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
