"""Facts about the building or serving host that decide whether a plan fits it: the GPU and the TensorRT release.

Both are found without TensorRT's Python package where possible, so that ``--check`` runs in a Triton container.
The GPU is the one TensorRT builds on: CUDA device 0 in CUDA's own order, asked of the CUDA driver (``libcuda``)
directly. CUDA's order honours ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` and by default puts the fastest
device first, so on a host with different GPUs it need not be ``nvidia-smi``'s (PCI order) GPU 0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
from dataclasses import dataclass
from typing import Any

from swish_triton.engines.configs import BuildError

# CUdevice_attribute values (cuda.h).
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
MIN_TENSORRT_MAJOR = 10


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"

    @property
    def sm(self) -> str:
        return "sm_" + self.compute_capability.replace(".", "")

    def describe(self) -> str:
        return f"{self.name} ({self.sm})"


@dataclass(frozen=True)
class CudaDevice:
    """CUDA device 0 as the driver reports it; ``pci_bus_id`` ties it to nvidia-smi's rows."""

    gpu: GpuInfo
    pci_bus_id: str


def cuda_device_zero() -> CudaDevice | None:
    """CUDA device 0 (the device TensorRT builds on) from the CUDA driver API, or None without a driver or GPU."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    dev = ctypes.c_int()
    if lib.cuInit(0) != 0 or lib.cuDeviceGet(ctypes.byref(dev), 0) != 0:
        return None
    name = ctypes.create_string_buffer(256)
    bus = ctypes.create_string_buffer(64)
    major, minor = ctypes.c_int(), ctypes.c_int()
    calls = (
        lib.cuDeviceGetName(name, len(name), dev),
        lib.cuDeviceGetAttribute(ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
        lib.cuDeviceGetAttribute(ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
        lib.cuDeviceGetPCIBusId(bus, len(bus), dev),
    )
    text = name.value.decode(errors="replace").strip()
    if any(calls) or not text:
        return None
    return CudaDevice(GpuInfo(text, f"{major.value}.{minor.value}"), bus.value.decode(errors="replace"))


def parse_nvidia_smi_gpu(text: str) -> GpuInfo | None:
    """The GPU CUDA device 0 must be, from ``nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader``.

    nvidia-smi lists GPUs in PCI order, which need not be CUDA's: only where every listed GPU is the same model is
    the answer certain. Mixed models, or no GPU, give None (unknown, so not held against a plan).
    """
    gpus = set()
    for line in text.strip().splitlines():
        name, sep, cc = line.rpartition(",")
        if not sep or not name.strip() or "." not in cc:
            return None
        gpus.add(GpuInfo(name.strip(), cc.strip()))
    return gpus.pop() if len(gpus) == 1 else None


def _gpu_from_nvidia_smi() -> GpuInfo | None:
    cmd = ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi_gpu(done.stdout) if done.returncode == 0 else None


def detect_gpu() -> GpuInfo | None:
    """Name and compute capability of CUDA device 0 (the CUDA driver; nvidia-smi where it is certain); else None."""
    device = cuda_device_zero()
    return device.gpu if device else _gpu_from_nvidia_smi()


def tensorrt_version_from_int(value: int) -> str:
    """Decode getInferLibVersion(): major * 10000 + minor * 100 + patch (NV_TENSORRT_VERSION_INT)."""
    return f"{value // 10000}.{value // 100 % 100}.{value % 100}"


def tensorrt_major(version: str) -> int:
    return int(version.split(".", maxsplit=1)[0])


def require_supported_tensorrt(version: str) -> None:
    """The networks here use IPluginV3 and strong typing: TensorRT 10 or later."""
    if tensorrt_major(version) < MIN_TENSORRT_MAJOR:
        raise BuildError(
            f"TensorRT {version} is not supported: the engines need TensorRT {MIN_TENSORRT_MAJOR} or later"
        )


def import_tensorrt() -> Any:
    """Return the TensorRT module, or raise BuildError saying why it is unusable.

    ``tensorrt-stubs`` installs a ``tensorrt`` folder of .pyi files only, which Python imports as an empty namespace
    package: a successful ``import tensorrt`` is therefore not enough, the module must have ``Builder``.
    """
    try:
        import tensorrt
    except ImportError as e:
        raise BuildError(f"TensorRT's Python package is not importable ({e}); see build/README.md") from e
    if not hasattr(tensorrt, "Builder"):
        raise BuildError(
            "`import tensorrt` found only type stubs (tensorrt-stubs), not TensorRT itself; "
            "build engines in an NGC TensorRT container or a local TensorRT install (build/README.md)"
        )
    require_supported_tensorrt(str(tensorrt.__version__))
    return tensorrt


def tensorrt_available() -> bool:
    try:
        import_tensorrt()
    except BuildError:
        return False
    return True


def _tensorrt_version_from_library() -> str | None:
    names = ["libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so"]
    found = ctypes.util.find_library("nvinfer")
    names += [found] if found else []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        fn = getattr(lib, "getInferLibVersion", None)
        if fn is not None:
            fn.restype = ctypes.c_int32
            return tensorrt_version_from_int(int(fn()))
    return None


def detect_tensorrt_version() -> str | None:
    """TensorRT's version from its Python package, else from libnvinfer itself (a Triton container has no bindings)."""
    try:
        return str(import_tensorrt().__version__)
    except BuildError:
        return _tensorrt_version_from_library()


def same_tensorrt_release(a: str, b: str) -> bool:
    """Plans are tied to a TensorRT release: compare major.minor.patch (the library reports no build number)."""
    return a.split(".")[:3] == b.split(".")[:3]


def short_tensorrt_version(v: str) -> str:
    return ".".join(v.split(".")[:3])


@dataclass(frozen=True)
class HostInfo:
    gpu: GpuInfo | None
    tensorrt_version: str | None

    @classmethod
    def detect(cls) -> HostInfo:
        return cls(detect_gpu(), detect_tensorrt_version())
