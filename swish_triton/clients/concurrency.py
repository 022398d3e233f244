"""A gevent concurrency driver: N requests in flight against a Swish model, every response checked against swish_ref.

Each of N greenlets sends one request, waits for its answer, checks it and sends the next. HTTP goes through
tritonclient's gevent client with N pooled connections, each greenlet calling the blocking ``infer`` (which yields to
the others while it waits on its socket). Not ``async_infer``: tritonclient's ``async_infer`` sleeps 10 ms after
issuing every request (``gevent.sleep(0.01)`` in tritonclient 2.50), so a driver built on it measured itself
(~11 ms p50 at c=1 where the server answers in under 1 ms). gRPC goes through tritonclient's gRPC client made
gevent-cooperative with ``grpc.experimental.gevent.init_gevent()``. Both need gevent's monkey patching before
anything else is imported, so the driver runs as its own process: ``swish-concurrency`` or
``client/concurrency_driver.py``.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swish_triton.clients.validation import TRITON_DTYPES, check_health, infer_input_class, make_client
from swish_triton.reference import compare_to_ref


def prepare_gevent() -> None:
    """Patch the standard library for gevent and let gRPC cooperate with it. Call first thing in the process."""
    from swish_triton.clients.cli import prepare_gevent as prepare

    prepare()


@dataclass
class DriverResult:
    model: str
    protocol: str
    concurrency: int
    batch_size: int
    length: int
    duration_s: float
    requests: int
    errors: int
    mismatches: int
    infer_per_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_error: str = ""
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.errors == 0 and self.mismatches == 0

    def summary(self) -> str:
        return (
            f"{self.model} {self.protocol} c={self.concurrency} b={self.batch_size} n={self.length}: "
            f"{self.requests} requests in {self.duration_s:.2f} s, {self.infer_per_s:.0f} infer/s, "
            f"p50 {self.p50_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"{self.errors} errors, {self.mismatches} mismatches"
        )


def run_driver(
    url: str,
    protocol: str,
    model: str,
    concurrency: int,
    duration_s: float | None = 5.0,
    count: int | None = None,
    batch_size: int = 1,
    length: int = 1024,
    seed: int = 0,
    input_pool: int = 16,
) -> DriverResult:
    """Keep ``concurrency`` requests in flight until ``count`` requests completed or ``duration_s`` passed."""
    import gevent

    if (duration_s is None) == (count is None):
        raise ValueError("give exactly one of duration_s and count")
    probe = make_client(url, protocol)
    try:
        info = check_health(probe, model)
    finally:
        probe.close()
    np_dtype, tol_name = TRITON_DTYPES[info.datatype]
    rng = np.random.default_rng(seed)
    pool = [(rng.standard_normal((batch_size, length)) * 4).astype(np_dtype) for _ in range(input_pool)]
    infer_input = infer_input_class(protocol)
    client = make_client(url, protocol) if protocol == "grpc" else _http_client(url, concurrency)

    latencies: list[float] = []
    errors = 0
    mismatches = 0
    first_error = ""
    issued = 0
    deadline = time.perf_counter() + duration_s if duration_s is not None else float("inf")

    def take_ticket() -> int | None:
        nonlocal issued
        if time.perf_counter() >= deadline or (count is not None and issued >= count):
            return None
        issued += 1
        return issued - 1

    def prepared(x: np.ndarray) -> Any:
        inp = infer_input(info.input_name, list(x.shape), info.datatype)
        inp.set_data_from_numpy(x)  # binary tensor data over HTTP too (JSON cannot carry FP16)
        return inp

    # Inputs are encoded once, outside the timed part: latency is the round trip only. Outputs come back in binary
    # over HTTP too, as perf_analyzer asks for them: left to its default, Triton writes 1024 floats as JSON text and
    # the driver parses them back, which measured ~1.5x perf_analyzer's p50 at c=1 on a 2-core host.
    requests = [[prepared(x)] for x in pool]
    outputs = [_binary_output(info.output_name)] if protocol == "http" else None

    def worker() -> None:
        nonlocal errors, mismatches, first_error
        while (ticket := take_ticket()) is not None:
            x, inputs = pool[ticket % len(pool)], requests[ticket % len(pool)]
            start = time.perf_counter()
            try:
                # Both clients block only this greenlet: the HTTP pool's sockets and gRPC are gevent-cooperative.
                result = client.infer(model, inputs, outputs=outputs)
                latencies.append(time.perf_counter() - start)
                out = result.as_numpy(info.output_name)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                continue
            comparison = compare_to_ref(x, out, tol_name, info.beta)
            if not comparison.ok:
                mismatches += 1
                first_error = first_error or f"mismatch: {comparison.describe()}"

    began = time.perf_counter()
    try:
        gevent.joinall([gevent.spawn(worker) for _ in range(concurrency)], raise_error=True)
    finally:
        client.close()
    elapsed = time.perf_counter() - began
    lat_ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    done = len(latencies)
    return DriverResult(
        model=model,
        protocol=protocol,
        concurrency=concurrency,
        batch_size=batch_size,
        length=length,
        duration_s=elapsed,
        requests=done + errors,
        errors=errors,
        mismatches=mismatches,
        infer_per_s=done * batch_size / elapsed,
        requests_per_s=done / elapsed,
        p50_ms=float(np.percentile(lat_ms, 50)),
        p90_ms=float(np.percentile(lat_ms, 90)),
        p99_ms=float(np.percentile(lat_ms, 99)),
        max_ms=float(lat_ms.max()),
        first_error=first_error,
    )


def _binary_output(name: str) -> Any:
    import tritonclient.http as httpclient

    return httpclient.InferRequestedOutput(name, binary_data=True)


def _http_client(url: str, concurrency: int) -> Any:
    import tritonclient.http as httpclient

    # One pooled connection per request in flight; the client is gevent-based, so greenlets share it.
    return httpclient.InferenceServerClient(url, concurrency=concurrency, connection_timeout=60, network_timeout=60)


def write_results(results: list[DriverResult], path: Path) -> None:
    rows = [asdict(r) for r in results]
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=2) + "\n")
        return
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
