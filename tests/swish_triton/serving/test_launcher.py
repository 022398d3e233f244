"""The embedded Triton launcher (swish_triton.serving.launcher): its failure paths before and while starting (taken
ports, bad keys, models that fail to load, broken repository entries), the ports it serves on, and --expose."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from swish_triton.serving import server_processes
from swish_triton.serving.launcher import LauncherError, TritonServer, free_port, port_is_free
from tests.served import (
    correct_answers,
    server_on_free_ports,
)
from tests.support import REPO


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
    server = server_on_free_ports(tmp_path, log_path=tmp_path / "server.log")
    with pytest.raises(LauncherError, match="this model is broken on purpose"):
        server.start()
    assert not server.running


def test_a_bad_api_key_is_refused_before_anything_starts() -> None:
    server = server_on_free_ports(REPO / "model_repository", api_key="short")
    with pytest.raises(LauncherError, match="at least 16 characters"):
        server.start()
    assert not server.running


def test_tritonserver_answers_the_public_ports_itself() -> None:
    server = server_on_free_ports(REPO / "model_repository", models=["identity_py"])
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


def test_a_second_launcher_on_the_same_port_fails_and_the_first_keeps_serving(keyed_server: TritonServer) -> None:
    second = TritonServer(
        REPO / "model_repository",
        http_port=keyed_server.http_port,
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=["identity_py"],
        quiet=True,
    )
    with pytest.raises(LauncherError, match=rf"port {keyed_server.http_port} \(HTTP\) on 127.0.0.1 is already in use"):
        second.start()
    assert not second.running
    correct_answers(keyed_server)


def broken_repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "model_repository" / "identity_py", repo / "identity_py")
    (repo / "bad_syntax" / "1").mkdir(parents=True)
    (repo / "bad_syntax" / "config.pbtxt").write_text('name: "bad_syntax"\nbackend: "python"\nmax_batch_size: [8\n')
    shutil.copy(REPO / "model_repository" / "identity_py" / "1" / "model.py", repo / "bad_syntax" / "1")
    (repo / "no_code" / "1").mkdir(parents=True)
    (repo / "no_code" / "config.pbtxt").write_text(
        (REPO / "model_repository" / "identity_py" / "config.pbtxt").read_text().replace("identity_py", "no_code")
    )
    return repo


def test_a_broken_entry_is_reported_by_file_and_line_and_the_rest_is_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = broken_repository(tmp_path)
    began = time.monotonic()
    with caplog.at_level("WARNING"), server_on_free_ports(repo) as server:
        assert time.monotonic() - began < 60, "a missing model.py must not wait for the readiness timeout"
        assert server.plan is not None and server.plan.load == ("identity_py",)
        client = httpclient.InferenceServerClient(server.http_url)
        try:
            inp = httpclient.InferInput("INPUT0", [1, 3], "FP32")
            inp.set_data_from_numpy(np.array([[1, 2, 3]], np.float32))
            assert client.infer("identity_py", [inp]).as_numpy("OUTPUT0").tolist() == [[1, 2, 3]]
        finally:
            client.close()
    text = caplog.text
    assert f"{repo / 'bad_syntax' / 'config.pbtxt'}:3:" in text
    assert "no_code" in text and "no model.py" in text


def test_strict_fails_on_a_broken_entry_naming_the_file(tmp_path: Path) -> None:
    repo = broken_repository(tmp_path)
    with pytest.raises(LauncherError, match=r"bad_syntax/config\.pbtxt:3:"):
        server_on_free_ports(repo, strict=True).start()
