"""Benchmark of the Swish kernels against a device-to-device copy and torch's silu (a script, not a test).

Bandwidth = (bytes read + bytes written) / median time per launch. Three rotating input/output buffer pairs keep L2
from serving repeats. Sizes below --graph-below elements are timed over CUDA graph replays of many launches (a single
launch from Python would measure launch overhead); larger sizes with CUDA events around a few back-to-back launches
that are enqueued while the GPU runs a 1 ms sleep kernel, so that the host's enqueue time is never timed (one queued
launch of the kernel as head start was too short at 16M FP16/BF16 elements, see median_time_events). The same
method times all three kernels. The kernel is launched through the C ABI (swish_triton.kernels.library), as the
Python-backend model does.

TensorRT's vectorized formats (plugin/swishFormats.h) pad the channel extent to the vector size, and the plugin's
enqueue runs the kernel over the whole padded buffer. --formats adds one row set per supported (type, format) pair
at two NCHW / NCDHW shapes (C = 3: heavy padding; C = 64 / 32: none), timing the kernel over the padded element
count; bandwidth is over the padded bytes, which is what moves through memory.

Appends one CSV row per (case, kernel) with timestamp, commit, GPU name, driver, CUDA and torch versions; prints
Markdown tables.

    python bench/bench_kernels.py                     # linear sizes and the vectorized formats, rows appended to
                                                      # bench/results/kernels.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from swish_triton import settings  # noqa: E402
from swish_triton.cli_help import HelpFormatter  # noqa: E402
from swish_triton.kernels import library as swish_kernels  # noqa: E402
from swish_triton.perf.run_environment import git_commit  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CAPI_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
ROTATE = 3

# The plugin's vectorized formats (mirror of kFORMAT_RULES in plugin/swishFormats.h): name -> (vector size, channel
# position from the end, dtypes). kLINEAR is the --sizes sweep.
FORMATS = {
    "kCHW2": (2, 3, ("fp16", "bf16")),
    "kHWC8": (8, 3, ("fp16", "bf16")),
    "kHWC16": (16, 3, ("fp16",)),
    "kCHW32": (32, 3, ("fp32", "fp16")),
    "kHWC": (1, 3, ("fp32",)),
    "kDHWC8": (8, 4, ("fp16", "bf16")),
    "kCDHW32": (32, 4, ("fp16",)),
    "kDHWC": (1, 4, ("fp32",)),
}
FORMAT_SHAPES = {3: ((32, 3, 512, 512), (32, 64, 128, 128)), 4: ((8, 3, 32, 128, 128), (8, 32, 16, 64, 64))}


def padded_count(shape: tuple[int, ...], vector: int, channel_from_end: int) -> int:
    """Elements of the buffer TensorRT allocates for `shape` in a format: the channel extent rounded up to `vector`."""
    dims = list(shape)
    c = len(dims) - channel_from_end
    dims[c] = -(-dims[c] // vector) * vector
    count = 1
    for d in dims:
        count *= d
    return count


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--sizes", default="1M,4M,16M,64M,256M", help="linear element counts; K/M/G are powers of 2")
    p.add_argument("--dtypes", default="fp32,fp16,bf16", help="comma-separated among fp32, fp16, bf16")
    p.add_argument("--beta", type=float, default=1.0, help="beta of the Swish kernel (torch silu is beta = 1)")
    p.add_argument("--lib", default=settings.value(swish_kernels.ENV_VAR), help="library with the Swish C ABI")
    p.add_argument("--label", default="", help="free text stored in the CSV (e.g. a build variant)")
    p.add_argument(
        "--csv", default=str(REPO / "bench" / "results" / "kernels.csv"), help="CSV to append to ('' for none)"
    )
    p.add_argument("--formats", default="all", help="vectorized formats to time (comma-separated names, or 'none')")
    p.add_argument("--iters", type=int, default=30, help="timed repetitions (events) or graph replays")
    p.add_argument("--graph-below", default="16M", help="time sizes below this over CUDA graph replays")
    return p.parse_args()


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


HEAD_START_US = 1000.0  # GPU-side sleep queued before each events timing (see median_time_events)
_sleep_cycles_per_us: float | None = None


def head_start() -> float:
    """Queue a sleep kernel of about HEAD_START_US on the current stream; returns its length in seconds (0 where this
    torch has no torch.cuda._sleep). The cycles per microsecond are measured once, at the clock the GPU runs at."""
    global _sleep_cycles_per_us
    if not hasattr(torch.cuda, "_sleep"):
        return 0.0
    if _sleep_cycles_per_us is None:
        cycles = 1 << 21
        torch.cuda._sleep(cycles)  # warm-up: brings the clock up
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        end.synchronize()
        _sleep_cycles_per_us = cycles / (start.elapsed_time(end) * 1e3)
    torch.cuda._sleep(int(HEAD_START_US * _sleep_cycles_per_us))
    return HEAD_START_US * 1e-6


def median_time_events(launch, iters: int, per_timing: int = 2 * ROTATE) -> float:
    """Median seconds of one launch: events around `per_timing` back-to-back launches, enqueued while the GPU sleeps
    (head_start), so that the host's enqueue time is never in the timing. On the H200 host one enqueue from Python
    takes 12-13 us (copy), 14-17 us (torch silu) and 18-21 us (Swish through ctypes), as long as a 16M-element
    FP16/BF16 launch (19 us): behind a head start of one queued launch, that case timed the host (docs/performance.md,
    "Kernels"). Launches rotate through the buffer pairs in order. Timings whose enqueue outlasted
    the sleep are counted and reported on stderr.
    """
    for i in range(2 * ROTATE):
        launch(i)
    torch.cuda.synchronize()
    times = []
    outran = 0
    for i in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        sleep = head_start()
        begin = time.perf_counter()
        start.record()
        for k in range(per_timing):
            launch(i * per_timing + k)
        end.record()
        outran += time.perf_counter() - begin >= sleep
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3 / per_timing)
    if outran:
        print(f"warning: the host's enqueue outlasted the head start in {outran} of {iters} timings", file=sys.stderr)
    return statistics.median(times)


def median_time_graph(launch, iters: int, per_graph: int) -> float:
    """Median seconds of one launch, from replays of a graph holding `per_graph` launches."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for i in range(2 * ROTATE):  # warm-up outside capture (module load, occupancy query)
            launch(i)
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for i in range(per_graph):
            launch(i)
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3 / per_graph)
    return statistics.median(times)


