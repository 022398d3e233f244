"""The float64 truth every test, client and model compares against, plus per-dtype tolerances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def swish_ref(x: npt.ArrayLike, beta: float = 1.0) -> np.ndarray:
    """Return x * sigmoid(beta * x) in float64, defined at the extremes.

    sigmoid is evaluated from exp(-|beta*x|), which never overflows. Where sigmoid underflows to 0 the limit of
    x * sigmoid(beta * x) is 0 (this covers x = -inf with beta > 0 and x = +inf with beta < 0), so the result is a
    signed zero instead of inf * 0 = NaN. +inf with beta > 0 gives +inf; NaN stays NaN; every finite x gives a
    finite result. No floating-point warnings escape.
    """
    x64 = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        # beta = 0 is x / 2 everywhere; 0 * inf would otherwise make the infinities NaN.
        z = np.float64(beta) * x64 if beta != 0 else np.zeros_like(x64)
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        out = x64 * sig
        # inf * 0: the limit is 0, approached from the side of x's sign.
        out = np.where((sig == 0) & ~np.isnan(x64), np.copysign(0.0, x64), out)
    return out


@dataclass(frozen=True)
class Tolerance:
    """|out - ref| <= atol + rtol * |ref|, elementwise; NaN and inf must match exactly."""

    rtol: float
    atol: float


# FP32: the kernels use a fast exp, a few ulp of float32 (eps 1.2e-7). FP16 (eps 9.8e-4) and BF16 (eps 7.8e-3):
# the exact result rounded to the type (half an ulp) plus one ulp, i.e. 1.5 eps. atol covers results that land in
# the type's subnormal range, where relative precision is lost.
TOLERANCES: dict[str, Tolerance] = {
    "float32": Tolerance(rtol=1e-5, atol=1e-37),
    "float16": Tolerance(rtol=1.5 * 2.0**-10, atol=2.0**-24),
    "bfloat16": Tolerance(rtol=1.5 * 2.0**-7, atol=1e-37),
}


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst_index: int
    worst_input: float
    worst_output: float
    worst_expected: float

    def describe(self) -> str:
        return (
            f"worst at flat index {self.worst_index}: x={self.worst_input!r} got {self.worst_output!r} "
            f"expected {self.worst_expected!r} (abs err {self.max_abs_err:.3g}, rel err {self.max_rel_err:.3g})"
        )


def compare_to_ref(x: np.ndarray, out: np.ndarray, dtype: str, beta: float = 1.0) -> Comparison:
    """Compare a model's output for input x with swish_ref(x) under the tolerance of ``dtype``."""
    tol = TOLERANCES[dtype]
    xs = np.asarray(x, dtype=np.float64).ravel()
    got = np.asarray(out, dtype=np.float64).ravel()
    if got.shape != xs.shape:
        raise ValueError(f"output has {got.size} elements, input has {xs.size}")
    ref = swish_ref(xs, beta)
    with np.errstate(invalid="ignore"):
        abs_err = np.abs(got - ref)
    same_special = (np.isnan(ref) & np.isnan(got)) | (np.isinf(ref) & (got == ref))
    finite_ref = np.isfinite(ref)
    bound = tol.atol + tol.rtol * np.abs(ref)
    elem_ok = same_special | (finite_ref & np.isfinite(got) & (abs_err <= bound))
    # Score each element by how far past its bound it is; failures (including NaN where none belongs) rank first.
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(elem_ok, abs_err / bound, np.inf)
    score = np.where(same_special, 0.0, score)
    if xs.size == 0:
        return Comparison(True, 0.0, 0.0, -1, 0.0, 0.0, 0.0)
    worst = int(np.argmax(np.nan_to_num(score, nan=np.inf)))
    finite_err = np.where(finite_ref & np.isfinite(got), abs_err, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(finite_ref & (ref != 0), finite_err / np.abs(ref), 0.0)
    return Comparison(
        ok=bool(elem_ok.all()),
        max_abs_err=float(finite_err.max()),
        max_rel_err=float(rel.max()),
        worst_index=worst,
        worst_input=float(xs[worst]),
        worst_output=float(got[worst]),
        worst_expected=float(ref[worst]),
    )
