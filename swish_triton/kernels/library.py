"""ctypes binding of the Swish kernels' C ABI (``plugin/swishCApi.h``).

Finds ``libswish_kernels.so`` (TensorRT-free) or ``libswish.so`` (the plugin, which exports the same C ABI but needs
libnvinfer), checks its ABI version and launches ``swish_forward`` on a caller-given CUDA stream. Pointers and
streams are plain integers, so any framework works: ``tensor.data_ptr()`` / ``torch.cuda.current_stream().cuda_stream``
or ``cupy_array.data.ptr`` / ``cupy.cuda.get_current_stream().ptr``.

Library search order: ``$SWISH_KERNELS_LIB`` (read through swish_triton.settings when the library is first loaded,
in a Triton model's ``initialize``), then ``libswish_kernels.so`` and ``libswish.so`` in the build folder (``make
plugin``: ``<checkout>/.build/plugin``, or ``$SWISH_BUILD_DIR/plugin``).

Beside the library, the build leaves ``swish_batch.abi3.so`` where Python's headers were found
(plugin/swishPyBatch.c): it walks a list of arrays in C for ``forward_arrays_in_place``; without it, that method
takes each array's address through ctypes.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from swish_triton import settings
from swish_triton.errors import SwishError
from swish_triton.locations import plugin_build_dir
from swish_triton.model_config import BETA_PARAMETER
from swish_triton.plugin_spec import field_default

ENV_VAR = "SWISH_KERNELS_LIB"
ABI_VERSION = 1

DEFAULT_CANDIDATES = (
    plugin_build_dir() / "libswish_kernels.so",
    plugin_build_dir() / "libswish.so",
)

# Values of enum SwishDType in swishCApi.h.
DTYPES: dict[str, int] = {"float32": 0, "float16": 1, "bfloat16": 2}
_DTYPE_ALIASES: dict[str, str] = {
    "fp32": "float32",
    "float": "float32",
    "torch.float32": "float32",
    "fp16": "float16",
    "half": "float16",
    "torch.float16": "float16",
    "bf16": "bfloat16",
    "torch.bfloat16": "bfloat16",
}

# Values of enum SwishStatus in swishCApi.h.
STATUS_NAMES: dict[int, str] = {
    0: "SUCCESS",
    1: "INVALID_ARGUMENT",
    2: "CUDA_ERROR",
    3: "INTERNAL_ERROR",
}


class SwishKernelsError(SwishError):
    """A swish_forward call failed; ``status`` is the C ABI's SwishStatus code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"swish_forward failed ({STATUS_NAMES.get(status, status)}): {message}")
        self.status = status


class SwishLibraryNotFound(SwishError, OSError):
    """No loadable library with the Swish C ABI was found."""


