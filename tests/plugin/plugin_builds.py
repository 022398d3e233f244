"""Shared helpers of the plugin tests: where TensorRT's headers are, the lean runtime wheels, and one cached CMake build
of the whole plugin per TensorRT header set (in .build/ci/, reused by tests/plugin/test_build.py and
test_tensorrt_runtime.py, so CI compiles each only once).
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

from tests.support import REPO, load_script

PLUGIN = REPO / "plugin"
ARCH = "90-real"  # one architecture keeps the CI compile short; release builds are fat binaries
HEADER_VERSIONS = ("10.16", "11.1")
# The lean runtime each header set is tested in: the same major (plugins built against 11.1 run in 11.4).
LEAN_FOR_HEADERS = {"10.16": "10.16.1.11", "11.1": "11.4.0.106"}


def missing_tools() -> str | None:
    for tool in ("cmake", "nvcc", "readelf", "nm"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


def header_dir(version: str) -> Path | None:
    """The TensorRT `include/` folder of `version`: $SWISH_TENSORRT_HEADERS/<version>/include, else the checkout's
    sibling shared/third_party/tensorrt-include/<version>/include (where CI has them), else
    third_party/tensorrt-<version>/include inside the checkout."""
    candidates = []
    if os.environ.get("SWISH_TENSORRT_HEADERS"):
        candidates.append(Path(os.environ["SWISH_TENSORRT_HEADERS"]) / version / "include")
    candidates.append(REPO.parent / "shared" / "third_party" / "tensorrt-include" / version / "include")
    candidates.append(REPO / "third_party" / f"tensorrt-{version}" / "include")
    return next((c for c in candidates if (c / "NvInfer.h").is_file()), None)


@functools.cache
def fetcher() -> ModuleType:
    return load_script("scripts/fetch_tensorrt_lean.py")


@functools.cache
def lean_runtime(header_version: str) -> tuple[Path | None, str]:
    """(site folder with tensorrt_lean_libs and tensorrt_lean_bindings, "") or (None, why it could not be fetched)."""
    module = fetcher()
    version = LEAN_FOR_HEADERS[header_version]
    try:
        return module.fetch(version), ""
    except module.FetchError as error:
        return None, str(error)


def lean_library(header_version: str) -> Path | None:
    site, _ = lean_runtime(header_version)
    if site is None:
        return None
    return fetcher().lean_library(LEAN_FOR_HEADERS[header_version])


def run(cmd: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}"
    return output


@functools.cache
def plugin_build(header_version: str) -> Path:
    """The whole plugin (libraries, conformance driver, C ABI test and, when the lean runtime could be fetched,
    swish_trt_runtime_test) built with -Werror against `header_version`'s headers, in .build/ci/plugin-trt<version>.
    Incremental across runs; a file lock keeps two test processes from building the same folder at once."""
    include = header_dir(header_version)
    assert include is not None, f"TensorRT {header_version} headers not found"
    lean = lean_library(header_version)
    build_dir = REPO / ".build" / "ci" / f"plugin-trt{header_version}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f".plugin-trt{header_version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(
            [
                "cmake",
                "-S",
                str(PLUGIN),
                "-B",
                str(build_dir),
                f"-DCMAKE_CUDA_ARCHITECTURES={ARCH}",
                "-DSWISH_WERROR=ON",
                "-DSWISH_BUILD_PLUGIN=ON",
                "-DSWISH_BUILD_TESTS=ON",
                "-DSWISH_NVINFER_STUB=ON",
                f"-DTENSORRT_INCLUDE_DIR={include}",
                f"-DSWISH_TENSORRT_LEAN_LIB={lean or ''}",
            ]
        )
        run(["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 2)])
    return build_dir
