"""The validation client (swish_triton.clients.validation, client/validate.py) against the real embedded server:
the Swish models pass over HTTP and gRPC, and a model that is not Swish, or not served, fails with exit status 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from swish_triton.clients.validation import run_validation
from swish_triton.serving.launcher import TritonServer
from tests.support import REPO

PROTOCOLS = ["http", "grpc"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", ["swish_py", "swish_py_fp16"])
def test_validation_passes(triton_server: TritonServer, protocol: str, model: str) -> None:
    url = triton_server.http_url if protocol == "http" else triton_server.grpc_url
    report = run_validation(url, protocol, model)
    assert report.ok, report.summary() + "\n" + report.table()
    assert len(report.cases) >= 10


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_validation_cli_passes_and_exits_zero(triton_server: TritonServer, protocol: str) -> None:
    url = triton_server.http_url if protocol == "http" else triton_server.grpc_url
    proc = subprocess.run(
        [sys.executable, str(REPO / "client" / "validate.py"), "-u", url, "-i", protocol, "-m", "swish_py"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"PASS: swish_py ({protocol}" in proc.stdout


def test_validation_cli_fails_on_a_model_that_is_not_swish(triton_server: TritonServer) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "client" / "validate.py"), "-u", triton_server.http_url, "-m", "identity_py"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "FAIL: identity_py" in proc.stdout and "expected" in proc.stdout


def test_validation_cli_fails_on_an_unknown_model(triton_server: TritonServer) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "client" / "validate.py"),
            "-u",
            triton_server.grpc_url,
            "-i",
            "grpc",
            "-m",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "FAIL: nope" in proc.stdout and "not ready" in proc.stdout
