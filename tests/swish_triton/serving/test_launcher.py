"""The embedded Triton launcher: which models it loads, and its failure paths."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from swish_triton.serving import server_processes
from swish_triton.serving.launcher import LauncherError, TritonServer, free_port, plan_models, port_is_free
from tests.support import REPO


def test_plan_skips_tensorrt_models_with_a_reason(tmp_path: Path) -> None:
    shutil.copytree(REPO / "model_repository" / "swish_py", tmp_path / "swish_py")
    (tmp_path / "swish").mkdir()
    (tmp_path / "swish" / "config.pbtxt").write_text('name: "swish"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n')
    plan = plan_models(tmp_path, {"python"})
    assert plan.load == ("swish_py",)
    assert plan.skipped == (("swish", "no TensorRT backend in this server"),)


def test_plan_of_the_project_repository_loads_every_python_model() -> None:
    plan = plan_models(REPO / "model_repository", {"python"})
    assert {"swish_py", "swish_py_fp16", "identity_py"} <= set(plan.load)
    assert all(why.startswith("no ") for _, why in plan.skipped)


def test_plan_rejects_an_unknown_model() -> None:
    with pytest.raises(LauncherError, match="no such model"):
        plan_models(REPO / "model_repository", {"python"}, only=["nope"])


def test_port_taken_fails_clearly_and_starts_nothing() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        server = TritonServer(
            REPO / "model_repository", http_port=free_port(), grpc_port=taken, metrics_port=free_port(), quiet=True
        )
        with pytest.raises(LauncherError, match=rf"port {taken} \(gRPC\) on 127.0.0.1 is already in use"):
            server.start()
        assert not server.running


def test_a_model_that_fails_to_load_shows_the_log_tail(tmp_path: Path) -> None:
    model = tmp_path / "broken" / "1"
    model.mkdir(parents=True)
    (model / "model.py").write_text("raise RuntimeError('this model is broken on purpose')\n")
    (tmp_path / "broken" / "config.pbtxt").write_text(
        'name: "broken"\nbackend: "python"\nmax_batch_size: 1\n'
        'input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [-1] }]\n'
        'output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [-1] }]\n'
    )
    server = TritonServer(
        tmp_path,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_path=tmp_path / "server.log",
        quiet=True,
    )
    with pytest.raises(LauncherError, match="this model is broken on purpose"):
        server.start()
    assert not server.running


def test_cli_serves_until_sigterm_and_exits_zero(tmp_path: Path) -> None:
    http = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swish_triton.serving",
            "--model-repository",
            str(REPO / "model_repository"),
            "--http-port",
            str(http),
            "--grpc-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--model",
            "identity_py",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Serving."):
                break
        assert any("Serving." in line for line in lines), "".join(lines)
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped (exit status 0)" in out
    assert port_is_free("127.0.0.1", http), "the port is free again"


def test_help_shows_the_defaults_and_never_the_key() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "swish_triton.serving", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "SWISH_API_KEY": "do-not-print-this-key-0123"},
        timeout=60,
    )
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "--exit-timeout" in text and "(default: 30)" in text
    assert "--strict" in text and "--api-key" in text and "--open-api" in text
    assert "do-not-print-this-key" not in proc.stdout


def test_a_bad_api_key_is_refused_before_anything_starts() -> None:
    server = TritonServer(
        REPO / "model_repository",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        api_key="short",
        quiet=True,
    )
    with pytest.raises(LauncherError, match="at least 16 characters"):
        server.start()
    assert not server.running


def test_tritonserver_answers_the_public_ports_itself() -> None:
    server = TritonServer(
        REPO / "model_repository",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=["identity_py"],
        quiet=True,
    )
    with server:
        assert server.is_ready() and server.pid is not None
        for port in (server.http_port, server.grpc_port):
            assert server_processes.listening_pids(port, [server.pid]) == {server.pid}
    assert port_is_free("127.0.0.1", server.http_port)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_an_address_beyond_loopback_needs_expose(host: str) -> None:
    server = TritonServer(REPO / "model_repository", host=host, models=["identity_py"], quiet=True)
    with pytest.raises(LauncherError, match="not a loopback address.*needs --expose"):
        server.start()
    assert not server.running


def test_expose_says_in_one_line_what_it_risks(caplog: pytest.LogCaptureFixture) -> None:
    server = TritonServer(
        REPO / "model_repository",
        host="0.0.0.0",  # noqa: S104 - the test binds every address on purpose, for a moment
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=["identity_py"],
        expose=True,
    )
    with caplog.at_level(logging.WARNING), server:
        assert server.is_ready()
    warning = [r.getMessage() for r in caplog.records if "crash defects" in r.getMessage()]
    assert len(warning) == 1 and "server#8676" in warning[0] and "restarts it" in warning[0]
