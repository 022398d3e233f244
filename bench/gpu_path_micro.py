#!/usr/bin/env python3
"""The Python models' compute paths outside Triton, per batch size: GpuSwish (gather into pinned memory, one copy each
way, the plugin's kernel, one synchronisation, copy out), CpuSwish with the library's C kernel, and CpuSwish with the
float32 NumPy kernel, FP32, on normally distributed inputs. Each is
checked against swish_ref first, then timed back to back and again with an idle gap before every call (what the GPU
sees at low concurrency in a server: the host's next request arrives hundreds of microseconds later). Prints median
microseconds per call and the GPU path's steps; compare with the in-server profile of
``bench/serving_bench.py --profile``.

    python bench/gpu_path_micro.py --sizes 1024 10240 65536 262144 1048576 --idle-us 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable

import numpy as np

from swish_triton import settings
from swish_triton.cli_help import HelpFormatter
from swish_triton.kernels.cpu_swish import CpuSwish
from swish_triton.kernels.gpu_swish import GpuSwish
from swish_triton.kernels.library import load as load_kernels
from swish_triton.kernels.phase_clock import PhaseClock
from swish_triton.perf.run_environment import git_commit, gpu_name
from swish_triton.reference import compare_to_ref

F32 = np.dtype(np.float32)


def median_us(fn: Callable[[], object], repeat: int, idle_s: float) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeat):
        if idle_s:
            time.sleep(idle_s)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def gpu_steps(gpu: GpuSwish, arrays: list[np.ndarray], repeat: int, idle_s: float) -> str:
    """Median of each step of the GPU path (the model's profile clock) and the GPU's own time (CUDA events)."""
    per_step: dict[str, list[float]] = {}
    clock = PhaseClock()
    for _ in range(repeat):
        if idle_s:
            time.sleep(idle_s)
        clock.start()
        gpu(arrays, 1.0, F32, clock)
        for name, seconds in {**clock.phases, **clock.notes}.items():
            per_step.setdefault(name, []).append(seconds)
    return ", ".join(f"{name} {np.median(v) * 1e6:.1f}" for name, v in per_step.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 10240, 65536, 262144, 1048576])
    parser.add_argument("--idle-us", type=float, default=300.0, help="gap before each call in the idle columns")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    gpu = GpuSwish(0)
    c_kernel = CpuSwish(1.0, load_kernels())
    if c_kernel.native is None:
        raise SystemExit("the kernels library has no swish_forward_host: rebuild it (make plugin)")
    cpu = CpuSwish(1.0)
    idle = args.idle_us / 1e6
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%MZ}"
    commit = git_commit(override=settings.value("SWISH_COMMIT"))
    print(f"GPU: {gpu_name()}; {os.cpu_count()} cores; NumPy {np.__version__}; commit {commit}; {stamp}")
    print(
        f"| FP32 elements (requests of 1024) | GPU path | GPU path, {args.idle_us:.0f} us idle before | CPU, C kernel "
        f"| C kernel, idle before | CPU, NumPy | NumPy, idle before | GPU steps, idle before (us) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        arrays = [rng.standard_normal((1, min(1024, n - i))).astype(np.float32) for i in range(0, n, 1024)]
        paths = (
            ("GpuSwish", lambda a: gpu(a, 1.0, F32)),
            ("CpuSwish, C kernel", lambda a: c_kernel(a, F32)),
            ("CpuSwish, NumPy", lambda a: cpu(a, F32)),
        )
        for name, path in paths:
            for a, out in zip(arrays, path(arrays), strict=True):
                result = compare_to_ref(a, out, "float32")
                if not result.ok:
                    raise SystemExit(f"{name} at {n} elements: {result.describe()}")
        repeat = max(20, min(args.repeat, int(2e8 / (n * 200 + 1))))
        cells = [
            median_us(lambda a=arrays: gpu(a, 1.0, F32), repeat, 0.0),
            median_us(lambda a=arrays: gpu(a, 1.0, F32), repeat, idle),
            median_us(lambda a=arrays: c_kernel(a, F32), repeat, 0.0),
            median_us(lambda a=arrays: c_kernel(a, F32), repeat, idle),
            median_us(lambda a=arrays: cpu(a, F32), repeat, 0.0),
            median_us(lambda a=arrays: cpu(a, F32), repeat, idle),
        ]
        steps = gpu_steps(gpu, arrays, repeat, idle)
        print(f"| {n} | " + " | ".join(f"{v:.1f}" for v in cells) + f" | {steps} |", flush=True)
    gpu.close()


if __name__ == "__main__":
    main()
