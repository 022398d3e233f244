"""The Python-backend model's GPU path (GpuSwish: pinned staging, the plugin's kernels, one launch per batch) and
the GPU model served by a real tritonserver, on both of its paths (the GPU for large batches, float32 NumPy for small
ones). Marker gpu: skipped where there is no GPU."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from swish_triton.clients.validation import run_validation
from swish_triton.kernels.phase_clock import PhaseClock
from swish_triton.models.python_models import DEFAULT_GPU_MIN_ELEMENTS
from swish_triton.reference import compare_to_ref
from swish_triton.serving.launcher import TritonServer, free_port
from swish_triton.serving.model_variants import Variant, write_repository
from tests.support import REPO

pytestmark = pytest.mark.gpu

SPECIAL = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 1e-45, 88.0, -88.0, -104.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def gpu_swish():  # noqa: ANN201
    from swish_triton.kernels.gpu_swish import GpuSwish

    engine = GpuSwish(0)
    yield engine
    engine.close()


@pytest.mark.parametrize("dtype,tol", [(np.float32, "float32"), (np.float16, "float16")])
@pytest.mark.parametrize("beta", [1.0, 1.702, -1.0])
def test_batches_of_mixed_shapes(gpu_swish, rng: np.random.Generator, dtype: type, tol: str, beta: float) -> None:  # noqa: ANN001
    shapes = [(1, 1), (3, 7), (64, 1024), (2, 1031), (1, 5)]
    arrays = [(rng.standard_normal(s) * 6).astype(dtype) for s in shapes]
    outputs = gpu_swish(arrays, beta, np.dtype(dtype))
    assert [o.shape for o in outputs] == shapes
    for a, o in zip(arrays, outputs, strict=True):
        assert o.dtype == dtype
        result = compare_to_ref(a, o, tol, beta)
        assert result.ok, result.describe()


def test_buffers_grow_and_results_are_not_aliased(gpu_swish, rng: np.random.Generator) -> None:  # noqa: ANN001
    small = [rng.standard_normal((1, 16)).astype(np.float32)]
    first = gpu_swish(small, 1.0, np.dtype(np.float32))[0]
    big = [rng.standard_normal((64, 65536)).astype(np.float32)]  # 16 MiB: the buffers must grow
    second = gpu_swish(big, 1.0, np.dtype(np.float32))[0]
    assert compare_to_ref(big[0], second, "float32").ok
    assert compare_to_ref(small[0], first, "float32").ok, "an earlier result changed when the buffers were reused"


def test_special_values(gpu_swish) -> None:  # noqa: ANN001
    (y,) = gpu_swish([SPECIAL], 1.0, np.dtype(np.float32))
    assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[0, 2] == 0.0
    assert compare_to_ref(SPECIAL, y, "float32").ok


def test_profiled_call_times_its_steps_and_computes_the_same(gpu_swish, rng: np.random.Generator) -> None:  # noqa: ANN001
    arrays = [rng.standard_normal((4, 1024)).astype(np.float32), rng.standard_normal((1, 7)).astype(np.float32)]
    clock = PhaseClock()
    clock.start()
    profiled = gpu_swish(arrays, 1.702, np.dtype(np.float32), clock)
    plain = gpu_swish(arrays, 1.702, np.dtype(np.float32))
    for a, b in zip(profiled, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    assert {"gather into pinned", "H2D enqueue", "kernel launch", "D2H enqueue", "sync"} <= set(clock.phases)
    assert "GPU busy H2D..D2H (events)" in clock.notes


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
    client = grpcclient.InferenceServerClient(triton_server.grpc_url)
    try:
        inp = grpcclient.InferInput("INPUT0", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        y = client.infer("swish_py", [inp]).as_numpy("OUTPUT0")
    finally:
        client.close()
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
    server = TritonServer(
        repo,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_path=tmp / "tritonserver.log",
        quiet=True,
    )
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
