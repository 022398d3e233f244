"""The Python-backend model's CPU path (swish_triton.kernels.cpu_swish: float32 NumPy), outside Triton, checked
against the float64 oracle (swish_triton.reference) under the project's tolerance rule. Triton itself is exercised in
test_serving.py."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

import swish_triton.kernels.cpu_swish as cpu_swish
from swish_triton.kernels.cpu_swish import CpuSwish, swish_float32
from swish_triton.models.execute_profile import ExecuteProfile, PhaseClock, batch_class
from swish_triton.models.python_models import swish_batch
from swish_triton.reference import compare_to_ref

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)
# Betas of every kind the kernel treats differently: 1 and powers of two (exact product), others (the product's
# rounding recovered), negative, zero (x / 2), tiny and huge (the cold path and overflowing products).
BETAS = [1.0, 1.702, -1.0, 0.5, 2.0, -0.3, 0.0, 3.7e-7, 1e20, -2.5e30, 3e38]
SPECIAL = np.array(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 1e-45, -1e-45, 88.0, -88.0, -104.0, -80.0, -87.5, -89.0, -100.0],
    dtype=np.float32,
)


def float32_sweep(step: int = 4099) -> np.ndarray:
    """Every step-th float32 bit pattern: every exponent, both signs, NaN payloads and the infinities."""
    patterns = np.arange(0, 2**32, step, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.concatenate([patterns, SPECIAL])


# The sweep holds signalling NaNs: the oracle's float64 cast warns about them (the kernel must not).
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("beta", BETAS)
def test_float32_within_the_bound_over_the_whole_range(beta: float) -> None:
    x = float32_sweep()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the kernel handles overflow and NaN itself: no floating-point warnings
        y = swish_float32(x, beta)
    assert y.dtype == np.float32
    result = compare_to_ref(x, y, "float32", beta)
    assert result.ok, result.describe()


@pytest.mark.parametrize("beta", [1.0, 1.702, -1.0])
def test_random_and_wide_inputs(rng: np.random.Generator, beta: float) -> None:
    for wide in (rng.standard_normal(50_000) * 6, rng.uniform(-120, 120, 50_000), rng.uniform(-1e3, 1e3, 50_000)):
        x = wide.astype(np.float32)
        result = compare_to_ref(x, swish_float32(x, beta), "float32", beta)
        assert result.ok, result.describe()


def test_special_values_take_their_limits() -> None:
    y = swish_float32(SPECIAL, 1.0)
    assert np.isnan(y[0]) and y[1] == np.inf
    assert y[2] == 0.0 and np.signbit(y[2]), "swish(-inf) is -0"
    assert y[3] == 0.0 and not np.signbit(y[3]) and y[4] == 0.0 and np.signbit(y[4])
    assert compare_to_ref(SPECIAL, y, "float32").ok
    negative = swish_float32(SPECIAL, -1.0)
    assert negative[1] == 0.0 and not np.signbit(negative[1]) and negative[2] == -np.inf
    assert compare_to_ref(SPECIAL, negative, "float32", -1.0).ok
    half = swish_float32(SPECIAL, 0.0)
    np.testing.assert_array_equal(half, SPECIAL / 2)


@pytest.mark.parametrize("beta", [1.0, 1.702, -0.3])
def test_fp16_is_computed_in_float32_and_rounded_once(rng: np.random.Generator, beta: float) -> None:
    every_fp16 = np.arange(0, 2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    x = np.concatenate([every_fp16, rng.uniform(-65000, 65000, 20_000).astype(np.float16)])
    y = swish_float32(x, beta)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, swish_float32(x.astype(np.float32), beta).astype(np.float16))
    result = compare_to_ref(x, y, "float16", beta)
    assert result.ok, result.describe()


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


def test_results_survive_the_next_call_and_buffers_grow(rng: np.random.Generator) -> None:
    engine = CpuSwish(1.702)
    small = [rng.standard_normal((1, 16)).astype(np.float32)]
    first = engine(small, F32)[0]
    kept = first.copy()
    big = [rng.standard_normal((8, 65536)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)]
    second = engine(big, F32)
    assert all(compare_to_ref(a, r, "float32", 1.702).ok for a, r in zip(big, second, strict=True))
    np.testing.assert_array_equal(first, kept)
    assert not np.shares_memory(first, big[0]) and not np.shares_memory(second[0], big[0])


def test_inputs_are_left_unchanged(rng: np.random.Generator) -> None:
    x = rng.standard_normal((1, 1024)).astype(np.float32)
    x.flags.writeable = False  # as Triton hands requests over: views of its shared memory
    swish_float32(x, 1.702)
    swish_batch([x, x], 1.0, F32)


def test_unsupported_dtypes_and_beta_are_refused() -> None:
    with pytest.raises(ValueError, match="float32 and float16"):
        CpuSwish(1.0)([np.ones(3)], np.dtype(np.float64))
    with pytest.raises(ValueError, match="finite"):
        CpuSwish(float("inf"))


def test_the_implementation_does_not_use_the_oracle() -> None:
    """The oracle checks the implementation only if the two are independent code."""
    tree = ast.parse(Path(cpu_swish.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any("reference" in (name or "") for name in imported), imported


def test_profile_sums_phases_per_path_and_batch_class() -> None:
    profile = ExecuteProfile("swish_py", every=3)
    clock = PhaseClock()
    due = []
    for requests in (1, 1, 12):
        clock.start()
        clock.lap("inputs")
        clock.note("GPU busy", 1e-6)
        due.append(profile.record("cpu", requests, clock))
    assert due == [False, False, True]
    assert batch_class(1) == "1" and batch_class(12) == "8-15" and batch_class(64) == "32-64"
    lines = profile.report()
    assert len(lines) == 2
    assert lines[0].startswith("swish_py profile: path cpu, batch 1: 2 executions, avg batch 1.00; us per execution:")
    assert "batch 8-15: 1 executions, avg batch 12.00" in lines[1] and "GPU busy 1.0 us" in lines[1]
