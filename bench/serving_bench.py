#!/usr/bin/env python3
"""Serving benchmark: the Swish Python-backend model against an identity model of the same backend, batching on
and off, 1/2/4 instances, HTTP vs gRPC, system shared memory on and off. One embedded tritonserver serves every
variant side by side; each Swish variant is validated against swish_ref first; perf_analyzer measures each point;
the project's serving goals (docs/performance.md) are computed as ratios.

    python bench/serving_bench.py --out results/serving          # make bench
    python bench/serving_bench.py --quick                         # a shorter run

Writes <out>.csv (appended), <out>.md and <out>.png and prints the table and the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from swish_triton.cli_help import HelpFormatter
from swish_triton.clients.validation import run_validation
from swish_triton.perf.sweep import SweepRow, append_csv, markdown_table, plot, run_sweep
from swish_triton.serving.launcher import TritonServer, free_port
from swish_triton.serving.model_variants import Variant, write_repository

REPO = Path(__file__).resolve().parent.parent

# Names say instances (i) and dynamic-batching queue delay in microseconds (d). The shipped swish_py is swish_i2_d0.
VARIANTS = [
    Variant("swish_i2_d0", "swish_py", instances=2, queue_delay_us=0),
    Variant("identity_i2_d0", "identity_py", instances=2, queue_delay_us=0),
    Variant("swish_nobatch", "swish_py", instances=2, dynamic_batching=False),
    Variant("swish_i1_d0", "swish_py", instances=1, queue_delay_us=0),
    Variant("swish_i4_d0", "swish_py", instances=4, queue_delay_us=0),
    Variant("identity_i4_d0", "identity_py", instances=4, queue_delay_us=0),
    # A queue delay waits for fuller batches: it costs latency at low concurrency.
    Variant("swish_i2_d200", "swish_py", instances=2, queue_delay_us=200),
    Variant("identity_i2_d200", "identity_py", instances=2, queue_delay_us=200),
    # Attribution: NumPy instead of the GPU, and an identity model that returns fresh arrays (as any computing
    # model must) instead of views of its inputs.
    Variant("swish_cpu_i2_d0", "swish_py", instances=2, queue_delay_us=0, parameters=(("device", "cpu"),)),
    Variant("identity_copy_i2_d0", "identity_py", instances=2, queue_delay_us=0, parameters=(("copy", "yes"),)),
]
# --profile: every variant logs where its execute() time goes (the Python models' profile_every parameter).
PROFILE = (("profile_every", "2000"),)


def point(rows: list[SweepRow], label: str, c: int, protocol: str = "grpc", shm: str = "none") -> SweepRow | None:
    for r in rows:
        if r.label == label and r.concurrency == c and r.protocol == protocol and r.shared_memory == shm:
            return r
    return None


def ratios(rows: list[SweepRow]) -> list[str]:
    """The serving goals (docs/performance.md), for each configuration measured against its identity twin."""
    lines = []
    for swish, identity in (
        ("swish_i2_d0", "identity_i2_d0"),
        ("swish_i4_d0", "identity_i4_d0"),
        ("swish_i2_d200", "identity_i2_d200"),
        ("swish_i2_d0", "identity_copy_i2_d0"),
    ):
        for c in (32, 64):
            s, i = point(rows, swish, c), point(rows, identity, c)
            if s and i:
                lines.append(
                    f"throughput {swish} / {identity} at c={c}: {s.infer_per_s / i.infer_per_s:.2f} (bar >= 0.9)"
                )
        s, i = point(rows, swish, 1), point(rows, identity, 1)
        if s and i:
            lines.append(
                f"p50 at c=1 {swish} / {identity}: {s.p50_ms / i.p50_ms:.2f} (bar <= 1.2); p99 at c=1: "
                f"{s.p99_ms:.2f} ms vs {i.p99_ms:.2f} ms"
            )
        s, n = point(rows, swish, 32), point(rows, "swish_nobatch", 32)
        if s and n:
            lines.append(f"{swish} / swish_nobatch at c=32: {s.infer_per_s / n.infer_per_s:.2f} (bar >= 3)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "serving")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--measurement-interval", type=int, default=1000, help="ms per perf_analyzer window")
    parser.add_argument("--quick", action="store_true", help="fewer variants and points (a smoke run)")
    parser.add_argument("--log", type=Path, default=None, help="tritonserver log file")
    parser.add_argument("--cuda-shm", action="store_true", help="also sweep with CUDA shared memory (GPU hosts)")
    parser.add_argument("--variants", nargs="+", help="only these variants (default: all)")
    parser.add_argument("--profile", action="store_true", help="models log their execute() phases (server log)")
    parser.add_argument("--no-protocol-sweeps", action="store_true", help="skip the HTTP and shared-memory sweeps")
    args = parser.parse_args(argv)

    wanted = ("swish_i2_d0", "swish_nobatch", "identity_i2_d0") if args.quick else args.variants
    variants = [v for v in VARIANTS if not wanted or v.name in wanted]
    if args.profile:
        variants = [dataclasses.replace(v, parameters=v.parameters + PROFILE) for v in variants]
    concurrency = [1, 8] if args.quick else args.concurrency
    with tempfile.TemporaryDirectory() as tmp:
        repo = write_repository(REPO / "model_repository", Path(tmp) / "repo", variants)
        server = TritonServer(
            repo,
            http_port=free_port(),
            grpc_port=free_port(),
            metrics_port=free_port(),
            log_path=args.log,
            # The shared-memory sweeps register regions: that API is locked by default (docs/security.md).
            open_apis=("shared-memory",),
        )
        rows: list[SweepRow] = []
        failures: list[str] = []

        def sweep(name: str, protocol: str, shm: str = "none") -> None:
            try:
                rows.extend(
                    run_sweep(
                        server.http_url,
                        server.grpc_url,
                        [name],
                        [protocol],
                        concurrency,
                        shared_memory=[shm],
                        label=name,
                        measurement_ms=args.measurement_interval,
                        max_trials=10,
                        stability_percentage=20,
                    )
                )
            except RuntimeError as exc:  # one failed point must not lose the others
                failures.append(f"{name} {protocol} shm={shm}: {str(exc).splitlines()[-1]}")
                print(f"FAILED: {failures[-1]}", flush=True)

        with server:
            # What is measured must be right first: each Swish variant against swish_ref (swish_triton.reference).
            for v in variants:
                if v.base.startswith("swish"):
                    report = run_validation(server.grpc_url, "grpc", v.name)
                    print(report.summary(), flush=True)
                    if not report.ok:
                        failures.append(report.summary())
            for v in variants:
                sweep(v.name, "grpc")
            # Protocol and shared memory, on the main configuration and the identity model.
            for name in () if args.no_protocol_sweeps else ("swish_i2_d0", "identity_i2_d0"):
                sweep(name, "http")
                sweep(name, "grpc", "system")
                if args.cuda_shm:
                    sweep(name, "grpc", "cuda")
            where = [line for line in server.log_tail(400).splitlines() if "Swish with beta" in line]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    append_csv(rows, args.out.with_suffix(".csv"))
    summary = ratios(rows)
    text = markdown_table(rows) + "\n\n" + "\n".join(f"- {line}" for line in summary + failures) + "\n"
    args.out.with_suffix(".md").write_text(text)
    try:
        plot(
            [r for r in rows if r.protocol == "grpc" and r.shared_memory == "none"],
            args.out.with_suffix(".png"),
            "Python backend, gRPC, 1x1024 FP32: throughput vs p99",
        )
    except ImportError as exc:  # no matplotlib: the CSV holds everything, plot it elsewhere
        print(f"no plot ({exc})")
    print(text)
    print("\n".join(where[:2]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
