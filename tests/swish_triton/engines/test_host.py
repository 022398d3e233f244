"""Host facts of the engine builder (swish_triton.engines.host), the parts that need no GPU: nvidia-smi's output,
TensorRT's version numbers, and the oldest TensorRT the engines accept (tests/gpu/test_engines_host.py: on a GPU)."""

from __future__ import annotations

import pytest

from swish_triton.engines import configs, host

H100 = host.GpuInfo("NVIDIA H100 80GB HBM3", "9.0")


def test_tensorrt_before_10_is_refused_in_one_line() -> None:
    host.require_supported_tensorrt("10.13.3.9")
    host.require_supported_tensorrt("11.1.0")
    with pytest.raises(configs.BuildError, match=r"^TensorRT 8.6.1 is not supported: the engines need TensorRT 10"):
        host.require_supported_tensorrt("8.6.1")


def test_parse_nvidia_smi() -> None:
    assert host.parse_nvidia_smi_gpu("NVIDIA H100 80GB HBM3, 9.0\n") == H100
    assert host.parse_nvidia_smi_gpu("NVIDIA GeForce RTX 4090, 8.9") == host.GpuInfo("NVIDIA GeForce RTX 4090", "8.9")
    assert host.parse_nvidia_smi_gpu("") is None
    assert host.parse_nvidia_smi_gpu("No devices were found") is None
    # nvidia-smi lists GPUs in PCI order, CUDA device 0 need not be its first: only one model throughout is certain.
    assert host.parse_nvidia_smi_gpu("NVIDIA H100 80GB HBM3, 9.0\nNVIDIA H100 80GB HBM3, 9.0\n") == H100
    assert host.parse_nvidia_smi_gpu("NVIDIA A100-SXM4-80GB, 8.0\nNVIDIA H100 80GB HBM3, 9.0\n") is None
    assert H100.sm == "sm_90"


def test_tensorrt_version_decoding() -> None:
    assert host.tensorrt_version_from_int(101303) == "10.13.3"
    assert host.tensorrt_version_from_int(110100) == "11.1.0"
    assert host.same_tensorrt_release("10.13.3.9", "10.13.3")
    assert not host.same_tensorrt_release("10.13.3.9", "10.14.1.48")
