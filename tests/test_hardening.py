"""The hardened embedded server against a real tritonserver: hostile shapes, dead stubs, crashes, the locked control
plane, clean shutdown under load, broken repository entries and NumPy 2 inside the stub. 127.0.0.1 only."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from swish_triton.reference import swish_ref
from swish_triton.serving import server_processes
from swish_triton.serving.control_api import GRPC_HEADER_PREFIX
from swish_triton.serving.health import main as health_main
from swish_triton.serving.launcher import LauncherError, TritonServer, free_port, port_is_free
from swish_triton.serving.native_front import accepts_compressed_requests, front_binary

REPO = Path(__file__).resolve().parent.parent
API_KEY = "test-key-0123456789abcdef"
HOSTILE_SHAPES = {
    "[1, 2^62]": [1, 2**62],
    "[64, 2^63-1]": [64, 2**63 - 1],
    "[1, 2^62-1]": [1, 2**62 - 1],
    "[1, 2^34]": [1, 2**34],
    "[2, 2^63]": [2, 2**63],
    "[4, 2^61]": [4, 2**61],
}


def server_on_free_ports(repo: Path, **kwargs: object) -> TritonServer:
    return TritonServer(
        repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(), quiet=True, **kwargs
    )


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """Its own server (the tests here crash and reload things), with a known key."""
    log = tmp_path_factory.mktemp("hardened") / "tritonserver.log"
    server = server_on_free_ports(
        REPO / "model_repository", models=["swish_py", "identity_py"], log_path=log, api_key=API_KEY
    )
    with server:
        yield server


@pytest.fixture(scope="module", params=["native", "python"])
def guarded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """A server behind each front: the C relay (the default) and the Python front (where no compiler is found)."""
    if request.param == "native" and front_binary() is None:
        pytest.skip("no C compiler builds the native front here")
    log = tmp_path_factory.mktemp(f"guarded-{request.param}") / "tritonserver.log"
    server = server_on_free_ports(
        REPO / "model_repository", models=["swish_py"], log_path=log, api_key=API_KEY, front_kind=request.param
    )
    with server:
        assert server.front_in_use == request.param
        yield server


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


def http_post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{url}{path}", data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- hostile shapes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", HOSTILE_SHAPES.values(), ids=HOSTILE_SHAPES.keys())
@pytest.mark.parametrize("form", ["http-json", "http-binary", "http-binary-empty"])
def test_hostile_shape_over_http_is_refused_and_the_server_keeps_serving(
    guarded: TritonServer, form: str, shape: list[int]
) -> None:
    tensor = {"name": "INPUT0", "datatype": "FP32", "shape": shape}
    if form == "http-json":
        status, body = http_post(
            guarded.http_url, "/v2/models/swish_py/infer", json.dumps({"inputs": [{**tensor, "data": [1.0]}]}).encode()
        )
    else:
        data = b"" if form == "http-binary-empty" else np.ones(1, np.float32).tobytes()
        header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}]}).encode()
        status, body = http_post(
            guarded.http_url,
            "/v2/models/swish_py/infer",
            header + data,
            {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
        )
    assert status == 400, body
    assert "shape" in json.loads(body)["error"]
    correct_answers(guarded)


def grpc_shape(shape: list[int]) -> list[int]:
    # A dimension of 2^63 does not fit gRPC's int64; on the wire it arrives as -2^63, which is what we send.
    return [d - 2**64 if d > 2**63 - 1 else d for d in shape]


@pytest.mark.parametrize("shape", HOSTILE_SHAPES.values(), ids=HOSTILE_SHAPES.keys())
@pytest.mark.parametrize("data", ["empty", "one-element"])
def test_hostile_shape_over_grpc_is_refused_and_the_server_keeps_serving(
    guarded: TritonServer, shape: list[int], data: str
) -> None:
    raw = b"" if data == "empty" else np.ones(1, np.float32).tobytes()
    request = service_pb2.ModelInferRequest(
        model_name="swish_py",
        inputs=[
            service_pb2.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=grpc_shape(shape))
        ],
        raw_input_contents=[raw],
    )
    with grpc.insecure_channel(guarded.grpc_url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "shape" in info.value.details()
        # The streaming form: the stream ends with the same status and reason.
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ModelStreamInfer(iter([request]), timeout=30))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "shape" in info.value.details()
    correct_answers(guarded)


def test_grpc_streaming_still_serves_good_requests(guarded: TritonServer) -> None:
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, -1)
    request = service_pb2.ModelInferRequest(
        model_name="swish_py",
        inputs=[service_pb2.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[1, 16])],
        raw_input_contents=[x.tobytes()],
    )
    with grpc.insecure_channel(guarded.grpc_url) as channel:
        replies = list(service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer(iter([request] * 3)))
    assert len(replies) == 3 and not any(r.error_message for r in replies)
    out = np.frombuffer(replies[0].infer_response.raw_output_contents[0], np.float32).reshape(1, -1)
    np.testing.assert_allclose(out, swish_ref(x), rtol=1e-6)


def raw_http(url: str, payload: bytes, responses: int = 1) -> list[tuple[int, bytes]]:
    """Send bytes as they are on one connection; read that many responses (status, body)."""
    host, port = url.rsplit(":", 1)
    out = []
    with socket.create_connection((host, int(port)), timeout=30) as sock, sock.makefile("rb") as reader:
        sock.sendall(payload)
        for _ in range(responses):
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            out.append((status, reader.read(length)))
    return out


def infer_request(shape: list[int], data: bytes, extra_headers: str = "") -> tuple[bytes, bytes]:
    """(head, body) of an HTTP inference request with binary data."""
    tensor = {"name": "INPUT0", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": len(data)}}
    header = json.dumps({"inputs": [tensor]}).encode()
    body = header + data
    return (
        f"POST /v2/models/swish_py/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: {len(header)}\r\n"
        f"Content-Type: application/octet-stream\r\n{extra_headers}"
    ).encode() + (b"" if "chunked" in extra_headers else f"Content-Length: {len(body)}\r\n".encode()) + b"\r\n", body


def test_pipelined_requests_are_answered_in_order_and_a_hostile_one_among_them_is_refused(
    guarded: TritonServer,
) -> None:
    x = np.linspace(-2, 2, 8, dtype=np.float32)
    good_head, good_body = infer_request([1, 8], x.tobytes())
    bad_head, bad_body = infer_request([4, 2**61], b"")
    replies = raw_http(guarded.http_url, good_head + good_body + bad_head + bad_body + good_head + good_body, 3)
    assert [status for status, _ in replies] == [200, 400, 200]
    assert "shape" in json.loads(replies[1][1])["error"]
    for _, body in (replies[0], replies[2]):
        out = np.array(json.loads(body)["outputs"][0]["data"], np.float32)
        np.testing.assert_allclose(out, swish_ref(x), rtol=1e-6)
    correct_answers(guarded)


def test_chunked_and_compressed_requests_are_checked_too(guarded: TritonServer) -> None:
    import gzip

    binary = front_binary() if guarded.front_in_use == "native" else None
    compressed = binary is None or accepts_compressed_requests(binary)

    # Chunked: the hostile shape is refused; a good request in chunks is served.
    for shape, data, expected in (([1, 2**62], b"", 400), ([1, 8], np.ones(8, np.float32).tobytes(), 200)):
        head, body = infer_request(shape, data, "Transfer-Encoding: chunked\r\n")
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7))
        [(status, reply)] = raw_http(guarded.http_url, head + chunked + b"0\r\n\r\n")
        assert status == expected, reply
    # gzip: the JSON of a compressed request is inflated and checked (a front built without zlib refuses it).
    header = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 2**62], "data": [1.0]}]})
    status, reply = http_post(
        guarded.http_url, "/v2/models/swish_py/infer", gzip.compress(header.encode()), {"Content-Encoding": "gzip"}
    )
    assert status == 400, reply
    if not compressed:
        assert "compressed" in json.loads(reply)["error"]
        return
    assert "shape" in json.loads(reply)["error"], reply
    # Good compressed requests through the clients' own compression (HTTP gzip, gRPC gzip) are served.
    x = np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, -1)
    for module, url, compression in (
        (httpclient, guarded.http_url, {"request_compression_algorithm": "gzip"}),
        (grpcclient, guarded.grpc_url, {"compression_algorithm": "gzip"}),
    ):
        client = module.InferenceServerClient(url)
        inp = module.InferInput("INPUT0", [1, 8], "FP32")
        inp.set_data_from_numpy(x)
        out = client.infer("swish_py", [inp], **compression).as_numpy("OUTPUT0")
        np.testing.assert_allclose(out, swish_ref(x), rtol=1e-6)
        client.close()
    correct_answers(guarded)


def test_malformed_requests_get_a_clear_error(guarded: TritonServer) -> None:
    status, reply = http_post(guarded.http_url, "/v2/models/swish_py/infer", b'{"inputs": [')
    assert status == 400 and "does not parse" in json.loads(reply)["error"]
    status, reply = http_post(guarded.http_url, "/v2/models/swish_py/infer", b"[" * 100_000 + b"]" * 100_000)
    assert status == 400, reply
    [(status, _)] = raw_http(guarded.http_url, b"GARBAGE\r\n\r\n")
    assert status == 400
    # A gRPC message that hides its hostile input behind an unknown group field is still read and refused.
    request = service_pb2.ModelInferRequest(
        model_name="swish_py",
        inputs=[service_pb2.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[4, 2**61])],
        raw_input_contents=[b""],
    ).SerializeToString() + bytes([(15 << 3) | 3, 8, 1, (15 << 3) | 4])
    with grpc.insecure_channel(guarded.grpc_url) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shape" in info.value.details()
    correct_answers(guarded)


# --- self-healing -------------------------------------------------------------------------------------------------


class Load:
    """gRPC requests from a few threads until stopped; counts successes and failures with their times."""

    def __init__(self, grpc_url: str, threads: int = 4) -> None:
        self.grpc_url, self.ok, self.failures = grpc_url, 0, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        client = grpcclient.InferenceServerClient(self.grpc_url)
        x = np.linspace(-3, 3, 64, dtype=np.float32).reshape(1, -1)
        while not self._stop.is_set():
            inp = grpcclient.InferInput("INPUT0", [1, 64], "FP32")
            inp.set_data_from_numpy(x)
            try:
                out = client.infer("swish_py", [inp], client_timeout=30).as_numpy("OUTPUT0")
                assert np.allclose(out, swish_ref(x), rtol=1e-6)
                self.ok += 1
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


def wait_for(predicate, timeout_s: float, step_s: float = 0.05) -> float | None:  # noqa: ANN001
    """Seconds until predicate() held, or None."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if predicate():
            return time.monotonic() - began
        time.sleep(step_s)
    return None


