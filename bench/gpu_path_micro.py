#!/usr/bin/env python3
"""Where the time of the GPU path goes outside Triton: GpuSwish on batches of 1x1024 .. 64x1024 FP32, split into its
steps (gather into pinned memory, copies + kernel + synchronisation, split into outputs), next to NumPy's swish on
the CPU. Prints microseconds per call (median of 300). Compare with the in-server profile of bench/serving_bench.py
--profile, which logs the same steps from inside Triton's Python-backend stub."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from swish_triton.kernels.gpu_swish import CUDA_MEMCPY_DEVICE_TO_HOST, CUDA_MEMCPY_HOST_TO_DEVICE, GpuSwish
from swish_triton.ragged import split_like
from swish_triton.reference import compare_to_ref
from swish_triton.models.python_models import swish_batch

F32 = np.dtype(np.float32)


def median_us(fn: Callable[[], object], repeat: int = 300) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def measure(gpu: GpuSwish, batch: int) -> list[float]:
    arrays = [np.random.randn(1, 1024).astype(np.float32) for _ in range(batch)]
    n = batch * 1024
    nbytes = n * 4
    # Sizes the buffers, and checks the path against the reference before timing it.
    for a, out in zip(arrays, gpu(arrays, 1.0, F32), strict=True):
        result = compare_to_ref(a, out, "float32")
        if not result.ok:
            raise SystemExit(f"GpuSwish at batch {batch}: {result.describe()}")
    lib, stream = gpu.cuda.lib, gpu.stream

    def gather() -> None:
        np.concatenate([a.reshape(-1) for a in arrays], out=gpu.inputs.host_array(F32, n))

    def device_round_trip() -> None:
        lib.cudaMemcpyAsync(gpu.inputs.device, gpu.inputs.host, nbytes, CUDA_MEMCPY_HOST_TO_DEVICE, stream)
        gpu.kernels.forward("float32", gpu.inputs.device.value, gpu.outputs.device.value, n, 1.0, stream.value)
        lib.cudaMemcpyAsync(gpu.outputs.host, gpu.outputs.device, nbytes, CUDA_MEMCPY_DEVICE_TO_HOST, stream)
        lib.cudaStreamSynchronize(stream)

    def split() -> None:
        split_like(gpu.outputs.host_array(F32, n).copy(), arrays)

    return [
        median_us(lambda: gpu(arrays, 1.0, F32)),
        median_us(gather),
        median_us(device_round_trip),
        median_us(split),
        median_us(lambda: swish_batch(arrays, 1.0, F32)),
    ]


def main() -> None:
    gpu = GpuSwish(0)
    print("| batch | GpuSwish total | gather | H2D+kernel+D2H+sync | split | NumPy swish |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in (1, 10, 64):
        print(f"| {batch}x1024 | " + " | ".join(f"{v:.1f}" for v in measure(gpu, batch)) + " |")
    gpu.close()


if __name__ == "__main__":
    main()
