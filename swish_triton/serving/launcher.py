"""Start the tritonserver bundled in the ``nvidia-pytriton`` wheel on a model repository, keep it serving, stop it.

The wheel ships a real tritonserver (2.51) with the Python backend but no TensorRT backend. The launcher:

- loads only the models this server can serve (explicit model control); entries with no backend here, a
  config.pbtxt that does not parse (reported as file:line) or no model.py are skipped with the reason
  (``--strict``: broken entries are fatal);
- starts tritonserver on the public HTTP, gRPC and metrics ports, 127.0.0.1 unless told otherwise (another
  address needs ``expose=True``: this tritonserver crashes on some hostile tensor shapes, docs/security.md), and
  believes readiness only from the process it started;
- locks Triton's model-repository, shared-memory, logging and trace APIs with a key (``control_api.py``);
- supervises the server (``supervisor.py``): restarts it after a crash, reloads a model whose stub died (not ready
  meanwhile, as Triton itself reports);
- on stop lets requests in flight finish (tritonserver's ``--exit-timeout-secs``), stops tritonserver (SIGTERM, then
  SIGKILL), ends every stub process it left and removes its /dev/shm regions (``server_processes.py``).

The command line is ``swish-serve`` / ``python -m swish_triton.serving`` (``serve_command.py``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swish_triton import settings
from swish_triton.serving import control_api, server_processes
from swish_triton.serving.bundled_triton import (
    check_numpy_for_stub,
    die_with_parent,
    prepare_backends,
    pytriton_bundle,
    server_environment,
)
from swish_triton.serving.control_api import http_call
from swish_triton.serving.health import server_ready
from swish_triton.serving.model_plan import LauncherError, ModelPlan, plan_models
from swish_triton.serving.supervisor import Supervisor

__all__ = ["DEFAULT_PORTS", "LauncherError", "TritonServer", "free_port", "plan_models", "port_is_free"]

log = logging.getLogger(__name__)

DEFAULT_HOST = settings.DEFAULT_HOST
DEFAULT_PORTS = settings.DEFAULT_PORTS
DEFAULT_EXIT_TIMEOUT_S = settings.DEFAULT_EXIT_TIMEOUT_S
# Where the overflow defects of this tritonserver are fixed (docs/security.md names the first release with each fix).
# tritonserver's countdown while it stops (server.cc): "Timeout 29: Found 2 live models and 0 in-flight non-inference
# requests".
LIVE_MODELS = re.compile(r"Found (\d+) live models and (\d+) in-flight non-inference requests")
UPSTREAM_FIXES = "triton-inference-server/common#151, server#8182, server#8676"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    """An embedded, supervised tritonserver. Use as a context manager, or start() and stop()."""

    model_repository: Path
    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_PORTS["http"]
    grpc_port: int = DEFAULT_PORTS["grpc"]
    metrics_port: int = DEFAULT_PORTS["metrics"]
    models: Sequence[str] | None = None
    log_path: Path | None = None
    ready_timeout_s: float = 120.0
    # On stop: how long requests in flight may take to finish (tritonserver's --exit-timeout-secs); tritonserver is
    # killed stop_grace_s after that.
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
    # A host other than loopback needs this: the bundled tritonserver 2.51 crashes on some hostile tensor shapes.
    expose: bool = False
    plan: ModelPlan | None = field(default=None, init=False)
    launch_id: str = field(default_factory=lambda: secrets.token_hex(4), init=False)
    supervisor: Supervisor | None = field(default=None, init=False, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)
    _backend_dir: Path | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False, repr=False)
    # Every stub process of the running tritonserver seen so far, by PID; the supervisor finds dead ones here.
    stubs_seen: dict[int, server_processes.StubProcess] = field(default_factory=dict, init=False, repr=False)
    _configs: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # last known, for reloads
    _retired: set[int] = field(default_factory=set, init=False, repr=False)

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def local_http_url(self) -> str:
        """Where the launcher itself calls tritonserver's HTTP endpoint (a wildcard address is called on loopback)."""
        host = DEFAULT_HOST if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 - comparing, not binding
        return f"{host}:{self.http_port}"

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
        cmd = [
            str(bundle / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            f"--cache-directory={bundle / 'caches'}",
            "--model-control-mode=explicit",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
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
        if not is_loopback(self.host):
            if not self.expose:
                raise LauncherError(
                    f"{self.host} is not a loopback address: the bundled tritonserver 2.51 crashes on some hostile "
                    "tensor shapes (docs/security.md), so serving beyond this host needs --expose; production "
                    "deployments (compose, Helm) run an NGC Triton release with the fixes"
                )
            self._say(
                f"serving on {self.host}: this tritonserver 2.51 has known crash defects on hostile tensor shapes "
                f"(fixed upstream: {UPSTREAM_FIXES}); the supervisor restarts it after a crash",
                logging.WARNING,
            )
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
        for name, port in (("HTTP", self.http_port), ("gRPC", self.grpc_port), ("metrics", self.metrics_port)):
            if not port_is_free(self.host, port):
                raise LauncherError(self._port_taken(name, port))
        self._started = True
        stubs, files = server_processes.clean_orphans()
        if stubs or files:
            self._say(
                f"ended {stubs} stub processes and removed {files} /dev/shm files left by a launcher that was killed",
                logging.WARNING,
            )
        self._workdir = Path(tempfile.mkdtemp(prefix="swish-triton-"))
        try:
            self._backend_dir = prepare_backends(bundle, self._workdir)
            if self.log_path is None:
                self.log_path = self._workdir / "tritonserver.log"
            self.log_path = Path(self.log_path)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._say(
                f"starting tritonserver on {self.host} (HTTP {self.http_port}, gRPC {self.grpc_port}, metrics "
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
        self._say("ready")
        return self

    def _port_taken(self, name: str, port: int) -> str:
        return (
            f"port {port} ({name}) on {self.host} is already in use: stop what holds it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port"
        )

    def spawn(self) -> None:
        """Start tritonserver and wait until it (this very process) is ready."""
        assert self._backend_dir is not None and self.log_path is not None
        self.stubs_seen.clear()
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

    def scan_stubs(self) -> set[int]:
        """PIDs of the live stub processes; each is remembered in ``stubs_seen``."""
        # The stub the Python backend starts for the model itself (its instance name is the model's) ends once the
        # model has loaded; only the instances' stubs serve requests. Retired stubs (an old generation being ended)
        # are not taken for new ones.
        live = [s for s in server_processes.stub_processes(self.shm_prefix) if s.instance != s.model]
        self._retired &= {stub.pid for stub in live}
        live = [stub for stub in live if stub.pid not in self._retired]
        for stub in live:
            self.stubs_seen.setdefault(stub.pid, stub)
        return {stub.pid for stub in live}

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def is_ready(self) -> bool:
        """tritonserver's own readiness (every loaded model ready), from the process this launcher started."""
        if not server_ready(self.local_http_url):
            return False
        # Ours, not another server that took the port while ours was starting or restarting.
        proc = self._proc
        if proc is None or proc.pid not in server_processes.listening_pids(self.http_port, [proc.pid]):
            if proc is not None and proc.poll() is None:
                proc.kill()
            raise LauncherError(f"another process answers on port {self.http_port}; start again")
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
            # Stubs start while models load, before the ports open: each is seen before a request can reach it.
            self.scan_stubs()
            if self.is_ready():
                self.scan_stubs()
                return
            time.sleep(0.1)
        raise LauncherError(
            f"tritonserver was not ready after {self.ready_timeout_s:.0f} s; last lines of "
            f"{self.log_path}:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self._started and (self.process_running() or self.supervisor is not None)

    def process_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """tritonserver's PID while it runs."""
        return self._proc.pid if self.process_running() and self._proc is not None else None

    def kill(self) -> None:
        """End a tritonserver that did not come up (SIGKILL; its stubs are ended by end_leftovers)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

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
        models = control_api.ready_models(self.local_http_url, self.api_key, self.api_key_header)
        return tuple(models) if models is not None else (self.plan.load if self.plan else ())

    def reload_model(self, model: str, old_stubs: set[int]) -> None:
        """Unload the model and load it again with the configuration it runs with, through Triton's repository API
        (with the key). From the unload until the new instances are ready Triton reports the model, and with strict
        readiness the server, not ready: readiness never says 200 while the model cannot answer, and requests
        meanwhile get Triton's own 'not ready' error. The load is sent once the unload has begun, so Triton queues
        it behind the unload and the model is never simply absent (which strict readiness counts as ready)."""
        assert self.api_key is not None
        url, key, header = self.local_http_url, self.api_key, self.api_key_header
        status, body = http_call(url, f"/v2/models/{model}/config", timeout_s=10)
        if status == 200:
            self._configs[model] = body.decode()
        elif model not in self._configs:  # a model whose last load failed has none to read: the last one known
            raise LauncherError(f"reload {model}: its configuration could not be read (HTTP {status})")
        config = self._configs[model]
        unload_error: list[str] = []

        def unload() -> None:
            try:
                control_api.repository_call(url, model, "unload", key, header)
            except control_api.ControlApiError as exc:
                unload_error.append(str(exc))

        unloading = threading.Thread(target=unload, name=f"swish-unload-{model}", daemon=True)
        unloading.start()
        deadline = time.monotonic() + 10
        while http_call(url, f"/v2/models/{model}/ready", timeout_s=2)[0] == 200 and not unload_error:
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        try:
            control_api.repository_call(url, model, "load", key, header, config=config)
        except control_api.ControlApiError as exc:
            raise LauncherError(str(exc)) from None
        finally:
            unloading.join(timeout=30)
        if unload_error:
            raise LauncherError(unload_error[0])
        # Stubs of the old generation that outlived the unload, and the shared memory of the one that died (2.51
        # removes neither).
        old = [self.stubs_seen[pid] for pid in old_stubs if pid in self.stubs_seen]
        self._retired |= old_stubs
        server_processes.end_processes(
            sorted(old_stubs & {s.pid for s in server_processes.stub_processes(self.shm_prefix)})
        )
        server_processes.remove_shm_regions_named([stub.region for stub in old if stub.region])

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
        """SIGTERM (tritonserver lets requests in flight finish for exit_timeout_s), SIGKILL after the grace period,
        clean up. Returns the exit status (None: never started); leftovers of a crash make a clean 0 into 1."""
        stuck = 0
        if self.supervisor is not None:
            self.supervisor.stop()
            stuck = self.supervisor.stuck_generations
            self.supervisor = None
        self._started = False
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                self._wait_stopped(proc, stuck)
            code = proc.returncode
            self._say(f"stopped (exit status {code})")
        stubs, _ = self.end_leftovers(grace_s=2.0)
        if code == 0 and stubs:
            code = 1
        if self._workdir is not None:
            # Keep the log when it lives in the work dir and the server failed; the message above names it.
            keep_log = self.log_path is not None and self.log_path.parent == self._workdir and code not in (0, None)
            if not keep_log:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return code

    def _wait_stopped(self, proc: subprocess.Popen[bytes], stuck: int) -> None:
        """Wait for tritonserver to finish the requests in flight and exit. A model generation whose stub died never
        finishes unloading in tritonserver 2.51 (its instance thread waits on the dead process), so with ``stuck``
        such generations it would wait out its whole exit timeout: once its countdown (one log line a second) shows
        no more live models than those, everything else has finished, and it is ended."""
        deadline = time.monotonic() + self.exit_timeout_s + self.stop_grace_s
        while proc.poll() is None and time.monotonic() < deadline:
            if stuck and (live := self._live_models_at_stop()) is not None and live <= stuck:
                self._say(f"ending tritonserver: only the {stuck} model generation(s) whose stub died are left")
                proc.kill()
                proc.wait()
                proc.returncode = 0
                return
            time.sleep(0.1)
        if proc.poll() is None:
            self._say("tritonserver did not stop after SIGTERM: killing it", logging.WARNING)
            proc.kill()
            proc.wait()

    def _live_models_at_stop(self) -> int | None:
        last = None
        for line in self.log_tail(5).splitlines():
            if (match := LIVE_MODELS.search(line)) and match.group(2) == "0":
                last = int(match.group(1))
        return last

    def __enter__(self) -> TritonServer:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
