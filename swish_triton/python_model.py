"""Triton Python-backend models: Swish computed over a whole batch at once, and an identity model for comparison.

Each ``model_repository/<name>/1/model.py`` is a one-line import of a class from here, so the served code is the
tested code. ``execute()`` receives every request of a dynamic batch; the Swish model concatenates their inputs
(requests may have different lengths: the input allows ragged batches), computes once, and splits the result back.
A request that cannot be computed (an empty tensor) gets its own error response; the others in its batch still
succeed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from swish_triton.limits import MAX_REQUEST_BYTES
from swish_triton.reference import swish_ref

try:  # Only importable inside the Python-backend stub.
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - the module is imported outside Triton by tests and linters
    pb_utils = None


def swish_batch(arrays: list[np.ndarray], beta: float, out_dtype: np.dtype) -> list[np.ndarray]:
    """Swish over several arrays of any shapes as one computation; returns arrays of the same shapes."""
    if not arrays:
        return []
    flat = np.concatenate([a.reshape(-1) for a in arrays])
    result = swish_ref(flat, beta).astype(out_dtype)
    splits = np.cumsum([a.size for a in arrays])[:-1]
    return [part.reshape(a.shape) for part, a in zip(np.split(result, splits), arrays, strict=True)]


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
        self.beta = float(params.get("beta", {}).get("string_value", "1.0"))
        if not np.isfinite(self.beta):
            raise ValueError(f"{self.model_name}: parameter beta must be finite, got {self.beta}")

    def check_input(self, array: np.ndarray) -> str | None:
        """Why this request's input cannot be computed, or None. Triton has already checked dtype, rank and batch."""
        where = f"{self.model_name}: input '{self.input_name}' has shape {list(array.shape)}"
        if array.size == 0:
            return f"{where}, which holds no elements; send at least one element per request"
        if array.nbytes > MAX_REQUEST_BYTES:
            return (
                f"{where} ({array.nbytes} bytes), above the limit of {MAX_REQUEST_BYTES} bytes per request; "
                "split it into several requests"
            )
        return None

    def compute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        good: list[int] = []
        arrays: list[np.ndarray] = []
        for i, request in enumerate(requests):
            array = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            problem = self.check_input(array)
            if problem:
                responses[i] = pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(problem, pb_utils.TritonError.INVALID_ARG)
                )
                continue
            good.append(i)
            arrays.append(array)
        for i, result in zip(good, self.compute(arrays), strict=True):
            responses[i] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output_name, result)])
        return responses

    def finalize(self) -> None:
        pass


class SwishModel(_BatchedModel):
    def initialize(self, args: dict[str, Any]) -> None:
        super().initialize(args)
        pb_utils.Logger.log_info(f"{self.model_name}: Swish with beta={self.beta} on the CPU (NumPy)")

    def compute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return swish_batch(arrays, self.beta, self.output_dtype)


class IdentityModel(_BatchedModel):
    """Returns its input: the floor any model of this backend can reach, for throughput comparisons."""

    def compute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return arrays
