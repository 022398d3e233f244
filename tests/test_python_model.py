"""The Python-backend model's batch computation, outside Triton (Triton itself is exercised in test_serving.py)."""

from __future__ import annotations

import numpy as np

from swish_triton.reference import compare_to_ref, kernel_beta, swish_ref
from swish_triton.models.python_models import swish_batch


def test_requests_of_different_lengths_come_back_in_order_and_shape(rng: np.random.Generator) -> None:
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in [(1, 1), (3, 7), (2, 1024), (1, 5)]]
    results = swish_batch(arrays, 1.0, np.dtype(np.float32))
    assert [r.shape for r in results] == [a.shape for a in arrays]
    for a, r in zip(arrays, results, strict=True):
        assert r.dtype == np.float32
        np.testing.assert_array_equal(r, swish_ref(a).astype(np.float32))


def test_beta_and_fp16(rng: np.random.Generator) -> None:
    a = rng.standard_normal((4, 9)).astype(np.float16)
    (r,) = swish_batch([a], 0.5, np.dtype(np.float16))
    np.testing.assert_array_equal(r, swish_ref(a, 0.5).astype(np.float16))


def test_no_requests() -> None:
    assert swish_batch([], 1.0, np.dtype(np.float32)) == []


def test_cpu_path_takes_beta_as_a_float32_like_the_kernels(rng: np.random.Generator) -> None:
    """The GPU kernels and the TensorRT plugin receive beta as a float32; the NumPy path computes the same function,
    so every path of a model passes the same comparison for a beta that float32 cannot hold exactly."""
    a = np.linspace(-30, 30, 4001, dtype=np.float32).reshape(1, -1)
    (r,) = swish_batch([a], 1.702, np.dtype(np.float32))
    np.testing.assert_array_equal(r, swish_ref(a, kernel_beta(1.702)).astype(np.float32))
    assert compare_to_ref(a, r, "float32", 1.702).ok
