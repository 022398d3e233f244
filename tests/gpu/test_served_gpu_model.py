"""The GPU model served by a real tritonserver, on both of its paths (the GPU for large batches, float32 NumPy for small
ones). Marker gpu: skipped where there is no GPU."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from swish_triton.clients.validation import run_validation
from swish_triton.models.python_models import DEFAULT_GPU_MIN_ELEMENTS
from swish_triton.reference import compare_to_ref
from swish_triton.serving.launcher import TritonServer
from swish_triton.serving.model_variants import Variant, write_repository
from tests.served import infer, server_on_free_ports
from tests.support import REPO

pytestmark = pytest.mark.gpu


SPECIAL = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 1e-45, 88.0, -88.0, -104.0]], dtype=np.float32)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_model_runs_on_the_gpu_and_validates(triton_server: TritonServer, protocol: str) -> None:
    log = triton_server.log_tail(10_000)
    assert "swish_py instance swish_py_0_0: Swish with beta=1.0 on GPU 0" in log, log[-2000:]
    assert f"for batches of >= {DEFAULT_GPU_MIN_ELEMENTS} elements" in log
    url = triton_server.http_url if protocol == "http" else triton_server.grpc_url
    for model in ("swish_py", "swish_py_fp16"):
        report = run_validation(url, protocol, model)
        assert report.ok, report.summary()


def test_a_request_above_the_threshold_is_computed_on_the_gpu(triton_server: TritonServer) -> None:
    x = np.random.default_rng(5).uniform(-120, 120, (1, DEFAULT_GPU_MIN_ELEMENTS + 3)).astype(np.float32)
    x[0, :11] = SPECIAL[0]
    y = infer(triton_server, "grpc", x)
    result = compare_to_ref(x, y, "float32")
    assert result.ok, result.describe()


@pytest.fixture(scope="module")
def gpu_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """The shipped Swish models with every batch on the GPU, however small (gpu_min_elements 0)."""
    tmp = tmp_path_factory.mktemp("gpu_only")
    on_gpu = (("gpu_min_elements", "0"), ("device", "gpu"))
    variants = [
        Variant("swish_gpu", "swish_py", parameters=on_gpu),
        Variant("swish_gpu_fp16", "swish_py_fp16", parameters=on_gpu),
    ]
    repo = write_repository(REPO / "model_repository", tmp / "repo", variants)
    server = server_on_free_ports(repo, log_path=tmp / "tritonserver.log")
    with server:
        yield server


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_gpu_path_served_validates_in_both_dtypes(gpu_only_server: TritonServer, protocol: str) -> None:
    assert "for batches of >= 0 elements" in gpu_only_server.log_tail(10_000)
    url = gpu_only_server.http_url if protocol == "http" else gpu_only_server.grpc_url
    for model in ("swish_gpu", "swish_gpu_fp16"):
        report = run_validation(url, protocol, model)
        assert report.ok, report.summary()


@pytest.mark.parametrize(
    "model,dtype,triton_dtype", [("swish_gpu", np.float32, "FP32"), ("swish_gpu_fp16", np.float16, "FP16")]
)
def test_gpu_path_served_ragged_batches_with_special_values(
    gpu_only_server: TritonServer, rng: np.random.Generator, model: str, dtype: type, triton_dtype: str
) -> None:
    lengths = [1, 5, 1024, 33, 7, 1031, 2, 64, 11]
    inputs = []
    for i in range(192):
        x = (rng.standard_normal((1 + i % 3, lengths[i % len(lengths)])) * 8).astype(dtype)
        if i % 5 == 0:  # special values inside batches of ordinary ones
            with np.errstate(over="ignore"):
                x.reshape(-1)[: min(x.size, SPECIAL.size)] = SPECIAL.reshape(-1)[: min(x.size, SPECIAL.size)]
        inputs.append(x)
    client = grpcclient.InferenceServerClient(gpu_only_server.grpc_url)

    def one(x: np.ndarray) -> np.ndarray:
        inp = grpcclient.InferInput("INPUT0", list(x.shape), triton_dtype)
        inp.set_data_from_numpy(x)
        return client.infer(model, [inp]).as_numpy("OUTPUT0")

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            outputs = list(pool.map(one, inputs))
    finally:
        client.close()
    for x, y in zip(inputs, outputs, strict=True):
        result = compare_to_ref(x, y, np.dtype(dtype).name)
        assert result.ok, result.describe()
