"""The Python-backend models (swish_triton.models.python_models) outside Triton: a dynamic batch of requests is
computed as one and handed back in order and shape. Served by a real tritonserver:
tests/integration/test_served_models.py."""

from __future__ import annotations

import numpy as np
import pytest

from swish_triton.kernels.cpu_swish import swish_float32
from swish_triton.models.python_models import swish_batch
from swish_triton.reference import compare_to_ref

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)


@pytest.mark.parametrize("dtype", [F32, F16])
def test_requests_of_different_lengths_come_back_in_order_and_shape(rng: np.random.Generator, dtype: np.dtype) -> None:
    arrays = [(rng.standard_normal(shape) * 6).astype(dtype) for shape in [(1, 1), (3, 7), (2, 1024), (1, 5)]]
    results = swish_batch(arrays, 1.702, dtype)
    assert [r.shape for r in results] == [a.shape for a in arrays]
    for a, r in zip(arrays, results, strict=True):
        assert r.dtype == dtype
        assert compare_to_ref(a, r, str(dtype), 1.702).ok
        # The batch is one computation: each piece equals the request computed alone.
        np.testing.assert_array_equal(r, swish_float32(a, 1.702))


def test_no_requests() -> None:
    assert swish_batch([], 1.0, F32) == []
