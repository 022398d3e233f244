"""``make demo``: serve the Swish models with the embedded Triton, validate them over HTTP and gRPC, run a short
perf_analyzer concurrency sweep, show that dynamic batching formed batches, stop the server.

The sweep is one perf_analyzer run per concurrency level, so every level is either measured or named as missing.
On a small host, where client and server share a couple of cores, a level whose windows never agree is measured
over three windows and reported as approximate: that is a property of the host, not a failure of the demo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swish_triton.cli_help import HelpFormatter
from swish_triton.clients.validation import run_validation
from swish_triton.perf.perf_analyzer import MeasurementSettings
from swish_triton.perf.perf_analyzer_binary import PerfAnalyzerNotFound, find_perf_analyzer
from swish_triton.perf.report import markdown_table, plot
from swish_triton.perf.sweep import SweepIncomplete, SweepRow, append_csv, run_sweep
from swish_triton.serving.launcher import DEFAULT_PORTS, LauncherError, TritonServer, free_port, port_is_free

SWISH_MODELS = ("swish_py", "swish_py_fp16")
# 1 s windows, the last 3 within 15%, at most 6: a level settles in 3-6 s or is re-measured as approximate (3 s).
DEMO_SETTINGS = MeasurementSettings(window_ms=1000, stability_percentage=15, max_trials=6)


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def choose_ports(host: str) -> dict[str, int]:
    """Triton's usual ports when they are free, otherwise free ones (the demo must not fail on a busy machine)."""
    ports = {}
    for name, port in DEFAULT_PORTS.items():
        ports[name] = port if port_is_free(host, port) else free_port(host)
        if ports[name] != port:
            print(f"port {port} is taken: using {ports[name]} for {name}")
    return ports


def sweep(server: TritonServer, model: str, max_concurrency: int, out_dir: Path) -> int:
    """The demo's sweep; returns the number of missing levels (approximate levels are reported, not counted)."""
    prefix = out_dir / "sweep"
    csv_path = prefix.with_suffix(".csv")
    csv_path.unlink(missing_ok=True)  # this run's points only
    levels = list(range(1, max_concurrency + 1))
    rows: list[SweepRow]
    failures = []
    try:
        rows = run_sweep(
            server.http_url,
            server.grpc_url,
            [model],
            ["grpc"],
            levels,
            settings=DEMO_SETTINGS,
            on_row=lambda row: append_csv([row], csv_path),
        )
    except SweepIncomplete as exc:
        rows, failures = exc.rows, exc.failures
    print()
    print(markdown_table(rows, failures))
    prefix.with_suffix(".md").write_text(markdown_table(rows, failures) + "\n")
    if rows:
        plot(rows, prefix.with_suffix(".png"), title=f"make demo: {model} sweep")
    print(f"\nwrote {csv_path}, {prefix.with_suffix('.md')}" + (f", {prefix.with_suffix('.png')}" if rows else ""))
    measured = sorted(r.concurrency for r in rows)
    print(f"levels measured: {len(measured)} of {len(levels)} (c={','.join(map(str, measured)) or 'none'})")
    approximate = [r.concurrency for r in rows if r.approximate]
    if approximate:
        print(
            f"approximate levels (windows did not agree within {DEMO_SETTINGS.stability_percentage:g}%; the value is "
            f"3 windows' average; expected where client and server share {rows[0].host_cores} cores): "
            f"c={','.join(map(str, approximate))}"
        )
    for failure in failures:
        print(f"error: missing {failure}", file=sys.stderr)
    inferences = sum(r.inference_count for r in rows)
    executions = sum(r.execution_count for r in rows)
    if executions:
        print(
            f"\nDynamic batching during the sweep: {inferences} inferences in {executions} executions "
            f"(average batch {inferences / executions:.2f})"
        )
    return len(failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"), help="models to serve")
    parser.add_argument("--sweep-model", default="swish_py", help="model the perf_analyzer sweep drives")
    parser.add_argument("--max-concurrency", type=int, default=8, help="the sweep measures c=1..this")
    parser.add_argument("--output-dir", type=Path, default=Path(".demo"), help="server log and sweep CSV/Markdown/PNG")
    parser.add_argument(
        "--log-file", type=Path, default=None, help="server log (default: <output-dir>/tritonserver.log)"
    )
    args = parser.parse_args(argv)
    if args.max_concurrency < 1:
        parser.error("--max-concurrency must be at least 1")

    host = "127.0.0.1"
    step("Finding perf_analyzer")
    try:
        pa = find_perf_analyzer()
    except PerfAnalyzerNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{pa.binary} ({pa.origin})")

    step("Starting the embedded tritonserver (nvidia-pytriton's build, Python backend)")
    ports = choose_ports(host)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    server = TritonServer(
        args.model_repository,
        host=host,
        http_port=ports["http"],
        grpc_port=ports["grpc"],
        metrics_port=ports["metrics"],
        log_path=args.log_file or args.output_dir / "tritonserver.log",
    )
    failures = 0
    try:
        server.start()
        assert server.plan is not None
        models = [m for m in SWISH_MODELS if m in server.plan.load]
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            step(f"Validating {', '.join(models)} over {protocol.upper()} against the float64 reference")
            for model in models:
                report = run_validation(url, protocol, model, log=print)
                print(report.table())
                print(report.summary(), flush=True)
                failures += not report.ok

        step(
            f"perf_analyzer concurrency sweep: {args.sweep_model}, gRPC, 1x1024, c=1..{args.max_concurrency} "
            f"(one run per level; {DEMO_SETTINGS.describe()})"
        )
        failures += sweep(server, args.sweep_model, args.max_concurrency, args.output_dir)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        failures += 1
    finally:
        step("Stopping the server")
        server.stop()
    print("\nDemo finished: all checks passed." if not failures else f"\nDemo finished with {failures} failure(s).")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
