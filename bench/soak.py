#!/usr/bin/env python3
"""Soak the embedded server: start the launcher, keep N requests in flight for a while, check every answer.

    python bench/soak.py                                  # 5 minutes, c=32, HTTP then gRPC, swish_py
    python bench/soak.py --duration 20 -i grpc -c 16      # a short soak

The launcher runs as its own process (``python -m swish_triton.serving`` on free 127.0.0.1 ports); the
load comes from ``client/concurrency_driver.py`` (gevent, every response compared with ``swish_ref``). Prints one
line per protocol (requests, errors, mismatches, throughput, p50/p99, server memory before and after), appends them
to ``--output`` as CSV rows with the host and software versions, and exits non-zero on any error or mismatch.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swish_triton.cli_help import HelpFormatter  # noqa: E402
from swish_triton.serving import serve_command  # noqa: E402
from swish_triton.serving.launcher import free_port  # noqa: E402


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (launcher, tritonserver, stubs), in MiB."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,rss="], capture_output=True, text=True, check=True).stdout
    rows = [tuple(int(v) for v in line.split()) for line in out.splitlines() if line.strip()]
    children: dict[int, list[int]] = {}
    rss = {}
    for p, pp, r in rows:
        children.setdefault(pp, []).append(p)
        rss[p] = r
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(v) for v in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def start_launcher(model: str, extra: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    urls = {"http": f"127.0.0.1:{free_port()}", "grpc": f"127.0.0.1:{free_port()}"}
    proc = serve_command.start_subprocess(
        REPO / "model_repository",
        model,
        int(urls["http"].split(":")[1]),
        int(urls["grpc"].split(":")[1]),
        *extra,
        cwd=REPO,
    )
    serving, seen = serve_command.read_until_serving(proc)
    if serving:
        return proc, urls
    raise SystemExit("the launcher stopped before serving:\n" + "".join(seen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("-m", "--model", default="swish_py")
    parser.add_argument("-i", "--protocol", nargs="+", choices=["http", "grpc"], default=["http", "grpc"])
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per protocol")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "bench" / "results" / "soak.csv")
    parser.add_argument("--label", default="", help="free text stored with the rows (e.g. the git revision)")
    parser.add_argument("--launcher-arg", action="append", default=[], help="extra launcher argument (repeatable)")
    args = parser.parse_args(argv)

    proc, urls = start_launcher(args.model, args.launcher_arg)
    rows = []
    try:
        for protocol in args.protocol:
            rss_before = tree_rss_mib(proc.pid)
            # The launcher's descendants are tritonserver and the stubs.
            cpu_launcher, cpu_server = cpu_seconds([proc.pid]), cpu_seconds(descendants(proc.pid))
            driver = subprocess.run(
                [
                    sys.executable,
                    str(REPO / "client" / "concurrency_driver.py"),
                    "-u",
                    urls[protocol],
                    "-i",
                    protocol,
                    "-m",
                    args.model,
                    "-c",
                    str(args.concurrency),
                    "--duration",
                    str(args.duration),
                    "-o",
                    str(args.output.with_suffix(f".{protocol}.json")),
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=args.duration + 120,
            )
            rss_after = tree_rss_mib(proc.pid)
            cpu_launcher = cpu_seconds([proc.pid]) - cpu_launcher
            cpu_server = cpu_seconds(descendants(proc.pid)) - cpu_server
            import json

            result = json.loads(args.output.with_suffix(f".{protocol}.json").read_text())[0]
            args.output.with_suffix(f".{protocol}.json").unlink()
            row = {
                "started_at": result["started_at"],
                "label": args.label,
                "host": platform.node(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "model": args.model,
                "protocol": protocol,
                "concurrency": args.concurrency,
                "duration_s": round(result["duration_s"], 1),
                "requests": result["requests"],
                "errors": result["errors"],
                "mismatches": result["mismatches"],
                "requests_per_s": round(result["requests_per_s"], 1),
                "p50_ms": round(result["p50_ms"], 2),
                "p99_ms": round(result["p99_ms"], 2),
                "server_rss_mib_before": round(rss_before, 1),
                "server_rss_mib_after": round(rss_after, 1),
                "launcher_cpu_us_per_request": round(cpu_launcher / max(result["requests"], 1) * 1e6, 1),
                "server_cpu_us_per_request": round(cpu_server / max(result["requests"], 1) * 1e6, 1),
                "first_error": result["first_error"],
            }
            rows.append(row)
            print(
                f"{protocol} c={args.concurrency}: {row['requests']} requests in {row['duration_s']} s "
                f"({row['requests_per_s']}/s), {row['errors']} errors, {row['mismatches']} mismatches, "
                f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, server RSS {row['server_rss_mib_before']} -> "
                f"{row['server_rss_mib_after']} MiB, CPU per request: launcher "
                f"{row['launcher_cpu_us_per_request']} us, "
                f"tritonserver+stubs {row['server_cpu_us_per_request']} us"
                + (f"; first error: {row['first_error']}" if row["first_error"] else ""),
                flush=True,
            )
            if driver.returncode not in (0, 1):
                print(driver.stdout + driver.stderr, file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    new = not args.output.exists()
    with args.output.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"launcher exit status {proc.returncode}; rows appended to {args.output}")
    ok = all(r["errors"] == 0 and r["mismatches"] == 0 and r["requests"] > 0 for r in rows)
    return 0 if ok and proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
