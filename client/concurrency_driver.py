#!/usr/bin/env python3
"""Keep N requests in flight against a Swish model and validate every response against the float64 reference.

    python client/concurrency_driver.py -u 127.0.0.1:8000 -i http -m swish_py -c 1 8 32 --duration 10
    python client/concurrency_driver.py -u 127.0.0.1:8001 -i grpc -c 16 --count 5000 -o results.csv

Prints throughput and p50/p90/p99 latency per concurrency; writes JSON (.json) or appends CSV rows (-o); exits
non-zero if any request failed or any response differed from the reference.
"""

from __future__ import annotations

from swish_triton.clients.concurrency import prepare_gevent

prepare_gevent()  # before anything else opens sockets or threads

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from swish_triton.clients.concurrency import run_driver, write_results  # noqa: E402
from swish_triton.clients.validation import add_server_arguments, server_url  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_server_arguments(parser)
    parser.add_argument("-m", "--model", default="swish_py")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 8], help="requests in flight")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, default=None, help="seconds per concurrency (default 5)")
    stop.add_argument("--count", type=int, default=None, help="requests per concurrency")
    parser.add_argument("-b", "--batch-size", type=int, default=1)
    parser.add_argument("-n", "--length", type=int, default=1024, help="elements per batch row")
    parser.add_argument("-o", "--output", type=Path, help="results file: .json, or .csv (rows appended)")
    parser.add_argument("-s", "--seed", type=int, default=0)
    args = parser.parse_args(argv)
    duration = args.duration if args.count is None else None
    if duration is None and args.count is None:
        duration = 5.0
    url = server_url(args.url, args.protocol)
    results = []
    for c in args.concurrency:
        result = run_driver(
            url,
            args.protocol,
            args.model,
            c,
            duration_s=duration,
            count=args.count,
            batch_size=args.batch_size,
            length=args.length,
            seed=args.seed,
        )
        print(result.summary(), flush=True)
        if result.first_error:
            print(f"  first problem: {result.first_error}", flush=True)
        results.append(result)
    if args.output:
        write_results(results, args.output)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
