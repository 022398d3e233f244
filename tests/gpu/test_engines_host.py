"""On a GPU host: the GPU the engine builder records is CUDA device 0, the device TensorRT builds on.

CUDA numbers devices in its own order (fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID; CUDA_VISIBLE_DEVICES
selects and reorders), nvidia-smi in PCI order. The builder asks the CUDA driver; these tests tie its answer to
nvidia-smi's row of the same PCI bus id, and check that CUDA's own device selection is followed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from swish_triton.engines import host

pytestmark = pytest.mark.gpu


def pci_key(bus_id: str) -> tuple[int, ...]:
    """'00000000:18:00.0' (nvidia-smi) and '0000:18:00.0' (CUDA) name the same device: compare the numbers."""
    domain, bus, rest = bus_id.strip().split(":")
    device, function = rest.split(".")
    return tuple(int(part, 16) for part in (domain, bus, device, function))


def nvidia_smi_rows() -> list[tuple[tuple[int, ...], host.GpuInfo]]:
    done = subprocess.run(
        ["nvidia-smi", "--query-gpu=pci.bus_id,name,compute_cap", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = []
    for line in done.stdout.strip().splitlines():
        bus, name, cc = (part.strip() for part in line.split(","))
        rows.append((pci_key(bus), host.GpuInfo(name, cc)))
    return rows


def device_zero_in_subprocess(**env: str) -> dict[str, str]:
    code = (
        "import json; from swish_triton.engines import host; d = host.cuda_device_zero(); "
        "print(json.dumps({'name': d.gpu.name, 'cc': d.gpu.compute_capability, 'bus': d.pci_bus_id}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env={**os.environ, **env}
    )
    return json.loads(done.stdout)


def test_recorded_gpu_is_cuda_device_zero() -> None:
    device = host.cuda_device_zero()
    assert device is not None, "the CUDA driver reports no device 0 on a GPU host"
    by_bus = dict(nvidia_smi_rows())
    assert by_bus[pci_key(device.pci_bus_id)] == device.gpu
    assert host.detect_gpu() == device.gpu


def test_cuda_device_order_is_followed() -> None:
    rows = nvidia_smi_rows()
    first_in_pci_order = device_zero_in_subprocess(CUDA_DEVICE_ORDER="PCI_BUS_ID")
    assert pci_key(first_in_pci_order["bus"]) == rows[0][0]
    last = device_zero_in_subprocess(CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=str(len(rows) - 1))
    assert pci_key(last["bus"]) == rows[-1][0]
    assert host.GpuInfo(last["name"], last["cc"]) == rows[-1][1]
