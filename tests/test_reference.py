"""swish_ref: the float64 truth everything is compared with, and the comparison itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from swish_triton.reference import TOLERANCES, compare_to_ref, swish_ref

BETAS = [1.0, 0.5, 1.702, -1.0, 0.0]


@pytest.mark.parametrize("beta", BETAS)
def test_matches_the_textbook_formula_where_it_is_safe(beta: float, rng: np.random.Generator) -> None:
    x = rng.uniform(-20, 20, 10_000)
    expected = x / (1.0 + np.exp(-beta * x))
    np.testing.assert_allclose(swish_ref(x, beta), expected, rtol=1e-14, atol=1e-300)


def test_silu_values() -> None:
    np.testing.assert_allclose(swish_ref([0.0, 1.0, -1.0]), [0.0, 0.7310585786300049, -0.2689414213699951])


@pytest.mark.parametrize("beta", BETAS)
def test_extremes_without_warnings(beta: float) -> None:
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e308, -1e308, 5e-324, -800.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = swish_ref(x, beta)
    assert np.isnan(y[2])
    assert np.isfinite(y[3:]).all(), "every finite x gives a finite result"
    if beta > 0:
        assert y[0] == np.inf and y[1] == 0.0
    elif beta < 0:
        assert y[0] == 0.0 and y[1] == -np.inf
    else:
        assert y[0] == np.inf and y[1] == -np.inf  # beta = 0 is x / 2


def test_float32_overflow_of_beta_x_is_not_a_nan() -> None:
    x = np.array([3e38, -3e38], dtype=np.float32)
    y = swish_ref(x, beta=1.702)
    assert y[0] == pytest.approx(3e38, rel=1e-6) and y[1] == 0.0


def test_accepts_every_float_dtype_and_returns_float64() -> None:
    for dtype in (np.float16, np.float32, np.float64):
        assert swish_ref(np.ones(3, dtype=dtype)).dtype == np.float64


def test_compare_passes_the_exact_result_rounded_to_each_dtype(rng: np.random.Generator) -> None:
    x = rng.standard_normal(100_000) * 10
    for dtype, name in ((np.float32, "float32"), (np.float16, "float16")):
        xs = x.astype(dtype)
        assert compare_to_ref(xs, swish_ref(xs).astype(dtype), name).ok


def test_compare_catches_one_wrong_element_and_names_it(rng: np.random.Generator) -> None:
    x = rng.standard_normal(1000).astype(np.float32)
    out = swish_ref(x).astype(np.float32)
    out[417] *= 1 + 10 * TOLERANCES["float32"].rtol
    result = compare_to_ref(x, out, "float32")
    assert not result.ok
    assert result.worst_index == 417
    assert "index 417" in result.describe()


def test_compare_rejects_nan_where_a_number_belongs_and_wrong_infinities() -> None:
    x = np.array([1.0, np.inf], dtype=np.float32)
    assert not compare_to_ref(x, np.array([np.nan, np.inf], dtype=np.float32), "float32").ok
    assert not compare_to_ref(x, np.array([0.7310586, -np.inf], dtype=np.float32), "float32").ok
    assert compare_to_ref(x, np.array([0.7310586, np.inf], dtype=np.float32), "float32").ok


def test_compare_rejects_a_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="elements"):
        compare_to_ref(np.ones(3), np.ones(4), "float32")
