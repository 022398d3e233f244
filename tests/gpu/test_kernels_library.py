"""GPU tests of the Swish kernels through their C ABI (swish_triton.kernels.library), against swish_ref.

Every dtype x sizes x element offsets x beta, plus special values and, for FP16/BF16, every one of the 65,536 bit
patterns for every beta; outputs poisoned before each run, every element checked, and guard zones on both sides
checked untouched. Error bounds: the project's one rule,
swish_triton.reference.error_bound (FP32 within FP32_ULP_BOUND ulp of the float64 reference; FP16/BF16 within
the error of rounding the exact result to the type plus one ulp of the type; plugin/README.md, "Numerics").

Needs a CUDA device, torch with CUDA, and a built library (``make plugin``
or SWISH_KERNELS_LIB); skips with the reason otherwise.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch", reason="torch is needed to allocate device memory and streams")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from swish_triton.kernels import library as swish_kernels  # noqa: E402
from swish_triton.reference import error_bound, swish_ref  # noqa: E402
from swish_triton.reference import ulp as ulp_of  # noqa: E402

try:
    LIB = swish_kernels.load()
except swish_kernels.SwishLibraryNotFound as exc:
    pytest.skip(f"Swish kernels library not available: {exc}", allow_module_level=True)

# Observed maxima against the bounds are printed by test_report_max_errors (README "Numerics").
MAX_ERRORS: dict[str, float] = {}  # dtype -> worst error seen, in ulp (FP32) or in units of the bound (FP16/BF16)
PATTERN_ERRORS: dict[tuple[str, float], float] = {}  # (dtype, beta) -> worst error over all 16-bit patterns
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SIZES = [0, 1, 3, 4, 5, 1023, 1025, 2**20 + 3, 2**26]
OFFSETS = [0, 1, 2, 3]
BETAS = [1.0, 0.5, 1.702, -1.0, 0.0]
EXTRA_BETAS = [3.0, -0.25, 1e-3, 100.0]  # also in the special-value and bit-pattern tests
GUARD = 64  # elements of poison kept on each side of every output
POISON_BYTE = 0x7F  # fp32 3.39e38, fp16 NaN, bf16 3.39e38: never a result of these inputs
NUMPY_REFERENCE_LIMIT = 2**21  # above this, swish_ref on the GPU (torch tensors, float64), checked against NumPy


def special_values(dtype: str) -> np.ndarray:
    finfo = torch.finfo(DTYPES[dtype])
    values = [
        0.0,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        finfo.max,
        -finfo.max,
        finfo.tiny,
        -finfo.tiny,
        finfo.tiny / 4,  # subnormal
        -finfo.tiny / 4,
        finfo.tiny * finfo.eps,  # the smallest subnormal
        -finfo.tiny * finfo.eps,
        finfo.eps,
        1.0,
        -1.0,
        10.0,
        -10.0,
        17.0,
        -17.0,
        30.0,
        -30.0,
        31.0,
        -31.0,
        79.5,
        -79.5,
        80.5,
        -80.5,
        87.0,
        -87.0,
        88.7,
        -88.7,
        89.0,
        -89.0,
        103.0,
        -103.0,
        110.0,
        -110.0,
        1e4,
        -1e4,
        6.0e4,
        -6.0e4,
    ]
    if dtype != "float16":
        values += [1e30, -1e30, 1e38, -1e38]
    return np.array(values, dtype=np.float64)


def make_input(dtype: str, n: int, generator: torch.Generator) -> torch.Tensor:
    x = torch.randn(n, generator=generator, device="cuda", dtype=torch.float32) * 8.0
    if n >= 8:
        # A share of wide-range values so that every path of the kernel (t > 30, t < -80) is taken.
        wide = torch.randn(n // 8, generator=generator, device="cuda", dtype=torch.float32) * 60.0
        x[: n // 8] = wide
    special = torch.from_numpy(special_values(dtype)).to(device="cuda", dtype=torch.float32)
    k = min(n, special.numel())
    if k:
        x[-k:] = special[:k]
    return x.to(DTYPES[dtype])


def as_float32(beta: float) -> float:
    return float(np.float32(beta))


def assert_matches(x: np.ndarray, got: np.ndarray, ref: np.ndarray, dtype: str, label: str) -> None:
    nan_ref = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan_ref), f"{label}: NaN positions differ"
    inf_ref = np.isinf(ref)
    assert np.array_equal(got[inf_ref], ref[inf_ref]), f"{label}: infinities differ"
    finite = ~(nan_ref | inf_ref)
    assert np.all(np.isfinite(got[finite])), f"{label}: non-finite output for a finite reference"
    err = np.abs(got[finite] - ref[finite])
    bound = error_bound(ref[finite], dtype)
    if dtype == "float32":
        ulps = err / ulp_of(ref[finite], dtype)
        worst = float(ulps.max()) if ulps.size else 0.0
    else:
        worst = float((err / bound).max()) if err.size else 0.0
    MAX_ERRORS[dtype] = max(MAX_ERRORS.get(dtype, 0.0), worst)
    bad = err > bound
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        xi = x[finite][i]
        raise AssertionError(
            f"{label}: {int(bad.sum())} elements out of bound; first x={xi!r} got={got[finite][i]!r} "
            f"ref={ref[finite][i]!r} err={err[i]:.3e} bound={bound[i]:.3e}"
        )


def run_case(dtype: str, n: int, offset: int, beta: float, generator: torch.Generator, stream: torch.cuda.Stream):
    tdtype = DTYPES[dtype]
    x = make_input(dtype, n, generator)
    total = offset + n + 2 * GUARD
    src = torch.zeros(total, device="cuda", dtype=tdtype)
    src[GUARD + offset : GUARD + offset + n] = x
    dst = torch.empty(total, device="cuda", dtype=tdtype)
    dst.view(torch.uint8).fill_(POISON_BYTE)
    torch.cuda.synchronize()
    elem = src.element_size()
    in_ptr = src.data_ptr() + (GUARD + offset) * elem
    out_ptr = dst.data_ptr() + (GUARD + offset) * elem
    swish_kernels.swish_forward(dtype, in_ptr, out_ptr, n, beta, stream.cuda_stream)
    stream.synchronize()
    beta = as_float32(beta)  # the kernel computes with beta rounded to float32; so must the reference

    raw = dst.view(torch.uint8)
    lo, hi = (GUARD + offset) * elem, (GUARD + offset + n) * elem
    label = f"{dtype} n={n} offset={offset} beta={beta}"
    untouched = bool((raw[:lo] == POISON_BYTE).all()) and bool((raw[hi:] == POISON_BYTE).all())
    assert untouched, f"{label}: wrote outside the range"
    if n == 0:
        return
    out = dst[GUARD + offset : GUARD + offset + n]
    if n <= NUMPY_REFERENCE_LIMIT:
        xs = x.to(torch.float64).cpu().numpy()
        ref = swish_ref(xs, beta)
        assert_matches(xs, out.to(torch.float64).cpu().numpy(), ref, dtype, label)
        return
    # Large n: compare on the GPU in float64, after checking the mirror against swish_ref on a sample.
    x64 = x.to(torch.float64)
    ref64 = swish_ref(x64, beta)
    sample = torch.randperm(n, generator=generator, device="cuda")[:65536]
    sample = torch.cat([sample, torch.arange(n - 64, n, device="cuda")])  # the special values
    np.testing.assert_allclose(
        ref64[sample].cpu().numpy(), swish_ref(x64[sample].cpu().numpy(), beta), rtol=1e-14, atol=0, equal_nan=True
    )
    got = out.to(torch.float64)
    assert torch.equal(torch.isnan(got), torch.isnan(ref64)), f"{label}: NaN positions differ"
    inf = torch.isinf(ref64)
    assert torch.equal(got[inf], ref64[inf]), f"{label}: infinities differ"
    finite = torch.isfinite(ref64)
    r = ref64[finite]
    err = (got[finite] - r).abs()
    bound = error_bound(r, dtype)
    ok = err <= bound
    if not bool(ok.all()):
        i = int(torch.nonzero(~ok)[0])
        raise AssertionError(f"{label}: out of bound: x={x64[finite][i]} err={err[i]:.3e} bound={bound[i]:.3e}")


@pytest.fixture(scope="module")
def stream() -> torch.cuda.Stream:
    return torch.cuda.Stream()


@pytest.fixture
def generator() -> torch.Generator:
    g = torch.Generator(device="cuda")
    g.manual_seed(20261125)
    return g


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_sizes_offsets_betas(dtype, n, offset, beta, generator, stream):
    run_case(dtype, n, offset, beta, generator, stream)


@pytest.mark.parametrize("beta", BETAS + EXTRA_BETAS)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_special_values(dtype, beta, stream):
    xs = special_values(dtype)
    x = torch.from_numpy(xs).to(device="cuda", dtype=DTYPES[dtype])
    out = torch.empty_like(x)
    swish_kernels.swish_forward(dtype, x.data_ptr(), out.data_ptr(), x.numel(), beta, stream.cuda_stream)
    stream.synchronize()
    x64 = x.to(torch.float64).cpu().numpy()
    got = out.to(torch.float64).cpu().numpy()
    assert_matches(x64, got, swish_ref(x64, as_float32(beta)), dtype, f"special {dtype} beta={beta}")
    if beta > 0:
        got_map = dict(zip(x64.tolist(), got.tolist(), strict=False))
        assert got_map[math.inf] == math.inf
        assert got_map[-math.inf] == 0.0


def test_fp32_every_finite_input_is_finite(stream):
    """A sweep over float32 bit patterns (every 4099th) for several betas: finite in, finite out, within bound."""
    bits = torch.arange(0, 2**32, 4099, dtype=torch.int64, device="cuda")
    x = (bits - 2**31).to(torch.int32).view(torch.float32)
    x = x[torch.isfinite(x)]
    out = torch.empty_like(x)
    for beta in (1.0, 1.702, -1.0, 0.0, 1e-30, 3e38):
        swish_kernels.swish_forward("float32", x.data_ptr(), out.data_ptr(), x.numel(), beta, stream.cuda_stream)
        stream.synchronize()
        assert bool(torch.isfinite(out).all()), f"non-finite output for beta={beta}"
        xs = x.to(torch.float64).cpu().numpy()
        ref = swish_ref(xs, as_float32(beta))
        assert_matches(xs, out.to(torch.float64).cpu().numpy(), ref, "float32", f"sweep beta={beta}")


def test_in_place(generator, stream):
    x = make_input("float32", 100_003, generator)
    ref = swish_ref(x.to(torch.float64).cpu().numpy(), 1.0)
    swish_kernels.swish_forward("float32", x.data_ptr(), x.data_ptr(), x.numel(), 1.0, stream.cuda_stream)
    stream.synchronize()
    assert_matches(ref, x.to(torch.float64).cpu().numpy(), ref, "float32", "in place")


def test_stream_ordering_and_concurrency(generator):
    """Work is enqueued on the given stream: it sees the producer before it and runs beside other streams."""
    streams = [torch.cuda.Stream() for _ in range(3)]
    n = 1 << 22
    results = []
    for i, s in enumerate(streams):
        with torch.cuda.stream(s):
            # Produced on the same stream immediately before the launch, with no synchronisation in between.
            x = torch.randn(n, device="cuda", generator=generator) * (i + 1)
            y = torch.empty_like(x)
            busy = torch.randn(2048, 2048, device="cuda") @ torch.randn(2048, 2048, device="cuda")  # concurrent work
            swish_kernels.swish_forward("float32", x.data_ptr(), y.data_ptr(), n, 1.0 + i, s.cuda_stream)
            results.append((x, y, busy, 1.0 + i))
    torch.cuda.synchronize()
    for x, y, _busy, beta in results:
        xs = x.to(torch.float64).cpu().numpy()
        ref = swish_ref(xs, as_float32(beta))
        assert_matches(xs, y.to(torch.float64).cpu().numpy(), ref, "float32", f"stream beta={beta}")


def test_cuda_graph_capture(generator):
    x = torch.randn(1 << 20, device="cuda", generator=generator)
    y = torch.empty_like(x)
    s = torch.cuda.Stream()
    swish_kernels.swish_forward("float32", x.data_ptr(), y.data_ptr(), x.numel(), 1.0, s.cuda_stream)  # warm up
    s.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=s):
        swish_kernels.swish_forward("float32", x.data_ptr(), y.data_ptr(), x.numel(), 1.0, s.cuda_stream)
    y.zero_()
    graph.replay()
    torch.cuda.synchronize()
    xs = x.double().cpu().numpy()
    assert_matches(xs, y.double().cpu().numpy(), swish_ref(xs, 1.0), "float32", "graph replay")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"dtype": "int8"}, "unsupported dtype"),
        ({"n": -1}, "negative element count"),
        ({"beta": math.nan}, "beta must be finite"),
        ({"beta": math.inf}, "beta must be finite"),
        ({"in_ptr": 0}, "null pointer"),
        ({"out_offset_bytes": 1}, "aligned"),
        ({"out_offset_bytes": 8}, "overlap"),
    ],
)
def test_errors_raise(kwargs, fragment):
    x = torch.zeros(64, device="cuda")
    args = {"dtype": "float32", "in_ptr": x.data_ptr(), "n": 16, "beta": 1.0}
    out_offset = kwargs.pop("out_offset_bytes", 128)
    args.update(kwargs)
    with pytest.raises((swish_kernels.SwishKernelsError, ValueError), match=fragment):
        swish_kernels.swish_forward(args["dtype"], args["in_ptr"], x.data_ptr() + out_offset, args["n"], args["beta"])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16bit_pattern(dtype, stream):
    """All 65,536 bit patterns of the type (NaNs, infinities, subnormals, both zeros) for every beta of these tests,
    through the vector kernel (aligned output) and the element-wise kernel (output one element off alignment)."""
    tdtype = DTYPES[dtype]
    x = torch.arange(-(2**15), 2**15, dtype=torch.int32, device="cuda").to(torch.int16).view(tdtype)
    x64 = x.to(torch.float64).cpu().numpy()
    buffer = torch.empty(x.numel() + 8, device="cuda", dtype=tdtype)
    for beta in BETAS + EXTRA_BETAS + [1e-30, 3e38]:
        ref = swish_ref(x64, as_float32(beta))
        for shift, path in ((0, "vector"), (1, "element-wise")):
            out = buffer[shift : shift + x.numel()]
            buffer.view(torch.uint8).fill_(POISON_BYTE)
            swish_kernels.swish_forward(dtype, x.data_ptr(), out.data_ptr(), x.numel(), beta, stream.cuda_stream)
            stream.synchronize()
            got = out.to(torch.float64).cpu().numpy()
            before = MAX_ERRORS.get(dtype, 0.0)
            MAX_ERRORS[dtype] = 0.0
            assert_matches(x64, got, ref, dtype, f"all {dtype} patterns, beta={beta}, {path} kernel")
            key = (dtype, as_float32(beta))
            PATTERN_ERRORS[key] = max(PATTERN_ERRORS.get(key, 0.0), MAX_ERRORS[dtype])
            MAX_ERRORS[dtype] = max(before, MAX_ERRORS[dtype])


def test_report_max_errors():
    """Prints the worst errors the tests above saw (run with -rP to see it, or set SWISH_GPU_TEST_REPORT to a file
    to get them there); fails if none were measured."""
    assert MAX_ERRORS, "no error statistics collected (run the whole module)"
    lines = []
    for dtype, worst in sorted(MAX_ERRORS.items()):
        unit = "ulp of float32" if dtype == "float32" else "x the bound (rounding to the type + 1 ulp)"
        lines.append(f"max error {dtype}: {worst:.3f} {unit}")
    for (dtype, beta), worst in sorted(PATTERN_ERRORS.items()):
        lines.append(f"max error {dtype}, all 65536 bit patterns, beta={beta:g}: {worst:.3f} x the bound")
    print("\n".join(lines))
    report = os.environ.get("SWISH_GPU_TEST_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
