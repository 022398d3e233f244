#!/usr/bin/env python3
"""What the checking front costs: the same model served by tritonserver alone (``--no-front``), behind the native
front (the C relay, the default) and behind the Python front, measured one after the other with perf_analyzer in
rounds (the order rotates each round, so drift of a shared host falls on every front alike). Where ``socat`` is
installed, ``relay`` adds the floor of any relay: socat passing bytes to tritonserver and checking nothing.

Per front, protocol and concurrency it prints the median throughput and p50 over the rounds, the ratios to
tritonserver alone, and the front's own CPU time per request (the C relay's process, or this process, where the
Python front's event loop runs). Appends every measurement to ``bench/results/front_cost.csv`` with the host, the
versions and the time.

    python bench/front_cost.py                      # swish_py, 1x1024 FP32, HTTP and gRPC, c=1 and c=8, 3 rounds
    python bench/front_cost.py --rounds 5 --concurrency 1 8 32
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import tritonclient.http as httpclient

from swish_triton.cli_help import HelpFormatter
from swish_triton.perf.perf_analyzer import MeasurementSettings, measure_point
from swish_triton.perf.run_environment import client_cores, environment
from swish_triton.serving.launcher import TritonServer, free_port

REPO = Path(__file__).resolve().parent.parent
FRONTS = {
    "none": {"front": False},
    "native": {"front_kind": "native"},
    "python": {"front_kind": "python"},
    "relay": {"front": False},  # tritonserver alone on private ports, socat on the public ones
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def inference_count(server: TritonServer, model: str) -> int:
    client = httpclient.InferenceServerClient(server.upstream_http_url)
    try:
        return int(client.get_inference_statistics(model)["model_stats"][0]["inference_count"])
    finally:
        client.close()


def front_pid(server: TritonServer) -> int | None:
    """The process whose CPU is the front's: the C relay's, this one for the Python front, none without a front."""
    front = server._front  # noqa: SLF001 - a benchmark looks inside
    if front is None:
        return None
    proc = getattr(front, "_proc", None)
    return proc.pid if proc is not None else os.getpid()


def start_relays(server: TritonServer) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """socat on two fresh ports in front of the server's own; ({protocol: url}, processes)."""
    urls, procs = {}, []
    for protocol, target in (("http", server.http_url), ("grpc", server.grpc_url)):
        port = free_port()
        procs.append(
            subprocess.Popen(  # noqa: S603 - a benchmark's own relay
                ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay", f"TCP:{target},nodelay"]
            )
        )
        urls[protocol] = f"127.0.0.1:{port}"
    time.sleep(0.5)
    return urls, procs


