"""The HTTP half of the front: an HTTP/1.1 relay that checks inference requests before tritonserver sees them.

Each client connection gets its own connection to tritonserver. Requests are taken one at a time (which is what
keep-alive and pipelining require: later requests wait in the buffer until the response before them is done); an
inference request's JSON (the whole body, or the part before the binary data) is checked by ``request_guard`` and
refused with 400 if it would crash tritonserver 2.51; ``/v2/health/ready`` and a reloading model's ready endpoint
are answered from the supervisor's view; everything else goes to tritonserver unchanged and its response comes back
as it arrives. Built on asyncio protocols (callbacks), so a relayed request costs a few buffer operations.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from typing import Any

from swish_triton.serving.request_guard import RejectedRequest, check_json_request

INFER_PATH = re.compile(rb"^/v2/models/([^/?]+)(?:/versions/[^/?]+)?/infer(?:\?.*)?$")
MODEL_READY_PATH = re.compile(rb"^/v2/models/([^/?]+)(?:/versions/[^/?]+)?/ready(?:\?.*)?$")
MAX_HEAD_BYTES = 64 * 1024
# A bound on one HTTP body (JSON inputs are ~10 bytes per element, so well above the models' 64 MiB of data).
DEFAULT_MAX_BODY_BYTES = 1 << 30


class _Incomplete(Exception):
    """More bytes are needed."""


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def http_response(status: int, reason: str, body: bytes, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def parse_head(head: bytes) -> tuple[bytes, bytes, bytes, dict[bytes, bytes]]:
    """(method or version, target or status, version or reason, lower-case headers) of a request or response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) != 3:
        raise _BadRequest(400, "Bad Request", "malformed HTTP start line")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


def _chunked_end(buf: bytearray, start: int, limit: int) -> tuple[int, bytes]:
    """End offset of a chunked body starting at ``start`` in buf, and its de-chunked bytes; _Incomplete if short."""
    pos, chunks, total = start, [], 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            raise _Incomplete
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0].strip(), 16)
        except ValueError:
            raise _BadRequest(400, "Bad Request", "malformed chunked body") from None
        total += size
        if total > limit:
            raise _BadRequest(413, "Payload Too Large", f"request body above {limit} bytes")
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # the last chunk, then trailers, then an empty line
            if end < 0:
                raise _Incomplete
            return end + 4, b"".join(chunks)
        if len(buf) < eol + 2 + size + 2:
            raise _Incomplete
        chunks.append(bytes(buf[eol + 2 : eol + 2 + size]))
        pos = eol + 2 + size + 2


def check_http_infer(headers: dict[bytes, bytes], body: bytes, max_tensor_bytes: int) -> None:
    json_len = headers.get(b"inference-header-content-length")
    encoding = headers.get(b"content-encoding", b"").lower()
    try:
        if encoding in (b"gzip", b"deflate"):
            inflater = zlib.decompressobj(wbits=31 if encoding == b"gzip" else 15)
            body = inflater.decompress(body, int(json_len) if json_len is not None else DEFAULT_MAX_BODY_BYTES)
        part = body[: int(json_len)] if json_len is not None else body
        header = json.loads(part)
    except (ValueError, UnicodeDecodeError, zlib.error) as exc:
        raise RejectedRequest(f"the request's JSON does not parse: {exc}") from None
    except RecursionError:
        raise RejectedRequest("the request's JSON does not parse: nested too deep") from None
    check_json_request(header, max_tensor_bytes)


