"""Shared fixtures: one real tritonserver per test session, and automatic skips for missing hardware."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest

from swish_triton.serving.launcher import TritonServer, free_port
from tests.served import API_KEY, server_on_free_ports
from tests.support import MODEL_REPOSITORY


@cache
def missing_gpu() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU here (nvidia-smi not found)"
    proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "GPU" not in proc.stdout:
        return f"no usable NVIDIA GPU (nvidia-smi -L: {proc.stdout.strip() or proc.stderr.strip()})"
    return None


@cache
def missing_tensorrt() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (run inside an NGC TensorRT container; see build/README.md)"
    try:
        import tensorrt
    except Exception as exc:  # noqa: BLE001 - any import failure means no TensorRT
        return f"TensorRT does not import: {exc}"
    if not hasattr(tensorrt, "Builder"):  # e.g. only the type stubs (tensorrt-stubs) are installed
        return "TensorRT is not installed (only its type stubs are); run inside an NGC TensorRT container"
    return missing_gpu()


@cache
def missing_docker() -> str | None:
    """The CPU way of the compose deployment needs a Docker engine that answers or that can be started here."""
    if importlib.util.find_spec("docker") is None:
        return "the docker Python SDK is not installed (pip install docker)"
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if shutil.which("docker") and subprocess.run(["docker", "-H", host, "info"], capture_output=True).returncode == 0:
        return None
    if shutil.which("dockerd") and os.geteuid() == 0:
        return None  # tests/deploy/test_docker_e2e.py starts a private dockerd
    if os.geteuid() == 0 and shutil.which("apt-get"):
        return None  # ... after installing Debian's docker.io
    return f"no Docker engine answers at {host} and none can be started (needs root, dockerd or apt-get)"


@cache
def missing_docker_gpu() -> str | None:
    """The GPU way also needs the NVIDIA runtime in a running engine."""
    try:
        import docker

        info = docker.from_env().info()
    except Exception as exc:  # noqa: BLE001 - no engine, no permission, ...
        return f"no Docker engine reachable: {exc}"
    if "nvidia" not in info.get("Runtimes", {}):
        return "the Docker engine has no NVIDIA runtime (install the NVIDIA Container Toolkit)"
    return missing_gpu()


NEEDS = {"gpu": missing_gpu, "tensorrt": missing_tensorrt, "docker": missing_docker}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, check in NEEDS.items():
            if marker in item.keywords:
                reason = check()
                if reason:
                    item.add_marker(pytest.mark.skip(reason=f"[{marker}] {reason}"))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A seeded generator per test, so a failure reproduces; the seed is derived from the test's name."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(scope="session")
def triton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """The embedded tritonserver on free ports, serving every model it has a backend for."""
    log = tmp_path_factory.mktemp("triton") / "tritonserver.log"
    server = TritonServer(
        MODEL_REPOSITORY,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_path=log,
        quiet=True,
        # perf_analyzer's --shared-memory runs (tests/swish_triton/perf/test_sweep_cli.py) register regions without a
        # key; the other control APIs stay locked, as in `make serve`.
        open_apis=("shared-memory",),
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """A second embedded tritonserver with a known API key (tests.served.API_KEY), serving swish_py and identity_py,
    for the tests that crash it, kill its stubs and unload its models: each of them leaves it serving correctly."""
    log = tmp_path_factory.mktemp("keyed") / "tritonserver.log"
    server = server_on_free_ports(MODEL_REPOSITORY, models=["swish_py", "identity_py"], log_path=log, api_key=API_KEY)
    with server:
        yield server
