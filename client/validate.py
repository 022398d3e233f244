#!/usr/bin/env python3
"""Validate Swish models served by Triton against the float64 reference: ``swish-validate`` from a checkout.

    python client/validate.py -u 127.0.0.1:8000 -i http -m swish_py
    python client/validate.py -u 127.0.0.1:8001 -i grpc -m swish_py_fp16

The command lives in ``swish_triton.clients.cli.validate_main``; ``--help`` explains every option.
Needs the swish-triton package installed (``make venv``, or ``pip install .``); runs as the console script does.
"""

from __future__ import annotations

import sys

from swish_triton.clients.cli import validate_main

if __name__ == "__main__":
    sys.exit(validate_main())
