"""The float64 truth every test, client, model and benchmark compares against, and the one tolerance rule.

``swish_ref`` is the reference; it takes NumPy arrays (and, for GPU tests on large inputs, torch tensors, computed
on their device by the same code, agreeing with NumPy's result within ``TORCH_AGREEMENT_RTOL``). The tolerance is a
bound per element in units of the output type's ulp:

- FP32: within ``FP32_ULP_BOUND`` ulp of the float64 result (the kernels' fast exp2 plus four roundings);
- FP16 and BF16: within the error of a reference computed in the same reduced precision (the exact result rounded to
  the type) plus one ulp of the type.

NaN and infinities must match exactly; a finite reference needs a finite output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# FP32: ex2.approx (<= 2 ulp) plus four roundings (x * e, 1 + e, the refined reciprocal, the last product) stay within
# 8 ulp at the worst mantissa position (plugin/README.md, "Numerics").
FP32_ULP_BOUND = 8
# Stored mantissa bits and the spacing of the smallest subnormals of each reduced-precision type.
MANTISSA_BITS = {"float16": 10, "bfloat16": 7}
MIN_SPACING = {"float16": 2.0**-24, "bfloat16": 2.0**-133}
LARGEST = {"float16": 65504.0, "bfloat16": float.fromhex("0x1.fep127")}
DTYPES = ("float32", "float16", "bfloat16")
# swish_ref of a torch tensor agrees with that of the same NumPy array within this relative error, not bit for bit:
# each library has its own float64 exp (each within about 1 ulp), and the roundings of 1 + e, the quotient and the
# product carry the difference on. Seen: up to 2 * 2**-52 (torch 2.11 on Ubuntu 24.04, torch 2.13 on Debian 12).
# NaN, the infinities and the sign of zero agree exactly.
TORCH_AGREEMENT_RTOL = 8 * 2.0**-52


def _is_torch(x: object) -> bool:
    return type(x).__module__.startswith("torch")


def _swish(x64: Any, beta: float, xp: Any) -> Any:
    """x * sigmoid(beta * x) for a float64 array of namespace ``xp`` (numpy or torch)."""
    # beta = 0 is x / 2 everywhere; 0 * inf would otherwise make the infinities NaN.
    z = beta * x64 if beta != 0 else xp.zeros_like(x64)
    e = xp.exp(-xp.abs(z))  # never overflows
    sig = xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    # inf * 0 where sigmoid underflows: the limit is 0, approached from the side of x's sign.
    zero = xp.copysign(xp.zeros_like(x64), x64)
    return xp.where((sig == 0) & ~xp.isnan(x64), zero, x64 * sig)


def swish_ref(x: npt.ArrayLike | Any, beta: float = 1.0) -> Any:
    """Return x * sigmoid(beta * x) in float64, defined at the extremes.

    sigmoid is evaluated from exp(-|beta*x|), which never overflows. Where sigmoid underflows to 0 the limit of
    x * sigmoid(beta * x) is 0 (this covers x = -inf with beta > 0 and x = +inf with beta < 0), so the result is a
    signed zero instead of inf * 0 = NaN. +inf with beta > 0 gives +inf; NaN stays NaN; every finite x gives a
    finite result. No floating-point warnings escape. A torch tensor gives a float64 tensor on its device.
    """
    if _is_torch(x):
        import torch

        return _swish(x.to(torch.float64), float(beta), torch)
    with np.errstate(over="ignore", invalid="ignore"):
        return _swish(np.asarray(x, dtype=np.float64), float(beta), np)


def ulp(ref: Any, dtype: str) -> Any:
    """The spacing of ``dtype`` at |ref| (float64 in and out; numpy or torch), subnormal spacing at the bottom."""
    if dtype not in DTYPES:
        raise ValueError(f"no tolerance for dtype {dtype!r}; one of {DTYPES}")
    if _is_torch(ref):
        import torch

        a = ref.abs()
        if dtype == "float32":
            f = a.to(torch.float32)
            return (torch.nextafter(f, torch.full_like(f, float("inf"))) - f).to(torch.float64)
        _, exp = torch.frexp(a)
        spacing = torch.ldexp(torch.ones_like(a), (exp - 1 - MANTISSA_BITS[dtype]).to(torch.float64))
        return torch.clamp(torch.where(a > 0, spacing, torch.zeros_like(a)), min=MIN_SPACING[dtype])
    a = np.abs(np.asarray(ref, dtype=np.float64))
    if dtype == "float32":
        with np.errstate(over="ignore"):  # the spacing at FLT_MAX is inf: no bound there, which is right
            return np.spacing(a.astype(np.float32)).astype(np.float64)
    _, exp = np.frexp(a)  # a = mantissa * 2**exp, mantissa in [0.5, 1)
    spacing = np.ldexp(1.0, (exp - 1 - MANTISSA_BITS[dtype]).astype(np.int32))
    return np.maximum(np.where(a > 0, spacing, 0.0), MIN_SPACING[dtype])


def rounded_to(ref: Any, dtype: str) -> Any:
    """``ref`` (float64) rounded to nearest-even in ``dtype`` and back to float64: the reduced-precision reference."""
    if _is_torch(ref):
        import torch

        if dtype == "float32":
            return ref.to(torch.float32).to(torch.float64)
        # Not ref.to(float16 / bfloat16): torch goes through float32 there, and that double rounding differs from the
        # exact rounding in about 1 element of 10,000. The same grid rounding as NumPy's below.
        step = ulp(ref, dtype)
        out = torch.round(ref / step) * step  # halves to even, as np.round
        out = torch.where(out.abs() > LARGEST[dtype], torch.copysign(torch.full_like(out, float("inf")), ref), out)
        return torch.where(torch.isfinite(ref), out, ref)
    r = np.asarray(ref, dtype=np.float64)
    if dtype == "float32":
        with np.errstate(over="ignore"):
            return r.astype(np.float32).astype(np.float64)
    # NumPy has no bfloat16: round on the type's grid (the spacing is a power of two, so the scaling is exact).
    step = ulp(r, dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.round(r / step) * step
        out = np.where(np.abs(out) > LARGEST[dtype], np.copysign(np.inf, r), out)
    return np.where(np.isfinite(r), out, r)


def error_bound(ref: Any, dtype: str) -> Any:
    """The largest |out - ref| allowed for an output of ``dtype`` whose float64 reference is ``ref`` (finite)."""
    if dtype == "float32":
        return FP32_ULP_BOUND * ulp(ref, dtype)
    return abs(rounded_to(ref, dtype) - ref) + ulp(ref, dtype)


def kernel_beta(beta: float) -> float:
    """beta as every Swish implementation receives it: a float32 (the plugin field and the kernels' argument)."""
    return float(np.float32(beta))


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst_index: int
    worst_input: float
    worst_output: float
    worst_expected: float
    worst_in_bound: float = 0.0  # the worst |out - ref| / bound (1 is the limit); inf where a special value is wrong

    def describe(self) -> str:
        return (
            f"worst at flat index {self.worst_index}: x={self.worst_input!r} got {self.worst_output!r} "
            f"expected {self.worst_expected!r} (abs err {self.max_abs_err:.3g}, rel err {self.max_rel_err:.3g}, "
            f"{self.worst_in_bound:.3g}x the bound)"
        )


def compare_to_ref(x: np.ndarray, out: np.ndarray, dtype: str, beta: float = 1.0) -> Comparison:
    """Compare a model's output for input x with swish_ref(x, beta) under the bound of ``dtype`` (module docstring).

    beta is taken as a float32, as the plugin and the kernels take it.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    got = np.asarray(out, dtype=np.float64).ravel()
    if got.shape != xs.shape:
        raise ValueError(f"output has {got.size} elements, input has {xs.size}")
    if xs.size == 0:
        return Comparison(True, 0.0, 0.0, -1, 0.0, 0.0, 0.0)
    ref = swish_ref(xs, kernel_beta(beta))
    finite_ref = np.isfinite(ref)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(got - ref)
        bound = np.where(finite_ref, error_bound(np.where(finite_ref, ref, 0.0), dtype), 0.0)
    same_special = (np.isnan(ref) & np.isnan(got)) | (np.isinf(ref) & (got == ref))
    elem_ok = same_special | (finite_ref & np.isfinite(got) & (abs_err <= bound))
    # Score each element by how far past its bound it is; failures (including NaN where none belongs) rank first.
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(elem_ok, abs_err / bound, np.inf)
    score = np.nan_to_num(np.where(same_special, 0.0, score), nan=0.0)
    worst = int(np.argmax(score))
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
        worst_in_bound=float(score[worst]),
    )
