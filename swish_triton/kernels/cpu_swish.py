"""Swish in float32 on the CPU: the Python-backend models' CPU path (hosts without a GPU, and batches too small for
the GPU round trip to pay).

Where the plugin's kernels library is built (``make plugin``; it needs no GPU to load), each batch is one call of
its C kernel (plugin/swishHost.cpp: computed in double precision, rounded once, vectorised for the host's CPU):
``swish_forward_host_many`` over the requests' own arrays where the caller lets them be overwritten and the kernel
can take them all, else ``swish_forward_host`` over the batch gathered into one fresh array. Otherwise NumPy computes
it as below.

y = x / (1 + exp(-beta * x)): one product, one exp, one add and one divide per element, each a vectorised NumPy
pass over the whole batch into buffers that are reused from call to call. FP16 inputs are computed in float32 and
rounded to FP16 once, at the end. The result meets the project's tolerance rule (``swish_triton.reference``: 8 ulp
in FP32) for every input and every finite beta:

- NumPy's float32 ``exp`` is within about 2.5 ulp (its SIMD paths) and the add and divide round once each.
- exp is ill-conditioned for large |beta * x|: the rounding of the float32 product beta * x alone would cost up to
  |beta * x| / 2 ulp in exp. The product of two float32 numbers is exact in float64, so its rounding error is
  recovered there and folded into exp's result (exp(t + r) = exp(t) * (1 + r) for |r| < 2^-17). For beta = 0 or a
  power of two the float32 product is already exact and this step is skipped.
- Where -beta * x > 80 (x * sigmoid(beta * x) tiny or subnormal, or exp overflowing), the few elements concerned
  are computed in float64 and rounded once, with the limits at the infinities (x = -inf gives -0, never NaN).

This module is independent of ``swish_triton.reference`` (the float64 test oracle): the tests compare the two.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Protocol

import numpy as np

from swish_triton.errors import SwishError
from swish_triton.kernels.phase_clock import NO_CLOCK, PhaseClock
from swish_triton.ragged import split_like


class HostKernel(Protocol):
    """What CpuSwish needs of the kernels library (swish_triton.kernels.library.SwishKernels)."""

    has_host: bool

    def forward_host(self, in_ptr: int, out_ptr: int, n: int, beta: float) -> None: ...

    def forward_arrays_in_place(self, arrays: list[np.ndarray], beta: float) -> None: ...


F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
SUPPORTED = (F32, np.dtype(np.float16))
# Ordinary batches take one pass of float32 ufuncs. Where exp overflows (-beta * x beyond 88.7) or an invalid
# operation happens (x = -inf gives inf / inf), the ufuncs report it through a callback, and only then are the
# elements concerned found (1 + exp is infinite there) and computed in float64. Such inputs cost one pass more plus
# the float64 work on those elements alone: perf_analyzer's default random inputs are random bit patterns, about a
# quarter of them beyond 88.7. The error mode is set per call: under NumPy 1.x np.errstate is Python code that saves
# and restores global state, as slow as the whole computation of a 1024-element request, while a per-call mode
# (extobj) costs nothing; NumPy 2 has no extobj, and its errstate is a cheap context variable. A flag also spares a
# reduction (a max over the batch) on every call.
# Where the careful pass splits exp(-beta * x) in two factors (module docstring).
SPLIT_AT = np.float32(80.0)
FLT_MAX = np.float32(np.finfo(np.float32).max)
PROBE_EVERY = 16
_NUMPY_1 = int(np.__version__.split(".")[0]) < 2
if _NUMPY_1:
    _QUIET_KW: dict[str, object] = {"extobj": [np.getbufsize(), 0, None]}
    _quiet = contextlib.nullcontext
else:
    _QUIET_KW = {}

    def _quiet() -> contextlib.AbstractContextManager[object]:
        return np.errstate(all="ignore")


class _Flag:
    """The ufuncs' error callback: notes that an overflow or an invalid operation happened."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, kind: str, flag: int) -> None:
        self.raised = True


def _power_of_two_or_zero(beta: np.float32) -> bool:
    mantissa, _ = np.frexp(beta)
    return bool(beta == 0 or abs(mantissa) == 0.5)


def _grown(buffer: np.ndarray, n: int) -> np.ndarray:
    return buffer if buffer.size >= n else np.empty(max(n, 2 * buffer.size), buffer.dtype)


