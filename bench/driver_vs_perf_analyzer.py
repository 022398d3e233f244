#!/usr/bin/env python3
"""How close the gevent driver's HTTP latency is to perf_analyzer's, measured side by side on one server.

    python bench/driver_vs_perf_analyzer.py                 # swish_py, HTTP, c=1, 1x1024 FP32, 7 pairs

Starts the embedded server on free 127.0.0.1 ports, then runs ``swish-concurrency`` and perf_analyzer back to back
(a pair shares the host's load of the moment) and prints each pair's p50, their ratio, the median ratio, the host's
load per core, and the versions. Timings are for reading, not for asserting: the tests only check that the driver
does not measure itself (the 10 ms-per-request bug of tritonclient's ``async_infer``).
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("-m", "--model", default="swish_py", help="model to call")
    parser.add_argument("-n", "--length", type=int, default=1024, help="elements per request")
    parser.add_argument("--pairs", type=int, default=7, help="driver/perf_analyzer pairs")
    parser.add_argument("--count", type=int, default=1500, help="requests per driver run")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0] / cores
    settings = MeasurementSettings(mode="count_windows", request_count=500, stability_percentage=30, max_trials=6)
    pairs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp, TritonServer(
        default_model_repository(), http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
        models=[args.model],
    ) as server:  # fmt: skip
        for i in range(args.pairs):
            out = Path(tmp) / f"driver{i}.json"
            driver_cmd = [
                sys.executable,
                str(Path(__file__).resolve().parent.parent / "client" / "concurrency_driver.py"),
            ]
            subprocess.run(
                [*driver_cmd, "-u", server.http_url, "-i", "http", "-m", args.model, "-c", "1",
                 "--count", str(args.count), "-n", str(args.length), "-o", str(out)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            driver = json.loads(out.read_text())[0]["p50_ms"]
            analyzer = measure_point(args.model, server.http_url, "http", 1, f"INPUT0:{args.length}", settings=settings)
            pairs.append((driver, analyzer.point.p50_ms))
            print(f"pair {i + 1}: driver p50 {driver:.3f} ms, perf_analyzer p50 {analyzer.point.p50_ms:.3f} ms, "
                  f"ratio {driver / analyzer.point.p50_ms:.2f}", flush=True)  # fmt: skip
    load = max(load_before, os.getloadavg()[0] / cores)
    ratio = statistics.median(d / a for d, a in pairs)
    print(f"median ratio driver/perf_analyzer: {ratio:.2f} ({args.model}, HTTP, c=1, 1x{args.length}, "
          f"{cores} cores shared by client and server, load/core {load:.1f}, Python {platform.python_version()}, "
          f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