def candidate_paths(override: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where the library is looked for, in order: ``override`` (``$SWISH_KERNELS_LIB``), then the build folder."""
    paths = [Path(override)] if override else []
    return paths + list(DEFAULT_CANDIDATES)


class SwishKernels:
    """A loaded Swish kernels library."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lib = ctypes.CDLL(str(self.path))
        lib = self._lib
        lib.swish_forward.argtypes = [
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_float,
            ctypes.c_void_p,
        ]
        lib.swish_forward.restype = ctypes.c_int
        lib.swish_last_error.argtypes = []
        lib.swish_last_error.restype = ctypes.c_char_p
        lib.swish_abi_version.argtypes = []
        lib.swish_abi_version.restype = ctypes.c_int
        version = lib.swish_abi_version()
        if version != ABI_VERSION:
            raise SwishLibraryNotFound(f"{self.path}: C ABI version {version}, this binding needs {ABI_VERSION}")
        # The CPU kernel (swish_forward_host and swish_forward_host_many) is absent from libraries built before it
        # was added.
        self.has_host = hasattr(lib, "swish_forward_host") and hasattr(lib, "swish_forward_host_many")
        if self.has_host:
            lib.swish_forward_host.argtypes = [
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int64,
                ctypes.c_float,
            ]
            lib.swish_forward_host.restype = ctypes.c_int
            self._host = lib.swish_forward_host
            pointers = ctypes.POINTER(ctypes.c_void_p)
            lib.swish_forward_host_many.argtypes = [
                ctypes.c_int,
                ctypes.c_int64,
                pointers,
                pointers,
                ctypes.POINTER(ctypes.c_int64),
                ctypes.c_float,
            ]
            lib.swish_forward_host_many.restype = ctypes.c_int
            self._host_many = lib.swish_forward_host_many
            self._host_many_address = ctypes.cast(lib.swish_forward_host_many, ctypes.c_void_p).value
            self.batch_extension = load_batch_extension(self.path.parent)

    def forward(
        self, dtype: str, in_ptr: int, out_ptr: int, n: int, beta: float | None = None, stream_ptr: int = 0
    ) -> None:
        """Enqueue out[i] = in[i] * sigmoid(beta * in[i]) for i < n on ``stream_ptr`` (0: legacy default stream);
        ``beta`` None is the plugin's default (``swish_plugin.json``).

        Asynchronous like any kernel launch. Raises SwishKernelsError on a refused launch (bad arguments, CUDA error).
        """
        if beta is None:
            beta = field_default(BETA_PARAMETER)
        code = dtype_code(dtype)
        status = self._lib.swish_forward(code, in_ptr or None, out_ptr or None, int(n), float(beta), stream_ptr or None)
        self._check(status)

    def _check(self, status: int) -> None:
        """Raise SwishKernelsError with the library's text for a failed call's status (0: success)."""
        if status != 0:
            message = (self._lib.swish_last_error() or b"").decode("utf-8", "replace")
            raise SwishKernelsError(status, message)

    def forward_host(self, in_ptr: int, out_ptr: int, n: int, beta: float) -> None:
        """out[i] = in[i] * sigmoid(beta * in[i]) for i < n, float32 in host memory, on the calling thread (no GPU).

        Raises SwishKernelsError on bad arguments and AttributeError where the library predates the CPU kernel
        (``has_host`` is False)."""
        status = self._host(0, in_ptr or None, out_ptr or None, n, beta)
        self._check(status)

    def forward_host_in_place(self, addresses: Sequence[int], counts: Sequence[int], beta: float) -> None:
        """Array i (``counts[i]`` float32 elements at ``addresses[i]``, host memory) overwritten with its Swish, for
        every i, in one call (swish_forward_host_many). Nothing is written if any array is refused (SwishKernelsError
        names it)."""
        k = len(addresses)
        if len(counts) != k:
            raise ValueError(f"{k} addresses but {len(counts)} counts")
        data = (ctypes.c_void_p * k)(*addresses)
        status = self._host_many(0, k, data, data, (ctypes.c_int64 * k)(*counts), beta)
        self._check(status)

    def forward_arrays_in_place(self, arrays: list[Any], beta: float) -> None:
        """Each array (writable, C-contiguous float32 NumPy arrays) overwritten with its Swish, all in one call of
        swish_forward_host_many: through the swish_batch extension where it was built, else through ctypes.

        Raises TypeError, ValueError or BufferError for an array it cannot take, and SwishKernelsError where the
        kernel refuses one (an unaligned array): in every case before anything is written."""
        if self.batch_extension is not None:
            self._check(self.batch_extension.forward_in_place(self._host_many_address, arrays, beta))
            return
        for a in arrays:
            if a.dtype.str != _FLOAT32:
                raise TypeError(f"float32 arrays only, not {a.dtype}")
        # c_char.from_buffer refuses read-only and non-contiguous arrays (TypeError) and empty ones (ValueError).
        addresses = [ctypes.addressof(ctypes.c_char.from_buffer(a)) for a in arrays]
        self.forward_host_in_place(addresses, [a.size for a in arrays], beta)


_FLOAT32 = "<f4" if sys.byteorder == "little" else ">f4"
BATCH_EXTENSION = "swish_batch.abi3.so"


def load_batch_extension(folder: Path) -> ModuleType | None:
    """The swish_batch extension built beside the kernels library, or None where it was not built (no Python headers
    at build time) or does not load in this interpreter (Python older than 3.11)."""
    path = folder / BATCH_EXTENSION
    if not path.is_file():
        return None
    try:
        loader = importlib.machinery.ExtensionFileLoader("swish_batch", str(path))
        spec = importlib.util.spec_from_file_location("swish_batch", path, loader=loader)
        if spec is None:
            return None
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except ImportError:
        return None
    return module


def dtype_code(dtype: object) -> int:
    """The C ABI code of a dtype given as 'float32' / 'fp16' / 'bfloat16', a torch dtype or a numpy-like dtype."""
    name = str(dtype)
    name = _DTYPE_ALIASES.get(name, name)
    if name not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPES)}")
    return DTYPES[name]


_lock = threading.Lock()
_loaded: dict[str, SwishKernels] = {}


def load(path: str | os.PathLike[str] | None = None) -> SwishKernels:
    """Load the library (once per process unless ``path`` is given). Raises SwishLibraryNotFound with every reason."""
    if path is not None:
        return SwishKernels(path)
    with _lock:
        if "default" in _loaded:
            return _loaded["default"]
        reasons = []
        for candidate in candidate_paths(settings.value(ENV_VAR)):
            if not candidate.is_file():
                reasons.append(f"{candidate}: no such file")
                continue
            try:
                _loaded["default"] = SwishKernels(candidate)
                return _loaded["default"]
            except OSError as exc:  # e.g. libswish.so without libnvinfer on this host
                reasons.append(f"{candidate}: {exc}")
        raise SwishLibraryNotFound(
            "no Swish kernels library could be loaded (build it with `make plugin`, or set "
            f"{ENV_VAR}):\n  " + "\n  ".join(reasons)
        )


def swish_forward(
    dtype: str, in_ptr: int, out_ptr: int, n: int, beta: float | None = None, stream_ptr: int = 0
) -> None:
    """Module-level shortcut for ``load().forward(...)``."""
    load().forward(dtype, in_ptr, out_ptr, n, beta, stream_ptr)
