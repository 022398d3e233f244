"""Benchmark of the Swish kernels against a device-to-device copy and torch's silu (a script, not a test).

Bandwidth = (bytes read + bytes written) / median time per launch. Three rotating input/output buffer pairs keep L2
from serving repeats. Sizes below --graph-below elements are timed over CUDA graph replays of many launches (a single
launch from Python would measure launch overhead); larger sizes with CUDA events around a few back-to-back launches
that are recorded behind an already queued launch (so host overhead is hidden, as in a real stream of work). The same
method times all three kernels. The kernel is launched through the C ABI (swish_triton.kernels.library), as the
Python-backend model does.

Appends one CSV row per (dtype, n, kernel) with GPU name, versions and a timestamp; prints a Markdown table.

    python plugin/bench/bench_swish.py --csv plugin/bench/results.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from swish_triton.kernels import library as swish_kernels  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CAPI_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
ROTATE = 3


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", default="1M,4M,16M,64M,256M", help="element counts; K/M suffixes are powers of 2")
    p.add_argument("--dtypes", default="fp32,fp16,bf16", help="comma-separated among fp32, fp16, bf16")
    p.add_argument("--beta", type=float, default=1.0, help="beta of the Swish kernel (torch silu is beta = 1)")
    p.add_argument("--lib", default=os.environ.get(swish_kernels.ENV_VAR), help="library with the Swish C ABI")
    p.add_argument("--label", default="", help="free text stored in the CSV (e.g. a build variant)")
    p.add_argument("--csv", default="plugin/bench/results.csv", help="CSV file to append rows to ('' for none)")
    p.add_argument("--iters", type=int, default=30, help="timed repetitions (events) or graph replays")
    p.add_argument("--graph-below", default="16M", help="time sizes below this over CUDA graph replays")
    return p.parse_args()


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def median_time_events(launch, iters: int, per_timing: int = 3) -> float:
    """Median seconds of one launch: events around `per_timing` back-to-back launches, recorded behind a launch that
    is already queued, so that the host's launch overhead (Python, ctypes) overlaps GPU work instead of being timed.
    """
    for i in range(2 * ROTATE):
        launch(i)
    torch.cuda.synchronize()
    times = []
    for i in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        launch(i + ROTATE - 1)  # keeps the GPU busy while the timed launches are enqueued
        start.record()
        for k in range(per_timing):
            launch(i + k)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3 / per_timing)
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
        import subprocess

        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        driver = ""
    return {
        "gpu": props.name,
        "sm_count": str(props.multi_processor_count),
        "driver": driver,
        "cuda": str(torch.version.cuda),
        "torch": torch.__version__,
    }


def main() -> int:
    args = parse_args()
    lib = swish_kernels.load(args.lib) if args.lib else swish_kernels.load()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    graph_below = parse_size(args.graph_below)
    info = versions()
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    rows = []
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)

    for dtype in dtypes:
        tdtype = DTYPES[dtype]
        for n in sizes:
            xs = [torch.randn(n, device="cuda", dtype=tdtype, generator=gen) for _ in range(ROTATE)]
            ys = [torch.empty_like(x) for x in xs]
            nbytes = 2 * n * xs[0].element_size()

            copy, silu, swish = make_launchers(lib, dtype, xs, ys, args.beta)

            # Correctness sanity check against torch (the tests hold the real bounds).
            swish(0)
            torch.cuda.synchronize()
            ref = torch.nn.functional.silu(xs[0].double()) if args.beta == 1.0 else None
            rel_err = float((ys[0].double() - ref).norm() / ref.norm()) if ref is not None else float("nan")

            method = "graph" if n < graph_below else "events"
            per_graph = max(ROTATE, min(600, (64 << 20) // n) // ROTATE * ROTATE)
            results = {}
            for name, fn in (("copy", copy), ("torch_silu", silu), ("swish", swish)):
                if method == "graph":
                    t = median_time_graph(fn, args.iters, per_graph)
                else:
                    t = median_time_events(fn, args.iters)
                results[name] = t
            del xs, ys, copy, silu, swish
            torch.cuda.empty_cache()
            for name, t in results.items():
                gbps = nbytes / t / 1e9
                rows.append(
                    {
                        "timestamp": stamp,
                        **info,
                        "lib": str(lib.path),
                        "label": args.label,
                        "dtype": dtype,
                        "n": n,
                        "method": method,
                        "kernel": name,
                        "median_us": f"{t * 1e6:.2f}",
                        "gbps": f"{gbps:.0f}",
                        "ratio_to_copy": f"{results['copy'] / t:.3f}",
                        "ratio_to_silu": f"{results['torch_silu'] / t:.3f}",
                        "rel_err_vs_fp64": f"{rel_err:.2e}" if name == "swish" else "",
                    }
                )

    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)

    print(
        f"\n{info['gpu']} ({info['sm_count']} SMs), driver {info['driver']}, CUDA {info['cuda']}, "
        f"torch {info['torch']}, {stamp}{', ' + args.label if args.label else ''}"
    )
    print("\n| n | dtype | timing | copy GB/s | torch silu GB/s (x copy) | swish GB/s (x copy) | swish / silu |")
    print("|---|---|---|---|---|---|---|")
    by_key: dict[tuple[str, int], dict[str, dict]] = {}
    for r in rows:
        by_key.setdefault((r["dtype"], r["n"]), {})[r["kernel"]] = r
    for (dtype, n), k in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        label = f"{n >> 20}M" if n >= 1 << 20 else str(n)
        print(
            f"| {label} | {dtype} | {k['swish']['method']} | {k['copy']['gbps']} | "
            f"{k['torch_silu']['gbps']} ({k['torch_silu']['ratio_to_copy']}) | "
            f"{k['swish']['gbps']} ({k['swish']['ratio_to_copy']}) | {k['swish']['ratio_to_silu']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
