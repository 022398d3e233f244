"""The serve command (python -m swish_triton.serving, swish-serve): serves until SIGTERM and exits 0, and its help shows
the defaults but never the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from swish_triton.serving.launcher import free_port, port_is_free
from tests.served import assert_stopped_cleanly, serve_subprocess


def test_cli_serves_until_sigterm_and_exits_zero(tmp_path: Path) -> None:
    http = free_port()
    with serve_subprocess("identity_py", http, free_port()) as (proc, _):
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert_stopped_cleanly(proc, out)
    assert port_is_free("127.0.0.1", http), "the port is free again"


def test_help_shows_the_defaults_and_never_the_key() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "swish_triton.serving", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "SWISH_API_KEY": "do-not-print-this-key-0123"},
        timeout=60,
    )
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "--exit-timeout" in text and "(default: 30)" in text
    assert "--strict" in text and "--api-key" in text and "--open-api" in text
    assert "do-not-print-this-key" not in proc.stdout