def test_a_killed_stub_under_load_is_reloaded_within_seconds(hardened: TritonServer) -> None:
    with Load(hardened.grpc_url) as load:
        time.sleep(1.0)
        stubs = [s for s in server_processes.stub_processes(hardened.shm_prefix) if s.model == "swish_py"]
        assert len(stubs) == 2
        killed_at = time.monotonic()
        os.kill(stubs[0].pid, signal.SIGKILL)
        not_ready = wait_for(lambda: not hardened.is_ready(), 10)
        assert not_ready is not None, "readiness must turn false while the model cannot serve"
        back = wait_for(hardened.is_ready, 60)
        assert back is not None, "the model must be reloaded"
        recovery_s = not_ready + back
        time.sleep(2.0)
        ok_before = load.ok
        failures_before = len(load.failures)
        time.sleep(3.0)
    print(
        f"killed stub: not ready after {not_ready:.2f} s, serving again {recovery_s:.2f} s after the kill; "
        f"{failures_before} requests failed meanwhile"
    )
    assert recovery_s < 30
    assert len(load.failures) == failures_before, load.failures[failures_before:][:3]
    assert load.ok > ok_before
    assert all(t - killed_at < recovery_s + 2.5 for t, _ in load.failures)
    alive = {s.pid for s in server_processes.stub_processes(hardened.shm_prefix)}
    assert stubs[0].pid not in alive and stubs[1].pid not in alive, "the old generation of stubs is gone"
    correct_answers(hardened)


