"""The Docker deployment's files, shared by the tests of tests/deploy/: their paths and the parsed compose.yaml."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

COMPOSE_FILE = REPO / "compose.yaml"
COMPOSE_CPU_FILE = REPO / "compose.cpu.yaml"
TRITON_ENTRYPOINT = REPO / "docker" / "triton-entrypoint.sh"
ENGINES_ENTRYPOINT = REPO / "docker" / "engines-entrypoint.sh"


def _rel(path: Path) -> str:
    """The path relative to the checkout (test ids, messages)."""
    return str(path.relative_to(REPO))


@cache
def compose_document() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install pyyaml")
    return yaml.safe_load(COMPOSE_FILE.read_text())
