#!/usr/bin/env python3
"""Keep N requests in flight and check every response against the float64 reference: ``swish-concurrency``.

    python client/concurrency_driver.py -u 127.0.0.1:8001 -i grpc -m swish_py -c 1 8 32 --duration 10
    python client/concurrency_driver.py -u 127.0.0.1:8000 -i http -c 16 --count 5000 -o results/driver.csv

The command lives in ``swish_triton.clients.cli.concurrency_main`` (it patches the standard library for gevent
before anything else); ``--help`` explains every option.
Needs the swish-triton package installed (``make venv``, or ``pip install .``); runs as the console script does.
"""

from __future__ import annotations

import sys

from swish_triton.clients.cli import concurrency_main

if __name__ == "__main__":
    sys.exit(concurrency_main())
