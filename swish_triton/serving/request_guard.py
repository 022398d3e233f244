"""Checks an inference request's tensor shapes against the bytes it carries, before tritonserver sees it.

tritonserver 2.51 multiplies shape dimensions without overflow checks: ``[1, 2^62]`` over HTTP JSON crashes it
(SIGSEGV, ``std::length_error``, ``std::bad_alloc``), and ``[2, 2^63]`` (HTTP binary) or ``[4, 2^61]`` (gRPC) with
empty data wrap to a byte size of 0, pass its checks and kill a Python-backend stub. The fix upstream is in
triton-inference-server/common#151 and server#8182 / server#8676 (2025-2026); no nvidia-pytriton wheel bundles a
server with it, so the front (``front.py``) refuses such requests with these checks: every dimension is a
non-negative int64, the element count and byte size are computed exactly (Python integers do not overflow) and
must match what the request carries (JSON elements, binary bytes, raw gRPC bytes or a shared-memory byte size).
"""

from __future__ import annotations

import math
from typing import Any

from swish_triton.errors import SwishError

# Bytes per element of Triton's fixed-size datatypes; BYTES (strings) has no fixed size.
DATATYPE_SIZES = {
    "BOOL": 1,
    "UINT8": 1,
    "INT8": 1,
    "UINT16": 2,
    "INT16": 2,
    "FP16": 2,
    "BF16": 2,
    "UINT32": 4,
    "INT32": 4,
    "FP32": 4,
    "UINT64": 8,
    "INT64": 8,
    "FP64": 8,
}
INT64_MAX = 2**63 - 1
# Default cap on one input tensor: far above what the models accept (swish_triton.limits.MAX_REQUEST_BYTES), so
# the models still give their own, more specific message, and far below anything that overflows.
DEFAULT_MAX_TENSOR_BYTES = 1 << 30


class RejectedRequest(SwishError):
    """An inference request the front refuses; the message says which input and why."""


def check_tensor(
    name: str,
    datatype: str,
    shape: Any,
    *,
    supplied_bytes: int | None = None,
    supplied_elements: int | None = None,
    max_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
) -> None:
    """Raise RejectedRequest unless ``shape`` is sane for ``datatype`` and matches what the request carries."""
    where = f"input '{name}'"
    if not isinstance(shape, list | tuple) or not all(type(d) is int for d in shape):
        raise RejectedRequest(f"{where}: shape must be a list of integers, got {shape!r}")
    bad = [d for d in shape if d < 0 or d > INT64_MAX]
    if bad:
        raise RejectedRequest(f"{where}: shape {list(shape)} has dimension {bad[0]} outside 0..2^63-1")
    elements = math.prod(shape)
    item = DATATYPE_SIZES.get(str(datatype))
    # BYTES elements take at least their 4-byte length prefix.
    nbytes = elements * (item if item is not None else 4)
    if nbytes > max_bytes:
        raise RejectedRequest(
            f"{where}: shape {list(shape)} of {datatype} is {elements} elements ({nbytes} bytes), above the limit "
            f"of {max_bytes} bytes per input"
        )
    if supplied_elements is not None and supplied_elements != elements:
        raise RejectedRequest(
            f"{where}: shape {list(shape)} is {elements} elements but the request carries {supplied_elements}"
        )
    if supplied_bytes is not None and item is not None and supplied_bytes != nbytes:
        raise RejectedRequest(
            f"{where}: shape {list(shape)} of {datatype} is {nbytes} bytes but the request carries {supplied_bytes}"
        )


def count_elements(data: Any) -> int:
    """Elements in a JSON ``data`` field (Triton accepts it flat or nested)."""
    if not isinstance(data, list):
        return 1
    if not any(isinstance(v, list) for v in data):
        return len(data)
    return sum(count_elements(v) for v in data)


def _int_parameter(params: Any, key: str) -> int | None:
    value = params.get(key) if isinstance(params, dict) else None
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise RejectedRequest(f"parameter {key} must be a non-negative integer, got {value!r}")
    return value


def check_json_request(header: Any, max_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> None:
    """The JSON part of an HTTP inference request (the whole body, or the header before the binary data)."""
    if not isinstance(header, dict):
        raise RejectedRequest("the request body must be a JSON object")
    inputs = header.get("inputs")
    if not isinstance(inputs, list):
        raise RejectedRequest("the request must have an 'inputs' list")
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise RejectedRequest("each entry of 'inputs' must be a JSON object")
        name = str(tensor.get("name", "?"))
        params = tensor.get("parameters") or {}
        supplied_bytes = _int_parameter(params, "binary_data_size")
        shm_bytes = _int_parameter(params, "shared_memory_byte_size")
        supplied_elements = None
        if supplied_bytes is None and shm_bytes is None:
            if "data" not in tensor:
                raise RejectedRequest(f"input '{name}' has no data, binary_data_size or shared memory region")
            supplied_elements = count_elements(tensor["data"])
        check_tensor(
            name,
            tensor.get("datatype", ""),
            tensor.get("shape"),
            supplied_bytes=supplied_bytes if supplied_bytes is not None else shm_bytes,
            supplied_elements=supplied_elements,
            max_bytes=max_bytes,
        )


_CONTENTS_FIELDS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "uint64_contents",
    "fp32_contents",
    "fp64_contents",
    "bytes_contents",
)


def check_grpc_request(request: Any, max_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> None:
    """A parsed ``inference.ModelInferRequest`` (tritonclient.grpc.service_pb2)."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise RejectedRequest(f"the request has {len(request.inputs)} inputs but {len(raw)} raw input contents")
    for i, tensor in enumerate(request.inputs):
        supplied_bytes = supplied_elements = None
        params = tensor.parameters
        if "shared_memory_region" in params:
            supplied_bytes = params["shared_memory_byte_size"].int64_param
        elif raw:
            supplied_bytes = len(raw[i])
        else:
            supplied_elements = sum(len(getattr(tensor.contents, f)) for f in _CONTENTS_FIELDS)
        check_tensor(
            tensor.name,
            tensor.datatype,
            list(tensor.shape),
            supplied_bytes=supplied_bytes,
            supplied_elements=supplied_elements,
            max_bytes=max_bytes,
        )