class CpuSwish:
    """Swish over a batch of arrays (one flat float32 computation), with buffers that grow to the largest batch."""

    def __init__(self, beta: float, native: HostKernel | None = None) -> None:
        self.beta = np.float32(beta)
        if not np.isfinite(self.beta):
            raise ValueError(f"beta must be finite as a float32, not {beta!r}")
        # The C kernel, where the library has it (libraries built before it was added do not).
        self.native = native if native is not None and native.has_host else None
        self._beta_arg = float(self.beta)
        self.neg_beta = np.float32(-self.beta)
        self.exact_product = _power_of_two_or_zero(self.beta)
        # Below this |beta|, results stay nonzero for -beta * x beyond what the careful pass's two factors reach
        # (2 * 88.7): such a beta is computed in float64 throughout.
        self.in_float64 = 0 < abs(float(self.beta)) < 1e-25
        # Consecutive batches that needed the careful pass: a client whose inputs overflow exp keeps sending such
        # inputs, so the next batches go straight to the careful pass, and every PROBE_EVERY-th tries the fast one.
        self.careful_streak = 0
        self._work = np.empty(0, F32)  # -beta * x, then exp, then 1 + exp
        self._high = np.empty(0, F32)  # the part of -beta * x above SPLIT_AT, then its exp
        self._result = np.empty(0, F32)  # the float32 result when the output is FP16
        self._residual64 = np.empty(0, F64)
        self._residual = np.empty(0, F32)
        self._flag = _Flag()
        if _NUMPY_1:
            call = (np.ERR_CALL << np.SHIFT_OVERFLOW) | (np.ERR_CALL << np.SHIFT_INVALID)
            self._watch_kw: dict[str, object] = {"extobj": [np.getbufsize(), call, self._flag]}
        else:
            self._watch_kw = {}

    def _watching(self) -> contextlib.AbstractContextManager[object]:
        if _NUMPY_1:
            return contextlib.nullcontext()
        return np.errstate(over="call", invalid="call", divide="ignore", under="ignore", call=self._flag)

    def __call__(
        self, arrays: list[np.ndarray], out_dtype: np.dtype, clock: PhaseClock = NO_CLOCK, overwrite: bool = False
    ) -> list[np.ndarray]:
        """Swish of each array (any shapes, one dtype: float32 or float16), as arrays of ``out_dtype``.

        The results are fresh arrays, except with ``overwrite`` on the C kernel's path (float32): then each array that
        is writable, aligned and contiguous is overwritten with its result and returned. The Python-backend models
        pass it for their requests' inputs, which are theirs alone (module docstring of
        swish_triton.models.python_models)."""
        if overwrite and out_dtype is F32 and self.native is not None:
            # Each request's array overwritten with its result, all in one call: no gathering, no allocation, no
            # split; the outputs are the inputs, as the identity model's are. A batch with an array the kernel cannot
            # take (read-only, unaligned, strided) is refused before anything is written and gathered below instead.
            try:
                self.native.forward_arrays_in_place(arrays, self._beta_arg)
            except (TypeError, ValueError, BufferError, SwishError):  # SwishKernelsError: the kernel refused
                pass
            else:
                clock.lap("cpu kernel")
                return arrays
        if not arrays:
            return []
        first = arrays[0]
        dtype = first.dtype
        if dtype != out_dtype or dtype not in SUPPORTED:
            raise ValueError(f"CPU Swish supports float32 and float16 in and out, not {dtype} -> {out_dtype}")
        single = len(arrays) == 1
        if dtype == F32 and self.native is not None:
            # The batch gathered into one fresh array (the ragged batch flattened in one call) and computed in place
            # there: one allocation, one pointer, one call.
            x = np.concatenate(arrays, axis=None, dtype=F32)
            clock.lap("gather")
            if x.size:
                # The address of x's (writable, contiguous) memory, three times cheaper than x.ctypes.data.
                address = ctypes.addressof(ctypes.c_char.from_buffer(x))
                self.native.forward_host(address, address, x.size, self._beta_arg)
            clock.lap("cpu kernel")
            outputs = [x.reshape(first.shape)] if single else split_like(x, arrays)
            clock.lap("split")
            return outputs
        if single and dtype == F32:
            x = first.reshape(-1)  # a view: the request's own memory is only read
            n = x.size
        else:
            # Gathered (and FP16 widened) in one call, as above.
            x = np.concatenate(arrays, axis=None, dtype=F32)
            n = x.size
        # A fresh output per call: the arrays handed back must stay valid after the next call.
        out = np.empty(n, dtype)
        clock.lap("gather")
        if dtype == F32:
            self.compute(x, out)
        else:
            self._result = _grown(self._result, n)
            result = self._result[:n]
            self.compute(x, result)
            np.copyto(out, result, casting="same_kind")  # the one rounding to FP16
        clock.lap("cpu kernel")
        outputs = [out.reshape(first.shape)] if single else split_like(out, arrays)
        clock.lap("split")
        return outputs

    def compute(self, x: np.ndarray, out: np.ndarray) -> None:
        """out = x * sigmoid(beta * x) for flat float32 arrays of the same size (out may not alias x; with the C
        kernel both must be aligned and contiguous).

        out = x / (1 + exp(-beta * x)) in float32, accurate (subnormal results included: the division rounds once)
        wherever exp does not overflow; elsewhere the result is computed again in float64."""
        n = x.size
        if n == 0:
            return
        if self.native is not None:
            self.native.forward_host(x.ctypes.data, out.ctypes.data, n, self._beta_arg)
            return
        quiet, watch = _QUIET_KW, self._watch_kw
        if self.beta == 0:
            with _quiet():
                np.multiply(x, np.float32(0.5), out=out, **quiet)  # sigmoid(0) = 1/2, also at the infinities
            return
        self._work = _grown(self._work, n)
        t = self._work[:n]
        if self.in_float64:
            with _quiet():
                self._float64(x, out)
            return
        if self.careful_streak % PROBE_EVERY:
            self.careful_streak += 1
            with _quiet():
                self._split(x, t, out)
            return
        flag = self._flag
        flag.raised = False
        with _quiet():
            # Overflow here gives t = +inf, whose exp is inf without a report; x / inf is then the right +-0, and
            # x = -inf (inf / inf) is reported by the division.
            np.multiply(x, self.neg_beta, out=t, **quiet)
            if not self.exact_product:
                residual = self._product_residual(x, t)
        with self._watching():
            np.exp(t, out=t, **watch)
            if not self.exact_product:
                np.multiply(t, residual, out=t, **watch)
            np.add(t, np.float32(1), out=t, **quiet)
            np.divide(x, t, out=out, **watch)
        if flag.raised:
            self.careful_streak += 1
            with _quiet():
                self._split(x, t, out)
        else:
            self.careful_streak = 0

    def _float64(self, x: np.ndarray, out: np.ndarray) -> None:
        x64 = x.astype(F64)
        t = np.multiply(x64, -np.float64(self.beta), **_QUIET_KW)
        np.exp(t, out=t, **_QUIET_KW)
        np.add(t, 1.0, out=t, **_QUIET_KW)
        np.clip(x64, -np.finfo(F64).max, np.finfo(F64).max, out=x64)  # x = +-inf meets inf: the limit is 0
        np.divide(x64, t, out=t, **_QUIET_KW)
        np.copyto(out, t, casting="same_kind")

    def _split(self, x: np.ndarray, t: np.ndarray, out: np.ndarray) -> None:
        """The whole batch again, for inputs where exp(-beta * x) overflows float32 (random bit patterns have many):
        exp(t) = exp(min(t, SPLIT_AT)) * exp(max(t - SPLIT_AT, 0)), so 1 + exp(t) is computed as
        (1 + exp(min(t, SPLIT_AT))) * exp(max(t - SPLIT_AT, 0)), which differs from it by less than exp(-SPLIT_AT)
        relatively. t - SPLIT_AT is exact for t up to
        2 * SPLIT_AT (Sterbenz); beyond, every result is 0 for any normal beta. Elementwise ufuncs only: no
        indexing of the elements concerned (a quarter of all elements with random bits)."""
        n = x.size
        quiet = _QUIET_KW
        self._high = _grown(self._high, n)
        v = self._high[:n]
        np.multiply(x, self.neg_beta, out=t, **quiet)
        if not self.exact_product:
            residual = self._product_residual(x, t)
        np.subtract(t, SPLIT_AT, out=v, **quiet)
        np.maximum(v, np.float32(0), out=v, **quiet)  # NaN stays NaN
        np.minimum(t, SPLIT_AT, out=t, **quiet)
        np.exp(t, out=t, **quiet)
        if not self.exact_product:
            np.multiply(t, residual, out=t, **quiet)
        np.add(t, np.float32(1), out=t, **quiet)
        np.exp(v, out=v, **quiet)
        # x = -inf (beta > 0) meets an infinite denominator: the largest finite x gives the limit, -0, instead of NaN.
        if self.beta > 0:
            np.maximum(x, -FLT_MAX, out=out, **quiet)
        else:
            np.minimum(x, FLT_MAX, out=out, **quiet)
        # Two divisions, not one by the product, which would overflow: the first result is normal (|x| / e^80 at
        # most), the second rounds once, into the subnormal range where it must.
        np.divide(out, t, out=out, **quiet)
        np.divide(out, v, out=out, **quiet)

    def _product_residual(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """1 + r as float32, r = (-beta * x exactly) - t (t is the float32 product)."""
        n = x.size
        self._residual64 = _grown(self._residual64, n)
        self._residual = _grown(self._residual, n)
        r64 = self._residual64[:n]
        # Exact: 24 + 24 significant bits fit in float64's 53.
        np.multiply(x, np.float64(self.neg_beta), out=r64, dtype=F64, **_QUIET_KW)
        np.subtract(r64, t, out=r64, **_QUIET_KW)  # exact as well (t is r64 rounded to float32)
        # Where the float32 product overflowed (or x is infinite or NaN), r is infinite or NaN: exp there is 0 or
        # infinite whatever r is. A bounded r (|r| < 2^-17 elsewhere) keeps 0 * inf from making NaN and an infinite exp
        # infinite, so that those elements are found (fmin and fmax drop NaN).
        np.fmin(r64, 0.5, out=r64, **_QUIET_KW)
        np.fmax(r64, -0.5, out=r64, **_QUIET_KW)
        np.add(r64, 1.0, out=r64, **_QUIET_KW)
        r = self._residual[:n]
        np.copyto(r, r64, casting="same_kind")
        return r


def swish_float32(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Swish of one float32 or float16 array, computed in float32 (a fresh array of x's dtype and shape)."""
    x = np.asarray(x)
    return CpuSwish(beta)([x], x.dtype)[0]
