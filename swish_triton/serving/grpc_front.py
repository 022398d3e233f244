"""The gRPC half of the front: an HTTP/2 frame relay that checks every inference message before tritonserver sees it.

A full gRPC proxy in Python (``grpc.aio`` server plus channel) cost about 1 ms of CPU per request on a 2-core host,
more than tritonserver itself, so this relays HTTP/2 frames between each client connection and its own connection to
tritonserver and looks only at request DATA frames: it reassembles each gRPC message of a stream and, when a frame
completes a message, parses it as ``ModelInferRequest`` and checks its shapes (``request_guard``) *before* that frame
goes on. Only ``ModelInferRequest`` has a field 5 (``inputs``) among the service's request messages, so other calls
parse with no inputs and pass. A refused message's last frame is not forwarded: tritonserver gets RST_STREAM for
the stream (it never sees a complete message), the client gets a trailers-only response with ``INVALID_ARGUMENT``
and the reason, and a WINDOW_UPDATE for the bytes that were dropped, so flow control stays balanced. Header blocks
pass untouched (HPACK state stays consistent); the front's own header block uses literal fields without indexing.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import urllib.parse
import zlib
from collections.abc import Callable

from google.protobuf.message import DecodeError
from tritonclient.grpc import service_pb2

from swish_triton.serving.request_guard import RejectedRequest, check_grpc_request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, GOAWAY, WINDOW_UPDATE = 0x0, 0x1, 0x3, 0x7, 0x8
END_STREAM, PADDED = 0x1, 0x8
CANCEL = 0x8
GRPC_INVALID_ARGUMENT = 3


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream) + payload


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _literal(name: str, value: str) -> bytes:
    """HPACK literal header field without indexing, new name, no Huffman: changes no decoder state."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


