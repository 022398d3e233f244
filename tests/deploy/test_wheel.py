"""The package works outside a checkout: a wheel built from this tree, installed into a fresh virtual environment,
imports from another folder and finds the plugin's definition (package data).

The wheel is installed with --no-deps; importing the package needs only NumPy, which the fresh environment gets as a
link to this interpreter's copy (nothing else of this environment, in particular not the editable install of the
checkout, is visible there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

from tests.support import REPO

PROBE = """
import json, pathlib, swish_triton
from swish_triton import locations
from swish_triton.plugin_spec import load_plugin_spec
spec = load_plugin_spec()
print(json.dumps({
    "package": swish_triton.__file__,
    "spec": [spec.name, spec.version_v3, [f.name for f in spec.fields]],
    "checkout": str(locations.checkout_root()),
    "ref": float(swish_triton.swish_ref(1.0)),
    "model_code": (pathlib.Path(swish_triton.__file__).parent / "models/python_models.py").is_file(),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel of this tree installed; returns its python."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("swish_triton-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # NumPy alone, linked from this interpreter's site-packages.
    deps = tmp / "deps"
    deps.mkdir()
    numpy_dir = Path(np.__file__).parent
    for entry in numpy_dir.parent.iterdir():
        if entry.name == "numpy" or entry.name.startswith("numpy.libs"):
            (deps / entry.name).symlink_to(entry)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "numpy_only.pth").write_text(str(deps) + "\n")
    return python


def run_outside(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SWISH_"))}
    argv = [str(python), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=env)


def test_installed_package_finds_the_plugin_spec_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    done = run_outside(installed, "-c", PROBE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert not found["package"].startswith(str(REPO)), f"imported the checkout, not the wheel: {found['package']}"
    assert found["spec"] == ["SwishPlugin", "2", ["beta"]]
    assert found["checkout"] == "None"
    assert found["model_code"], "the Python-backend models' code ships in the wheel (model.py files import it)"
    assert found["ref"] == pytest.approx(0.7310585786300049)


def test_installed_console_script_runs_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    done = run_outside(installed.parent / "swish-build-engines", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    unwrapped = "".join(done.stdout.split())  # argparse wraps long defaults
    assert "--check" in done.stdout and str(tmp_path / "model_repository") in unwrapped, done.stdout
