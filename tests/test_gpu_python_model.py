"""The Python-backend model's GPU path (GpuSwish: pinned staging, the plugin's kernels, one launch per batch) and
the GPU model served by a real tritonserver. Marker gpu: skipped where there is no GPU."""

from __future__ import annotations

import numpy as np
import pytest

from swish_triton.clients.validation import run_validation
from swish_triton.reference import compare_to_ref
from swish_triton.serving.launcher import TritonServer

pytestmark = pytest.mark.gpu


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
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 1e-45, 88.0, -88.0, -104.0]], dtype=np.float32)
    (y,) = gpu_swish([x], 1.0, np.dtype(np.float32))
    assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[0, 2] == 0.0
    assert compare_to_ref(x, y, "float32").ok


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_model_runs_on_the_gpu_and_validates(triton_server: TritonServer, protocol: str) -> None:
    log = triton_server.log_tail(10_000)
    assert "swish_py instance swish_py_0_0: Swish with beta=1.0 on GPU 0" in log, log[-2000:]
    url = triton_server.http_url if protocol == "http" else triton_server.grpc_url
    for model in ("swish_py", "swish_py_fp16"):
        report = run_validation(url, protocol, model)
        assert report.ok, report.summary()
