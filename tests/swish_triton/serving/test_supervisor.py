"""The supervisor (swish_triton.serving.supervisor) against a real tritonserver: a crashed server is restarted at
once, one that cannot start and a model whose reload fails are retried with backoff, a model that keeps dying is
reloaded each time. 127.0.0.1 only."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from swish_triton.serving import server_processes
from swish_triton.serving.control_api import http_call
from swish_triton.serving.launcher import TritonServer, port_is_free
from tests.served import (
    RECOVERY_BOUND_S,
    correct_answers,
    nothing_left_behind,
    server_on_free_ports,
)
from tests.support import REPO, wait_for


def test_a_crashed_tritonserver_is_restarted_at_once_and_refuses_connections_meanwhile(
    keyed_server: TritonServer,
) -> None:
    for _ in range(3):  # crashes in a row: each restart is immediate (no backoff for a server that came up)
        old_pid = keyed_server.pid
        assert old_pid is not None
        crashed_at = time.monotonic()
        os.kill(old_pid, signal.SIGSEGV)
        down = wait_for(lambda: http_call(keyed_server.http_url, "/v2/health/ready", timeout_s=1)[0] == 0, 5)
        assert down is not None, "while tritonserver is down its ports refuse connections"
        assert wait_for(lambda old=old_pid: keyed_server.pid not in (None, old), 3 * RECOVERY_BOUND_S) is not None
        assert wait_for(keyed_server.is_ready, 3 * RECOVERY_BOUND_S) is not None
        back = time.monotonic() - crashed_at
        print(f"tritonserver killed by SIGSEGV: serving again after {back:.1f} s")
        assert back <= RECOVERY_BOUND_S
        correct_answers(keyed_server)
        nothing_left_behind(keyed_server)
    assert keyed_server.supervisor is not None and keyed_server.supervisor.restarts >= 3


def test_a_server_that_cannot_start_is_retried_with_backoff(
    keyed_server: TritonServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process takes the HTTP port while tritonserver restarts: the start fails (and readiness from that
    process is not believed) until the port is free again, retried after 1 s, 2 s, ..."""
    old_pid = keyed_server.pid
    assert old_pid is not None
    with caplog.at_level(logging.WARNING, logger="swish_triton.serving.supervisor"):
        os.kill(old_pid, signal.SIGKILL)
        assert wait_for(lambda: port_is_free("127.0.0.1", keyed_server.http_port), 10) is not None
        squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", keyed_server.http_port))
        squatter.listen()
        try:
            assert wait_for(lambda: "trying again in 2 s" in caplog.text, 60) is not None
            assert "restart failed" in caplog.text
        finally:
            squatter.close()
        assert wait_for(keyed_server.is_ready, 60) is not None
    correct_answers(keyed_server)
    nothing_left_behind(keyed_server)


def test_a_model_whose_reload_fails_is_not_ready_and_retried_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "model_repository" / "identity_py", repo / "identity_py")
    model_py = repo / "identity_py" / "1" / "model.py"
    good = model_py.read_text()
    with server_on_free_ports(repo) as server, caplog.at_level(logging.WARNING, "swish_triton.serving.supervisor"):
        model_py.write_text("raise RuntimeError('broken on purpose')\n")
        stub = next(s for s in server_processes.stub_processes(server.shm_prefix) if s.instance != s.model)
        os.kill(stub.pid, signal.SIGKILL)
        assert wait_for(lambda: "trying again in 2 s" in caplog.text, 60) is not None
        assert http_call(server.http_url, "/v2/models/identity_py/ready")[0] != 200
        assert http_call(server.http_url, "/v2/health/ready")[0] != 200
        model_py.write_text(good)
        assert wait_for(server.is_ready, 60) is not None
        assert "identity_py reloaded" in caplog.text


def test_a_model_that_keeps_dying_is_reloaded_each_time(keyed_server: TritonServer) -> None:
    assert keyed_server.supervisor is not None
    reloads = keyed_server.supervisor.reloads
    for _ in range(2):
        stubs = [s for s in server_processes.stub_processes(keyed_server.shm_prefix) if s.model == "identity_py"]
        os.kill(stubs[0].pid, signal.SIGKILL)
        assert wait_for(lambda: not keyed_server.is_ready(), 5) is not None
        assert wait_for(keyed_server.is_ready, 3 * RECOVERY_BOUND_S) is not None
    assert keyed_server.supervisor.reloads == reloads + 2
    correct_answers(keyed_server)
    nothing_left_behind(keyed_server)
