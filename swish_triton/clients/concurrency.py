"""A gevent concurrency driver: N requests in flight against a Swish model, every response checked against swish_ref.

Each of N greenlets sends one request, waits for its answer, checks it and sends the next. Over HTTP each greenlet
owns one keep-alive connection (geventhttpclient, the library under tritonclient's HTTP client) and posts request
bodies that tritonclient encoded once, before the clock starts; tritonclient parses the answers after the clock
stops. Per request the timed part is then what perf_analyzer times: send the bytes, read the answer. Not
``async_infer``: tritonclient's ``async_infer`` sleeps 10 ms after issuing every request (``gevent.sleep(0.01)`` in
tritonclient 2.50), so a driver built on it measured itself (~11 ms p50 at c=1 where the server answers in under
1 ms); and ``infer`` re-encodes the request and parses the answer inside the round trip (~1.4x perf_analyzer's p50
at c=1 on a quiet 2-core host). gRPC goes through tritonclient's gRPC client made
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
    client = make_client(url, protocol) if protocol == "grpc" else None

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

    # Inputs are encoded once, outside the timed part: latency is the round trip only.
    requests = [[prepared(x)] for x in pool]
    bodies = [_http_body(inputs, info.output_name) for inputs in requests] if protocol == "http" else []

    def infer_grpc(index: int) -> np.ndarray:
        start = time.perf_counter()
        result = client.infer(model, requests[index])  # blocks only this greenlet (gevent-cooperative gRPC)
        latencies.append(time.perf_counter() - start)
        return result.as_numpy(info.output_name)

    def worker() -> None:
        nonlocal errors, mismatches, first_error
        connection = _HttpConnection(url, model) if protocol == "http" else None
        try:
            run(connection)
        finally:
            if connection is not None:
                connection.close()

    def run(connection: _HttpConnection | None) -> None:
        nonlocal errors, mismatches, first_error
        while (ticket := take_ticket()) is not None:
            index = ticket % len(pool)
            x = pool[index]
            try:
                if connection is not None:
                    out = connection.infer(bodies[index], latencies).as_numpy(info.output_name)
                else:
                    out = infer_grpc(index)
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
        if client is not None:
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


def _http_body(inputs: list[Any], output_name: str) -> tuple[bytes, dict[str, str]]:
    """A request's body and headers in Triton's binary tensor format, encoded once by tritonclient."""
    import tritonclient.http as httpclient

    # Outputs in binary too, as perf_analyzer asks for them: as JSON text, 1024 floats cost more to parse than the
    # server takes to compute them.
    outputs = [httpclient.InferRequestedOutput(output_name, binary_data=True)]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    headers = {"Content-Type": "application/octet-stream"}
    if json_size is not None:
        headers["Inference-Header-Content-Length"] = str(json_size)
    return body, headers


class _HttpConnection:
    """One keep-alive HTTP connection to one model's infer endpoint; latency is the post + read of the answer."""

    def __init__(self, url: str, model: str) -> None:
        from geventhttpclient import HTTPClient
        from geventhttpclient.url import URL

        self._client = HTTPClient.from_url(
            URL(f"http://{url}/"), concurrency=1, connection_timeout=60, network_timeout=60
        )
        self._path = f"/v2/models/{model}/infer"

    def infer(self, request: tuple[bytes, dict[str, str]], latencies: list[float]) -> Any:
        import tritonclient.http as httpclient

        body, headers = request
        start = time.perf_counter()
        response = self._client.post(self._path, body=body, headers=headers)
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {data.decode(errors='replace')[:300]}")
        latencies.append(elapsed)
        header_length = response.get("Inference-Header-Content-Length")
        return httpclient.InferenceServerClient.parse_response_body(
            data, header_length=int(header_length) if header_length is not None else None
        )

    def close(self) -> None:
        self._client.close()


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