def test_a_crashed_tritonserver_is_restarted(hardened: TritonServer) -> None:
    assert hardened._proc is not None
    old_pid = hardened._proc.pid
    old_stubs = {s.pid for s in server_processes.stub_processes(hardened.shm_prefix)}
    host, port = hardened.http_url.split(":")
    kept_alive = http.client.HTTPConnection(host, int(port), timeout=30)
    kept_alive.request("GET", "/v2/models/swish_py")
    assert kept_alive.getresponse().read()
    os.kill(old_pid, signal.SIGSEGV)
    assert wait_for(lambda: not hardened.is_ready(), 10) is not None
    back = wait_for(hardened.is_ready, 90, 0.1)
    assert back is not None
    print(f"tritonserver killed by SIGSEGV: serving again after {back:.1f} s")
    assert hardened._proc is not None and hardened._proc.pid != old_pid
    assert not old_stubs & {s.pid for s in server_processes.stub_processes(hardened.shm_prefix)}
    assert hardened.supervisor is not None and hardened.supervisor.restarts >= 1
    # A client connection kept alive across the restart still works: the front reconnects to the new tritonserver.
    kept_alive.request("GET", "/v2/models/swish_py")
    response = kept_alive.getresponse()
    assert response.status == 200 and json.loads(response.read())["name"] == "swish_py"
    kept_alive.close()
    correct_answers(hardened)


