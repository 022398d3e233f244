"""Triton Python-backend models: Swish over every request of a dynamic batch, and an identity model for comparison.

Each ``model_repository/<name>/1/model.py`` is a one-line import of a class from here, so the served code is the
tested code. ``execute()`` receives every request of a dynamic batch (requests may have different lengths: the input
allows ragged batches). A request that cannot be computed (an empty tensor) gets its own error response; the others in
its batch still succeed.

Where the Swish model computes: a batch of at least ``gpu_min_elements`` elements goes to the plugin's kernels on the
GPU (when the instance has one), gathered into one tensor and split back; a smaller one stays on the CPU: each GPU
batch pays a host round trip (staging, two copies, a synchronisation) of a few hundred microseconds inside Triton's
stub, which the CPU beats for small batches (docs/performance.md, "Where the time goes"). On the CPU each request is
one call of the plugin library's C kernel where the library is built (``make plugin``; no GPU needed), else the batch
is one float32 NumPy computation (parameter ``cpu_kernel``: ``auto``, the default, or ``numpy``).

The C kernel writes each request's result over its input array where that array is writable: the stub's
``as_numpy()`` hands each request's input as an array of its own (a copy out of shared memory), read by nobody after
``execute()``, so the result needs no allocation and goes back as the identity model's output does. A batch with a
read-only input (a DLPack view) is gathered into a fresh array instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from swish_triton.errors import SwishError
from swish_triton.kernels.cpu_swish import CpuSwish
from swish_triton.kernels.library import SwishKernels
from swish_triton.kernels.library import load as load_kernels
from swish_triton.limits import MAX_REQUEST_BYTES
from swish_triton.model_config import parse_beta
from swish_triton.models.execute_profile import NO_CLOCK, ExecuteProfile, PhaseClock
from swish_triton.models.output_tensor import input_array, output_tensor

try:  # Only importable inside the Python-backend stub.
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - the module is imported outside Triton by tests and linters
    pb_utils = None


# Batches of fewer elements are computed on the CPU even where the instance has a GPU (parameter gpu_min_elements).
# Inside the stub each GPU batch pays about 250 us of fixed cost on the H200 host (six CUDA calls through ctypes and a
# synchronisation that waits ~100 us for three tiny operations) besides gathering the batch into pinned memory and
# copying it out again. The C kernel computes about one element per nanosecond on one core and needs neither: it
# wins up to about a million bytes of float32. The float32 NumPy kernel takes several calls per batch and beats the
# GPU path only below about 12k elements on random bit patterns, its slowest inputs (docs/performance.md, "Where the
# time goes").
DEFAULT_GPU_MIN_ELEMENTS = 262144
DEFAULT_GPU_MIN_ELEMENTS_NUMPY = 16384


def swish_batch(arrays: list[np.ndarray], beta: float, out_dtype: np.dtype) -> list[np.ndarray]:
    """Swish over several arrays of any shapes as one float32 computation on the CPU; arrays of the same shapes."""
    return CpuSwish(beta)(arrays, out_dtype)


def host_kernels() -> tuple[SwishKernels | None, str]:
    """The plugin's kernels library if it has the CPU kernel (swish_forward_host, swish_forward_host_many), else None
    and why not."""
    try:
        kernels = load_kernels()
    except (OSError, SwishError) as exc:
        return None, str(exc).splitlines()[0]
    if not kernels.has_host:
        return None, f"{kernels.path} was built before swish_forward_host_many"
    return kernels, ""


class _BatchedModel:
    """What the Swish and identity models share: config parsing and per-request error handling."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.model_name = config["name"]
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        output_type = pb_utils.triton_string_to_numpy(config["output"][0]["data_type"])
        self.output_dtype = np.dtype(output_type)
        params = config.get("parameters", {})
        self.params = {k: v.get("string_value", "") for k, v in params.items()}
        self.beta = parse_beta(self.params.get("beta"), f"{self.model_name}: parameter beta")
        every = int(self.params.get("profile_every", "0") or 0)
        self.profile = ExecuteProfile(self.model_name, every) if every > 0 else None
        self.clock = PhaseClock() if self.profile else NO_CLOCK
        self.path = "cpu"  # where the last batch was computed, for the profile

    def execute(self, requests: list[Any]) -> list[Any]:
        clock = self.clock
        clock.start()
        responses: list[Any] = [None] * len(requests)
        host: list[tuple[int, np.ndarray]] = []
        device: list[tuple[int, Any]] = []
        itemsize = self.output_dtype.itemsize
        host_bytes = device_bytes = 0
        for i, request in enumerate(requests):
            tensor = pb_utils.get_input_tensor_by_name(request, self.input_name)
            shape = tensor.shape()
            nbytes = math.prod(shape) * itemsize
            if not 0 < nbytes <= MAX_REQUEST_BYTES:
                problem = self.check_input(tuple(shape), nbytes)
                responses[i] = self.error_response(problem, pb_utils.TritonError.INVALID_ARG)
            elif tensor.is_cpu():
                host.append((i, input_array(tensor)))
                host_bytes += nbytes
            else:
                device.append((i, tensor))
                device_bytes += nbytes
        clock.lap("inputs")
        paths = ((host, host_bytes, self.compute), (device, device_bytes, self.compute_on_device))
        for batch, nbytes, compute in paths:
            if not batch:
                continue
            try:
                outputs = compute([item for _, item in batch], nbytes)
            except Exception as exc:  # noqa: BLE001 - the batch fails with the reason, the server stays up
                for i, _ in batch:
                    responses[i] = self.error_response(f"{self.model_name}: {type(exc).__name__}: {exc}")
                continue
            for (i, _), out in zip(batch, outputs, strict=True):
                tensor = out if isinstance(out, pb_utils.Tensor) else output_tensor(self.output_name, out)
                responses[i] = pb_utils.InferenceResponse(output_tensors=[tensor])
            clock.lap("output tensors")
        if self.profile is not None and self.profile.record(self.path, len(requests), clock):
            self.log_profile()
        return responses

    def log_profile(self) -> None:
        for line in self.profile.report() if self.profile else []:
            pb_utils.Logger.log_info(line)

    def error_response(self, message: str, code: Any = None) -> Any:
        error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
        return pb_utils.InferenceResponse(output_tensors=[], error=error)

    def check_input(self, shape: tuple[int, ...], nbytes: int) -> str | None:
        """Why a request with this input cannot be computed, or None. Triton has checked dtype, rank and batch.
        ``execute`` calls it only for inputs outside (0, MAX_REQUEST_BYTES]."""
        where = f"{self.model_name}: input '{self.input_name}' has shape {list(shape)}"
        if nbytes == 0:
            return f"{where}, which holds no elements; send at least one element per request"
        if nbytes > MAX_REQUEST_BYTES:
            return (
                f"{where} ({nbytes} bytes), above the limit of {MAX_REQUEST_BYTES} bytes per request; "
                "split it into several requests"
            )
        return None

    def compute(self, arrays: list[np.ndarray], nbytes: int) -> list[np.ndarray]:
        """The outputs of a batch of CPU inputs (``nbytes``: their size together, from the requests' shapes)."""
        raise NotImplementedError

    def compute_on_device(self, tensors: list[Any], nbytes: int) -> list[Any]:
        """Inputs Triton hands over in GPU memory (only with FORCE_CPU_ONLY_INPUT_TENSORS=no)."""
        raise NotImplementedError(f"{self.model_name} does not take GPU tensors")

    def finalize(self) -> None:
        self.log_profile()


