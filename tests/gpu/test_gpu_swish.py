"""The Python-backend model's GPU path (swish_triton.kernels.gpu_swish, GpuSwish: pinned staging, the plugin's kernels,
one launch per batch), against the float64 oracle. Marker gpu: skipped where there is no GPU; the served GPU model is
tests/gpu/test_served_gpu_model.py."""

from __future__ import annotations

import numpy as np
import pytest

from swish_triton.kernels.phase_clock import PhaseClock
from swish_triton.reference import compare_to_ref

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
