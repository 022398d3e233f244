"""The Python front of the embedded server: checks every inference request, then forwards it to tritonserver.

The launcher uses the native front (``native_front.py``, the same rules in C at a fraction of the CPU cost) and this
one where no C compiler builds that, or with ``--front python``. ``ServingState`` is shared by both.

The launcher binds the public ports here and runs tritonserver on private 127.0.0.1 ports behind it. The front
refuses requests whose shapes would crash tritonserver 2.51 (``request_guard``) with HTTP 400 / INVALID_ARGUMENT,
answers ``/v2/health/ready`` from the supervisor's view (every loaded model able to serve), forwards everything else
unchanged (headers and gRPC metadata included, so API keys reach tritonserver), and on stop drains: it stops
accepting, lets requests in flight finish and closes idle keep-alive connections.

HTTP goes through ``http_front.py`` (an HTTP/1.1 relay), gRPC through ``grpc_front.py`` (an HTTP/2 frame relay that
checks inference messages). gRPC ``ServerReady`` comes from tritonserver itself: probes use HTTP
``/v2/health/ready`` or ``python -m swish_triton.serving.health``. Both run on one event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from swish_triton.serving.grpc_front import GrpcRelay
from swish_triton.serving.http_front import (
    DEFAULT_MAX_BODY_BYTES,
    INFER_PATH,
    MODEL_READY_PATH,
    HttpRelay,
    check_http_infer,
    error_body,
    http_response,
)
from swish_triton.serving.request_guard import DEFAULT_MAX_TENSOR_BYTES, RejectedRequest

log = logging.getLogger(__name__)


@dataclass
class ServingState:
    """What the supervisor knows and the front reports: ready only when tritonserver and every model can serve.

    Whoever changes ``unhealthy_models`` sets ``ready`` afterwards; each assignment of ``ready`` calls the listeners
    (the native front, a separate process, learns the state that way)."""

    ready: bool = False
    unhealthy_models: set[str] = field(default_factory=set)
    upstream_http: str = ""
    upstream_grpc: str = ""
    listeners: list[Callable[[ServingState], None]] = field(default_factory=list, repr=False)

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "ready":
            for listener in list(getattr(self, "listeners", ())):
                listener(self)


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
        self.max_tensor_bytes = max_tensor_bytes
        self.http = HttpRelay(lambda: state.upstream_http, self.answer_locally, max_body_bytes)
        self.grpc = GrpcRelay(lambda: state.upstream_grpc, max_tensor_bytes)
        self.draining = False
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def answer_locally(self, method: bytes, target: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes | None:
        """The front's own answer to an HTTP request, or None to forward it."""
        path = target.split(b"?", 1)[0]
        if path == b"/v2/health/ready":
            if self.state.ready and not self.draining:
                return http_response(200, "OK", b"")
            return http_response(503, "Service Unavailable", error_body(self._not_ready_reason()))
        match = MODEL_READY_PATH.match(target)
        if match and match.group(1).decode(errors="replace") in self.state.unhealthy_models:
            return http_response(503, "Service Unavailable", error_body("the model is being reloaded"))
        if method == b"POST" and INFER_PATH.match(target):
            try:
                check_http_infer(headers, body, self.max_tensor_bytes)
            except RejectedRequest as exc:
                return http_response(400, "Bad Request", error_body(str(exc)))
        return None

    def _not_ready_reason(self) -> str:
        if self.draining:
            return "the server is shutting down"
        if self.state.unhealthy_models:
            return f"reloading {', '.join(sorted(self.state.unhealthy_models))}"
        return "tritonserver is not ready"

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
        await self.http.start(self.host, self.http_port)
        try:
            await self.grpc.start(self.host, self.grpc_port)
        except OSError:
            assert self.http.server is not None
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
        self.draining = self.http.draining = self.grpc.draining = True
        for server in (self.http.server, self.grpc.server):
            if server is not None:
                server.close()
        self.http.close_idle()
        self.grpc.goaway_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        drained = self.in_flight() == 0
        self.http.close_all()
        self.grpc.close_all()
        await asyncio.sleep(0.05)  # let the connections see their sockets close
        return drained