class SwishModel(_BatchedModel):
    """Swish on the GPU when the instance has one (the plugin's kernels) and the batch holds at least
    ``gpu_min_elements`` elements, else the float32 NumPy kernel. Parameter ``device``: ``auto`` (default), ``gpu``
    (fail to load without one) or ``cpu``."""

    def initialize(self, args: dict[str, Any]) -> None:
        super().initialize(args)
        wanted = self.params.get("device", "auto")
        if wanted not in ("auto", "gpu", "cpu"):
            raise ValueError(f"{self.model_name}: parameter device must be auto, gpu or cpu, not {wanted!r}")
        cpu_kernel = self.params.get("cpu_kernel", "auto") or "auto"
        if cpu_kernel not in ("auto", "numpy"):
            raise ValueError(f"{self.model_name}: parameter cpu_kernel must be auto or numpy, not {cpu_kernel!r}")
        native, why_not = host_kernels() if cpu_kernel == "auto" else (None, "cpu_kernel=numpy in config.pbtxt")
        threshold = self.params.get("gpu_min_elements", "")
        if threshold and not threshold.isdigit():
            raise ValueError(f"{self.model_name}: parameter gpu_min_elements must be a count >= 0, not {threshold!r}")
        default_threshold = DEFAULT_GPU_MIN_ELEMENTS if native else DEFAULT_GPU_MIN_ELEMENTS_NUMPY
        self.gpu_min_elements = int(threshold) if threshold else default_threshold
        self.cpu = CpuSwish(self.beta, native)
        if native:
            way = "swish_batch extension" if native.batch_extension is not None else "ctypes; no swish_batch extension"
            cpu_name = f"float32 C kernel of {native.path}, one call per batch through {way}"
        else:
            cpu_name = f"float32 NumPy kernel; no C kernel: {why_not}"
        self.gpu = None
        reason = "device=cpu in config.pbtxt"
        if wanted != "cpu":
            from swish_triton.kernels.gpu_swish import GpuSwish, GpuUnavailable

            try:
                self.gpu = GpuSwish(int(args.get("model_instance_device_id", 0) or 0))
            except GpuUnavailable as exc:
                if wanted == "gpu":
                    raise
                reason = str(exc)
        if self.gpu:
            where = (
                f"{self.gpu.describe()} for batches of >= {self.gpu_min_elements} elements, the CPU ({cpu_name}) below"
            )
        else:
            where = f"the CPU ({cpu_name}; no GPU path: {reason})"
        pb_utils.Logger.log_info(
            f"{self.model_name} instance {args.get('model_instance_name')}: Swish with beta={self.beta} on {where}; "
            f"NumPy {np.__version__}"
        )

    def compute(self, arrays: list[np.ndarray], nbytes: int) -> list[np.ndarray]:
        if self.gpu is not None and nbytes >= self.gpu_min_elements * self.output_dtype.itemsize:
            self.path = "gpu"
            return self.gpu(arrays, self.beta, self.output_dtype, self.clock)
        outputs = self.cpu(arrays, self.output_dtype, self.clock, overwrite=True)
        if self.cpu.native is not None:
            self.path = "cpu"
        else:
            # The profile tells batches whose inputs overflowed NumPy's exp (computed again, carefully) from the others.
            self.path = "cpu numpy, careful pass" if self.cpu.careful_streak else "cpu numpy"
        return outputs

    def compute_on_device(self, tensors: list[Any], nbytes: int) -> list[Any]:
        if self.gpu is None:
            raise RuntimeError("received GPU tensors but this instance has no GPU path")
        self.path = "gpu tensors"
        outputs = self.gpu.on_device(tensors, self.beta)
        return [pb_utils.Tensor(self.output_name, out) for out in outputs]

    def finalize(self) -> None:
        super().finalize()
        if self.gpu is not None:
            self.gpu.close()


class IdentityModel(_BatchedModel):
    """Returns its input: the floor any model of this backend can reach, for throughput comparisons. Parameter
    ``copy: yes`` returns fresh arrays instead of the input views (what any computing model has to send back)."""

    def compute(self, arrays: list[np.ndarray], nbytes: int) -> list[np.ndarray]:
        self.path = "identity"
        if self.params.get("copy") == "yes":
            return [a.copy() for a in arrays]
        return arrays
