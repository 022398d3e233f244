"""CPU-side checks of the Swish plugin's CMake build (no GPU needed, only nvcc and cmake).

Builds the kernels library for one architecture (sm_90, to keep the compile short), and, for both TensorRT header
sets (10.16 and 11.1, found by tests/plugin/plugin_builds.py: ../shared/third_party/tensorrt-include/<version>/include
next to the checkout), the full plugin with -Wall -Wextra -Werror for this project's code, libswish.so linked against a
soname-only libnvinfer stub (cached in .build/ci/, shared with test_tensorrt_runtime.py). Then: the generated header
matches swish_triton/swish_plugin.json; libswish.so needs libnvinfer (DT_NEEDED, what LD_PRELOAD relies on) and
exports the C ABI; libswish_dynamic.so needs no libnvinfer and exports only the loadLibrary entry points; the
conformance driver's CPU-side cases pass (its GPU cases skip without a device); the C ABI validates arguments before
touching CUDA.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from swish_triton.kernels import library as swish_kernels
from tests.plugin.plugin_builds import HEADER_VERSIONS, header_dir, plugin_build
from tests.support import REPO

PLUGIN = REPO / "plugin"
SPEC = REPO / "swish_triton" / "swish_plugin.json"
ARCH = "90-real"
C_ABI = {"swish_forward", "swish_forward_host", "swish_forward_host_many", "swish_last_error", "swish_abi_version"}


def missing_tools() -> str | None:
    for tool in ("cmake", "nvcc", "readelf", "nm"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


if missing_tools():
    pytest.skip(f"cannot build the plugin here: {missing_tools()}", allow_module_level=True)


def run(cmd: list[str], cwd: Path = REPO) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}"
    return output


def configure_and_build(build_dir: Path, *args: str, targets: tuple[str, ...] = ()) -> str:
    log = run(
        ["cmake", "-S", str(PLUGIN), "-B", str(build_dir), f"-DCMAKE_CUDA_ARCHITECTURES={ARCH}", "-DSWISH_WERROR=ON"]
        + list(args)
    )
    build = ["cmake", "--build", str(build_dir), "-j", "2"]
    for target in targets:
        build += ["--target", target]
    return log + run(build)


def dynamic_symbols(lib: Path) -> set[str]:
    out = run(["nm", "-D", "--defined-only", str(lib)])
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def needed(lib: Path) -> list[str]:
    out = run(["readelf", "-d", str(lib)])
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


@pytest.fixture(scope="module")
def build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Not under build/ (the engine builder's folder) and not in .build/ (the user's own build).
    return tmp_path_factory.mktemp("plugin-build")


@pytest.fixture(scope="module")
def kernels_build(build_root: Path) -> Path:
    """The TensorRT-free build: what CI can do with nvcc alone."""
    build_dir = build_root / "kernels"
    log = configure_and_build(build_dir, "-DSWISH_BUILD_PLUGIN=OFF")
    assert "SKIPPED the TensorRT plugin" in log
    return build_dir


def test_kernels_library_exports_the_c_abi_without_tensorrt(kernels_build: Path):
    lib = kernels_build / "libswish_kernels.so"
    assert lib.is_file()
    assert dynamic_symbols(lib) >= C_ABI
    deps = needed(lib)
    assert not any("nvinfer" in d for d in deps), deps
    assert not any("cudart" in d for d in deps), f"cudart must be linked statically: {deps}"


def test_kernels_library_rejects_bad_arguments_before_cuda(kernels_build: Path):
    """Argument checks run on the host, so they work (and must be clean) on a machine without a GPU."""
    lib = swish_kernels.load(kernels_build / "libswish_kernels.so")
    lib.forward("float32", 0, 0, 0, 1.0)  # n == 0: nothing to do, succeeds anywhere
    cases = [
        (("float32", 4096, 8192, -1, 1.0), "negative element count"),
        (("float32", 4096, 8192, 16, float("nan")), "beta must be finite"),
        (("float16", 4097, 8192, 16, 1.0), "aligned"),
        (("float32", 4096, 4100, 16, 1.0), "overlap"),
        (("float32", 0, 8192, 16, 1.0), "null pointer"),
    ]
    for args, fragment in cases:
        with pytest.raises(swish_kernels.SwishKernelsError, match=fragment) as info:
            lib.forward(*args)
        assert info.value.status == 1  # SWISH_STATUS_INVALID_ARGUMENT
    with pytest.raises(ValueError, match="unsupported dtype"):
        lib.forward("int8", 4096, 8192, 16, 1.0)


def test_configure_without_tensorrt_says_it_skipped(build_root: Path):
    log = run(
        [
            "cmake",
            "-S",
            str(PLUGIN),
            "-B",
            str(build_root / "no-trt"),
            f"-DCMAKE_CUDA_ARCHITECTURES={ARCH}",
            "-DTENSORRT_INCLUDE_DIR=/nonexistent",
        ]
    )
    assert "SKIPPED the TensorRT plugin (libswish.so)" in log


def test_refuses_to_build_into_build_folder():
    proc = subprocess.run(
        ["cmake", "-S", str(PLUGIN), "-B", str(REPO / "build" / "plugin-should-not-exist")],
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(REPO / "build" / "plugin-should-not-exist", ignore_errors=True)
    assert proc.returncode != 0
    assert "build/ belongs to the Python engine builder" in proc.stdout + proc.stderr


@pytest.mark.parametrize("version", HEADER_VERSIONS)
def test_plugin_against_tensorrt_headers(version: str):
    if header_dir(version) is None:
        pytest.skip(f"TensorRT {version} headers not found (../shared/third_party/tensorrt-include/{version}/include)")
    build_dir = plugin_build(version)
    major = version.split(".", maxsplit=1)[0]

    # The generated header carries exactly the JSON's values.
    spec = json.loads(SPEC.read_text())
    header = (build_dir / "generated" / "swishPluginSpec.h").read_text()
    values = dict(re.findall(r"constexpr \w+(?: const\*)? (k\w+) = ([^;]+);", header))
    assert values["kPLUGIN_NAME"] == json.dumps(spec["name"])
    assert values["kPLUGIN_NAMESPACE"] == json.dumps(spec["namespace"])
    assert values["kPLUGIN_VERSION_V3"] == json.dumps(spec["versions"]["v3"])
    assert values["kPLUGIN_VERSION_V2"] == json.dumps(spec["versions"]["v2"])
    assert int(values["kSERIALIZATION_FORMAT_VERSION"]) == spec["serialization_format_version"]
    assert int(values["kNB_FIELDS"]) == len(spec["fields"])
    for field in spec["fields"]:
        key = f"kFIELD_{field['name'].upper()}"
        assert values[key] == json.dumps(field["name"])
        assert float(values[f"{key}_DEFAULT"].rstrip("F")) == float(field["default"])

    # libswish.so: DT_NEEDED libnvinfer (LD_PRELOAD resolves getPluginRegistry through it), no RUNPATH to the stub.
    lib = build_dir / "libswish.so"
    assert f"libnvinfer.so.{major}" in needed(lib)
    assert "RUNPATH" not in run(["readelf", "-d", str(lib)]) and "RPATH" not in run(["readelf", "-d", str(lib)])
    assert dynamic_symbols(lib) >= C_ABI
    undefined = run(["nm", "-D", "--undefined-only", str(lib)])
    assert "getPluginRegistry" in undefined  # static registration goes through libnvinfer's registry

    # The loadable library, like TensorRT's own libnvinfer_vc_plugin.so: no libnvinfer, two entry points only.
    dynamic = build_dir / "libswish_dynamic.so"
    assert dynamic_symbols(dynamic) == {"getCreators", "setLoggerFinder"}
    assert not any("nvinfer" in d for d in needed(dynamic)), needed(dynamic)

    # The conformance driver's host-side cases (the GPU cases skip here, and run on the GPU machine).
    proc = subprocess.run([str(build_dir / "swish_conformance")], capture_output=True, text=True, check=False)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed, 0 failed", summary), summary
