"""The soak benchmark (bench/soak.py): a short run against the embedded server has no errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def test_short_soak_has_no_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--duration", "8", "-c", "8", "-o", str(tmp_path / "s.csv")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors, 0 mismatches" in proc.stdout