class _Upstream(asyncio.Protocol):
    """tritonserver's side of one relayed connection."""

    def __init__(self, conn: _HttpConnection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.conn.from_server(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.server_closed(self)

    def pause_writing(self) -> None:
        self.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        self.conn.transport.resume_reading()


class _HttpConnection(asyncio.Protocol):
    def __init__(self, relay: HttpRelay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = bytearray()
        self.upstream: _Upstream | None = None
        self.busy = False  # a request is with tritonserver
        self.keep = True
        self.request = b""
        self.method = b""
        self.attempt = 0
        self.reused = False
        self.response = bytearray()  # response head being read
        self.head_sent = False
        self.remaining = 0  # body bytes of the response still to come (-1: chunked, -2: until close)
        self.chunk_buf = bytearray()
        self.server_close = False

    # --- client side -------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.relay.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.connections.discard(self)
        if self.busy:
            self.busy = False
            self.relay.in_flight -= 1
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next_request()

    def idle(self) -> bool:
        return not self.busy and not self.buf

    def _reply(self, response: bytes, close: bool = False) -> None:
        self.transport.write(response)
        if close or not self.keep or self.relay.draining:
            self.transport.close()

    def _next_request(self) -> None:
        while not self.busy and self.buf and not self.transport.is_closing():
            try:
                request, method, target, headers, body = self._take_request()
            except _Incomplete:
                if len(self.buf) > MAX_HEAD_BYTES and self.buf.find(b"\r\n\r\n") < 0:
                    self._reply(http_response(431, "Request Header Fields Too Large", b""), close=True)
                return
            except _BadRequest as exc:
                self._reply(http_response(exc.status, exc.reason, error_body(str(exc))), close=True)
                return
            local = self.relay.answer_locally(method, target, headers, body)
            if local is not None:
                self._reply(local)
                continue
            self.busy, self.request, self.method, self.attempt = True, request, method, 0
            self.relay.in_flight += 1
            self._send_upstream()

    def _take_request(self) -> tuple[bytes, bytes, bytes, dict[bytes, bytes], bytes]:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or end > MAX_HEAD_BYTES:
            raise _Incomplete
        head = bytes(self.buf[: end + 4])
        method, target, version, headers = parse_head(head[:-4])
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            stop, body = _chunked_end(self.buf, end + 4, self.relay.max_body_bytes)
            # Forward what was read, framed by length: tritonserver sees exactly the bytes that were checked.
            head = re.sub(rb"(?im)^transfer-encoding:[^\r\n]*\r\n", b"", head)
            head = head[:-2] + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        else:
            try:
                length = int(headers.get(b"content-length", b"0") or 0)
            except ValueError:
                raise _BadRequest(400, "Bad Request", "malformed Content-Length") from None
            if length > self.relay.max_body_bytes:
                raise _BadRequest(413, "Payload Too Large", f"request body of {length} bytes is too large")
            stop = end + 4 + length
            if len(self.buf) < stop:
                raise _Incomplete
            body = bytes(self.buf[end + 4 : stop])
        del self.buf[:stop]
        self.keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
        return head + body, method, target, headers, body

    # --- tritonserver side ---------------------------------------------------------------------------------------

    def _send_upstream(self) -> None:
        self.response.clear()
        self.head_sent = False
        if self.upstream is not None and self.upstream.transport is not None:
            self.reused = True
            self.upstream.transport.write(self.request)
            return
        self.reused = False
        asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        host, port = self.relay.upstream().rsplit(":", 1)
        try:
            await asyncio.get_running_loop().create_connection(self._new_upstream, host, int(port))
        except OSError:
            self._finish(http_response(503, "Service Unavailable", error_body("the server is restarting")))
            return
        if self.upstream is not None and self.upstream.transport is not None and self.busy:
            self.upstream.transport.write(self.request)

    def _new_upstream(self) -> _Upstream:
        self.upstream = _Upstream(self)
        return self.upstream

    def _finish(self, extra: bytes = b"", close: bool = False) -> None:
        """The response is complete (or replaced by ``extra``): the next buffered request may go."""
        if self.busy:
            self.busy = False
            self.relay.in_flight -= 1
        if extra or close:
            self._reply(extra, close=close)
        if not self.keep or self.relay.draining:
            self.transport.close()
            return
        self._next_request()

    def from_server(self, upstream: _Upstream, data: bytes) -> None:
        if upstream is not self.upstream or not self.busy:
            return
        if not self.head_sent:
            self.response += data
            end = self.response.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.response[: end + 4])
            data = bytes(self.response[end + 4 :])
            self.response.clear()
            _, _, _, headers = parse_head(head[:-4])
            self.server_close = headers.get(b"connection", b"").lower() == b"close"
            if self.method == b"HEAD" or head.split(b" ", 2)[1] in (b"204", b"304"):
                self.remaining = 0
            elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                self.remaining = -1
            elif b"content-length" in headers:
                self.remaining = int(headers[b"content-length"])
            else:
                self.remaining = -2
            self.head_sent = True
            self.transport.write(head)
        self._body(data)

    def _body(self, data: bytes) -> None:
        if self.remaining >= 0:
            piece = data[: self.remaining]
            if piece:
                self.transport.write(piece)
            self.remaining -= len(piece)
            done = self.remaining == 0
        elif self.remaining == -1:
            self.transport.write(data)
            self.chunk_buf += data
            try:
                stop, _ = _chunked_end(self.chunk_buf, 0, 1 << 62)
                done = stop <= len(self.chunk_buf)
            except (_Incomplete, _BadRequest):
                done = False
        else:
            self.transport.write(data)
            done = False
        if done:
            self.chunk_buf.clear()
            if self.server_close and self.upstream is not None and self.upstream.transport is not None:
                self.upstream.transport.close()
                self.upstream = None
            self._finish()

    def server_closed(self, upstream: _Upstream) -> None:
        if upstream is not self.upstream:
            return
        self.upstream = None
        if not self.busy:
            return
        if self.remaining == -2 and self.head_sent:
            self._finish(close=True)  # a body delimited by the end of the connection
        elif not self.head_sent and not self.response and self.reused and self.attempt == 0:
            # tritonserver closed a kept-alive connection (idle, or restarted) before reading this request:
            # nothing was processed, so send it again on a fresh connection.
            self.attempt = 1
            self._send_upstream()
        elif not self.head_sent:
            self._finish(http_response(502, "Bad Gateway", error_body("the server failed this request")), True)
        else:
            self._finish(close=True)  # cut mid-response (crash): the client sees it


class HttpRelay:
    """Serves one public HTTP port; ``upstream()`` gives tritonserver's current host:port, ``answer(...)`` the
    front's own answer to a request (or None to forward it)."""

    def __init__(self, upstream: Any, answer: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.upstream, self.answer_locally, self.max_body_bytes = upstream, answer, max_body_bytes
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[_HttpConnection] = set()
        self.in_flight = 0
        self.draining = False

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _HttpConnection(self), host, port, reuse_address=True)

    def close_idle(self) -> None:
        for conn in list(self.connections):
            if conn.idle():
                conn.transport.close()

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.transport.close()
