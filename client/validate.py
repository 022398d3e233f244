#!/usr/bin/env python3
"""Validate a Swish model served by Triton against the float64 reference, over HTTP or gRPC.

    python client/validate.py -u 127.0.0.1:8000 -i http -m swish_py
    python client/validate.py -u 127.0.0.1:8001 -i grpc -m swish

Checks live -> ready -> model ready -> metadata, sends random inputs at several batch sizes and lengths plus special
values, prints a table and ``PASS: <model>``, or the worst mismatch; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import sys

from swish_triton.clients.validation import add_server_arguments, run_validation, server_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_server_arguments(parser)
    parser.add_argument(
        "-m", "--model", action="append", dest="models", help="model to validate (repeatable; default: swish_py)"
    )
    parser.add_argument("-s", "--seed", type=int, default=0, help="random seed for the inputs")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every request and response")
    args = parser.parse_args(argv)
    url = server_url(args.url, args.protocol)
    failed = 0
    for model in args.models or ["swish_py"]:
        report = run_validation(url, args.protocol, model, seed=args.seed, verbose=args.verbose, log=print)
        print(report.table())
        print(report.summary(), flush=True)
        failed += not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
