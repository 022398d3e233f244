"""Swish on the GPU for the Python-backend model: one kernel launch per batch on the instance's own CUDA stream.

The kernels are the plugin's (``libswish_kernels.so``'s C ABI, through swish_triton.kernels.library). Memory and
streams go through the CUDA runtime by ctypes, so the model needs neither torch nor CuPy: requests arriving over
HTTP/gRPC are in host memory, and the batch is gathered straight into a pinned buffer, copied to the device,
computed, and copied back, with a single synchronisation per ``execute()``. Buffers grow to the largest batch seen
and are reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np

from swish_triton.errors import SwishError
from swish_triton.kernels.library import SwishKernels
from swish_triton.kernels.library import load as load_kernels
from swish_triton.kernels.phase_clock import NO_CLOCK, PhaseClock
from swish_triton.ragged import split_like

CUDA_MEMCPY_HOST_TO_DEVICE = 1
CUDA_MEMCPY_DEVICE_TO_HOST = 2
CUDA_STREAM_NON_BLOCKING = 1

NUMPY_TO_KERNEL_DTYPE = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}


class GpuUnavailable(SwishError):
    """No usable GPU, CUDA runtime or kernels library; the message says which."""


def _cudart_candidates() -> list[str]:
    names = ["libcudart.so", "libcudart.so.13", "libcudart.so.12"]
    found = ctypes.util.find_library("cudart")
    if found:
        names.insert(0, found)
    # The nvidia-cuda-runtime-cu12 wheel (a project dependency) and CUDA toolkits.
    sites = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path}
    for site in sites:
        lib = Path(site) / "nvidia" / "cuda_runtime" / "lib" / "libcudart.so.12"
        if lib.exists():
            names.append(str(lib))
    names += [str(p) for p in sorted(Path("/usr/local/cuda/lib64").glob("libcudart.so.*"))]
    return names


def load_cudart() -> ctypes.CDLL:
    errors = []
    for name in _cudart_candidates():
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    raise GpuUnavailable("no CUDA runtime library (libcudart) could be loaded: " + "; ".join(errors[-3:]))


class _Cuda:
    """The few CUDA runtime calls the model needs, each checked."""

    def __init__(self) -> None:
        self.lib = load_cudart()
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p
        self.lib.cudaMemcpyAsync.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_void_p,
        ]
        self.lib.cudaStreamSynchronize.argtypes = [ctypes.c_void_p]
        self.lib.cudaFree.argtypes = [ctypes.c_void_p]
        self.lib.cudaFreeHost.argtypes = [ctypes.c_void_p]
        self.lib.cudaStreamDestroy.argtypes = [ctypes.c_void_p]
        self.lib.cudaEventRecord.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.lib.cudaEventElapsedTime.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_void_p]
        self.lib.cudaEventDestroy.argtypes = [ctypes.c_void_p]

    def check(self, status: int, what: str) -> None:
        if status != 0:
            text = self.lib.cudaGetErrorString(status).decode()
            raise GpuUnavailable(f"{what} failed: {text} (cudaError {status})")

    def device_count(self) -> int:
        count = ctypes.c_int(0)
        status = self.lib.cudaGetDeviceCount(ctypes.byref(count))
        return count.value if status == 0 else 0


class _PinnedAndDeviceBuffer:
    """A pinned host buffer and a device buffer of the same size, grown on demand."""

    def __init__(self, cuda: _Cuda) -> None:
        self.cuda = cuda
        self.nbytes = 0
        self.host = ctypes.c_void_p()
        self.device = ctypes.c_void_p()
        self.host_bytes = np.empty(0, dtype=np.uint8)

    def ensure(self, nbytes: int) -> None:
        if nbytes <= self.nbytes:
            return
        self.free()
        nbytes = max(nbytes, 1 << 20, 2 * self.nbytes)
        self.cuda.check(
            self.cuda.lib.cudaHostAlloc(ctypes.byref(self.host), ctypes.c_size_t(nbytes), 0), "cudaHostAlloc"
        )
        self.cuda.check(self.cuda.lib.cudaMalloc(ctypes.byref(self.device), ctypes.c_size_t(nbytes)), "cudaMalloc")
        self.nbytes = nbytes
        # One NumPy view of the whole pinned buffer, made once: building a ctypes array type per call costs more
        # than the copies it wraps.
        self.host_bytes = np.frombuffer((ctypes.c_char * nbytes).from_address(self.host.value or 0), dtype=np.uint8)

    def host_array(self, dtype: np.dtype, count: int) -> np.ndarray:
        return self.host_bytes[: count * dtype.itemsize].view(dtype)

    def free(self) -> None:
        if self.host.value:
            self.cuda.lib.cudaFreeHost(self.host)
        if self.device.value:
            self.cuda.lib.cudaFree(self.device)
        self.host, self.device, self.nbytes = ctypes.c_void_p(), ctypes.c_void_p(), 0
        self.host_bytes = np.empty(0, dtype=np.uint8)


class GpuSwish:
    """Swish over a list of host arrays on one GPU, one launch and one synchronisation per call."""

    def __init__(self, device_id: int = 0, kernels: SwishKernels | None = None) -> None:
        self.cuda = _Cuda()
        count = self.cuda.device_count()
        if count == 0:
            raise GpuUnavailable("the CUDA runtime sees no GPU")
        if not 0 <= device_id < count:
            raise GpuUnavailable(f"GPU {device_id} does not exist (this host has {count})")
        self.device_id = device_id
        self.cuda.check(self.cuda.lib.cudaSetDevice(device_id), "cudaSetDevice")
        try:
            self.kernels = kernels or load_kernels()
        except OSError as exc:
            raise GpuUnavailable(str(exc)) from exc
        self.stream = ctypes.c_void_p()
        self.cuda.check(
            self.cuda.lib.cudaStreamCreateWithFlags(ctypes.byref(self.stream), CUDA_STREAM_NON_BLOCKING),
            "cudaStreamCreateWithFlags",
        )
        self.inputs = _PinnedAndDeviceBuffer(self.cuda)
        self.outputs = _PinnedAndDeviceBuffer(self.cuda)
        # Made on the first profiled call: CUDA events around the copies and the kernel, to tell the GPU's own time
        # from the host's wait in the synchronisation.
        self.events: tuple[ctypes.c_void_p, ctypes.c_void_p] | None = None

    def describe(self) -> str:
        return f"GPU {self.device_id} ({self.kernels.path.name}, own CUDA stream)"

    def __call__(
        self, arrays: list[np.ndarray], beta: float, out_dtype: np.dtype, clock: PhaseClock = NO_CLOCK
    ) -> list[np.ndarray]:
        if not arrays:
            return []
        dtype = np.dtype(arrays[0].dtype)
        if dtype not in NUMPY_TO_KERNEL_DTYPE or out_dtype != dtype:
            raise ValueError(f"GPU Swish supports float32 and float16 in and out, not {dtype} -> {out_dtype}")
        n = sum(a.size for a in arrays)
        nbytes = n * dtype.itemsize
        # Each call sets the device: Triton may run instances of several models on the same thread.
        self.cuda.check(self.cuda.lib.cudaSetDevice(self.device_id), "cudaSetDevice")
        self.inputs.ensure(nbytes)
        self.outputs.ensure(nbytes)
        clock.lap("set device+buffers")
        # The ragged batch is gathered straight into the pinned buffer: one host copy, then one copy each way.
        staged = self.inputs.host_array(dtype, n)
        np.concatenate([a.reshape(-1) for a in arrays], out=staged)
        lib, stream = self.cuda.lib, self.stream
        clock.lap("gather into pinned")
        events = self._events() if clock.timing else None
        if events:
            self.cuda.check(lib.cudaEventRecord(events[0], stream), "cudaEventRecord")
        self.cuda.check(
            lib.cudaMemcpyAsync(self.inputs.device, self.inputs.host, nbytes, CUDA_MEMCPY_HOST_TO_DEVICE, stream),
            "cudaMemcpyAsync H2D",
        )
        clock.lap("H2D enqueue")
        self.kernels.forward(
            NUMPY_TO_KERNEL_DTYPE[dtype],
            self.inputs.device.value or 0,
            self.outputs.device.value or 0,
            n,
            beta,
            stream.value or 0,
        )
        clock.lap("kernel launch")
        self.cuda.check(
            lib.cudaMemcpyAsync(self.outputs.host, self.outputs.device, nbytes, CUDA_MEMCPY_DEVICE_TO_HOST, stream),
            "cudaMemcpyAsync D2H",
        )
        if events:
            self.cuda.check(lib.cudaEventRecord(events[1], stream), "cudaEventRecord")
        clock.lap("D2H enqueue")
        self.cuda.check(lib.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        clock.lap("sync")
        if events:
            ms = ctypes.c_float(0.0)
            self.cuda.check(lib.cudaEventElapsedTime(ctypes.byref(ms), events[0], events[1]), "cudaEventElapsedTime")
            clock.note("GPU busy H2D..D2H (events)", ms.value / 1e3)
        # One copy out of the pinned buffer (the next call reuses it while Triton may still be sending these), then
        # views per request: a copy per request costs several microseconds each at batch 64.
        result = split_like(self.outputs.host_array(dtype, n).copy(), arrays)
        clock.lap("copy out+split")
        return result

    def _events(self) -> tuple[ctypes.c_void_p, ctypes.c_void_p]:
        if self.events is None:
            start, end = ctypes.c_void_p(), ctypes.c_void_p()
            self.cuda.check(self.cuda.lib.cudaEventCreate(ctypes.byref(start)), "cudaEventCreate")
            self.cuda.check(self.cuda.lib.cudaEventCreate(ctypes.byref(end)), "cudaEventCreate")
            self.events = (start, end)
        return self.events

    def on_device(self, tensors: list[Any], beta: float) -> list[Any]:
        """Swish over tensors already in GPU memory (DLPack), with no host round trip; returns CuPy arrays.

        Triton hands the Python backend GPU tensors only for inputs that arrive in GPU memory (CUDA shared memory,
        ensembles) and only with FORCE_CPU_ONLY_INPUT_TENSORS=no. CuPy is needed for this path alone: it owns the
        output buffers until Triton has taken them.
        """
        try:
            import cupy as cp
        except ImportError as exc:
            raise GpuUnavailable("GPU input tensors need CuPy (pip install cupy-cuda12x)") from exc
        outputs = []
        with cp.cuda.Device(self.device_id):
            for tensor in tensors:
                x = cp.from_dlpack(tensor.to_dlpack())
                dtype = np.dtype(x.dtype)
                if dtype not in NUMPY_TO_KERNEL_DTYPE:
                    raise ValueError(f"GPU Swish supports float32 and float16, not {dtype}")
                x = cp.ascontiguousarray(x)
                y = cp.empty_like(x)
                self.kernels.forward(
                    NUMPY_TO_KERNEL_DTYPE[dtype], x.data.ptr, y.data.ptr, x.size, beta, self.stream.value or 0
                )
                outputs.append(y)
            self.cuda.check(self.cuda.lib.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return outputs

    def close(self) -> None:
        self.inputs.free()
        self.outputs.free()
        for event in self.events or ():
            self.cuda.lib.cudaEventDestroy(event)
        self.events = None
        if self.stream.value:
            self.cuda.lib.cudaStreamDestroy(self.stream)
            self.stream = ctypes.c_void_p()
