"""The native front: ``native/swish_front.c``, compiled on first use, run as a child process of the launcher.

It applies the same checks as the Python front (``front.py``, ``request_guard.py``) at a fraction of the cost: the
Python front spends 0.2-0.4 ms of CPU per request on one event-loop thread, the C relay about as much as the kernel's
own socket work (docs/security.md has the figures). The launcher uses it whenever a C compiler is found and falls
back to the Python front otherwise (``--front python`` chooses it).

The binary is built once per source version into ``<build dir>/front/`` (``swish_triton.locations.build_dir``: the
checkout's ``.build``, or ``$SWISH_BUILD_DIR``; outside a checkout ``~/.cache/swish-triton/front``), with zlib when
its header is there (compressed inference requests are refused without it). The launcher talks to it over its
stdin/stdout: readiness and reloading models go down, in-flight counts and the drain result come back; when the
launcher goes away, its stdin closes and it exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from swish_triton import locations
from swish_triton.serving.front import ServingState

log = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "native" / "swish_front.c"
CFLAGS = ("-O2", "-std=gnu11", "-pthread", "-Wall", "-Wno-format-truncation")
_built: dict[str, Path | None] = {}
_build_lock = threading.Lock()


def _cache_dir() -> Path:
    if os.environ.get(locations.BUILD_DIR_ENV) or locations.checkout_root() is not None:
        return locations.build_dir() / "front"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "swish-triton" / "front"


def front_binary() -> Path | None:
    """The compiled front (built now if needed), or None when no C compiler could build it (the reason is logged)."""
    with _build_lock:
        if "binary" not in _built:
            _built["binary"] = _build()
        return _built["binary"]


def _build() -> Path | None:
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        log.warning("no C compiler (cc) found: using the Python front, which costs more CPU per request")
        return None
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    out_dir = _cache_dir()
    flavours = {"": (str(SOURCE), "-lz"), "-nozlib": ("-DSWISH_FRONT_NO_ZLIB", str(SOURCE))}
    for suffix in flavours:
        binary = out_dir / f"swish-front-{digest}{suffix}"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for suffix, extra in flavours.items():
        binary = out_dir / f"swish-front-{digest}{suffix}"
        fd, tmp = tempfile.mkstemp(prefix=".swish-front-", dir=out_dir)
        os.close(fd)
        result = subprocess.run(  # noqa: S603 - our compiler, our source
            [compiler, *CFLAGS, "-o", tmp, *extra], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            os.replace(tmp, binary)  # atomic: launchers starting together never run a half-written file
            if suffix:
                log.warning("zlib's header (zlib.h) is missing: the front refuses compressed inference requests")
            return binary
        os.unlink(tmp)
        errors.append(result.stderr.strip().splitlines()[-1:] or ["(no output)"])
    log.warning("could not build the native front (%s): using the Python front", errors[-1][0])
    return None


class NativeFront:
    """Same interface as ``front.Front``: start() binds both ports (OSError naming the port if one is taken),
    stop(drain_timeout_s) drains and returns whether everything finished, in_flight() counts requests."""

    def __init__(
        self,
        state: ServingState,
        host: str,
        http_port: int,
        grpc_port: int,
        max_tensor_bytes: int,
        max_body_bytes: int,
        binary: Path,
    ) -> None:
        self.state, self.host, self.http_port, self.grpc_port = state, host, http_port, grpc_port
        self.max_tensor_bytes, self.max_body_bytes, self.binary = max_tensor_bytes, max_body_bytes, binary
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._sent_ready: bool | None = None
        self._sent_sick: set[str] = set()
        self.restarts = 0
        # $SWISH_FRONT_THREADS, else one event-loop thread per 4 cores, 1 to 8 (a thread relays about 10,000
        # requests/s on a 2-core host; docs/security.md).
        self.threads = int(os.environ.get("SWISH_FRONT_THREADS") or max(1, min(8, (os.cpu_count() or 1) // 4)))

    def _command(self) -> list[str]:
        return [
            str(self.binary),
            "--host", self.host,
            "--http-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port),
            "--http-upstream", self.state.upstream_http,
            "--grpc-upstream", self.state.upstream_grpc,
            "--max-tensor-bytes", str(self.max_tensor_bytes),
            "--max-body-bytes", str(self.max_body_bytes),
            "--threads", str(self.threads),
        ]  # fmt: skip

    def start(self) -> None:
        proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        if first != "bound":
            proc.wait(timeout=10)
            # "error PORT MESSAGE": the launcher names the port from the message.
            _, port, message = (first.split(" ", 2) + ["", ""])[:3] if first else ("", "?", "the front did not start")
            raise OSError(f"cannot bind port {port}: {message}")
        self._proc = proc
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(proc, self._lines), name="swish-front-out", daemon=True).start()
        self._sent_ready, self._sent_sick = None, set()
        self.state.listeners.append(self.sync)
        self.sync(self.state)

    @staticmethod
    def _read(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put("")  # end of output: the front exited

    def _send(self, line: str) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def sync(self, state: ServingState) -> None:
        """Tell the front what the supervisor knows (called on every change of ``state.ready``)."""
        with self._lock:
            sick = set(state.unhealthy_models)
            for name in sorted(sick - self._sent_sick):
                self._send(f"sick {name}")
            for name in sorted(self._sent_sick - sick):
                self._send(f"well {name}")
            self._sent_sick = sick
            if state.ready != self._sent_ready:
                self._send(f"ready {int(state.ready)}")
                self._sent_ready = state.ready

    def _ask(self, line: str, prefix: str, timeout_s: float) -> str | None:
        while not self._lines.empty():  # answers to earlier questions that timed out
            self._lines.get_nowait()
        if not self._send(line):
            return None
        try:
            answer = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return answer[len(prefix) :].strip() if answer.startswith(prefix) else None

    def in_flight(self) -> int:
        with self._lock:
            answer = self._ask("inflight", "inflight", 5)
        return int(answer) if answer and answer.isdigit() else 0

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def restart_if_dead(self) -> bool:
        """Start the front again if it ended by itself (it should not); True if it was restarted."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return False
        log.error("the front ended unexpectedly (exit status %s): starting it again", proc.returncode)
        self._unlisten()
        self._proc = None
        self.start()
        self.restarts += 1
        return True

    def _unlisten(self) -> None:
        self.state.listeners[:] = [f for f in self.state.listeners if f != self.sync]

    def stop(self, drain_timeout_s: float) -> bool:
        proc = self._proc
        if proc is None:
            return True
        self._unlisten()
        with self._lock:
            drained = self._ask(f"drain {drain_timeout_s}", "drained", drain_timeout_s + 10) == "1"
            self._proc = None
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return drained


def accepts_compressed_requests(binary: Path) -> bool:
    """Whether the native front was built with zlib (without it, compressed inference requests are refused)."""
    return not binary.name.endswith("-nozlib")