# --- locked control plane ------------------------------------------------------------------------------------------

UPLOADED_MODEL = """
from pathlib import Path
Path({marker!r}).write_text("uploaded code ran")
from swish_triton.models.python_models import IdentityModel as TritonPythonModel
"""


def upload_body(marker: Path) -> bytes:
    config = (REPO / "model_repository" / "identity_py" / "config.pbtxt").read_text()
    config_json = {
        "name": "uploaded",
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [-1]}],
        "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [-1]}],
    }
    assert "INPUT0" in config
    code = UPLOADED_MODEL.format(marker=str(marker)).encode()
    params = {"config": json.dumps(config_json), "file:1/model.py": base64.b64encode(code).decode()}
    return json.dumps({"parameters": params}).encode()


def test_a_killed_native_front_is_started_again(hardened: TritonServer) -> None:
    if hardened.front_in_use != "native":
        pytest.skip("the server runs the Python front (no C compiler)")
    front = hardened._front
    assert front is not None and front._proc is not None  # noqa: SLF001 - the process under test
    front._proc.kill()  # noqa: SLF001
    back = wait_for(hardened.is_ready, timeout_s=15)
    assert back is not None, "the front was not started again"
    correct_answers(hardened)


def test_uploading_model_code_needs_the_key(hardened: TritonServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    status, body = http_post(hardened.http_url, "/v2/repository/models/uploaded/load", upload_body(marker))
    assert status == 403, body
    assert "restricted" in body.decode()
    time.sleep(1.0)
    assert not marker.exists(), "nothing of the upload may run"
    status, body = http_post(
        hardened.http_url, "/v2/repository/models/uploaded/load", upload_body(marker), {"swish-api-key": API_KEY}
    )
    assert status == 200, body
    assert marker.read_text() == "uploaded code ran"
    status, _ = http_post(hardened.http_url, "/v2/repository/models/uploaded/unload", b"{}", {"swish-api-key": API_KEY})
    assert status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/repository/index"),
        ("POST", "/v2/repository/models/identity_py/unload"),
        ("GET", "/v2/systemsharedmemory/status"),
        ("GET", "/v2/logging"),
        ("POST", "/v2/logging"),
        ("GET", "/v2/trace/setting"),
    ],
)
def test_control_apis_are_refused_without_the_key_over_http(hardened: TritonServer, method: str, path: str) -> None:
    body = b"{}" if method == "POST" else None
    request = urllib.request.Request(f"http://{hardened.http_url}{path}", data=body, method=method)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 403
    request.add_header("swish-api-key", API_KEY)
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
    if path.endswith("/unload"):
        status, body = http_post(hardened.http_url, path.replace("/unload", "/load"), b"{}", {"swish-api-key": API_KEY})
        assert status == 200, body
    assert hardened.is_ready()


def test_control_apis_need_the_key_over_grpc_and_open_apis_stay_open(hardened: TritonServer) -> None:
    client = grpcclient.InferenceServerClient(hardened.grpc_url)
    key = {f"{GRPC_HEADER_PREFIX}swish-api-key": API_KEY}
    try:
        for call in (
            lambda h: client.get_model_repository_index(headers=h),
            lambda h: client.get_system_shared_memory_status(headers=h),
            lambda h: client.get_log_settings(headers=h),
            lambda h: client.get_trace_settings(headers=h),
        ):
            with pytest.raises(InferenceServerException, match="restricted"):
                call(None)
            call(key)
        assert client.is_server_live() and client.is_server_ready()
        assert client.get_model_metadata("swish_py").name == "swish_py"
        assert client.get_model_config("swish_py").config.max_batch_size == 64
        assert client.get_inference_statistics("swish_py").model_stats
    finally:
        client.close()


