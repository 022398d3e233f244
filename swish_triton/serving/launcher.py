"""Start the tritonserver bundled in the ``nvidia-pytriton`` wheel on a model repository, keep it serving, stop it.

The wheel ships a real tritonserver (2.51) with the Python backend but no TensorRT backend. The launcher:

- loads only the models this server can serve (explicit model control); entries with no backend here, a
  config.pbtxt that does not parse (reported as file:line) or no model.py are skipped with the reason
  (``--strict``: broken entries are fatal);
- binds the public HTTP and gRPC ports itself, with a front that refuses requests whose shapes would crash
  tritonserver 2.51 (the C relay of ``native_front.py``, or ``front.py`` where no C compiler is found), and runs
  tritonserver on private 127.0.0.1 ports, checking that the process answering there is the one it started;
- locks Triton's model-repository, shared-memory, logging and trace APIs with a key (``control_api.py``);
- supervises the server (``supervisor.py``): restarts after a crash, reloads models whose stubs died, reports
  not-ready meanwhile;
- on stop drains requests in flight, stops tritonserver (SIGTERM, then SIGKILL), ends every stub process it left
  and removes its /dev/shm regions (``server_processes.py``).

    python -m swish_triton.serving.launcher --model-repository model_repository   # serves until Ctrl-C / SIGTERM
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swish_triton.serving import control_api, server_processes
from swish_triton.serving.bundled_triton import (
    check_numpy_for_stub,
    die_with_parent,
    prepare_backends,
    pytriton_bundle,
    server_environment,
)
from swish_triton.serving.control_api import http_call
from swish_triton.serving.front import Front, ServingState
from swish_triton.serving.health import server_ready
from swish_triton.serving.http_front import DEFAULT_MAX_BODY_BYTES
from swish_triton.serving.model_plan import LauncherError, ModelPlan, plan_models
from swish_triton.serving.native_front import NativeFront, front_binary
from swish_triton.serving.request_guard import DEFAULT_MAX_TENSOR_BYTES
from swish_triton.serving.supervisor import Supervisor

__all__ = ["DEFAULT_PORTS", "LauncherError", "TritonServer", "free_port", "main", "plan_models", "port_is_free"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
DEFAULT_EXIT_TIMEOUT_S = 30


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as tritonserver binds: TIME_WAIT is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port the OS considers free right now (tests use it to run servers side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class TritonServer:
    """An embedded, supervised tritonserver behind its front. Use as a context manager, or start() and stop()."""

    model_repository: Path
    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_PORTS["http"]
    grpc_port: int = DEFAULT_PORTS["grpc"]
    metrics_port: int = DEFAULT_PORTS["metrics"]
    models: Sequence[str] | None = None
    log_path: Path | None = None
    ready_timeout_s: float = 120.0
    # On stop: how long requests in flight may take to finish (the front's drain, then tritonserver's own
    # --exit-timeout-secs); tritonserver is killed stop_grace_s after that.
    exit_timeout_s: int = DEFAULT_EXIT_TIMEOUT_S
    stop_grace_s: float = 15.0
    log_verbose: int = 0
    extra_args: Sequence[str] = ()
    quiet: bool = False
    api_key: str | None = None  # None: a fresh random key that only this launcher knows
    api_key_header: str = control_api.DEFAULT_KEY_HEADER
    open_apis: Sequence[str] = ()  # of control_api.RESTRICTED_APIS, those to leave without a key
    strict: bool = False
    supervise: bool = True
    health_interval_s: float = 1.0
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES
    # False: tritonserver answers the public ports itself, and a hostile shape crashes it (docs/security.md). Only
    # for measuring tritonserver alone.
    front: bool = True
    # "native": the C relay (native_front.py), built on first use; the Python front where no compiler builds it.
    # "python": the Python front (one event-loop thread, 0.2-0.4 ms of CPU per request).
    front_kind: str = "native"
    plan: ModelPlan | None = field(default=None, init=False)
    state: ServingState = field(default_factory=ServingState, init=False)
    launch_id: str = field(default_factory=lambda: secrets.token_hex(4), init=False)
    supervisor: Supervisor | None = field(default=None, init=False, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _front: Front | NativeFront | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)
    _backend_dir: Path | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def upstream_http_url(self) -> str:
        """tritonserver's own HTTP endpoint behind the front (private; the supervisor's canaries go here)."""
        return self.state.upstream_http

    @property
    def shm_prefix(self) -> str:
        # Unique per launch: finds this server's stubs and /dev/shm regions, and only those. The launcher's PID in
        # it lets a later launch recognise leftovers of one that was killed (server_processes.clean_orphans).
        return f"swish_p{os.getpid()}_{self.launch_id}_"

    def _say(self, message: str, level: int = logging.INFO) -> None:
        log.log(logging.DEBUG if self.quiet and level <= logging.INFO else level, "%s", message)

    def command(self, backend_dir: Path) -> list[str]:
        assert self.plan is not None and self.api_key is not None
        bundle = pytriton_bundle()
        (http_host, http_port), (grpc_host, grpc_port) = (
            u.rsplit(":", 1) for u in (self.state.upstream_http, self.state.upstream_grpc)
        )
        cmd = [
            str(bundle / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            f"--cache-directory={bundle / 'caches'}",
            "--model-control-mode=explicit",
            f"--http-address={http_host}",
            f"--http-port={http_port}",
            f"--grpc-address={grpc_host}",
            f"--grpc-port={grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            *control_api.restricted_args(self.api_key, self.api_key_header, self.open_apis),
        ]
        cmd += [f"--load-model={name}" for name in self.plan.load]
        cmd += list(self.extra_args)
        return cmd

    def start(self) -> TritonServer:
        repo = Path(self.model_repository).resolve()
        if not repo.is_dir():
            raise LauncherError(f"model repository {repo} does not exist")
        self.model_repository = repo
        if self.api_key is None:
            self.api_key = control_api.new_key()
        try:
            control_api.check_key(self.api_key, self.api_key_header)
            control_api.restricted_args(self.api_key, self.api_key_header, self.open_apis)
        except control_api.ControlApiError as exc:
            raise LauncherError(str(exc)) from None
        bundle = pytriton_bundle()
        check_numpy_for_stub()
        backends = {p.name for p in (bundle / "backends").iterdir() if p.is_dir()}
        self.plan = plan_models(repo, backends, self.models, self.strict)
        for name, why in self.plan.skipped:
            self._say(f"skipping {name}: {why}")
        for name, why in self.plan.broken:
            self._say(f"skipping broken model {name}: {why}", logging.WARNING)
        if not self.plan.load:
            raise LauncherError(f"no model in {repo} can be served by this server")
        if not port_is_free(self.host, self.metrics_port):
            raise LauncherError(self._port_taken("metrics", self.metrics_port))
        self._started = True
        stubs, files = server_processes.clean_orphans()
        if stubs or files:
            self._say(
                f"ended {stubs} stub processes and removed {files} /dev/shm files left by a launcher that was killed",
                logging.WARNING,
            )
        if not self.front:
            for name, port in (("HTTP", self.http_port), ("gRPC", self.grpc_port)):
                if not port_is_free(self.host, port):
                    raise LauncherError(self._port_taken(name, port))
            self.state.upstream_http, self.state.upstream_grpc = self.http_url, self.grpc_url
        else:
            self.state.upstream_http, self.state.upstream_grpc = (f"{DEFAULT_HOST}:{free_port()}" for _ in range(2))
            # Binding the public ports is the port check: atomic, so of two launchers on one port exactly one wins.
            front = self._new_front()
            try:
                front.start()
            except OSError as exc:
                ports = (("HTTP", self.http_port), ("gRPC", self.grpc_port))
                taken = [(n, p) for n, p in ports if str(p) in str(exc)]
                name, port = taken[0] if taken else ("HTTP", self.http_port)
                self._started = False
                raise LauncherError(self._port_taken(name, port)) from None
            self._front = front
        self._workdir = Path(tempfile.mkdtemp(prefix="swish-triton-"))
        try:
            self._backend_dir = prepare_backends(bundle, self._workdir)
            if self.log_path is None:
                self.log_path = self._workdir / "tritonserver.log"
            self.log_path = Path(self.log_path)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._say(
                f"starting tritonserver for {self.host} (HTTP {self.http_port}, gRPC {self.grpc_port}, metrics "
                f"{self.metrics_port}) with {', '.join(self.plan.load)}; log: {self.log_path}; shared memory: "
                f"{server_processes.SHM_DIR / self.shm_prefix}*"
            )
            self.spawn()
        except BaseException:
            self.stop()
            raise
        if self.supervise:
            self.supervisor = Supervisor(self, interval_s=self.health_interval_s)
            self.supervisor.start()
        self.state.ready = True
        self._say(f"ready (front: {self.front_in_use})")
        return self

    def _new_front(self) -> Front | NativeFront:
        if self.front_kind not in ("native", "python"):
            raise LauncherError(f"front_kind must be 'native' or 'python', not {self.front_kind!r}")
        binary = front_binary() if self.front_kind == "native" else None
        if binary is not None:
            return NativeFront(
                self.state,
                self.host,
                self.http_port,
                self.grpc_port,
                self.max_tensor_bytes,
                DEFAULT_MAX_BODY_BYTES,
                binary,
            )
        return Front(self.state, self.host, self.http_port, self.grpc_port, self.max_tensor_bytes)

    @property
    def front_in_use(self) -> str:
        """ "native", "python" or "none": which front answers the public ports."""
        if self._front is None:
            return "none"
        return "native" if isinstance(self._front, NativeFront) else "python"

    def restart_front_if_dead(self) -> bool:
        """The supervisor's check of the native front (a separate process): started again if it ended."""
        front = self._front
        return isinstance(front, NativeFront) and front.restart_if_dead()

    def _port_taken(self, name: str, port: int) -> str:
        return (
            f"port {port} ({name}) on {self.host} is already in use: stop what holds it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port"
        )

    def spawn(self) -> None:
        """Start tritonserver on the private ports and wait until it (this very process) is ready."""
        assert self._backend_dir is not None and self.log_path is not None
        with open(self.log_path, "ab") as server_log:
            self._proc = subprocess.Popen(  # noqa: S603 - the command is built from our own arguments
                self.command(self._backend_dir),
                stdout=server_log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=server_environment(),
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, before any thread exists there
            )
        self.wait_ready()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def is_ready(self) -> bool:
        """Ready as clients see it: through the front, which reports the supervisor's view."""
        return server_ready(self.http_url)

    def _upstream_ready(self) -> bool:
        if not server_ready(self.state.upstream_http):
            return False
        # Ours, not another server that took the port between free_port() and tritonserver's bind.
        assert self._proc is not None
        port = int(self.state.upstream_http.rsplit(":", 1)[1])
        if self._proc.pid not in server_processes.listening_pids(port, [self._proc.pid]):
            self._proc.kill()
            raise LauncherError(f"another process answers on tritonserver's port {port}; start again")
        return True

    def wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise LauncherError(
                    f"tritonserver exited with status {code} before it was ready; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            if self._upstream_ready():
                return
            time.sleep(0.2)
        raise LauncherError(
            f"tritonserver was not ready after {self.ready_timeout_s:.0f} s; last lines of "
            f"{self.log_path}:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self._started and (self.process_running() or self.supervisor is not None)

    def process_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exit_reason(self) -> str:
        code = self._proc.poll() if self._proc is not None else None
        if code is None:
            return "not started"
        what = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        last = self.log_tail(1).strip()
        return f"{what}; last log line: {last}" if last else what

    def loaded_models(self) -> tuple[str, ...]:
        """Models tritonserver reports READY (what an admin loaded or unloaded with the key included)."""
        assert self.api_key is not None
        models = control_api.ready_models(self.state.upstream_http, self.api_key, self.api_key_header)
        return tuple(models) if models is not None else (self.plan.load if self.plan else ())

    def reload_model(self, model: str, old_stubs: set[int]) -> None:
        """Load the model again with its own configuration through Triton's repository API (with the key), then end
        the old generation's stubs. Passing the configuration makes Triton reload even though nothing changed, and a
        reload keeps the old instances serving until the new ones are ready."""
        assert self.api_key is not None
        status, body = http_call(self.state.upstream_http, f"/v2/models/{model}/config", timeout_s=10)
        if status != 200:
            raise LauncherError(f"reload {model}: its configuration could not be read (HTTP {status})")
        config = json.loads(body)
        # tritonserver ignores a load whose configuration did not change: a generation parameter makes it reload.
        config.setdefault("parameters", {})["swish_generation"] = {"string_value": secrets.token_hex(4)}
        try:
            control_api.repository_call(
                self.state.upstream_http, model, "load", self.api_key, self.api_key_header, config=json.dumps(config)
            )
        except control_api.ControlApiError as exc:
            raise LauncherError(str(exc)) from None
        # tritonserver moves new requests to the new generation once it is ready; requests the old one still holds
        # may fail for a moment, so readiness waits up to 2 s, then ends what is left of it (2.51 leaves a healthy
        # sibling of the dead stub running).
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if not old_stubs & {s.pid for s in server_processes.stub_processes(self.shm_prefix)}:
                return
            time.sleep(0.1)
        server_processes.end_processes(sorted(old_stubs))

    def end_leftovers(self, grace_s: float = 0.0) -> tuple[int, int]:
        """End this server's stub processes and remove its /dev/shm regions; (stubs ended, files removed)."""
        deadline = time.monotonic() + grace_s
        while server_processes.stub_processes(self.shm_prefix) and time.monotonic() < deadline:
            time.sleep(0.1)
        stubs = server_processes.end_stubs(self.shm_prefix)
        time.sleep(0.05 if stubs else 0)
        files = server_processes.remove_shm_regions(self.shm_prefix)
        if stubs or files:
            self._say(f"ended {len(stubs)} stub processes and removed {len(files)} /dev/shm files left behind")
        return len(stubs), len(files)

    def stop(self) -> int | None:
        """Drain, SIGTERM, SIGKILL after the grace period, clean up. Returns the exit status (None: never started);
        a drain that did not finish in time or leftovers of a crash make a clean 0 into 1."""
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        self.state.ready = False
        self._started = False
        drained = True
        front, self._front = self._front, None
        if front is not None:
            drained = front.stop(self.exit_timeout_s)
            if not drained:
                self._say(f"requests still in flight after {self.exit_timeout_s} s", logging.WARNING)
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.exit_timeout_s + self.stop_grace_s)
                except subprocess.TimeoutExpired:
                    self._say("tritonserver did not stop after SIGTERM: killing it", logging.WARNING)
                    proc.kill()
                    proc.wait()
            code = proc.returncode
            self._say(f"stopped (exit status {code})")
        stubs, _ = self.end_leftovers(grace_s=2.0)
        if code == 0 and (stubs or not drained):
            code = 1
        if self._workdir is not None:
            # Keep the log when it lives in the work dir and the server failed; the message above names it.
            keep_log = self.log_path is not None and self.log_path.parent == self._workdir and code not in (0, None)
            if not keep_log:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return code

    def __enter__(self) -> TritonServer:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m swish_triton.serving.launcher`` / ``swish-serve``: the command line lives in serve_command."""
    from swish_triton.serving.serve_command import main as serve

    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
