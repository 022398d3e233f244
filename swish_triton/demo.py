"""``make demo``: serve the Swish models with the embedded Triton, validate them over HTTP and gRPC, run a short
perf_analyzer concurrency sweep, show that dynamic batching formed batches, stop the server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swish_triton.clients.validation import run_validation
from swish_triton.perf.perf_analyzer import PerfAnalyzerNotFound, concurrency_sweep, find_perf_analyzer, format_sweep
from swish_triton.perf.server_stats import batching_stats
from swish_triton.serving.launcher import DEFAULT_PORTS, LauncherError, TritonServer, free_port, port_is_free

SWISH_MODELS = ("swish_py", "swish_py_fp16")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--sweep-model", default="swish_py")
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--log-file", type=Path, default=Path(".demo/tritonserver.log"))
    args = parser.parse_args(argv)

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
    server = TritonServer(
        args.model_repository,
        host=host,
        http_port=ports["http"],
        grpc_port=ports["grpc"],
        metrics_port=ports["metrics"],
        log_path=args.log_file,
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

        step(f"perf_analyzer concurrency sweep: {args.sweep_model}, gRPC, 1x1024 FP32, c=1..{args.max_concurrency}")
        before = batching_stats(server.http_url, args.sweep_model)
        points = concurrency_sweep(args.sweep_model, server.grpc_url, "grpc", (1, args.max_concurrency, 1))
        after = batching_stats(server.http_url, args.sweep_model)
        print(format_sweep(points))
        delta = after - before
        print(
            f"\nDynamic batching during the sweep: {delta.inference_count} inferences in "
            f"{delta.execution_count} executions (average batch {delta.average_batch:.2f})"
        )
    except (LauncherError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        failures += 1
    finally:
        step("Stopping the server")
        server.stop()
    print("\nDemo finished: all checks passed." if not failures else f"\nDemo finished with {failures} failure(s).")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
