"""The tritonserver of the ``nvidia-pytriton`` wheel: where it is, the backend folder and environment it needs.

The wheel (0.7.0, the newest on PyPI) bundles tritonserver 2.51 (release 24.10) with the Python backend and stubs for
Python 3.8-3.13. The Python-backend stub imports NumPy and the model's packages from the first ``python3`` on PATH.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import sys
import sysconfig
from pathlib import Path

from swish_triton.serving.model_plan import LauncherError


def pytriton_bundle() -> Path:
    """The ``tritonserver`` folder inside the installed nvidia-pytriton wheel (found without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise LauncherError("nvidia-pytriton is not installed: pip install 'nvidia-pytriton==0.7.*'")
    bundle = Path(next(iter(spec.submodule_search_locations))).resolve() / "tritonserver"
    if not (bundle / "bin" / "tritonserver").is_file():
        raise LauncherError(f"no tritonserver binary in {bundle}")
    return bundle


def check_numpy_for_stub() -> None:
    """The stub imports NumPy from this interpreter (first on its PATH). NumPy 1.x and 2.x both serve: the stub's own
    NumPy calls are right only under 1.x, so the models move tensors through DLPack under 2.x
    (swish_triton/models/output_tensor.py)."""
    if importlib.util.find_spec("numpy") is None:
        raise LauncherError(
            f"NumPy is not importable by {sys.executable}, whose environment the Python-backend stub of the bundled "
            "tritonserver imports its packages from: pip install numpy"
        )


def die_with_parent() -> None:
    # Runs in the child before exec: if the Python process that started the server dies, the server gets SIGTERM,
    # so a crashed test run never leaves a tritonserver behind.
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def prepare_backends(bundle: Path, workdir: Path) -> Path:
    """A backend directory whose Python backend runs the stub built for this interpreter."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = bundle / "python_backend_stubs" / py / "triton_python_backend_stub"
    if not stub.is_file():
        raise LauncherError(f"nvidia-pytriton has no Python-backend stub for Python {py} (it has 3.8-3.13)")
    python_dir = workdir / "backends" / "python"
    python_dir.mkdir(parents=True)
    for item in (bundle / "backends" / "python").iterdir():
        if item.is_file():
            (python_dir / item.name).symlink_to(item)
    # A link, not a copy: the stub finds its bundled libraries relative to its real location.
    (python_dir / stub.name).symlink_to(stub)
    return workdir / "backends"


def server_environment() -> dict[str, str]:
    env = dict(os.environ)
    # The Python-backend stub imports numpy and the model's packages from the first python3 on PATH, and
    # links libpython from the interpreter's LIBDIR.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [libdir, env.get("LD_LIBRARY_PATH", "")] if p)
    return env
