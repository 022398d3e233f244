"""A gevent concurrency driver: N requests in flight against a Swish model, every response checked against swish_ref.

Each of N greenlets sends one request, waits for its answer, checks it and sends the next. Per request the timed part
is what perf_analyzer times: from sending the request to having the whole answer.

- HTTP: each greenlet owns one keep-alive HTTP/1.1 connection on a plain non-blocking socket and waits for it on
  gevent's event loop (a readiness watcher per direction, made once: no socket wrapper and no exception per wait).
  Whole requests (headers and Triton's binary tensor body, encoded by tritonclient) are built once before the
  clock starts and go out in one write; the timed part reads only as far as the answer's Content-Length (or its
  chunks) says, and the answer is parsed after the clock stops. With geventhttpclient and tritonclient's parsing in
  the round trip the driver measured itself: 1.36x perf_analyzer's p50 at c=1 and 2.00x at c=8 on a 2-core host
  that client and server share; this path measures 0.86-0.91x and 0.81-0.85x there
  (``bench/driver_vs_perf_analyzer.py``; perf_analyzer's libcurl client writes headers and body separately and
  encodes and parses inside its timed span).
- gRPC: tritonclient's gRPC client made gevent-cooperative with ``grpc.experimental.gevent.init_gevent()``.

Not ``async_infer``: tritonclient's ``async_infer`` sleeps 10 ms after issuing every request (``gevent.sleep(0.01)``
in tritonclient 2.50), so a driver built on it measured itself (~11 ms p50 at c=1 where the server answers in under
1 ms). Both protocols need gevent's monkey patching before anything else is imported, so the driver runs as its own
process: ``swish-concurrency`` or ``client/concurrency_driver.py``.

Every answer is checked against the float64 reference (``compare_to_ref``), after the clock stops, and counted as a
mismatch when it fails. ``compare_to_ref`` depends only on the input and the answer: an answer byte-identical (same
datatype and shape) to the last one that passed for the same input passes too, and is checked by comparing bytes;
any other answer is compared against the reference.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swish_triton.clients.http_wire import HttpConnection, ResponseDecoder, http_request
from swish_triton.clients.validation import TRITON_DTYPES, check_health, infer_input_class, make_client
from swish_triton.reference import compare_to_ref


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
    checker = _Checker(pool, tol_name, info.beta)
    infer_input = infer_input_class(protocol)
    client: Any = make_client(url, protocol) if protocol == "grpc" else None

    latencies: list[float] = []
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

    # Inputs are encoded once, outside the timed part: latency is the round trip only.
    grpc_inputs = [[prepared(x)] for x in pool] if protocol == "grpc" else []
    http_requests = (
        [http_request(url, model, [prepared(x)], info.output_name) for x in pool] if protocol == "http" else []
    )
    decoder = ResponseDecoder(info.output_name)

    def grpc_worker() -> None:
        while (ticket := take_ticket()) is not None:
            index = ticket % len(pool)
            start = time.perf_counter()
            try:
                result = client.infer(model, grpc_inputs[index])  # blocks only this greenlet (gevent-cooperative gRPC)
                elapsed = time.perf_counter() - start
                out = result.as_numpy(info.output_name)
                if out is None:
                    raise ValueError(f"the response has no output {info.output_name}")
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                checker.error(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(elapsed)
            checker.check(index, out.tobytes(), out.dtype, out.shape)

    def http_worker() -> None:
        connection = HttpConnection(url)
        try:
            while (ticket := take_ticket()) is not None:
                index = ticket % len(pool)
                try:
                    start = time.perf_counter()
                    response = connection.exchange(http_requests[index])
                    elapsed = time.perf_counter() - start
                    output = decoder.output(response)
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    checker.error(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(elapsed)
                checker.check(index, *output)
        finally:
            connection.close()

    worker = http_worker if protocol == "http" else grpc_worker
    began = time.perf_counter()
    try:
        gevent.joinall([gevent.spawn(worker) for _ in range(concurrency)], raise_error=True)
    finally:
        elapsed = time.perf_counter() - began
        if client is not None:
            client.close()
    lat_ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    done = len(latencies)
    return DriverResult(
        model=model,
        protocol=protocol,
        concurrency=concurrency,
        batch_size=batch_size,
        length=length,
        duration_s=elapsed,
        requests=done + checker.errors,
        errors=checker.errors,
        mismatches=checker.mismatches,
        infer_per_s=done * batch_size / elapsed,
        requests_per_s=done / elapsed,
        p50_ms=float(np.percentile(lat_ms, 50)),
        p90_ms=float(np.percentile(lat_ms, 90)),
        p99_ms=float(np.percentile(lat_ms, 99)),
        max_ms=float(lat_ms.max()),
        first_error=checker.first_problem,
    )


class _Checker:
    """Every answer against swish_ref; counts mismatches and errors and keeps the first problem's description."""

    def __init__(self, pool: list[np.ndarray], tol_name: str, beta: float) -> None:
        self.pool = pool
        self.tol_name = tol_name
        self.beta = beta
        self.mismatches = 0
        self.errors = 0
        self.first_problem = ""
        # Per input: (dtype, shape, bytes) of the last answer that passed. An answer equal to it compares the same.
        self._passed: list[tuple[np.dtype[Any], tuple[int, ...], bytes] | None] = [None] * len(pool)

    def check(self, index: int, data: bytes, dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
        passed = self._passed[index]
        if passed is not None and passed[2] == data and passed[0] == dtype and passed[1] == shape:
            return
        try:
            answer = np.frombuffer(data, dtype).reshape(shape)
            comparison = compare_to_ref(self.pool[index], answer, self.tol_name, self.beta)
        except ValueError as exc:  # an answer of the wrong size
            self._mismatch(str(exc))
            return
        if comparison.ok:
            self._passed[index] = (dtype, shape, data)
        else:
            self._mismatch(comparison.describe())

    def _mismatch(self, description: str) -> None:
        self.mismatches += 1
        self.first_problem = self.first_problem or f"mismatch: {description}"

    def error(self, message: str) -> None:
        self.errors += 1
        self.first_problem = self.first_problem or message


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
