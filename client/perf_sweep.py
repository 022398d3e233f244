#!/usr/bin/env python3
"""perf_analyzer concurrency sweeps with Triton's statistics per point: ``swish-perf-sweep`` from a checkout.

    python client/perf_sweep.py -m swish_py -m identity_py -i grpc -i http -c 1 8 32 64 -o results/sweep
    python client/perf_sweep.py -m swish_py --shared-memory none system -b 4 -n 4096 --slo-ms 5

The command lives in ``swish_triton.perf.sweep_cli.main``; ``--help`` explains every option.
Needs the swish-triton package installed (``make venv``, or ``pip install .``); runs as the console script does.
"""

from __future__ import annotations

import sys

from swish_triton.perf.sweep_cli import main

if __name__ == "__main__":
    sys.exit(main())
