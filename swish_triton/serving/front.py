"""The HTTP and gRPC front of the embedded server: checks every inference request, then forwards it to tritonserver.

The launcher binds the public ports here and runs tritonserver on private 127.0.0.1 ports behind it. The front
refuses requests whose shapes would crash tritonserver 2.51 (``request_guard``) with HTTP 400 / INVALID_ARGUMENT,
answers the health endpoints from the supervisor's view (every loaded model able to serve), forwards everything
else unchanged (headers and gRPC metadata included, so API keys reach Triton), and on stop drains: it stops
accepting, lets requests in flight finish and closes idle keep-alive connections.

HTTP is handled at the byte level (request head, Content-Length or chunked body; one request at a time per
connection, which is what HTTP/1.1 keep-alive and pipelining require); gRPC by an HTTP/2 frame relay
(``grpc_front.py``) that checks inference messages and passes everything else through. gRPC ``ServerReady`` comes
from tritonserver itself: probes use HTTP ``/v2/health/ready`` or ``python -m swish_triton.serving.health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field

from swish_triton.serving.grpc_front import GrpcRelay
from swish_triton.serving.request_guard import (
    DEFAULT_MAX_TENSOR_BYTES,
    RejectedRequest,
    check_json_request,
)

log = logging.getLogger(__name__)

INFER_PATH = re.compile(rb"^/v2/models/([^/?]+)(?:/versions/[^/?]+)?/infer(?:\?.*)?$")
MODEL_READY_PATH = re.compile(rb"^/v2/models/([^/?]+)(?:/versions/[^/?]+)?/ready(?:\?.*)?$")
MAX_HEAD_BYTES = 64 * 1024
# A bound on one HTTP body (JSON inputs are ~10 bytes per element, so well above the models' 64 MiB of data).
DEFAULT_MAX_BODY_BYTES = 1 << 30


@dataclass
class ServingState:
    """What the supervisor knows and the front reports: ready only when tritonserver and every model can serve."""

    ready: bool = False
    unhealthy_models: set[str] = field(default_factory=set)
    upstream_http: str = ""
    upstream_grpc: str = ""


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def _http_response(status: int, reason: str, body: bytes, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _parse_head(head: bytes) -> tuple[bytes, bytes, bytes, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    try:
        method, target, version = lines[0].split(b" ", 2)
    except ValueError:
        raise _BadRequest(400, "Bad Request", "malformed HTTP request line") from None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return method, target, version, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes], limit: int) -> bytes:
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        chunks, total = [], 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            total += size
            if total > limit:
                raise _BadRequest(413, "Payload Too Large", f"request body above {limit} bytes")
            data = await reader.readexactly(size + 2)
            if size == 0:
                # Trailers end with an empty line; we accept none.
                return b"".join(chunks)
            chunks.append(data[:-2])
    length = int(headers.get(b"content-length", b"0") or 0)
    if length > limit:
        raise _BadRequest(413, "Payload Too Large", f"request body of {length} bytes is above {limit} bytes")
    return await reader.readexactly(length) if length else b""


def _check_http_infer(headers: dict[bytes, bytes], body: bytes, max_tensor_bytes: int) -> None:
    json_len = headers.get(b"inference-header-content-length")
    encoding = headers.get(b"content-encoding", b"").lower()
    if encoding in (b"gzip", b"deflate"):
        inflater = zlib.decompressobj(wbits=31 if encoding == b"gzip" else 15)
        body = inflater.decompress(body, DEFAULT_MAX_BODY_BYTES)
    try:
        part = body[: int(json_len)] if json_len is not None else body
        header = json.loads(part)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RejectedRequest(f"the request's JSON does not parse: {exc}") from None
    check_json_request(header, max_tensor_bytes)


class _HttpFront:
    def __init__(self, state: ServingState, max_tensor_bytes: int, max_body_bytes: int) -> None:
        self.state, self.max_tensor_bytes, self.max_body_bytes = state, max_tensor_bytes, max_body_bytes
        self.server: asyncio.base_events.Server | None = None
        self.idle: set[asyncio.StreamWriter] = set()
        self.in_flight = 0
        self.draining = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.idle.add(writer)
        try:
            while not self.draining:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    writer.write(_http_response(431, "Request Header Fields Too Large", b"", close=True))
                    return
                self.idle.discard(writer)
                self.in_flight += 1
                try:
                    upstream, keep = await self._one_request(head, reader, writer, upstream)
                finally:
                    self.in_flight -= 1
                await writer.drain()
                if not keep:
                    return
                self.idle.add(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.idle.discard(writer)
            for w in (writer, upstream[1] if upstream else None):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _one_request(
        self,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, bool]:
        try:
            method, target, version, headers = _parse_head(head[:-4])
            body = await _read_body(reader, headers, self.max_body_bytes)
        except _BadRequest as exc:
            writer.write(_http_response(exc.status, exc.reason, _error_body(str(exc)), close=True))
            return upstream, False
        except ValueError:
            writer.write(_http_response(400, "Bad Request", _error_body("malformed HTTP request"), close=True))
            return upstream, False
        keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
        local = self._answer_locally(method, target, headers, body)
        if local is not None:
            writer.write(local)
            return upstream, keep
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            # Forward what we read, framed by length: Triton then sees exactly the bytes that were checked.
            head = re.sub(rb"(?im)^transfer-encoding:[^\r\n]*\r\n", b"", head)
            head = head[:-2] + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        if upstream is None:
            host, port = self.state.upstream_http.rsplit(":", 1)
            try:
                upstream = await asyncio.open_connection(host, int(port), limit=MAX_HEAD_BYTES)
            except OSError:
                writer.write(_http_response(503, "Service Unavailable", _error_body("the server is restarting")))
                return None, keep
        up_reader, up_writer = upstream
        up_writer.write(head + body)
        try:
            await up_writer.drain()
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            _, _, _, response_headers = _parse_head(response_head[:-4])
            writer.write(response_head)
            await self._copy_response_body(up_reader, writer, response_headers, method)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, _BadRequest):
            # tritonserver went away mid-request (crash or restart): the client learns it, the supervisor acts.
            up_writer.close()
            writer.write(_http_response(502, "Bad Gateway", _error_body("the server failed this request"), True))
            return None, False
        if response_headers.get(b"connection", b"").lower() == b"close":
            up_writer.close()
            upstream = None
        return upstream, keep

    async def _copy_response_body(
        self, up: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[bytes, bytes], method: bytes
    ) -> None:
        if method == b"HEAD":
            return
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            while True:
                line = await up.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                writer.write(line + await up.readexactly(size + 2))
                if size == 0:
                    return
        length = int(headers.get(b"content-length", b"0") or 0)
        while length > 0:
            data = await up.read(min(length, 1 << 20))
            if not data:
                raise ConnectionError("upstream closed")
            writer.write(data)
            length -= len(data)

    def _answer_locally(self, method: bytes, target: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes | None:
        path = target.split(b"?", 1)[0]
        if path == b"/v2/health/ready":
            if self.state.ready and not self.draining:
                return _http_response(200, "OK", b"")
            return _http_response(503, "Service Unavailable", _error_body(self._not_ready_reason()))
        match = MODEL_READY_PATH.match(target)
        if match and match.group(1).decode(errors="replace") in self.state.unhealthy_models:
            return _http_response(503, "Service Unavailable", _error_body("the model is being reloaded"))
        if method == b"POST" and INFER_PATH.match(target):
            try:
                _check_http_infer(headers, body, self.max_tensor_bytes)
            except RejectedRequest as exc:
                return _http_response(400, "Bad Request", _error_body(str(exc)))
        return None

    def _not_ready_reason(self) -> str:
        if self.draining:
            return "the server is shutting down"
        if self.state.unhealthy_models:
            return f"reloading {', '.join(sorted(self.state.unhealthy_models))}"
        return "tritonserver is not ready"


class Front:
    """The public HTTP and gRPC listeners of one embedded server, run on their own event-loop thread."""

    def __init__(
        self,
        state: ServingState,
        host: str,
        http_port: int,
        grpc_port: int,
        max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.state, self.host, self.http_port, self.grpc_port = state, host, http_port, grpc_port
        self.http = _HttpFront(state, max_tensor_bytes, max_body_bytes)
        self.grpc = GrpcRelay(lambda: state.upstream_grpc, max_tensor_bytes)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind both ports (raises OSError if either is taken: binding is the port check) and serve."""
        bound: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(bound,), name="swish-front", daemon=True)
        self._thread.start()
        bound.result(timeout=30)

    def _run(self, bound: Future[None]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._bind())
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it in the caller
            bound.set_exception(exc)
            return
        bound.set_result(None)
        self._loop.run_forever()

    async def _bind(self) -> None:
        self.http.server = await asyncio.start_server(
            self.http.handle, self.host, self.http_port, limit=MAX_HEAD_BYTES, reuse_address=True
        )
        try:
            await self.grpc.start(self.host, self.grpc_port)
        except OSError:
            self.http.server.close()
            raise

    def in_flight(self) -> int:
        return self.http.in_flight + self.grpc.in_flight()

    def stop(self, drain_timeout_s: float) -> bool:
        """Stop accepting, wait up to drain_timeout_s for requests in flight, close everything. True if drained."""
        if self._thread is None:
            return True
        try:
            drained = asyncio.run_coroutine_threadsafe(self._drain(drain_timeout_s), self._loop).result(
                drain_timeout_s + 10
            )
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
        return drained

    async def _drain(self, timeout_s: float) -> bool:
        self.http.draining = self.grpc.draining = True
        for server in (self.http.server, self.grpc.server):
            if server is not None:
                server.close()
        for writer in list(self.http.idle):
            writer.close()
        self.grpc.goaway_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        drained = self.in_flight() == 0
        self.grpc.close_all()
        await asyncio.sleep(0.05)  # let the connection handlers see their sockets close
        return drained