def measure(args: argparse.Namespace, name: str, round_no: int) -> list[dict[str, object]]:
    server = TritonServer(
        REPO / "model_repository",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=[args.model],
        quiet=True,
        **FRONTS[name],  # type: ignore[arg-type]
    )
    rows = []
    settings = MeasurementSettings(window_ms=args.window_ms, stability_percentage=args.stability)
    relays: list[subprocess.Popen[bytes]] = []
    with server:
        pid = front_pid(server)
        urls = {"http": server.http_url, "grpc": server.grpc_url}
        if name == "relay":
            urls, relays = start_relays(server)
        for protocol in args.protocols:
            url = urls[protocol]
            for concurrency in args.concurrency:
                count0, cpu0 = inference_count(server, args.model), cpu_seconds(pid) if pid else 0.0
                measured = measure_point(args.model, url, protocol, concurrency, args.shape, settings=settings)
                count1, cpu1 = inference_count(server, args.model), cpu_seconds(pid) if pid else 0.0
                rows.append(
                    {
                        "front": name,
                        "round": round_no,
                        "protocol": protocol,
                        "concurrency": concurrency,
                        "throughput": round(measured.point.throughput, 1),
                        "p50_ms": measured.point.p50_ms,
                        "p99_ms": measured.point.p99_ms,
                        "stable": measured.stable,
                        "front_cpu_us_per_request": round((cpu1 - cpu0) / max(1, count1 - count0) * 1e6, 1)
                        if pid
                        else 0.0,
                    }
                )
                print(
                    f"  round {round_no} {name:>6} {protocol:>4} c={concurrency:<3} "
                    f"{rows[-1]['throughput']:>8} infer/s  p50 {measured.point.p50_ms:.3f} ms  "
                    f"front CPU {rows[-1]['front_cpu_us_per_request']} us/request",
                    flush=True,
                )
    for relay in relays:  # socat forks a child per connection: end the whole group
        relay.terminate()
        relay.wait()
    subprocess.run(["pkill", "-f", f"TCP:{server.http_url},nodelay|TCP:{server.grpc_url},nodelay"], check=False)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--model", default="swish_py", help="model to serve and measure")
    parser.add_argument("--shape", default="INPUT0:1024", help="perf_analyzer --shape of one request")
    parser.add_argument("--protocols", nargs="+", default=["http", "grpc"], choices=["http", "grpc"], help="protocols")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8], help="concurrency levels")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each measures every front once)")
    parser.add_argument("--window-ms", type=int, default=2000, help="perf_analyzer measurement window")
    parser.add_argument("--stability", type=float, default=20, help="perf_analyzer stability percentage")
    default_fronts = [n for n in FRONTS if n != "relay" or shutil.which("socat")]
    parser.add_argument("--fronts", nargs="+", default=default_fronts, choices=list(FRONTS), help="fronts to compare")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "front_cost.csv", help="CSV (appended)"
    )
    args = parser.parse_args(argv)

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, object]] = []
    env = None
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(args.fronts)
        for name in args.fronts[shift:] + args.fronts[:shift]:
            rows += measure(args, name, round_no)
            time.sleep(1)
    with TritonServer(REPO / "model_repository", http_port=free_port(), grpc_port=free_port(),
                      metrics_port=free_port(), models=[args.model], quiet=True) as server:  # fmt: skip
        env = environment(server.http_url)
    host = f"{client_cores()} cores, load {os.getloadavg()[0]:.2f} at the end; client and server on this host"
    print(f"\n{started}  GPU: {env.gpu}  Triton {env.triton_version}  commit {env.commit}  {host}")
    print(f"{args.model}, {args.shape}, median of {args.rounds} rounds")
    print(f"{'protocol':>8} {'c':>3} | " + " | ".join(f"{n:>24}" for n in args.fronts) + " | ratios to none")
    for protocol in args.protocols:
        for concurrency in args.concurrency:
            med = {}
            for name in args.fronts:
                sel = [
                    r
                    for r in rows
                    if r["front"] == name and r["protocol"] == protocol and r["concurrency"] == concurrency
                ]
                med[name] = (
                    statistics.median(float(r["throughput"]) for r in sel),  # type: ignore[arg-type]
                    statistics.median(float(r["p50_ms"]) for r in sel),  # type: ignore[arg-type]
                    statistics.median(float(r["front_cpu_us_per_request"]) for r in sel),  # type: ignore[arg-type]
                )
            cells = " | ".join(f"{t:>7.0f}/s {p:.3f}ms {cpu:>4.0f}us" for t, p, cpu in med.values())
            ratios = ""
            if "none" in med:
                base_t, base_p, _ = med["none"]
                ratios = "  ".join(
                    f"{n}: thr x{t / base_t:.2f} p50 x{p / base_p:.2f}" for n, (t, p, _) in med.items() if n != "none"
                )
            print(f"{protocol:>8} {concurrency:>3} | {cells} | {ratios}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with open(args.out, "a", newline="") as f:
        fields = ["started", "gpu", "triton", "commit", "cores", "model", "shape", *rows[0].keys()]
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    "started": started,
                    "gpu": env.gpu,
                    "triton": env.triton_version,
                    "commit": env.commit,
                    "cores": client_cores(),
                    "model": args.model,
                    "shape": args.shape,
                    **row,
                }  # fmt: skip
            )
    print(f"rows appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
