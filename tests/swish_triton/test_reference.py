"""swish_ref: the float64 truth everything is compared with; the one tolerance rule (ulp-based, per dtype)."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

from swish_triton import reference
from swish_triton.reference import (
    FP32_ULP_BOUND,
    TORCH_AGREEMENT_RTOL,
    compare_to_ref,
    error_bound,
    kernel_beta,
    rounded_to,
    swish_ref,
    ulp,
)

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


def bfloat16_by_bits(values: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest even) through their bit patterns: an independent rounding."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def test_rounding_matches_the_types_own_conversions(rng: np.random.Generator) -> None:
    finite = np.concatenate([rng.standard_normal(50_000) * 10, rng.standard_normal(1000) * 1e-6, [65504.0, 65519.0]])
    np.testing.assert_array_equal(rounded_to(finite, "float16"), finite.astype(np.float16).astype(np.float64))
    assert rounded_to(np.array([65520.0, -1e6]), "float16").tolist() == [np.inf, -np.inf]
    assert rounded_to(np.array([2.0**-25 * 1.5]), "float16")[0] == 2.0**-24  # subnormal grid
    f32 = finite.astype(np.float32).astype(np.float64)  # exact in float32: one rounding to bfloat16 only
    np.testing.assert_array_equal(rounded_to(f32, "bfloat16"), bfloat16_by_bits(f32))


def test_ulp_per_dtype() -> None:
    one = np.array([1.0])
    assert ulp(one, "float32")[0] == 2.0**-23
    assert ulp(one, "float16")[0] == 2.0**-10
    assert ulp(one, "bfloat16")[0] == 2.0**-7
    assert ulp(np.array([0.0]), "float16")[0] == 2.0**-24
    with pytest.raises(ValueError, match="no tolerance"):
        ulp(one, "int8")


def test_compare_passes_the_exact_result_rounded_to_each_dtype(rng: np.random.Generator) -> None:
    x = rng.standard_normal(100_000) * 10
    for dtype, name in ((np.float32, "float32"), (np.float16, "float16")):
        xs = x.astype(dtype)
        assert compare_to_ref(xs, swish_ref(xs).astype(dtype), name).ok
    xs = x.astype(np.float32)
    assert compare_to_ref(xs, rounded_to(swish_ref(xs), "bfloat16"), "bfloat16").ok


def test_fp32_bound_is_a_few_ulp(rng: np.random.Generator) -> None:
    x = rng.standard_normal(1000).astype(np.float32)
    ref = swish_ref(x)
    step = ulp(ref, "float32")
    assert compare_to_ref(x, ref + FP32_ULP_BOUND * step, "float32").ok
    assert not compare_to_ref(x, ref + (FP32_ULP_BOUND + 1) * step, "float32").ok


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_precision_bound_is_rounding_plus_one_ulp(dtype: str, rng: np.random.Generator) -> None:
    x = rng.standard_normal(1000).astype(np.float32)
    ref = swish_ref(x)
    rounded = rounded_to(ref, dtype)
    one_up = rounded + np.sign(rounded - ref + 1e-300) * ulp(ref, dtype)  # one ulp further from the truth
    assert compare_to_ref(x, one_up, dtype).ok
    np.testing.assert_array_equal(error_bound(ref, dtype), np.abs(rounded - ref) + ulp(ref, dtype))
    two_up = rounded + 2.01 * np.sign(rounded - ref + 1e-300) * ulp(ref, dtype)
    assert not compare_to_ref(x, two_up, dtype).ok


def test_compare_takes_beta_as_a_float32(rng: np.random.Generator) -> None:
    """The plugin and the kernels receive beta as a float32: for beta = 1.702 the float64-beta result is off by more
    than the FP32 bound at large |x|, the float32-beta one is within it."""
    x = np.linspace(-30, 30, 10_001, dtype=np.float32)
    assert compare_to_ref(x, swish_ref(x, kernel_beta(1.702)).astype(np.float32), "float32", 1.702).ok
    assert kernel_beta(1.5) == 1.5


def test_compare_catches_one_wrong_element_and_names_it(rng: np.random.Generator) -> None:
    x = rng.standard_normal(1000).astype(np.float32)
    out = swish_ref(x).astype(np.float32)
    out[417] = np.nextafter(out[417], np.float32(np.inf))
    for _ in range(FP32_ULP_BOUND):
        out[417] = np.nextafter(out[417], np.float32(np.inf))
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


def test_torch_tensors_go_through_the_same_reference(rng: np.random.Generator) -> None:
    """Within TORCH_AGREEMENT_RTOL of NumPy's result (the two libraries' float64 exp differ in the last bits); special
    values exactly; the tolerance rule, computed from the same reference, exactly (its operations are exact)."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the GPU tests use this path)")
    x = np.concatenate([rng.standard_normal(10_000) * 30, [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e308, -800.0]])
    for beta in BETAS:
        got = swish_ref(torch.from_numpy(x), beta).numpy()
        want = swish_ref(x, beta)
        special = ~np.isfinite(want)
        np.testing.assert_array_equal(got[special], want[special])
        np.testing.assert_array_equal(np.signbit(got[want == 0]), np.signbit(want[want == 0]))
        tiny = np.finfo(np.float64).smallest_subnormal
        np.testing.assert_allclose(got, want, rtol=TORCH_AGREEMENT_RTOL, atol=8 * tiny)
        assert not np.allclose(got * (1 + 16 * TORCH_AGREEMENT_RTOL), want, rtol=TORCH_AGREEMENT_RTOL, atol=0)
    ref = swish_ref(x[:10_000])
    for dtype in ("float32", "float16", "bfloat16"):
        np.testing.assert_array_equal(error_bound(torch.from_numpy(ref), dtype).numpy(), error_bound(ref, dtype))


def test_the_oracle_uses_no_project_code() -> None:
    """The oracle is independent of every implementation it checks: it imports nothing of swish_triton."""
    tree = ast.parse(Path(reference.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and not [name for name in imported if name.startswith(("swish_triton", "."))], imported
