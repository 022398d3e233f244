"""``swish-perf-sweep``: perf_analyzer sweeps against a running Triton, written point by point.

Every finished point is appended to ``<prefix>.csv`` as it completes; at the end ``<prefix>.md`` and ``<prefix>.png``
are rendered from the points of this run that completed. If any requested point is missing the command exits 1
and names each missing point and why. Same conventions as the other clients (``swish_triton.clients.cli``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from swish_triton import settings
from swish_triton.clients.cli import (
    EXIT_FAILED,
    EXIT_OK,
    PROTOCOL_NAMES,
    PROTOCOLS,
    check_reachable,
    default_url,
    make_parser,
    parse_urls,
    run_cli,
    url_help,
)

DESCRIPTION = """\
perf_analyzer concurrency sweeps against a running Triton, one perf_analyzer run per point, with Triton's own
statistics (average batch, queue and compute time) per point. Finished points are appended to <prefix>.csv as they
complete; <prefix>.md and <prefix>.png (p99 vs throughput with concurrency labels and the --slo-ms line, and
throughput vs concurrency) are rendered at the end. A missing point fails the command (exit 1), naming it and why.

How a point is measured: windows of --measurement-interval ms (or of --measurement-request-count requests with
--measurement-mode count_windows) until the last 3 agree within --stability-percentage, at most --max-trials
windows. A point that never agrees is re-measured over 3 windows and kept as approximate (stable=no in the CSV,
~ in the table, hollow in the plot); --on-unstable fail makes it a missing point instead. perf_analyzer is killed
when it passes --max-client-memory-mb or its time budget (--point-timeout).

  swish-perf-sweep -m swish_py -m identity_py -i grpc -i http -c 1 8 32 64 -o results/sweep
  swish-perf-sweep -u grpc=10.0.0.5:8001 -u http=10.0.0.5:8000 -m swish_py -c 1 4 16 64 --slo-ms 5"""


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument(
        "-u",
        "--url",
        action="append",
        metavar="URL",
        help=url_help("each -i protocol; HTTP is always used for Triton's statistics", environ),
    )
    parser.add_argument("--http-url", help=argparse.SUPPRESS)  # before the -u convention; kept for old scripts
    parser.add_argument("--grpc-url", help=argparse.SUPPRESS)
    parser.add_argument(
        "-i",
        "--protocol",
        action="append",
        dest="protocols",
        choices=PROTOCOLS,
        help="protocol perf_analyzer drives, repeatable (default: grpc)",
    )
    parser.add_argument(
        "-m", "--model", action="append", dest="models", metavar="MODEL", help="model, repeatable (default: swish_py)"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, nargs="+", default=[1, 2, 4, 8], metavar="N", help="requests in flight"
    )
    parser.add_argument(
        "--shared-memory",
        nargs="+",
        default=["none"],
        choices=["none", "system", "cuda"],
        help="how tensors travel: in the request, or through system/CUDA shared memory (one series each)",
    )
    parser.add_argument(
        "--input-data",
        default="random",
        metavar="KIND",
        help="what the input holds: random (perf_analyzer's random bytes), zero, normal (N(0, 1) values, like "
        "activations), or the path of a perf_analyzer input file",
    )
    parser.add_argument("-b", "--batch-size", type=int, default=1, help="rows per request")
    parser.add_argument("-n", "--length", type=int, default=1024, help="elements per row (the payload length)")
    parser.add_argument(
        "--measurement-mode",
        choices=["time_windows", "count_windows"],
        default="time_windows",
        help="windows of a fixed time, or of a minimum number of requests",
    )
    parser.add_argument("--measurement-interval", type=int, default=1000, help="ms per window (time_windows)")
    parser.add_argument(
        "--measurement-request-count", type=int, default=200, help="requests per window (count_windows)"
    )
    parser.add_argument(
        "--stability-percentage",
        type=float,
        default=10,
        help="the last 3 windows must agree within this percentage in throughput and latency",
    )
    parser.add_argument("--max-trials", type=int, default=6, help="windows before a point counts as unstable (>= 3)")
    parser.add_argument(
        "--on-unstable",
        choices=["approximate", "fail"],
        default="approximate",
        help="an unstable point: re-measure over 3 windows and flag it, or count it as missing",
    )
    parser.add_argument(
        "--max-client-memory-mb",
        type=float,
        default=2048,
        help="kill perf_analyzer when its resident memory passes this (it is then a missing point)",
    )
    parser.add_argument(
        "--point-timeout",
        type=float,
        default=None,
        help="seconds before perf_analyzer is killed at one point (default: from the window settings)",
    )
    parser.add_argument("--label", default="", help="name for this configuration in the table and plot")
    parser.add_argument("--slo-ms", type=float, default=None, help="p99 latency objective, drawn on the plot")
    parser.add_argument("--title", default=None, help="plot headline (what was measured is always added)")
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
        help="output prefix: <prefix>.csv (appended point by point), <prefix>.md, <prefix>.png",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log perf_analyzer retries and watchdog actions")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    environ = settings.environment()
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    if any(c < 1 for c in args.concurrency) or args.batch_size < 1 or args.length < 1:
        parser.error("concurrency, batch size and length must be at least 1")
    if args.max_trials < 3:
        parser.error("--max-trials must be at least 3 (stability compares the last 3 windows)")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")

    def body() -> int:
        from swish_triton.perf.perf_analyzer import MeasurementSettings
        from swish_triton.perf.perf_analyzer_binary import find_perf_analyzer
        from swish_triton.perf.report import markdown_table, plot
        from swish_triton.perf.sweep import SweepIncomplete, append_csv, run_sweep

        protocols = list(dict.fromkeys(args.protocols or ["grpc"]))
        url_values = list(args.url or [])
        url_values += [f"http={args.http_url}"] if args.http_url else []
        url_values += [f"grpc={args.grpc_url}"] if args.grpc_url else []
        urls = parse_urls(url_values, [*protocols, *(["http"] if "http" not in protocols else [])], environ)
        for protocol, (url, source) in urls.items():
            check_reachable(url, protocol, source)
            print(f"{PROTOCOL_NAMES[protocol]}: {url} ({source})", flush=True)
        pa = find_perf_analyzer(settings.value("PERF_ANALYZER", environ))
        print(f"perf_analyzer: {pa.binary} ({pa.origin})", flush=True)
        measurement = MeasurementSettings(
            mode=args.measurement_mode,
            window_ms=args.measurement_interval,
            request_count=args.measurement_request_count,
            stability_percentage=args.stability_percentage,
            max_trials=args.max_trials,
        )
        csv_path, md_path, png_path = (args.output.with_suffix(s) for s in (".csv", ".md", ".png"))
        failures = []
        try:
            rows = run_sweep(
                urls["http"][0],
                urls["grpc"][0] if "grpc" in urls else default_url("grpc", environ)[0],
                args.models or ["swish_py"],
                protocols,
                args.concurrency,
                args.shared_memory,
                args.batch_size,
                args.length,
                label=args.label,
                model_repository=args.model_repository,
                settings=measurement,
                on_unstable=args.on_unstable,
                on_row=lambda row: append_csv([row], csv_path),
                max_rss_mb=args.max_client_memory_mb,
                point_timeout_s=args.point_timeout,
                input_data=args.input_data,
            )
        except SweepIncomplete as exc:
            rows, failures = exc.rows, exc.failures
        table = markdown_table(rows, failures)
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(table + "\n")
        written = [f"{csv_path} (appended)" if rows else "", str(md_path)]
        if rows:
            plot(rows, png_path, title=args.title, slo_ms=args.slo_ms)
            written.append(str(png_path))
        print(table)
        print(f"\nwrote {', '.join(w for w in written if w)}", flush=True)
        approximate = [r for r in rows if r.approximate]
        if approximate:
            names = ", ".join(f"{r.series} c={r.concurrency}" for r in approximate)
            print(f"approximate points ({len(approximate)}): {names}")
        if failures:
            total = len(rows) + len(failures)
            print(f"error: {len(failures)} of {total} sweep points missing:", file=sys.stderr)
            for failure in failures:
                print(f"  {failure}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
