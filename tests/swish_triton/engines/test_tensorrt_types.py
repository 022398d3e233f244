"""The engine builder is type-checked against TensorRT's API: mypy of swish_triton/engines/ and build/ against
tensorrt-stubs (build/trt_stubs.py; skipped with the reason when mypy or the stubs are not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

TYPED_FILES = [
    "swish_triton/engines/",
    "build/build_engine.py",
    "build/trt_stubs.py",
]


def test_mypy_against_tensorrt_stubs(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    sys.path.insert(0, str(REPO / "build"))
    try:
        import trt_stubs
    finally:
        sys.path.remove(str(REPO / "build"))
    try:
        trt_stubs.write_stubs()
    except LookupError as e:
        pytest.skip(f"tensorrt-stubs is not installed: {e}")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "build/mypy.ini", "--cache-dir", str(tmp_path), *TYPED_FILES],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
