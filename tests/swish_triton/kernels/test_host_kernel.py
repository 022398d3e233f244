"""The C kernel on the CPU (``swish_forward_host``, plugin/swishHost.cpp) through its binding
(swish_triton.kernels.library) and through CpuSwish, against the float64 oracle. Needs no GPU: the library is built
with nvcc and loads on any host (tests/plugin/plugin_builds.py's cached build)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from swish_triton.kernels.cpu_swish import CpuSwish
from swish_triton.kernels.library import SwishKernels, SwishKernelsError
from swish_triton.reference import compare_to_ref, swish_ref
from tests.plugin.plugin_builds import header_dir, missing_tools, plugin_build
from tests.swish_triton.kernels.test_cpu_swish import BETAS, SPECIAL, float32_sweep

F32 = np.dtype(np.float32)


@pytest.fixture(scope="module")
def kernels() -> SwishKernels:
    missing = missing_tools() or (None if header_dir("11.1") else "TensorRT 11.1 headers not found")
    if missing:
        pytest.skip(f"the plugin cannot be built: {missing}")
    return SwishKernels(plugin_build("11.1") / "libswish_kernels.so")


def host(kernels: SwishKernels, x: np.ndarray, beta: float) -> np.ndarray:
    out = np.empty_like(x)
    kernels.forward_host(x.ctypes.data, out.ctypes.data, x.size, beta)
    return out


def ulps_from_oracle(x: np.ndarray, y: np.ndarray, beta: float) -> float:
    """Largest distance of y from the exact result, in float32 ulps of the exact result (NaN where both are NaN: 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        exact = np.asarray(swish_ref(x.astype(np.float64), float(np.float32(beta))), dtype=np.float64)
        rounded = exact.astype(np.float32)
        ulp = np.maximum(np.spacing(np.abs(rounded)).astype(np.float64), np.finfo(np.float32).smallest_subnormal)
        distance = np.abs(y.astype(np.float64) - exact)
    same = (y == rounded) | (np.isnan(y) & np.isnan(exact))
    return float(np.max(np.where(same, 0.0, distance / ulp)))


def test_the_library_has_the_cpu_kernel(kernels: SwishKernels) -> None:
    assert kernels.has_host


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("beta", BETAS)
def test_within_one_ulp_over_the_whole_float32_range(kernels: SwishKernels, beta: float) -> None:
    """Double precision throughout and one rounding: within one ulp of the exact result everywhere (the project's
    rule allows 8), subnormal results included."""
    x = float32_sweep(step=1021)
    y = host(kernels, x, beta)
    assert ulps_from_oracle(x, y, beta) <= 1.0
    assert compare_to_ref(x, y, "float32", beta).ok


def test_special_values_take_their_limits(kernels: SwishKernels) -> None:
    y = host(kernels, SPECIAL, 1.0)
    assert np.isnan(y[0]) and y[1] == np.inf
    assert y[2] == 0.0 and np.signbit(y[2]), "swish(-inf) is -0"
    assert y[3] == 0.0 and not np.signbit(y[3]) and y[4] == 0.0 and np.signbit(y[4])
    negative = host(kernels, SPECIAL, -1.0)
    assert negative[1] == 0.0 and not np.signbit(negative[1]) and negative[2] == -np.inf
    np.testing.assert_array_equal(host(kernels, SPECIAL, 0.0), SPECIAL / 2)


def test_in_place_and_every_length(kernels: SwishKernels, rng: np.random.Generator) -> None:
    """Lengths around the vector widths (the loop's remainder), and out == in."""
    for n in (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 1023, 1025):
        x = (rng.standard_normal(n) * 30).astype(np.float32)
        expected = host(kernels, x, 1.702)
        kernels.forward_host(x.ctypes.data, x.ctypes.data, n, 1.702)
        np.testing.assert_array_equal(x, expected)


def test_bad_arguments_are_refused_with_a_reason(kernels: SwishKernels) -> None:
    x = np.ones(16, np.float32)
    out = np.empty_like(x)
    with pytest.raises(SwishKernelsError, match="beta must be finite"):
        kernels.forward_host(x.ctypes.data, out.ctypes.data, 16, float("inf"))
    with pytest.raises(SwishKernelsError, match="negative element count"):
        kernels.forward_host(x.ctypes.data, out.ctypes.data, -1, 1.0)
    with pytest.raises(SwishKernelsError, match="null pointer"):
        kernels.forward_host(0, out.ctypes.data, 16, 1.0)
    with pytest.raises(SwishKernelsError, match="overlap partially"):
        kernels.forward_host(x.ctypes.data, x.ctypes.data + 4, 8, 1.0)
    with pytest.raises(SwishKernelsError, match="aligned"):
        kernels.forward_host(x.ctypes.data + 1, out.ctypes.data, 8, 1.0)
    kernels.forward_host(0, 0, 0, 1.0)  # nothing to do: no pointer needed


def test_cpu_swish_uses_it_and_agrees_with_numpy(kernels: SwishKernels, rng: np.random.Generator) -> None:
    native, numpy_only = CpuSwish(1.702, kernels), CpuSwish(1.702)
    assert native.native is kernels and numpy_only.native is None
    batch = [rng.standard_normal((1, 1024)).astype(np.float32) * 20 for _ in range(5)] + [
        rng.standard_normal((3, 7)).astype(np.float32)
    ]
    for a, b, x in zip(native(batch, F32), numpy_only(batch, F32), batch, strict=True):
        assert a.shape == x.shape
        assert compare_to_ref(x, a, "float32", 1.702).ok and compare_to_ref(x, b, "float32", 1.702).ok
    fp16 = rng.uniform(-60000, 60000, 4096).astype(np.float16)
    assert compare_to_ref(fp16, native([fp16], np.dtype(np.float16))[0], "float16", 1.702).ok


def test_unaligned_inputs_are_copied_for_the_c_kernel(kernels: SwishKernels) -> None:
    """A float32 array at an odd address (possible for views into a byte buffer) is computed, not refused."""
    raw = np.zeros(4 * 64 + 1, np.uint8)
    x = np.frombuffer(raw.data, dtype=np.float32, count=64, offset=1)
    assert not x.flags.aligned
    x[:] = np.linspace(-100, 100, 64, dtype=np.float32)
    y = CpuSwish(1.0, kernels)([x], F32)[0]
    assert compare_to_ref(x, y, "float32").ok


def test_overwrite_computes_each_writable_input_in_place(kernels: SwishKernels, rng: np.random.Generator) -> None:
    """overwrite=True (what the served models pass for their requests' own input arrays) puts each request's result in
    its array; an array the kernel cannot take is copied first, and without overwrite the inputs are only read."""
    engine = CpuSwish(1.702, kernels)
    kept = [rng.standard_normal((1, 1024)).astype(np.float32) * 20, rng.standard_normal((3, 7)).astype(np.float32)]
    expected = engine(kept, F32)
    for x, y in zip(kept, expected, strict=True):
        assert not np.shares_memory(x, y)
        assert compare_to_ref(x, y, "float32", 1.702).ok

    batch = [x.copy() for x in kept]
    outputs = engine(batch, F32, overwrite=True)
    for a, out, want in zip(batch, outputs, expected, strict=True):
        assert out is a
        np.testing.assert_array_equal(out, want)

    read_only = kept[0].copy()
    read_only.flags.writeable = False
    raw = np.zeros(4 * 21 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=21, offset=1).reshape(3, 7)
    unaligned[...] = kept[1]
    strided = np.repeat(kept[1], 2, axis=1)[:, ::2]
    assert not unaligned.flags.aligned and not strided.flags.c_contiguous
    outputs = engine([read_only, unaligned, strided], F32, overwrite=True)
    for a, out, want in zip([read_only, unaligned, strided], outputs, [*expected, expected[1]], strict=True):
        assert not np.shares_memory(a, out)
        np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(read_only, kept[0])
    np.testing.assert_array_equal(unaligned, kept[1])
    assert engine([np.empty((0, 4), np.float32)], F32, overwrite=True)[0].shape == (0, 4)


def test_many_arrays_in_one_call(kernels: SwishKernels, rng: np.random.Generator) -> None:
    """swish_forward_host_many (forward_host_in_place): each array gets what swish_forward_host gives it; a refused
    array is named and nothing is written, whichever array it is."""
    arrays = [(rng.standard_normal(n) * 30).astype(np.float32) for n in (1, 17, 1024, 3)]
    expected = [host(kernels, a, -0.5) for a in arrays]
    kernels.forward_host_in_place([a.ctypes.data for a in arrays], [a.size for a in arrays], -0.5)
    for a, want in zip(arrays, expected, strict=True):
        np.testing.assert_array_equal(a, want)

    kept = [a.copy() for a in arrays]
    addresses = [a.ctypes.data for a in arrays]
    with pytest.raises(SwishKernelsError, match="array 2: pointers must be aligned"):
        kernels.forward_host_in_place(addresses[:2] + [addresses[2] + 1] + addresses[3:], [1, 17, 8, 3], 1.0)
    with pytest.raises(SwishKernelsError, match="array 3: negative element count"):
        kernels.forward_host_in_place(addresses, [1, 17, 1024, -3], 1.0)
    with pytest.raises(SwishKernelsError, match="array 0: null pointer"):
        kernels.forward_host_in_place([0, *addresses[1:]], [1, 17, 1024, 3], 1.0)
    with pytest.raises(SwishKernelsError, match="beta must be finite"):
        kernels.forward_host_in_place(addresses, [1, 17, 1024, 3], float("nan"))
    for a, before in zip(arrays, kept, strict=True):
        np.testing.assert_array_equal(a, before)
    with pytest.raises(ValueError, match="2 addresses but 1 counts"):
        kernels.forward_host_in_place(addresses[:2], [1], 1.0)
    kernels.forward_host_in_place([], [], 1.0)  # nothing to do


def assert_all_equal(arrays: list[np.ndarray], wanted: list[np.ndarray]) -> None:
    for a, want in zip(arrays, wanted, strict=True):
        np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("way", ["swish_batch extension", "ctypes"])
def test_arrays_in_place_through_both_ways(kernels: SwishKernels, rng: np.random.Generator, way: str) -> None:
    """forward_arrays_in_place, the served models' CPU call: through the swish_batch extension built beside the library
    (plugin/swishPyBatch.c) and through ctypes, the same results; an array either way cannot take is refused before
    anything is written, and the arrays are released (no buffer stays exported)."""
    if way == "ctypes":
        kernels = SwishKernels(kernels.path)
        kernels.batch_extension = None
    elif kernels.batch_extension is None:
        pytest.skip("swish_batch was not built: no Python >= 3.11 headers (python3-dev) when the plugin was built")
    arrays = [(rng.standard_normal(shape) * 30).astype(np.float32) for shape in ((1, 1024), (3, 7), (1,), (2, 64))]
    expected = [host(kernels, a, 1.702) for a in arrays]
    references = [sys.getrefcount(a) for a in arrays]
    kernels.forward_arrays_in_place(arrays, 1.702)
    assert_all_equal(arrays, expected)
    kept = [a.copy() for a in arrays]
    read_only = arrays[1].copy()
    read_only.flags.writeable = False
    raw = np.zeros(4 * 64 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=64, offset=1)
    refused: list[tuple[np.ndarray, type[BaseException] | tuple[type[BaseException], ...]]] = [
        (read_only, (TypeError, ValueError, BufferError)),
        (np.ones(8), TypeError),  # float64
        (np.ones(8, ">f4"), TypeError),  # float32 of the other byte order
        (np.repeat(arrays[1], 2, axis=1)[:, ::2], (TypeError, ValueError, BufferError)),  # strided
        (unaligned, SwishKernelsError),
    ]
    for bad, error in refused:
        with pytest.raises(error):
            kernels.forward_arrays_in_place([arrays[0], bad, arrays[2]], 1.0)
        assert_all_equal(arrays, kept)
    assert [sys.getrefcount(a) for a in arrays] == references
    arrays[0].resize((1024,), refcheck=False)  # would raise BufferError while a buffer of it were still exported
    kernels.forward_arrays_in_place([], 1.0)
