"""The Python-backend model's CPU path (swish_triton.kernels.cpu_swish: float32 NumPy), outside Triton, checked
against the float64 oracle (swish_triton.reference), independent code, under the project's tolerance rule. Triton
itself is exercised in tests/integration/test_served_models.py."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

from swish_triton.kernels.cpu_swish import CpuSwish, swish_float32
from swish_triton.models.python_models import swish_batch
from swish_triton.reference import compare_to_ref
from tests.support import REPO

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


def project_modules_used_by(module: str) -> set[str]:
    """The swish_triton modules `module` imports, directly or through the modules it imports, read from their source
    (importing them would also run swish_triton/__init__.py, which no kernel module relies on)."""

    def source(name: str) -> Path | None:
        base = REPO.joinpath(*name.split("."))
        return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)

    found: set[str] = set()
    todo = [module]
    while todo:
        path = source(todo.pop())
        assert path is not None
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from package import module` names a module; `from module import name` the module itself.
                names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            for name in names:
                if name.split(".")[0] == "swish_triton" and source(name) and name not in found:
                    found.add(name)
                    todo.append(name)
    return found


def test_the_implementation_does_not_use_the_oracle() -> None:
    """The oracle checks the implementation only if the two are independent code: cpu_swish and every project module
    it imports, directly or not, leave swish_triton.reference alone (and the package root, which re-exports it)."""
    used = project_modules_used_by("swish_triton.kernels.cpu_swish")
    assert "swish_triton.ragged" in used, "the walk follows the kernel's own imports"
    assert not {"swish_triton.reference", "swish_triton"} & used, sorted(used)
    # The walk does find the oracle where it is used.
    assert "swish_triton.reference" in project_modules_used_by("swish_triton.clients.validation")
