"""Validate a served Swish model end to end: health, metadata, then outputs against swish_ref.

Used by ``client/validate.py`` (the CLI), the demo and the tests. Works over HTTP and gRPC with the same calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swish_triton.errors import SwishError
from swish_triton.model_config import ModelConfigError, parse_beta
from swish_triton.reference import Comparison, compare_to_ref

# Triton datatype -> (numpy dtype sent on the wire, dtype name for swish_triton.reference.compare_to_ref)
TRITON_DTYPES: dict[str, tuple[type[np.generic], str]] = {
    "FP32": (np.float32, "float32"),
    "FP16": (np.float16, "float16"),
}

SPECIAL_VALUES = np.array(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 88.0, -88.0, 100.0, -100.0, 1e-30, -1e-30, 3e38, -3e38],
    dtype=np.float64,
)


class ValidationError(SwishError):
    pass


def make_client(url: str, protocol: str, verbose: bool = False) -> Any:
    if protocol == "http":
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(url, verbose=verbose)
    if protocol == "grpc":
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(url, verbose=verbose)
    raise ValueError(f"protocol must be http or grpc, not {protocol!r}")


def infer_input_class(protocol: str) -> Any:
    if protocol == "http":
        import tritonclient.http as httpclient

        return httpclient.InferInput
    import tritonclient.grpc as grpcclient

    return grpcclient.InferInput


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_name: str
    output_name: str
    datatype: str
    max_batch_size: int
    beta: float


def _json(obj: Any) -> dict[str, Any]:
    """HTTP returns dicts; gRPC returns protobuf messages. Normalise to dicts."""
    if isinstance(obj, dict):
        return obj
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(obj, preserving_proto_field_name=True)


def check_health(client: Any, model: str) -> ModelInfo:
    """live -> ready -> model ready -> metadata and config. Raises ValidationError with the first failure."""
    if not client.is_server_live():
        raise ValidationError("server is not live")
    if not client.is_server_ready():
        raise ValidationError("server is not ready")
    if not client.is_model_ready(model):
        raise ValidationError(f"model {model} is not ready (is it loaded? the server log says why not)")
    meta = _json(client.get_model_metadata(model))
    config = _json(client.get_model_config(model))
    config = config.get("config", config)
    inputs, outputs = meta.get("inputs", []), meta.get("outputs", [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValidationError(f"{model}: expected one input and one output, metadata has {len(inputs)}/{len(outputs)}")
    datatype = inputs[0]["datatype"]
    if datatype not in TRITON_DTYPES:
        raise ValidationError(f"{model}: input datatype {datatype} is not one of {sorted(TRITON_DTYPES)}")
    if outputs[0]["datatype"] != datatype:
        raise ValidationError(f"{model}: output datatype {outputs[0]['datatype']} differs from input {datatype}")
    max_batch = int(config.get("max_batch_size", 0))
    shape = [int(d) for d in inputs[0]["shape"]]
    expected = [-1, -1] if max_batch > 0 else [-1]
    if shape != expected:
        raise ValidationError(f"{model}: input shape {shape}, expected {expected} (variable length)")
    try:  # the same reader as the builder and the Python models (swish_triton.model_config)
        beta = parse_beta(config.get("parameters", {}).get("beta", {}).get("string_value"), f"{model}: beta")
    except ModelConfigError as exc:
        raise ValidationError(str(exc)) from exc
    return ModelInfo(model, inputs[0]["name"], outputs[0]["name"], datatype, max_batch, beta)


@dataclass
class CaseResult:
    name: str
    shape: tuple[int, ...]
    comparison: Comparison | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.comparison is not None and self.comparison.ok


@dataclass
class ValidationReport:
    model: str
    protocol: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.cases) and all(c.ok for c in self.cases)

    def table(self) -> str:
        rows = [f"{'case':<22} {'shape':<12} {'max abs err':>12} {'max rel err':>12}  result"]
        for c in self.cases:
            if c.comparison is not None:
                errs = f"{c.comparison.max_abs_err:>12.3g} {c.comparison.max_rel_err:>12.3g}"
            else:
                errs = f"{'-':>12} {'-':>12}"
            rows.append(f"{c.name:<22} {'x'.join(map(str, c.shape)):<12} {errs}  {'ok' if c.ok else 'FAIL'}")
        return "\n".join(rows)

    def summary(self) -> str:
        if self.ok:
            return f"PASS: {self.model} ({self.protocol}, {len(self.cases)} cases)"
        bad = next(c for c in self.cases if not c.ok) if self.cases else None
        if bad is None:
            return f"FAIL: {self.model} ({self.protocol}): no case ran"
        detail = bad.error if bad.error else bad.comparison.describe()  # type: ignore[union-attr]
        return f"FAIL: {self.model} ({self.protocol}) case {bad.name}: {detail}"


def validation_cases(info: ModelInfo, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Random inputs at several batch sizes and lengths (1, odd, long), plus the special values."""
    np_dtype, _ = TRITON_DTYPES[info.datatype]
    batches = [1, 3] + ([info.max_batch_size] if info.max_batch_size > 3 else [])
    cases: list[tuple[str, np.ndarray]] = []
    for batch in batches:
        for length in (1, 7, 1024, 1031):
            x = (rng.standard_normal((batch, length)) * 4).astype(np_dtype)
            cases.append((f"random b={batch} n={length}", x))
    wide = rng.uniform(-30, 30, size=(2, 513)).astype(np_dtype)
    cases.append(("wide range", wide))
    with np.errstate(over="ignore"):
        special = SPECIAL_VALUES.astype(np_dtype).reshape(1, -1)
    cases.append(("special values", special))
    return cases


def run_validation(
    url: str,
    protocol: str,
    model: str,
    seed: int = 0,
    verbose: bool = False,
    log: Callable[[str], None] | None = None,
) -> ValidationReport:
    client = make_client(url, protocol, verbose)
    report = ValidationReport(model, protocol)
    try:
        info = check_health(client, model)
        if log:
            log(
                f"{model} ({protocol}): live, ready, model ready; input {info.input_name} {info.datatype} "
                f"dims [-1], max batch {info.max_batch_size}, beta {info.beta}"
            )
        infer_input = infer_input_class(protocol)
        _, tol_name = TRITON_DTYPES[info.datatype]
        for name, x in validation_cases(info, np.random.default_rng(seed)):
            result = CaseResult(name, tuple(x.shape))
            try:
                inp = infer_input(info.input_name, list(x.shape), info.datatype)
                inp.set_data_from_numpy(x)
                out = client.infer(model, [inp]).as_numpy(info.output_name)
                if out is None or out.shape != x.shape:
                    result.error = f"output shape {None if out is None else out.shape}, expected {x.shape}"
                else:
                    result.comparison = compare_to_ref(x, out, tol_name, info.beta)
            except Exception as exc:  # noqa: BLE001 - any failure of one case is reported, the others still run
                result.error = f"{type(exc).__name__}: {exc}"
            report.cases.append(result)
    except ValidationError as exc:
        report.cases.append(CaseResult("health", (), error=str(exc)))
    finally:
        client.close()
    return report
