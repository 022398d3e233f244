"""Helpers shared by test modules in several folders: where the checkout is, waiting for a condition, running and
importing the checkout's scripts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = REPO / "model_repository"


def wait_for(predicate: Callable[[], object], timeout_s: float, step_s: float = 0.05) -> float | None:
    """Seconds until predicate() held, or None."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if predicate():
            return time.monotonic() - began
        time.sleep(step_s)
    return None


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """This interpreter running `args` (a script of the checkout and its arguments) in the checkout."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def load_script(relative: str) -> ModuleType:
    """A script of the checkout (e.g. "bench/serving_bench.py") imported as a module, without running its main."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
