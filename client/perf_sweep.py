#!/usr/bin/env python3
"""perf_analyzer concurrency sweeps against a running Triton, with Triton's statistics per point.

    python client/perf_sweep.py -m swish_py -m identity_py -i grpc -i http -c 1 8 32 64 -o results/sweep
    python client/perf_sweep.py -m swish --shared-memory none system -b 4 -n 4096

Appends CSV rows to <out>.csv and writes <out>.md (table) and <out>.png (throughput vs p99). Exits non-zero when
perf_analyzer fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swish_triton.perf.perf_analyzer import PerfAnalyzerNotFound
from swish_triton.perf.sweep import append_csv, markdown_table, plot, run_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    host = os.environ.get("TRITON_HOST", "127.0.0.1")
    parser.add_argument("--http-url", default=os.environ.get("TRITON_HTTP_URL", f"{host}:8000"))
    parser.add_argument("--grpc-url", default=os.environ.get("TRITON_GRPC_URL", f"{host}:8001"))
    parser.add_argument("-m", "--model", action="append", dest="models", help="model (repeatable; default swish_py)")
    parser.add_argument(
        "-i",
        "--protocol",
        action="append",
        dest="protocols",
        choices=["http", "grpc"],
        help="protocol (repeatable; default grpc)",
    )
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--shared-memory", nargs="+", default=["none"], choices=["none", "system", "cuda"])
    parser.add_argument("-b", "--batch-size", type=int, default=1, help="rows per request")
    parser.add_argument("-n", "--length", type=int, default=1024, help="elements per row")
    parser.add_argument("--measurement-interval", type=int, default=2000, help="ms per measurement window")
    parser.add_argument("--stability-percentage", type=int, default=10)
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--label", default="", help="name for this configuration in the table and plot")
    parser.add_argument(
        "--model-repository",
        type=Path,
        default=Path("model_repository"),
        help="where to read the plans' TensorRT version from",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("results/perf_sweep"),
        help="output prefix: <prefix>.csv (appended), .md, .png",
    )
    args = parser.parse_args(argv)
    try:
        rows = run_sweep(
            args.http_url,
            args.grpc_url,
            args.models or ["swish_py"],
            args.protocols or ["grpc"],
            args.concurrency,
            args.shared_memory,
            args.batch_size,
            args.length,
            args.measurement_interval,
            args.stability_percentage,
            args.max_trials,
            args.label,
            args.model_repository,
        )
    except (RuntimeError, PerfAnalyzerNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = args.output
    append_csv(rows, out.with_suffix(".csv"))
    table = markdown_table(rows)
    out.with_suffix(".md").write_text(table + "\n")
    plot(rows, out.with_suffix(".png"))
    print(table)
    print(f"\nwrote {out.with_suffix('.csv')} (appended), {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
