"""The Swish plugin inside real TensorRT, on a machine without a GPU: NVIDIA's TensorRT lean runtime from PyPI
(`tensorrt-lean-cu13-libs` / `-bindings`, fetched once by scripts/fetch_tensorrt_lean.py into a cache), for two
TensorRT majors (10.16 headers in the 10.16.1 runtime, 11.1 headers in the 11.4 runtime).

For each: the whole plugin is built against that header set (tests/plugin/plugin_builds.py, cached in .build/ci/); the
loadable library is checked to be built like TensorRT's own libnvinfer_vc_plugin.so; the C++ driver
swish_trt_runtime_test (linked against libnvinfer_lean) loads both libraries into TensorRT's global plugin registry
and creates, serializes, refuses corrupted input, deregisters and reloads (plugin/tests/trtRuntimeTest.cpp); and the
Python bindings do what the README shows (plugin/tests/trt_python_check.py).

libswish.so records DT_NEEDED libnvinfer.so.<major> (what LD_PRELOAD and Triton need), and the lean runtime ships only
libnvinfer_lean.so.<major>: for libswish.so alone the tests put a symlink libnvinfer.so.<major> ->
libnvinfer_lean.so.<major> in a temporary folder on LD_LIBRARY_PATH. The loadable library needs none, and is also run
without it. Skips only where the wheels cannot be fetched (or nvcc/cmake/the headers are missing here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin.plugin_builds import (
    HEADER_VERSIONS,
    LEAN_FOR_HEADERS,
    REPO,
    header_dir,
    lean_runtime,
    missing_tools,
    plugin_build,
    run,
)

pytestmark = pytest.mark.slow


class Runtime:
    """One TensorRT major: the build, the unpacked lean wheels, and the symlink folder for libswish.so."""

    def __init__(self, headers: str, build: Path, site: Path, symlinks: Path) -> None:
        self.headers = headers
        self.major = headers.split(".", maxsplit=1)[0]
        self.build = build
        self.site = site
        self.symlinks = symlinks
        self.lean = site / "tensorrt_lean_libs" / f"libnvinfer_lean.so.{self.major}"

    def env(self, with_symlink: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH")}
        if with_symlink:
            env["LD_LIBRARY_PATH"] = str(self.symlinks)
        return env


@pytest.fixture(scope="module", params=HEADER_VERSIONS, ids=[f"trt{v}" for v in HEADER_VERSIONS])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    headers = request.param
    if missing_tools():
        pytest.skip(f"cannot build the plugin here: {missing_tools()}")
    if header_dir(headers) is None:
        pytest.skip(f"TensorRT {headers} headers not found (../shared/third_party/tensorrt-include/{headers}/include)")
    site, why = lean_runtime(headers)
    if site is None:
        pytest.skip(f"TensorRT lean runtime {LEAN_FOR_HEADERS[headers]} wheels could not be fetched: {why}")
    build = plugin_build(headers)
    major = headers.split(".", maxsplit=1)[0]
    # Why the symlink: libswish.so needs libnvinfer.so.<major> (DT_NEEDED, for LD_PRELOAD and Triton), which the
    # lean-only TensorRT does not ship. It points at the very file the driver and the bindings load, so the loader
    # sees one library, not two registries.
    symlinks = tmp_path_factory.mktemp(f"nvinfer-symlink-{major}")
    (symlinks / f"libnvinfer.so.{major}").symlink_to(site / "tensorrt_lean_libs" / f"libnvinfer_lean.so.{major}")
    return Runtime(headers, build, site, symlinks)


def needed(lib: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", str(lib)]))


def defined_symbols(lib: Path) -> set[str]:
    out = run(["nm", "-D", "--defined-only", str(lib)])
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_loadable_library_is_built_like_tensorrts_own(runtime: Runtime):
    ours = runtime.build / "libswish_dynamic.so"
    theirs = runtime.site / "tensorrt_lean_libs" / f"libnvinfer_vc_plugin.so.{runtime.major}"
    assert defined_symbols(theirs) == {"getCreators", "setLoggerFinder"}  # what we imitate
    assert defined_symbols(ours) == {"getCreators", "setLoggerFinder"}
    assert not any("nvinfer" in dep for dep in needed(ours)), needed(ours)
    undefined = run(["nm", "-D", "--undefined-only", str(ours)])
    assert "getLogger" not in undefined and "getPluginRegistry" not in undefined
    # libswish.so keeps its libnvinfer dependency (LD_PRELOAD, Triton's plugins= option).
    assert f"libnvinfer.so.{runtime.major}" in needed(runtime.build / "libswish.so")


def run_driver(runtime: Runtime, args: list[str], with_symlink: bool) -> subprocess.CompletedProcess[str]:
    driver = runtime.build / "swish_trt_runtime_test"
    assert driver.is_file(), f"{driver} was not built (is SWISH_TENSORRT_LEAN_LIB set in {runtime.build}?)"
    return subprocess.run(
        [str(driver), *args], capture_output=True, text=True, check=False, env=runtime.env(with_symlink), timeout=300
    )


def test_loadable_library_in_a_lean_only_tensorrt(runtime: Runtime):
    """No symlink, no libnvinfer anywhere: loadLibrary, creation, refusals, deregisterLibrary and reload."""
    proc = run_driver(runtime, ["--loadable", str(runtime.build / "libswish_dynamic.so")], with_symlink=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    release = ".".join(LEAN_FOR_HEADERS[runtime.headers].split(".")[:3])
    assert f"TensorRT runtime {runtime.major} (library {release})" in proc.stdout
    assert re.search(r"TensorRT \d+ runtime test: \d+ passed, 0 failed", proc.stdout), proc.stdout[-3000:]


def test_both_libraries_in_tensorrts_registry(runtime: Runtime):
    proc = run_driver(
        runtime,
        ["--loadable", str(runtime.build / "libswish_dynamic.so"), "--static", str(runtime.build / "libswish.so")],
        with_symlink=True,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    summary = re.search(r"TensorRT \d+ runtime test: (\d+) passed, 0 failed", proc.stdout)
    assert summary and int(summary.group(1)) >= 80, proc.stdout[-3000:]
    # libswish.so has no logger in a lean runtime without an IRuntime: each refusal's reason must reach stderr.
    errors = [line for line in proc.stderr.splitlines() if line.startswith("[TensorRT plugin] ERROR: SwishPlugin: ")]
    expected = [line.split(" ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("EXPECT-STDERR ")]
    assert expected, proc.stderr[-3000:]
    for fragment in expected:
        assert any(fragment in line for line in errors), f"no stderr message with {fragment!r}:\n{proc.stderr[-3000:]}"
    assert "[TensorRT plugin] WARNING: SwishPlugin: createPlugin: field 'domain_hint': unknown field, ignored" in (
        proc.stderr
    )
    # loadLibrary refuses the statically registering library and says so through the registry's error recorder.
    assert re.search(
        r"ROUTE libswish.so \| loadLibrary\(libswish.so\) \| handle=nullptr \| registry recorder=\"[^\"]+", proc.stdout
    )


def test_python_bindings(runtime: Runtime):
    env = runtime.env(with_symlink=True)
    env["PYTHONPATH"] = str(runtime.site)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "plugin" / "tests" / "trt_python_check.py"),
            "--loadable",
            str(runtime.build / "libswish_dynamic.so"),
            "--static",
            str(runtime.build / "libswish.so"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert f"TensorRT Python API {LEAN_FOR_HEADERS[runtime.headers]}" in proc.stdout
    assert "python bindings: 0 failed" in proc.stdout
    assert proc.stdout.count("\nok   ") >= 30, proc.stdout
