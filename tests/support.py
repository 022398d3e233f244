"""Helpers shared by test modules in several folders: where the checkout is, and waiting for a condition."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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
