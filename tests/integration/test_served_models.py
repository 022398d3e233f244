"""The Python-backend Swish models served by a real tritonserver: instances and dynamic batching as configured,
special values, bad inputs answered clearly without failing their neighbours, Triton's protocol rules (malformed
JSON, FP16 needs binary data) and 25 MB requests. 127.0.0.1 only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from swish_triton.limits import MAX_BATCH_SIZE, MAX_REQUEST_BYTES
from swish_triton.perf.server_stats import batching_stats
from swish_triton.reference import compare_to_ref, swish_ref
from swish_triton.serving.launcher import TritonServer
from tests.served import infer

PROTOCOLS = ["http", "grpc"]


def still_serving(server: TritonServer) -> None:
    assert server.is_ready(), "the server must stay ready after a bad request"
    x = np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, -1)
    np.testing.assert_allclose(infer(server, "grpc", x), swish_ref(x), rtol=1e-6)


def test_two_instances_are_configured_and_loaded(triton_server: TritonServer) -> None:
    client = httpclient.InferenceServerClient(triton_server.http_url)
    try:
        for model in ("swish_py", "swish_py_fp16"):
            config = client.get_model_config(model)
            assert [g["count"] for g in config["instance_group"]] == [2]
            assert config["max_batch_size"] == MAX_BATCH_SIZE
            assert "dynamic_batching" in config
    finally:
        client.close()
    log = triton_server.log_tail(10_000)
    for instance in ("swish_py_0_0", "swish_py_0_1"):
        assert f"TRITONBACKEND_ModelInstanceInitialize: {instance}" in log


def test_dynamic_batching_forms_batches_of_mixed_lengths(triton_server: TritonServer, rng: np.random.Generator) -> None:
    lengths = [1, 5, 1024, 33, 7, 1031, 2, 64]
    inputs = [rng.standard_normal((1 + i % 3, lengths[i % len(lengths)])).astype(np.float32) for i in range(256)]
    before = batching_stats(triton_server.http_url, "swish_py")

    def one(x: np.ndarray) -> np.ndarray:
        return infer(triton_server, "grpc", x)

    with ThreadPoolExecutor(max_workers=16) as pool:
        outputs = list(pool.map(one, inputs))
    delta = batching_stats(triton_server.http_url, "swish_py") - before
    for x, y in zip(inputs, outputs, strict=True):
        assert compare_to_ref(x, y, "float32").ok
    # The launcher's supervisor sends a one-row canary inference per model now and then: allow for a few of them.
    sent = sum(x.shape[0] for x in inputs)
    assert sent <= delta.inference_count <= sent + 3, (sent, delta)
    assert delta.inference_count > delta.execution_count, f"no batch was formed: {delta}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nan_and_infinities_succeed_with_the_right_values(triton_server: TritonServer, protocol: str) -> None:
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 1e-45]], dtype=np.float32)
    y = infer(triton_server, protocol, x)
    assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[0, 2] == 0.0
    assert compare_to_ref(x, y, "float32").ok


BadRequest = Callable[[], object]


def bad_requests(server: TritonServer, protocol: str) -> dict[str, tuple[BadRequest, str]]:
    """Each bad input, and a piece of the error message that must explain it."""
    ones = np.ones((1, 4), dtype=np.float32)
    return {
        "wrong dtype": (
            lambda: infer(server, protocol, np.ones((1, 4)), "FP64"),
            "data-type is 'FP64', but model 'swish_py' expects 'FP32'",
        ),
        "rank 1": (lambda: infer(server, protocol, np.ones(4, dtype=np.float32)), "unexpected shape"),
        "rank 3": (lambda: infer(server, protocol, np.ones((1, 2, 2), dtype=np.float32)), "unexpected shape"),
        "batch above max": (
            lambda: infer(server, protocol, np.ones((MAX_BATCH_SIZE + 1, 4), dtype=np.float32)),
            f"batch-size must be <= {MAX_BATCH_SIZE}",
        ),
        "zero length": (lambda: infer(server, protocol, np.ones((1, 0), dtype=np.float32)), "holds no elements"),
        "unknown model": (lambda: infer(server, protocol, ones, model="no_such_model"), "unknown model"),
        "above size limit": (
            lambda: infer(server, protocol, np.ones((1, MAX_REQUEST_BYTES // 4 + 1), dtype=np.float32)),
            f"above the limit of {MAX_REQUEST_BYTES} bytes",
        ),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "case", ["wrong dtype", "rank 1", "rank 3", "batch above max", "zero length", "unknown model", "above size limit"]
)
def test_bad_input_gets_a_clear_error_and_the_server_stays_up(
    triton_server: TritonServer, protocol: str, case: str
) -> None:
    send, message = bad_requests(triton_server, protocol)[case]
    with pytest.raises(InferenceServerException, match=message.replace("(", r"\(").replace(")", r"\)")):
        send()
    still_serving(triton_server)


def test_bad_request_in_a_batch_does_not_fail_its_neighbours(triton_server: TritonServer) -> None:
    good = np.linspace(-2, 2, 16, dtype=np.float32).reshape(1, -1)

    def send(i: int) -> object:
        try:
            return infer(triton_server, "grpc", good if i % 2 else np.ones((1, 0), dtype=np.float32))
        except InferenceServerException as exc:
            return exc

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(send, range(64)))
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, np.ndarray) and compare_to_ref(good, result, "float32").ok
        else:
            assert isinstance(result, InferenceServerException) and "holds no elements" in str(result)


def test_malformed_http_body_is_rejected(triton_server: TritonServer) -> None:
    request = urllib.request.Request(
        f"http://{triton_server.http_url}/v2/models/swish_py/infer",
        data=b"{not json",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    # What the README says: tritonserver 2.51 answers a JSON parse failure with 500 and its parser's message.
    error = json.loads(info.value.read())["error"]
    assert info.value.code == 500 and error.startswith("failed to parse the request JSON buffer"), error
    still_serving(triton_server)


def test_fp16_over_http_needs_the_binary_format(triton_server: TritonServer) -> None:
    """Triton refuses FP16 tensors in JSON (400); the clients send binary tensor data, which works."""
    body = {"inputs": [{"name": "INPUT0", "shape": [1, 2], "datatype": "FP16", "data": [1.0, 2.0]}]}
    request = urllib.request.Request(
        f"http://{triton_server.http_url}/v2/models/swish_py_fp16/infer", data=json.dumps(body).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400
    assert "receiving FP16 data via JSON is not supported" in json.loads(info.value.read())["error"]
    x = np.array([[1.0, 2.0]], dtype=np.float16)
    y = infer(triton_server, "http", x, "FP16", model="swish_py_fp16")  # binary_data=True, tritonclient's default
    assert compare_to_ref(x, y, "float16").ok


def test_a_25_mb_request_is_answered_over_http_and_grpc_with_and_without_gzip(keyed_server: TritonServer) -> None:
    x = np.random.default_rng(1).standard_normal((1, 25 * 2**20 // 4)).astype(np.float32)
    for module, url, options in (
        (httpclient, keyed_server.http_url, {}),
        (grpcclient, keyed_server.grpc_url, {"client_timeout": 60}),
        (grpcclient, keyed_server.grpc_url, {"client_timeout": 60, "compression_algorithm": "gzip"}),
    ):
        client = module.InferenceServerClient(url)
        try:
            inp = module.InferInput("INPUT0", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            began = time.monotonic()
            out = client.infer("swish_py", [inp], **options).as_numpy("OUTPUT0")
            print(f"25 MB over {module.__name__.split('.')[-1]} {options}: {time.monotonic() - began:.2f} s")
            np.testing.assert_allclose(out, swish_ref(x), rtol=1e-6, atol=1e-30)
        finally:
            client.close()