def make_launchers(lib, dtype: str, xs: list, ys: list, beta: float):
    """Launch functions of the three kernels over rotating buffer pairs: copy, torch silu, swish (C ABI)."""
    n = xs[0].numel()

    def copy(i: int) -> None:
        ys[i % ROTATE].copy_(xs[i % ROTATE])

    def silu(i: int) -> None:
        torch.ops.aten.silu.out(xs[i % ROTATE], out=ys[i % ROTATE])

    def swish(i: int) -> None:
        stream = torch.cuda.current_stream().cuda_stream
        lib.forward(CAPI_NAMES[dtype], xs[i % ROTATE].data_ptr(), ys[i % ROTATE].data_ptr(), n, beta, stream)

    return copy, silu, swish


def versions() -> dict[str, str]:
    props = torch.cuda.get_device_properties(0)
    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        driver = ""
    commit = git_commit(override=settings.value("SWISH_COMMIT"))
    return {
        "commit": commit,
        "gpu": props.name,
        "sm_count": str(props.multi_processor_count),
        "driver": driver,
        "cuda": str(torch.version.cuda),
        "torch": torch.__version__,
    }


def time_case(lib, dtype: str, n: int, args: argparse.Namespace, gen: torch.Generator) -> tuple[dict, float, str]:
    """Median seconds per launch of copy, torch silu and swish over `n` elements, the swish error, the method."""
    tdtype = DTYPES[dtype]
    xs = [torch.randn(n, device="cuda", dtype=tdtype, generator=gen) for _ in range(ROTATE)]
    ys = [torch.empty_like(x) for x in xs]
    copy, silu, swish = make_launchers(lib, dtype, xs, ys, args.beta)

    # Correctness sanity check against torch (the tests hold the real bounds).
    swish(0)
    torch.cuda.synchronize()
    ref = torch.nn.functional.silu(xs[0].double()) if args.beta == 1.0 else None
    rel_err = float((ys[0].double() - ref).norm() / ref.norm()) if ref is not None else float("nan")

    method = "graph" if n < parse_size(args.graph_below) else "events"
    per_graph = max(ROTATE, min(600, (64 << 20) // n) // ROTATE * ROTATE)
    results = {}
    for name, fn in (("copy", copy), ("torch_silu", silu), ("swish", swish)):
        if method == "graph":
            results[name] = median_time_graph(fn, args.iters, per_graph)
        else:
            results[name] = median_time_events(fn, args.iters)
    del xs, ys, copy, silu, swish
    torch.cuda.empty_cache()
    return results, rel_err, method


def main() -> int:
    args = parse_args()
    lib = swish_kernels.load(args.lib) if args.lib else swish_kernels.load()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    formats = [] if args.formats == "none" else list(FORMATS) if args.formats == "all" else args.formats.split(",")
    info = versions()
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)

    # (format, shape, dtype, padded element count): the linear sweep first, then the vectorized formats.
    cases: list[tuple[str, str, str, int]] = [("kLINEAR", str(n), d, n) for d in dtypes for n in sizes]
    for name in formats:
        vector, channel_from_end, format_dtypes = FORMATS[name]
        for shape in FORMAT_SHAPES[channel_from_end]:
            for dtype in format_dtypes:
                if dtype in dtypes:
                    shape_text = "x".join(map(str, shape))
                    cases.append((name, shape_text, dtype, padded_count(shape, vector, channel_from_end)))

    lib_path = Path(lib.path).resolve()
    lib_label = str(lib_path.relative_to(REPO)) if lib_path.is_relative_to(REPO) else lib_path.name
    rows = []
    for fmt, shape, dtype, n in cases:
        results, rel_err, method = time_case(lib, dtype, n, args, gen)
        nbytes = 2 * n * torch.empty((), dtype=DTYPES[dtype]).element_size()
        for name, t in results.items():
            rows.append(
                {
                    "timestamp": stamp,
                    **info,
                    "lib": lib_label,
                    "label": args.label,
                    "dtype": dtype,
                    "format": fmt,
                    "shape": shape,
                    "n": n,
                    "method": method,
                    "kernel": name,
                    "median_us": f"{t * 1e6:.2f}",
                    "gbps": f"{nbytes / t / 1e9:.0f}",
                    "ratio_to_copy": f"{results['copy'] / t:.3f}",
                    "ratio_to_silu": f"{results['torch_silu'] / t:.3f}",
                    "rel_err_vs_fp64": f"{rel_err:.2e}" if name == "swish" else "",
                }
            )

    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        fieldnames = list(rows[0])
        if path.exists():
            with path.open(newline="") as f:
                header = next(csv.reader(f), [])
            if header != fieldnames:
                raise SystemExit(f"{path} has other columns ({header}); pass another --csv")
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    print(
        f"\n{info['gpu']} ({info['sm_count']} SMs), driver {info['driver']}, CUDA {info['cuda']}, "
        f"torch {info['torch']}, commit {info['commit'] or '?'}, {stamp}{', ' + args.label if args.label else ''}"
    )
    print(
        "\n| format | shape / n | dtype | elements (padded) | timing | copy GB/s | torch silu GB/s (x copy) |"
        " swish GB/s (x copy) | swish / silu |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    by_key: dict[tuple[str, str, str], dict[str, dict]] = {}
    for r in rows:
        by_key.setdefault((r["format"], r["shape"], r["dtype"]), {})[r["kernel"]] = r
    for (fmt, shape, dtype), k in by_key.items():
        n = k["swish"]["n"]
        label = shape if fmt != "kLINEAR" else (f"{n >> 20}M" if n >= 1 << 20 else str(n))
        print(
            f"| {fmt} | {label} | {dtype} | {n} | {k['swish']['method']} | {k['copy']['gbps']} | "
            f"{k['torch_silu']['gbps']} ({k['torch_silu']['ratio_to_copy']}) | "
            f"{k['swish']['gbps']} ({k['swish']['ratio_to_copy']}) | {k['swish']['ratio_to_silu']} |"
        )
    print_linear_summary(by_key, dtypes)
    return 0


def print_linear_summary(by_key: dict[tuple[str, str, str], dict[str, dict]], dtypes: list[str]) -> None:
    """One line per linear size: Swish x copy (x torch silu) per dtype, and the copy's own bandwidth."""
    linear = [key for key in by_key if key[0] == "kLINEAR"]
    if not linear:
        return
    counts = sorted({int(key[1]) for key in linear})
    print("\n| n | " + " | ".join(f"{d} swish x copy (x silu)" for d in dtypes) + " | copy GB/s (" + dtypes[0] + ") |")
    print("|---|" + "---|" * (len(dtypes) + 1))
    for n in counts:
        cells = []
        for d in dtypes:
            k = by_key.get(("kLINEAR", str(n), d))
            cells.append(f"{k['swish']['ratio_to_copy']} ({k['swish']['ratio_to_silu']})" if k else "")
        first = by_key.get(("kLINEAR", str(n), dtypes[0]))
        label = f"{n >> 20}M" if n >= 1 << 20 else str(n)
        method = f" ({first['swish']['method']})" if first else ""
        print(f"| {label}{method} | " + " | ".join(cells) + f" | {first['copy']['gbps'] if first else ''} |")


if __name__ == "__main__":
    raise SystemExit(main())
