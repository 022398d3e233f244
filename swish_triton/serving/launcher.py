"""Start the tritonserver bundled in the ``nvidia-pytriton`` wheel on a model repository, and stop it cleanly.

The wheel ships a real tritonserver (2.51) with the Python backend but no TensorRT backend. The launcher prepares a
backend directory with the Python-backend stub built for the running interpreter, loads only the models whose
backend this server has (explicit model control) and says which it skipped and why, binds 127.0.0.1 by default,
waits on ``/v2/health/ready`` and stops the server with SIGTERM, then SIGKILL after a timeout.

    python -m swish_triton.serving.launcher --model-repository model_repository   # serves until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from swish_triton.errors import SwishError
from swish_triton.model_config import read_model_config

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}

# platform in config.pbtxt -> the backend that serves it (Triton's own mapping for the platforms we use).
PLATFORM_BACKENDS = {
    "tensorrt_plan": "tensorrt",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
}
BACKEND_NAMES = {"tensorrt": "TensorRT", "python": "Python", "onnxruntime": "ONNX Runtime", "pytorch": "PyTorch"}


class LauncherError(SwishError):
    """The server could not be started (or stopped) as asked; the message says why."""


def pytriton_bundle() -> Path:
    """The ``tritonserver`` folder inside the installed nvidia-pytriton wheel (found without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise LauncherError("nvidia-pytriton is not installed: pip install 'nvidia-pytriton==0.7.*'")
    bundle = Path(next(iter(spec.submodule_search_locations))).resolve() / "tritonserver"
    if not (bundle / "bin" / "tritonserver").is_file():
        raise LauncherError(f"no tritonserver binary in {bundle}")
    return bundle


def check_numpy_for_stub() -> None:
    """The bundled Python-backend stub (Triton 24.10) was compiled against NumPy 1.x. With NumPy 2 it reads array
    descriptors at the old layout and every output tensor comes back with zero bytes (seen on the H100 machine with
    NumPy 2.5), so refuse to start instead of serving empty answers."""
    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2:
        raise LauncherError(
            f"NumPy {numpy.__version__} is importable here, but the Python-backend stub of the bundled tritonserver "
            "2.51 needs NumPy 1.x (with NumPy 2 every output comes back empty): pip install 'numpy<2'"
        )


def model_backend(config: model_config_pb2.ModelConfig) -> str:
    if config.backend:
        return config.backend
    return PLATFORM_BACKENDS.get(config.platform, config.platform or "unknown")


@dataclass(frozen=True)
class ModelPlan:
    """Which models of a repository this server will load, and why the others are skipped."""

    load: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def plan_models(repository: Path, backends: set[str], only: Sequence[str] | None = None) -> ModelPlan:
    load: list[str] = []
    skipped: list[tuple[str, str]] = []
    for model_dir in sorted(p for p in repository.iterdir() if (p / "config.pbtxt").is_file()):
        name = model_dir.name
        if only and name not in only:
            continue
        backend = model_backend(read_model_config(model_dir))
        if backend in backends:
            load.append(name)
        else:
            skipped.append((name, f"no {BACKEND_NAMES.get(backend, backend)} backend in this server"))
    missing = set(only or ()) - set(load) - {n for n, _ in skipped}
    if missing:
        raise LauncherError(f"no such model in {repository}: {', '.join(sorted(missing))}")
    return ModelPlan(tuple(load), tuple(skipped))


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


def _die_with_parent() -> None:
    # Runs in the child before exec: if the Python process that started the server dies, the server gets SIGTERM,
    # so a crashed test run never leaves a tritonserver behind.
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class TritonServer:
    """An embedded tritonserver process. Use as a context manager, or call start() and stop()."""

    model_repository: Path
    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_PORTS["http"]
    grpc_port: int = DEFAULT_PORTS["grpc"]
    metrics_port: int = DEFAULT_PORTS["metrics"]
    models: Sequence[str] | None = None
    log_path: Path | None = None
    ready_timeout_s: float = 120.0
    # Triton waits this long on SIGTERM for open client connections and in-flight requests (its default is 30 s).
    exit_timeout_s: int = 5
    stop_timeout_s: float = 20.0
    log_verbose: int = 0
    extra_args: Sequence[str] = ()
    quiet: bool = False
    plan: ModelPlan | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(f"[triton] {message}", flush=True)

    def _prepare_backends(self, bundle: Path) -> Path:
        """A backend directory whose Python backend runs the stub built for this interpreter."""
        assert self._workdir is not None
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = bundle / "python_backend_stubs" / py / "triton_python_backend_stub"
        if not stub.is_file():
            raise LauncherError(f"nvidia-pytriton has no Python-backend stub for Python {py} (it has 3.8-3.13)")
        python_dir = self._workdir / "backends" / "python"
        python_dir.mkdir(parents=True)
        for item in (bundle / "backends" / "python").iterdir():
            if item.is_file():
                (python_dir / item.name).symlink_to(item)
        # A link, not a copy: the stub finds its bundled libraries relative to its real location.
        (python_dir / stub.name).symlink_to(stub)
        return self._workdir / "backends"

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The Python-backend stub imports numpy and the model's packages from the first python3 on PATH, and
        # links libpython from the interpreter's LIBDIR.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        libdir = sysconfig.get_config_var("LIBDIR")
        if libdir:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [libdir, env.get("LD_LIBRARY_PATH", "")] if p)
        return env

    def command(self, backend_dir: Path) -> list[str]:
        assert self.plan is not None
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
            # Shared-memory regions of the Python backend are named per server, so several servers can run at once.
            f"--backend-config=python,shm-region-prefix-name=swish{os.getpid()}_{self.http_port}_",
        ]
        cmd += [f"--load-model={name}" for name in self.plan.load]
        cmd += list(self.extra_args)
        return cmd

    def start(self) -> TritonServer:
        repo = Path(self.model_repository).resolve()
        if not repo.is_dir():
            raise LauncherError(f"model repository {repo} does not exist")
        self.model_repository = repo
        for name, port in (("HTTP", self.http_port), ("gRPC", self.grpc_port), ("metrics", self.metrics_port)):
            if not port_is_free(self.host, port):
                raise LauncherError(
                    f"port {port} ({name}) on {self.host} is already in use: stop what holds it "
                    f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port"
                )
        bundle = pytriton_bundle()
        check_numpy_for_stub()
        backends = {p.name for p in (bundle / "backends").iterdir() if p.is_dir()}
        self.plan = plan_models(repo, backends, self.models)
        for name, why in self.plan.skipped:
            self._say(f"skipping {name}: {why}")
        if not self.plan.load:
            raise LauncherError(f"no model in {repo} can be served by this server")
        self._workdir = Path(tempfile.mkdtemp(prefix="swish-triton-"))
        backend_dir = self._prepare_backends(bundle)
        if self.log_path is None:
            self.log_path = self._workdir / "tritonserver.log"
        self.log_path = Path(self.log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._say(
            f"starting tritonserver on {self.host} (HTTP {self.http_port}, gRPC {self.grpc_port}, "
            f"metrics {self.metrics_port}) with {', '.join(self.plan.load)}; log: {self.log_path}"
        )
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - the command is built from our own arguments
                self.command(backend_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl call, before any thread exists there
            )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

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
            if self.is_ready():
                self._say("ready")
                return
            time.sleep(0.2)
        raise LauncherError(
            f"tritonserver was not ready after {self.ready_timeout_s:.0f} s; last lines of "
            f"{self.log_path}:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after stop_timeout_s. Returns the exit status (None if it never started)."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    self._say(f"tritonserver did not stop within {self.stop_timeout_s:.0f} s of SIGTERM: killing it")
                    proc.kill()
                    proc.wait()
            code = proc.returncode
            self._say(f"stopped (exit status {code})")
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


def env_default(name: str, default: str) -> str:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Serve a model repository with the tritonserver bundled in nvidia-pytriton.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-repository", type=Path, default=Path(env_default("SWISH_MODEL_REPOSITORY", "model_repository"))
    )
    parser.add_argument(
        "--host",
        default=env_default("SWISH_TRITON_HOST", DEFAULT_HOST),
        help="address to bind HTTP, gRPC and metrics to",
    )
    parser.add_argument("--http-port", type=int, default=int(env_default("SWISH_HTTP_PORT", "8000")))
    parser.add_argument("--grpc-port", type=int, default=int(env_default("SWISH_GRPC_PORT", "8001")))
    parser.add_argument("--metrics-port", type=int, default=int(env_default("SWISH_METRICS_PORT", "8002")))
    parser.add_argument("--model", action="append", dest="models", help="load only this model (repeatable)")
    parser.add_argument("--log-file", type=Path, default=None, help="server log (default: a temporary file)")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for readiness")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="tritonserver --log-verbose level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = TritonServer(
        args.model_repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        models=args.models,
        log_path=args.log_file,
        ready_timeout_s=args.ready_timeout,
        log_verbose=args.verbose,
    )
    stop = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        server.start()
        print(f"Serving. HTTP: http://{server.http_url}  gRPC: {server.grpc_url}  Ctrl-C stops.", flush=True)
        while not stop and server.running:
            time.sleep(0.5)
        if not server.running and not stop:
            print(f"tritonserver exited unexpectedly; last lines of its log:\n{server.log_tail()}", file=sys.stderr)
            return 1
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
