"""The locked control plane (swish_triton.serving.control_api) of a real tritonserver: the model-repository,
shared-memory, logging and trace APIs need the key over HTTP and gRPC (uploading model code included), the
inference and health APIs stay open, and a generated key is unknown to clients. 127.0.0.1 only."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from swish_triton.serving.control_api import GRPC_HEADER_PREFIX
from swish_triton.serving.launcher import TritonServer
from tests.served import API_KEY, http_post, server_on_free_ports
from tests.support import MODEL_REPOSITORY, wait_for

UPLOADED_MODEL = """
from pathlib import Path
Path({marker!r}).write_text("uploaded code ran")
from swish_triton.models.python_models import IdentityModel as TritonPythonModel
"""


def upload_body(marker: Path) -> bytes:
    config = (MODEL_REPOSITORY / "identity_py" / "config.pbtxt").read_text()
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


def test_uploading_model_code_needs_the_key(keyed_server: TritonServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    status, body = http_post(keyed_server.http_url, "/v2/repository/models/uploaded/load", upload_body(marker))
    assert status == 403, body
    assert "restricted" in body.decode()
    time.sleep(1.0)
    assert not marker.exists(), "nothing of the upload may run"
    status, body = http_post(
        keyed_server.http_url, "/v2/repository/models/uploaded/load", upload_body(marker), {"swish-api-key": API_KEY}
    )
    assert status == 200, body
    assert marker.read_text() == "uploaded code ran"
    status, _ = http_post(
        keyed_server.http_url, "/v2/repository/models/uploaded/unload", b"{}", {"swish-api-key": API_KEY}
    )
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
def test_control_apis_are_refused_without_the_key_over_http(keyed_server: TritonServer, method: str, path: str) -> None:
    body = b"{}" if method == "POST" else None
    request = urllib.request.Request(f"http://{keyed_server.http_url}{path}", data=body, method=method)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 403
    request.add_header("swish-api-key", API_KEY)
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
    if path.endswith("/unload"):
        status, body = http_post(
            keyed_server.http_url, path.replace("/unload", "/load"), b"{}", {"swish-api-key": API_KEY}
        )
        assert status == 200, body
    # An unload (here, or the previous test's) keeps the server not ready until it has finished.
    assert wait_for(keyed_server.is_ready, 30) is not None


def test_control_apis_need_the_key_over_grpc_and_open_apis_stay_open(keyed_server: TritonServer) -> None:
    client = grpcclient.InferenceServerClient(keyed_server.grpc_url)
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
    with server_on_free_ports(MODEL_REPOSITORY, models=["identity_py"]) as server:
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