def grpc_error_headers(stream: int, code: int, message: str) -> bytes:
    block = b"\x88"  # :status 200 (static table entry 8)
    block += _literal("content-type", "application/grpc")
    block += _literal("grpc-status", str(code))
    block += _literal("grpc-message", urllib.parse.quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~"))
    return frame(HEADERS, END_STREAM | 0x4, stream, block)


def _unpadded(flags: int, payload: bytes) -> bytes:
    if flags & PADDED and payload:
        return payload[1 : len(payload) - payload[0]]
    return payload


def _decompress(message: bytes) -> bytes:
    for wbits in (31, 15, -15):  # gzip, zlib (deflate), raw deflate
        with contextlib.suppress(zlib.error):
            return zlib.decompress(message, wbits)
    raise RejectedRequest("a compressed gRPC message could not be decompressed (gzip or deflate)")


def check_message(message: bytes, compressed: bool, max_tensor_bytes: int) -> None:
    if compressed:
        message = _decompress(message)
    try:
        request = service_pb2.ModelInferRequest.FromString(message)
    except DecodeError:
        return  # not an inference request (another call's message, e.g. one with a bytes field)
    if request.inputs:
        check_grpc_request(request, max_tensor_bytes)


class _Stream:
    __slots__ = ("pending", "refused")

    def __init__(self) -> None:
        self.pending = bytearray()
        self.refused = False

    def completed_messages(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Add DATA bytes; return the messages they complete as (payload, compressed)."""
        self.pending += data
        done = []
        while len(self.pending) >= 5:
            length = int.from_bytes(self.pending[1:5], "big")
            if len(self.pending) < 5 + length:
                break
            done.append((bytes(self.pending[5 : 5 + length]), self.pending[0] == 1))
            del self.pending[: 5 + length]
        return done


class _UpstreamProtocol(asyncio.Protocol):
    """tritonserver's side of one relayed connection."""

    def __init__(self, conn: _RelayedConnection) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.conn.from_server(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.transport.close()

    def pause_writing(self) -> None:
        self.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        self.conn.transport.resume_reading()


class _RelayedConnection(asyncio.Protocol):
    """One client connection and its own connection to tritonserver. Callbacks, not coroutines: a relayed request
    costs a few buffer operations instead of several task wakeups."""

    def __init__(self, relay: GrpcRelay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.upstream: asyncio.Transport | None = None
        self.waiting = bytearray()  # client bytes that arrived before tritonserver's connection was up
        self.client_buf = bytearray()
        self.server_buf = bytearray()
        self.preface_seen = False
        self.streams: dict[int, _Stream] = {}
        self.open_streams: set[int] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.relay.connections.add(self)
        asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        host, port = self.relay.upstream().rsplit(":", 1)
        try:
            transport, _ = await asyncio.get_running_loop().create_connection(
                lambda: _UpstreamProtocol(self), host, int(port)
            )
        except OSError:
            self.transport.close()
            return
        self.upstream = transport  # type: ignore[assignment]
        if self.waiting:
            transport.write(bytes(self.waiting))
            self.waiting.clear()

    def _to_server(self, data: bytes | bytearray) -> None:
        if self.upstream is not None:
            self.upstream.write(bytes(data))
        else:
            self.waiting += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.connections.discard(self)
        if self.upstream is not None:
            self.upstream.close()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def data_received(self, data: bytes) -> None:
        buf = self.client_buf
        buf += data
        if not self.preface_seen:
            if len(buf) < len(PREFACE):
                return
            if buf[: len(PREFACE)] != PREFACE:
                self.transport.close()
                return
            self.preface_seen = True
            self._to_server(PREFACE)
            del buf[: len(PREFACE)]
        out = bytearray()
        pos = 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            end = pos + 9 + length
            if end > len(buf):
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            stream_id = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            start, pos = pos, end
            if kind == HEADERS and stream_id not in self.streams:
                self.streams[stream_id] = _Stream()
                self.open_streams.add(stream_id)
            elif kind == RST_STREAM:
                self.streams.pop(stream_id, None)
                self.open_streams.discard(stream_id)
            elif kind == DATA and stream_id in self.streams:
                stream = self.streams[stream_id]
                if stream.refused or self._refuse(stream, stream_id, flags, bytes(buf[start + 9 : end]), out):
                    # Not forwarded: give the client back the flow-control credit tritonserver never will.
                    if length:
                        self.transport.write(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", length)))
                    continue
                if flags & END_STREAM:
                    self.streams.pop(stream_id, None)
            out += buf[start:end]
        del buf[:pos]
        if out:
            self._to_server(out)

    def _refuse(self, stream: _Stream, stream_id: int, flags: int, payload: bytes, out: bytearray) -> bool:
        try:
            for message, compressed in stream.completed_messages(_unpadded(flags, payload)):
                check_message(message, compressed, self.relay.max_tensor_bytes)
        except RejectedRequest as exc:
            stream.refused = True
            stream.pending.clear()
            out += frame(RST_STREAM, 0, stream_id, struct.pack(">I", CANCEL))
            self.transport.write(grpc_error_headers(stream_id, GRPC_INVALID_ARGUMENT, str(exc)))
            self.open_streams.discard(stream_id)
            return True
        return False

    def from_server(self, data: bytes) -> None:
        buf = self.server_buf
        buf += data
        pos = 0
        # Only whole frames go on, so the front can put its own frames between them.
        while len(buf) - pos >= 9:
            end = pos + 9 + int.from_bytes(buf[pos : pos + 3], "big")
            if end > len(buf):
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            if kind == RST_STREAM or flags & END_STREAM and kind in (DATA, HEADERS):
                self.open_streams.discard(int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF)
            pos = end
        if pos:
            self.transport.write(bytes(buf[:pos]))
            del buf[:pos]


class GrpcRelay:
    """Serves one public gRPC port; ``upstream()`` gives tritonserver's current host:port."""

    def __init__(self, upstream: Callable[[], str], max_tensor_bytes: int) -> None:
        self.upstream, self.max_tensor_bytes = upstream, max_tensor_bytes
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[_RelayedConnection] = set()
        self.draining = False

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _RelayedConnection(self), host, port, reuse_address=True)

    def in_flight(self) -> int:
        return sum(len(c.open_streams) for c in self.connections)

    def goaway_all(self) -> None:
        """Tell every client to open no new streams here (graceful HTTP/2 shutdown)."""
        for conn in list(self.connections):
            conn.transport.write(frame(GOAWAY, 0, 0, struct.pack(">II", 0x7FFFFFFF, 0)))

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.transport.close()
