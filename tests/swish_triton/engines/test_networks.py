"""The engine builder's network side (swish_triton.engines.networks) that runs without TensorRT."""

from __future__ import annotations

from pathlib import Path

from swish_triton.engines import host, networks
from tests.support import MODEL_REPOSITORY

H100 = host.GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
A100 = host.GpuInfo("NVIDIA A100-SXM4-80GB", "8.0")


def test_timing_cache_is_per_release_and_architecture(tmp_path: Path) -> None:
    assert networks.timing_cache_path(tmp_path, "10.13.3.9", H100).name == "timing-trt10.13.3-sm_90.cache"
    assert networks.timing_cache_path(tmp_path, "10.13.3.9", A100) != networks.timing_cache_path(
        tmp_path, "10.13.3.9", H100
    )
    assert not networks.timing_cache_path(tmp_path, "x", H100).is_relative_to(MODEL_REPOSITORY)