def test_the_generated_key_is_unknown_to_clients(tmp_path: Path) -> None:
    with server_on_free_ports(REPO / "model_repository", models=["identity_py"]) as server:
        assert server.api_key and len(server.api_key) == 64
        status, _ = http_post(server.http_url, "/v2/repository/models/identity_py/unload", b"{}")
        assert status == 403
        status, _ = http_post(
            server.http_url,
            "/v2/repository/models/identity_py/unload",
            b"{}",
            {"swish-api-key": "wrong-key-0123456789"},
        )
        assert status == 403


# --- clean shutdown ------------------------------------------------------------------------------------------------


def launcher_cli(http: int, grpc_port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swish_triton.serving.launcher",
            "--model-repository",
            str(REPO / "model_repository"),
            "--http-port",
            str(http),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(free_port()),
            "--model",
            "swish_py",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_serving(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Serving."):
            return lines
    raise AssertionError("".join(lines))


def keepalive_load(url: str, results: dict[str, int], stop: threading.Event) -> None:
    """One persistent HTTP/1.1 connection sending requests back to back until the server closes it."""
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]})
    try:
        while not stop.is_set():
            conn.request("POST", "/v2/models/swish_py/infer", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            key = "ok" if resp.status == 200 else f"http {resp.status}"
            results[key] = results.get(key, 0) + 1
            if resp.getheader("Connection", "").lower() == "close":
                break
    except (OSError, http.client.HTTPException):
        results["closed"] = results.get("closed", 0) + 1
    finally:
        conn.close()


def test_sigterm_under_keepalive_load_drains_and_leaves_nothing() -> None:
    http_port, grpc_port = free_port(), free_port()
    before_shm = set(os.listdir("/dev/shm"))
    proc = launcher_cli(http_port, grpc_port, "--exit-timeout", "10")
    try:
        lines = wait_serving(proc)
        prefix = next(line.split("/dev/shm/")[1].split("*")[0] for line in lines if "/dev/shm/" in line)
        stubs = server_processes.stub_processes(prefix)
        assert stubs
        results: dict[str, int] = {}
        stop = threading.Event()
        threads = [
            threading.Thread(target=keepalive_load, args=(f"127.0.0.1:{http_port}", results, stop)) for _ in range(8)
        ]
        grpc_results = Load(f"127.0.0.1:{grpc_port}", threads=2)
        for t in threads:
            t.start()
        with grpc_results:
            time.sleep(2.0)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert results.get("ok", 0) > 0 and not [k for k in results if k.startswith("http 5")], results
    assert "stopped (exit status 0)" in out
    # gRPC calls fail only once the port is closed (UNAVAILABLE), never mid-request with INTERNAL.
    assert not [f for _, f in grpc_results.failures if "INTERNAL" in f], grpc_results.failures[:3]
    assert not server_processes.stub_processes(prefix)
    assert not any(Path(f"/proc/{s.pid}").exists() for s in stubs)
    assert not [f for f in set(os.listdir("/dev/shm")) - before_shm if f.startswith(prefix)]
    assert port_is_free("127.0.0.1", http_port) and port_is_free("127.0.0.1", grpc_port)


def test_leftovers_of_a_killed_launcher_are_removed_by_the_next_launch() -> None:
    proc = launcher_cli(free_port(), free_port())
    try:
        lines = wait_serving(proc)
        prefix = next(line.split("/dev/shm/")[1].split("*")[0] for line in lines if "/dev/shm/" in line)
        assert server_processes.stub_processes(prefix) or server_processes.shm_regions(prefix)
        proc.kill()  # SIGKILL: the launcher cleans nothing up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()

    def its_tritonserver_runs() -> bool:  # it gets SIGTERM when its launcher dies, and stops within its exit timeout
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if f"shm-region-prefix-name={prefix}".encode() in (entry / "cmdline").read_bytes():
                        return True
        return False

    assert wait_for(lambda: not its_tritonserver_runs(), 60) is not None
    assert prefix in server_processes.orphaned_prefixes() or not (
        server_processes.stub_processes(prefix) or server_processes.shm_regions(prefix)
    )
    with server_on_free_ports(REPO / "model_repository", models=["identity_py"]) as server:
        assert server.is_ready()
        assert prefix not in server_processes.orphaned_prefixes()
    assert not server_processes.stub_processes(prefix)
    assert not server_processes.shm_regions(prefix)


def test_a_model_that_keeps_dying_is_reloaded_with_backoff(
    hardened: TritonServer, caplog: pytest.LogCaptureFixture
) -> None:
    def kill_one_stub() -> None:
        stubs = [s for s in server_processes.stub_processes(hardened.shm_prefix) if s.model == "identity_py"]
        assert stubs
        os.kill(stubs[0].pid, signal.SIGKILL)

    assert wait_for(hardened.is_ready, 60) is not None
    with caplog.at_level(logging.WARNING, logger="swish_triton.serving.supervisor"):
        kill_one_stub()  # (the module's earlier tests may have reloaded it already: then this one waits too)
        assert wait_for(lambda: "identity_py reloaded" in caplog.text, 60) is not None
        waited = caplog.text.count("identity_py cannot serve again")
        kill_one_stub()  # again, right after the reload: the next reload waits
        assert wait_for(lambda: caplog.text.count("identity_py cannot serve again") > waited, 30) is not None
        assert not hardened.is_ready()
        assert wait_for(lambda: caplog.text.count("identity_py reloaded") >= 2, 60) is not None
    assert wait_for(hardened.is_ready, 30) is not None
    correct_answers(hardened)


def test_a_second_launcher_on_the_same_port_fails_and_the_first_keeps_serving(hardened: TritonServer) -> None:
    second = TritonServer(
        REPO / "model_repository",
        http_port=hardened.http_port,
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=["identity_py"],
        quiet=True,
    )
    with pytest.raises(LauncherError, match=rf"port {hardened.http_port} \(HTTP\) on 127.0.0.1 is already in use"):
        second.start()
    assert not second.running
    correct_answers(hardened)


def test_readiness_is_not_fooled_by_another_server_on_tritonservers_port(tmp_path: Path) -> None:
    impostor_port = free_port()
    impostor = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(impostor_port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (tmp_path / "v2" / "health").mkdir(parents=True)
    (tmp_path / "v2" / "health" / "ready").write_text("")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert wait_for(lambda: port_is_free("127.0.0.1", impostor_port) is False, 10) is not None
        server = server_on_free_ports(REPO / "model_repository")
        server.state.upstream_http = f"127.0.0.1:{impostor_port}"
        server._proc = sleeper  # type: ignore[assignment] - "our" tritonserver, which does not hold the port
        assert (
            wait_for(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{impostor_port}/v2/health/ready").status == 200, 10
            )
            is not None
        )
        with pytest.raises(LauncherError, match="another process answers"):
            server._upstream_ready()
    finally:
        impostor.kill()
        sleeper.kill()


# --- broken repository entries, NumPy 2 ------------------------------------------------------------------------------


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


def test_numpy_2_inside_the_stub_refuses_to_load_with_a_one_line_reason(tmp_path: Path) -> None:
    shutil.copytree(REPO / "model_repository" / "identity_py", tmp_path / "identity_py")
    # The stub imports whatever NumPy its python3 has; make it report 2.x the way an installed NumPy 2 would.
    (tmp_path / "identity_py" / "1" / "model.py").write_text(
        "import numpy\nnumpy.__version__ = '2.1.0'\n"
        "from swish_triton.models.python_models import IdentityModel as TritonPythonModel  # noqa: F401\n"
    )
    with pytest.raises(LauncherError, match=r"NumPy 2\.1\.0 in the Python-backend stub .*needs NumPy 1\.x"):
        server_on_free_ports(tmp_path, log_path=tmp_path / "server.log").start()


# --- health command and a short soak -------------------------------------------------------------------------------


def test_health_command(hardened: TritonServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert health_main(["--url", hardened.http_url]) == 0
    assert health_main(["--url", hardened.http_url, "--api-key", API_KEY]) == 0
    assert "healthy" in capsys.readouterr().out
    assert health_main(["--url", hardened.http_url, "-m", "no_such_model"]) == 1
    assert health_main(["--url", f"127.0.0.1:{free_port()}", "--timeout", "2"]) == 1
    assert "not ready" in capsys.readouterr().out


def test_short_soak_has_no_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--duration", "8", "-c", "8", "-o", str(tmp_path / "s.csv")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors, 0 mismatches" in proc.stdout
