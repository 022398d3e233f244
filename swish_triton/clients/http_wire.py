"""The concurrency driver's HTTP/1.1 wire: whole infer requests encoded once, one keep-alive connection per greenlet
on a plain non-blocking socket waited on through gevent's event loop, answers read as far as their Content-Length
(or chunks) says and decoded after the clock stops. ``concurrency.py`` says why the driver needs this.
"""

from __future__ import annotations

import json
import socket
from typing import Any, NamedTuple

import numpy as np

from swish_triton.clients.validation import TRITON_DTYPES

NETWORK_TIMEOUT_S = 60.0  # no answer (or no progress sending) for this long is an error


def http_request(url: str, model: str, inputs: list[Any], output_name: str) -> bytes:
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


class HttpResponse(NamedTuple):
    status: int
    head: bytes  # status line and headers, lower case
    body: bytes


class HttpConnection:
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
        self._sock = sock
        return sock

    def _wait(self, watcher: Any) -> None:
        """Let the other greenlets run until ``watcher``'s socket is ready; TimeoutError after the timeout."""
        from gevent import getcurrent

        switch = getcurrent().switch
        # A fresh timer per wait: libev's timers resume with what is left when restarted after a stop, so one timer
        # reused for every wait would expire once the waits added up to the timeout.
        timer = self._hub.loop.timer(self._timeout_s)
        watcher.start(switch, True)
        timer.start(switch, False)
        try:
            ready = self._hub.switch()
        finally:
            watcher.stop()
            timer.close()
        if not ready:
            raise TimeoutError(f"no progress on {self._address[0]}:{self._address[1]} for {self._timeout_s:g} s")

    def exchange(self, request: bytes) -> HttpResponse:
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

    def _receive(self, sock: socket.socket) -> HttpResponse:
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
        return HttpResponse(int(head[9:12]), head, body)

    def _grow(self, size: int) -> None:
        bigger = bytearray(max(size, 2 * len(self._buf)))
        bigger[: len(self._buf)] = self._buf
        self._view.release()
        self._buf, self._view = bigger, memoryview(bigger)

    def close(self) -> None:
        if self._sock is not None:
            self._readable.close()
            self._writable.close()
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


class ResponseDecoder:
    """An infer answer's output tensor as (bytes, dtype, shape); raises for an error answer or a missing output.

    The JSON part of Triton's binary answers is the same for every answer of one shape: it is parsed once.
    """

    def __init__(self, output_name: str) -> None:
        self.output_name = output_name
        self._layouts: dict[bytes, tuple[int, int, np.dtype[Any], tuple[int, ...]]] = {}

    def output(self, response: HttpResponse) -> tuple[bytes, np.dtype[Any], tuple[int, ...]]:
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
