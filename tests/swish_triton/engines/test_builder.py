"""The engine builder's command (swish_triton.engines.builder) on a host without TensorRT."""

from __future__ import annotations

import subprocess
import sys

import pytest

from swish_triton.engines import host
from tests.support import REPO


def test_build_without_tensorrt_fails_in_one_clear_line() -> None:
    if host.tensorrt_available():
        pytest.skip("TensorRT is installed here: this test is for hosts without it")
    done = subprocess.run(
        [sys.executable, "-m", "swish_triton.engines.builder", "relu"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "TensorRT" in done.stderr and done.stderr.count("\n") == 1
