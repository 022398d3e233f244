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
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from swish_triton.clients.validation import TRITON_DTYPES, check_health, infer_input_class, make_client
from swish_triton.reference import compare_to_ref

NETWORK_TIMEOUT_S = 60.0  # no answer (or no progress sending) for this long is an error


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
        [_http_request(url, model, [prepared(x)], info.output_name) for x in pool] if protocol == "http" else []
    )
    decoder = _ResponseDecoder(info.output_name)

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
        connection = _HttpConnection(url)
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


def _http_request(url: str, model: str, inputs: list[Any], output_name: str) -> bytes:
    """One whole HTTP/1.1 infer request (headers and body, Triton's binary tensor format), encoded once."""
    import tritonclient.http as httpclient

    # Outputs in binary too, as perf_analyzer asks for them: as JSON text, 1024 floats cost more to parse than the
    # server takes to compute them.
    outputs = [httpclient.InferRequestedOutput(output_name, binary_data=True)]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    head = [
        f"POST /v2/models/{model}/infer HTTP/1.1",
        f"Host: {url}",
        "Content-Type: application/octet-stream",
        f"Content-Length: {len(body)}",
    ]
    if json_size is not None:
        head.append(f"Inference-Header-Content-Length: {json_size}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _HttpResponse(NamedTuple):
    status: int
    head: bytes  # status line and headers, lower case
    body: bytes


class _HttpConnection:
    """One keep-alive HTTP/1.1 connection: a plain non-blocking socket waited on through gevent's event loop.

    ``exchange`` sends a whole request and reads until the answer is complete (Content-Length, chunked, or the server
    closing), parsing only the status line and the headers that say where the answer ends. A connection the server
    closes (``Connection: close``, an error) is opened again for the next request.
    """

    def __init__(self, url: str, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
        import gevent

        host, _, port = url.rpartition(":")
        self._address = (host.strip("[]"), int(port))
        self._timeout_s = timeout_s
        self._hub = gevent.get_hub()
        self._buf = bytearray(1 << 16)
        self._view = memoryview(self._buf)
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        from gevent import socket as gsocket
        from gevent.monkey import get_original

        # gevent's socket for a cooperative connect (and name lookup), then its descriptor under a plain socket.
        cooperative = gsocket.create_connection(self._address, timeout=self._timeout_s)
        plain_socket = get_original("socket", "socket")
        sock: socket.socket = plain_socket(
            cooperative.family, cooperative.type, cooperative.proto, cooperative.detach()
        )
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = self._hub.loop
        self._readable = loop.io(sock.fileno(), 1)
        self._writable = loop.io(sock.fileno(), 2)
        self._timer = loop.timer(self._timeout_s)
        self._sock = sock
        return sock

    def _wait(self, watcher: Any) -> None:
        """Let the other greenlets run until ``watcher``'s socket is ready; TimeoutError after the timeout."""
        from gevent import getcurrent

        switch = getcurrent().switch
        watcher.start(switch, True)
        self._timer.start(switch, False)
        try:
            ready = self._hub.switch()
        finally:
            watcher.stop()
            self._timer.stop()
        if not ready:
            raise TimeoutError(f"no progress on {self._address[0]}:{self._address[1]} for {self._timeout_s:g} s")

    def exchange(self, request: bytes) -> _HttpResponse:
        """Send ``request`` and read its whole answer: the round trip the driver times."""
        sock = self._sock or self._connect()
        try:
            self._send(sock, request)
            return self._receive(sock)
        except BaseException:
            self.close()  # the connection's state is unknown: the next request opens a new one
            raise

    def _send(self, sock: socket.socket, request: bytes) -> None:
        try:
            sent = sock.send(request)
        except BlockingIOError:
            sent = 0
        while sent < len(request):
            self._wait(self._writable)
            try:
                sent += sock.send(memoryview(request)[sent:])
            except BlockingIOError:
                pass

    def _receive(self, sock: socket.socket) -> _HttpResponse:
        n = 0
        head_end = -1
        end = -1  # where the answer ends in the buffer; -1 while unknown
        chunked = until_close = False
        while True:
            # The answer cannot be there before the request left; later waits return at once when bytes are already
            # waiting (the watcher is level-triggered).
            self._wait(self._readable)
            try:
                got = sock.recv_into(self._view[n:])
            except BlockingIOError:
                continue
            if got == 0:
                if until_close:
                    end = n
                    break
                raise ConnectionError("the server closed the connection before the answer was complete")
            n += got
            if n == len(self._buf):
                self._grow(2 * n)
            if head_end < 0:
                head_end = self._buf.find(b"\r\n\r\n", 0, n)
                if head_end < 0:
                    continue
                head = bytes(self._view[:head_end]).lower()
                length = _header(head, b"content-length")
                if length is not None:
                    end = head_end + 4 + int(length)
                    if end > len(self._buf):
                        self._grow(end)
                elif b"chunked" in (_header(head, b"transfer-encoding") or b""):
                    chunked = True
                else:
                    until_close = True
            if chunked:
                end = _chunked_end(self._buf, head_end + 4, n)
            if 0 <= end <= n:
                break
        if not head.startswith(b"http/1."):
            raise ConnectionError(f"not an HTTP/1.x answer: {head[:40]!r}")
        body = bytes(self._view[head_end + 4 : end])
        if chunked:
            body = _dechunk(body)
        if until_close or b"close" in (_header(head, b"connection") or b""):
            self.close()
        return _HttpResponse(int(head[9:12]), head, body)

    def _grow(self, size: int) -> None:
        bigger = bytearray(max(size, 2 * len(self._buf)))
        bigger[: len(self._buf)] = self._buf
        self._view.release()
        self._buf, self._view = bigger, memoryview(bigger)

    def close(self) -> None:
        if self._sock is not None:
            self._readable.close()
            self._writable.close()
            self._timer.close()
            self._sock.close()
            self._sock = None


def _header(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` in a lower-cased header block (no final blank line), or None."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip()


def _chunked_end(buf: bytearray, pos: int, n: int) -> int:
    """Where a chunked body that starts at ``pos`` ends within ``buf[:n]``, or -1 if it is not all there yet."""
    while True:
        line_end = buf.find(b"\r\n", pos, n)
        if line_end < 0:
            return -1
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        if size == 0:  # the last chunk, then trailers, then a blank line
            if line_end + 4 > n:
                return -1
            if buf[line_end + 2 : line_end + 4] == b"\r\n":
                return line_end + 4
            trailers_end = buf.find(b"\r\n\r\n", line_end, n)
            return trailers_end + 4 if trailers_end >= 0 else -1
        pos = line_end + 2 + size + 2
        if pos > n:
            return -1


def _dechunk(body: bytes) -> bytes:
    parts: list[bytes] = []
    pos = 0
    while True:
        line_end = body.index(b"\r\n", pos)
        size = int(body[pos:line_end].split(b";")[0], 16)
        if size == 0:
            return b"".join(parts)
        parts.append(body[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2


class _ResponseDecoder:
    """An infer answer's output tensor as (bytes, dtype, shape); raises for an error answer or a missing output.

    The JSON part of Triton's binary answers is the same for every answer of one shape: it is parsed once.
    """

    def __init__(self, output_name: str) -> None:
        self.output_name = output_name
        self._layouts: dict[bytes, tuple[int, int, np.dtype[Any], tuple[int, ...]]] = {}

    def output(self, response: _HttpResponse) -> tuple[bytes, np.dtype[Any], tuple[int, ...]]:
        body = response.body
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body.decode(errors='replace')[:300]}")
        json_size = _header(response.head, b"inference-header-content-length")
        header = body[: int(json_size)] if json_size is not None else body
        layout = self._layouts.get(header)
        if layout is None:
            layout = self._layout(header)
            if len(self._layouts) < 64:
                self._layouts[header] = layout
        offset, size, dtype, shape = layout
        start = len(header) + offset
        if start + size > len(body):
            raise ValueError(f"the answer ends before its output {self.output_name} does")
        return body[start : start + size], dtype, shape

    def _layout(self, header: bytes) -> tuple[int, int, np.dtype[Any], tuple[int, ...]]:
        """Where the output's bytes start after the JSON part, how many, their dtype and shape."""
        from tritonclient.utils import triton_to_np_dtype

        offset = 0
        for output in json.loads(header).get("outputs", []):
            size = output.get("parameters", {}).get("binary_data_size")
            if output.get("name") != self.output_name:
                offset += size or 0
                continue
            np_type = triton_to_np_dtype(output.get("datatype", ""))
            if size is None or np_type is None or np_type is np.object_:
                raise ValueError(f"output {self.output_name} is not binary {TRITON_DTYPES} data: {header[:200]!r}")
            return offset, int(size), np.dtype(np_type), tuple(int(d) for d in output["shape"])
        raise ValueError(f"the answer has no output {self.output_name}: {header[:200]!r}")


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
