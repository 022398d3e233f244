#!/usr/bin/env python3
"""How close the gevent driver's HTTP latency is to perf_analyzer's, measured side by side on one server.

    python bench/driver_vs_perf_analyzer.py                 # swish_py, HTTP, c=1 and c=8, 1x1024 FP32, 7 pairs
    python bench/driver_vs_perf_analyzer.py -c 1 --pairs 15

Starts the embedded server on free 127.0.0.1 ports, then runs ``swish-concurrency`` and perf_analyzer back to back
(a pair shares the host's load of the moment; which of the two goes first alternates from pair to pair) and prints
each pair's p50, their ratio, the median ratio per concurrency, the host's load per core, and the versions. Both
p50s are of the same thing: the time from sending a request to having its whole answer, on the client. Timings are
for reading, not for asserting: the tests only check that the driver does not measure itself (the 10 ms-per-request
bug of tritonclient's ``async_infer``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from swish_triton.cli_help import HelpFormatter
from swish_triton.locations import default_model_repository
from swish_triton.perf.perf_analyzer import MeasurementSettings, measure_point
from swish_triton.serving.launcher import TritonServer, free_port

DRIVER = Path(__file__).resolve().parent.parent / "client" / "concurrency_driver.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("-m", "--model", default="swish_py", help="model to call")
    parser.add_argument("-n", "--length", type=int, default=1024, help="elements per request")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 8], help="requests in flight")
    parser.add_argument("--pairs", type=int, default=7, help="driver/perf_analyzer pairs per concurrency")
    parser.add_argument("--count", type=int, default=1500, help="requests per driver run")
    parser.add_argument("-u", "--url", help="HOST:PORT of a running server's HTTP endpoint (default: start one)")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0] / cores
    settings = MeasurementSettings(mode="count_windows", request_count=500, stability_percentage=30, max_trials=6)
    ratios: dict[int, float] = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        url = args.url or stack.enter_context(TritonServer(
            default_model_repository(), http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
            models=[args.model],
        )).http_url  # fmt: skip

        def driver_p50(concurrency: int, out: Path) -> float:
            subprocess.run(
                [sys.executable, str(DRIVER), "-u", url, "-i", "http", "-m", args.model,
                 "-c", str(concurrency), "--count", str(args.count), "-n", str(args.length), "-o", str(out)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            return float(json.loads(out.read_text())[0]["p50_ms"])

        def analyzer_p50(concurrency: int) -> float:
            shape = f"INPUT0:{args.length}"
            return measure_point(args.model, url, "http", concurrency, shape, settings=settings).point.p50_ms

        for c in args.concurrency:
            pairs: list[tuple[float, float]] = []
            for i in range(args.pairs):
                out = Path(tmp) / f"driver-c{c}-{i}.json"
                if i % 2:
                    analyzer = analyzer_p50(c)
                    driver = driver_p50(c, out)
                else:
                    driver = driver_p50(c, out)
                    analyzer = analyzer_p50(c)
                pairs.append((driver, analyzer))
                print(f"c={c} pair {i + 1}: driver p50 {driver:.3f} ms, perf_analyzer p50 {analyzer:.3f} ms, "
                      f"ratio {driver / analyzer:.2f}", flush=True)  # fmt: skip
            ratios[c] = statistics.median(d / a for d, a in pairs)
    load = max(load_before, os.getloadavg()[0] / cores)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for c, ratio in ratios.items():
        print(f"median ratio driver/perf_analyzer: {ratio:.2f} ({args.model}, HTTP, c={c}, 1x{args.length}, "
              f"{args.pairs} pairs, {cores} cores shared by client and server, load/core {load:.1f}, "
              f"Python {platform.python_version()}, {when})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
