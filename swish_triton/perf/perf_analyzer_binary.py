"""Find a perf_analyzer binary that runs on this host.

Where glibc >= 2.38 (Ubuntu 24.04, Debian 13) the PyPI ``perf-analyzer`` package (2.60+) has a working binary.
Elsewhere (Debian 12) pip silently installs a 0.1.0 placeholder without one, and the binary bundled in the
``tritonclient==2.50.0`` wheel (built for glibc 2.34) is used instead, given ``libb64.so.0d`` (the nvidia-pytriton
wheel carries a renamed copy, linked here under its real name) and ``libcudart.so.12`` (``nvidia-cuda-runtime-cu12``).
The binary is always called directly: the PyPI package's console script exits 0 whatever happens.

``python -m swish_triton.perf.perf_analyzer_binary`` prints the binary found and where it came from.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swish_triton import settings
from swish_triton.errors import SwishError
from swish_triton.locations import build_dir


class PerfAnalyzerNotFound(SwishError):
    pass


@dataclass(frozen=True)
class PerfAnalyzer:
    """A runnable perf_analyzer: the binary and the library path it needs."""

    binary: Path
    library_dirs: tuple[Path, ...]
    origin: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = [str(d) for d in self.library_dirs]
        if env.get("LD_LIBRARY_PATH"):
            dirs.append(env["LD_LIBRARY_PATH"])
        if dirs:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs)
        return env

    def run(self, args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own binary and arguments
            [str(self.binary), *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )


def glibc_version() -> tuple[int, ...]:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return (0,)
    return tuple(int(p) for p in version.split("."))


def _site_packages() -> list[Path]:
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path}
    return [Path(p) for p in paths if p and Path(p).is_dir()]


def _pypi_binary() -> Path | None:
    for site in _site_packages():
        candidate = site / "perf_analyzer" / "bin" / "perf_analyzer"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _tritonclient_binary() -> Path | None:
    # The tritonclient 2.50.0 wheel installs perf_analyzer as a script in the environment's bin folder.
    candidate = Path(sysconfig.get_paths()["scripts"]) / "perf_analyzer"
    if candidate.is_file() and candidate.read_bytes()[:4] == b"\x7fELF":
        return candidate
    return None


def _libb64_dir() -> Path | None:
    """A folder holding ``libb64.so.0d``: the system's, or a link to nvidia-pytriton's renamed copy."""
    for system_dir in (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64"), Path("/usr/lib")):
        if (system_dir / "libb64.so.0d").exists():
            return None  # found by the loader without help
    for site in _site_packages():
        copies = sorted((site / "nvidia_pytriton.libs").glob("libb64-*.so.0d"))
        if copies:
            # One folder per copy, in this checkout's build folder: another checkout or environment (another copy)
            # never replaces the link a running perf_analyzer loads from.
            target = copies[0].resolve()
            key = hashlib.sha256(str(target).encode()).hexdigest()[:12]
            link_dir = build_dir() / f"perf-analyzer-libs-{key}"
            link_dir.mkdir(parents=True, exist_ok=True)
            link = link_dir / "libb64.so.0d"
            if not link.exists() or link.resolve() != copies[0].resolve():
                tmp = link_dir / f".libb64.{os.getpid()}"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(copies[0])
                tmp.replace(link)
            return link_dir
    raise PerfAnalyzerNotFound(
        "perf_analyzer needs libb64.so.0d: install nvidia-pytriton (which carries a copy) or, as root, "
        "`apt-get install -y libb64-0d`"
    )


def _cudart_dir() -> Path:
    for site in _site_packages():
        lib = site / "nvidia" / "cuda_runtime" / "lib"
        if (lib / "libcudart.so.12").exists():
            return lib
    raise PerfAnalyzerNotFound("perf_analyzer needs libcudart.so.12: pip install 'nvidia-cuda-runtime-cu12>=12,<13'")


def _unversioned_cudart_dir() -> Path | None:
    """perf_analyzer 2.60 dlopens the unversioned ``libcudart.so`` for its shared-memory options (system shared memory
    too) and aborts without it: where the loader cannot find one (no CUDA toolkit), a folder linking that name to
    ``nvidia-cuda-runtime-cu12``'s ``libcudart.so.12``."""
    search = [Path(d) for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    search += [Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/local/cuda/lib64"), Path("/usr/lib64"), Path("/usr/lib")]
    if any((d / "libcudart.so").exists() for d in search):
        return None  # found by the loader without help
    try:
        runtime = (_cudart_dir() / "libcudart.so.12").resolve()
    except PerfAnalyzerNotFound:
        return None  # perf_analyzer runs without it; only its shared-memory options fail, saying why
    key = hashlib.sha256(str(runtime).encode()).hexdigest()[:12]
    link_dir = build_dir() / f"perf-analyzer-libs-{key}"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "libcudart.so"
    if not link.exists() or link.resolve() != runtime:
        tmp = link_dir / f".libcudart.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(runtime)
        tmp.replace(link)
    return link_dir


def find_perf_analyzer(override: Path | None = None) -> PerfAnalyzer:
    """The perf_analyzer for this host: ``override`` (a command passes ``$PERF_ANALYZER``, read where it starts;
    None reads it through swish_triton.settings), else the installed one. Raises PerfAnalyzerNotFound with the
    install command when there is none."""
    if override is None:
        override = settings.value("PERF_ANALYZER")
    if override:
        return PerfAnalyzer(Path(override), (), "PERF_ANALYZER")
    if glibc_version() >= (2, 38):
        binary = _pypi_binary()
        if binary is not None:
            dirs = [d for d in (_unversioned_cudart_dir(),) if d is not None]
            return PerfAnalyzer(binary, tuple(dirs), "PyPI perf-analyzer")
    binary = _tritonclient_binary()
    if binary is not None:
        dirs = [d for d in (_libb64_dir(), _cudart_dir()) if d is not None]
        return PerfAnalyzer(binary, tuple(dirs), "tritonclient 2.50.0 wheel")
    if glibc_version() >= (2, 38):
        hint = "pip install 'perf-analyzer>=2.60'"
    else:
        hint = "pip install 'tritonclient[http,grpc]==2.50.0' 'nvidia-cuda-runtime-cu12>=12,<13'"
    raise PerfAnalyzerNotFound(f"no perf_analyzer that runs on this host (glibc {glibc_version()}): {hint}")


if __name__ == "__main__":
    found = find_perf_analyzer()
    print(f"{found.binary} ({found.origin})")
