"""Helpers of the tests that run their own embedded server (tests/conftest.py: keyed_server): a server on free ports,
checks that it answers correctly and left nothing behind, and load from a few threads."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from swish_triton.reference import swish_ref
from swish_triton.serving import serve_command, server_processes
from swish_triton.serving.launcher import TritonServer, free_port
from tests.support import REPO

API_KEY = "test-key-0123456789abcdef"
# Seconds from a crash (or a stub's death) until correct answers again: measured 1.4-3.5 s on a 2-core host
# (docs/security.md); the bound leaves room for a loaded CI machine.
RECOVERY_BOUND_S = 10.0
# Seconds from a stub's death until readiness says so: measured 0.01-0.13 s on a quiet 2-core host; one CI run on a
# loaded one took 1.0 s (the reload's first calls wait for tritonserver's busy threads).
DETECT_BOUND_S = 2.0


def server_on_free_ports(repo: Path, **kwargs: object) -> TritonServer:
    """An embedded server of `repo` on free ports of 127.0.0.1 (not started)."""
    return TritonServer(
        repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(), quiet=True, **kwargs
    )


@contextlib.contextmanager
def serve_subprocess(
    model: str, http_port: int, grpc_port: int, *extra: str
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The serve command (``python -m swish_triton.serving``) on the project's model repository as a subprocess,
    from its serving line on (asserted): (the process, its output up to that line). Killed at exit if still running."""
    proc = serve_command.start_subprocess(REPO / "model_repository", model, http_port, grpc_port, *extra)
    try:
        serving, lines = serve_command.read_until_serving(proc)
        assert serving, "".join(lines)
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()


def assert_stopped_cleanly(proc: subprocess.Popen[str], out: str) -> None:
    """A serve subprocess that was asked to stop exited 0 after its server did."""
    assert proc.returncode == 0, out
    assert "stopped (exit status 0)" in out


def client_for(server: TritonServer, protocol: str):  # noqa: ANN201 - either tritonclient flavour
    """(the tritonclient module of `protocol`, a client of `server` over it); close the client."""
    if protocol == "http":
        return httpclient, httpclient.InferenceServerClient(server.http_url)
    return grpcclient, grpcclient.InferenceServerClient(server.grpc_url)


def infer(
    server: TritonServer, protocol: str, x: np.ndarray, datatype: str = "FP32", model: str = "swish_py"
) -> np.ndarray:
    """One request of `x` as INPUT0 to `model` over `protocol`: its OUTPUT0."""
    module, client = client_for(server, protocol)
    try:
        inp = module.InferInput("INPUT0", list(x.shape), datatype)
        inp.set_data_from_numpy(x)
        return client.infer(model, [inp]).as_numpy("OUTPUT0")
    finally:
        client.close()


def correct_answers(server: TritonServer, timeout_s: float = 0.0) -> None:
    """Ready, and both protocols give swish_ref's values (waiting up to timeout_s for readiness)."""
    deadline = time.monotonic() + timeout_s
    while not server.is_ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.is_ready()
    x = np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, -1)
    for module, url in ((httpclient, server.http_url), (grpcclient, server.grpc_url)):
        client = module.InferenceServerClient(url)
        try:
            inp = module.InferInput("INPUT0", [1, 8], "FP32")
            inp.set_data_from_numpy(x)
            np.testing.assert_allclose(client.infer("swish_py", [inp]).as_numpy("OUTPUT0"), swish_ref(x), rtol=1e-6)
        finally:
            client.close()


def nothing_left_behind(server: TritonServer) -> None:
    """Every stub of this launch is a child of the tritonserver now running, and every /dev/shm file of this launch
    belongs to one of them: nothing of a crashed server or of a dead stub remains."""
    stubs = server_processes.stub_processes(server.shm_prefix)
    parents = {int(Path(f"/proc/{s.pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for s in stubs}
    assert parents <= {server.pid}, (parents, server.pid)
    regions = {p.name for p in server_processes.shm_regions(server.shm_prefix)}
    assert regions <= {s.region for s in stubs}, regions - {s.region for s in stubs}


def http_post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{url}{path}", data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Load:
    """gRPC requests from a few threads until stopped; counts successes and failures with their times."""

    def __init__(self, grpc_url: str, threads: int = 4, model: str = "swish_py") -> None:
        self.grpc_url, self.model, self.ok, self.failures = grpc_url, model, 0, []
        self.successes: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        client = grpcclient.InferenceServerClient(self.grpc_url)
        x = np.linspace(-3, 3, 64, dtype=np.float32).reshape(1, -1)
        expected = swish_ref(x) if self.model.startswith("swish") else x
        while not self._stop.is_set():
            inp = grpcclient.InferInput("INPUT0", [1, 64], "FP32")
            inp.set_data_from_numpy(x)
            try:
                out = client.infer(self.model, [inp], client_timeout=30).as_numpy("OUTPUT0")
                assert np.allclose(out, expected, rtol=1e-6)
                self.ok += 1
                self.successes.append(time.monotonic())
            except InferenceServerException as exc:
                self.failures.append((time.monotonic(), str(exc)))
        client.close()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
