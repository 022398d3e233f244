"""The engine builder's build records (swish_triton.engines.records): what a record holds, the reasons a plan is
stale, and the one-line message when a plan was built for another GPU or TensorRT."""

from __future__ import annotations

import json
from pathlib import Path

from swish_triton.engines import configs, host, plugin, records
from tests.support import MODEL_REPOSITORY

H100 = host.GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
A100 = host.GpuInfo("NVIDIA A100-SXM4-80GB", "8.0")


def _fresh(tmp_path: Path, model_name: str = "swish") -> tuple[configs.EngineModel, records.Expected, dict, Path]:
    model = next(m for m in configs.ENGINE_MODELS if m.name == model_name)
    lib = tmp_path / "libswish.so"
    lib.write_bytes(b"v1")
    io = configs.model_io(model, MODEL_REPOSITORY)
    expected = records.expected_for(model, io, host.HostInfo(H100, "10.13.3.9"), lib)
    record = json.loads(json.dumps(records.make_record(model, b"plan", expected, 1.5)))  # as read back from disk
    return model, expected, record, lib


def test_record_contents(tmp_path: Path) -> None:
    _, _, record, lib = _fresh(tmp_path)
    assert record["tensorrt_version"] == "10.13.3.9"
    assert record["gpu"] == {"name": H100.name, "compute_capability": "9.0"}
    assert record["profile"] == {"input": "INPUT0", "min": [1, 1], "opt": [16, 1024], "max": [64, 65536]}
    assert record["plugin"]["sha256"] == plugin.sha256_file(lib)
    assert record["plugin"]["version"] == "2"
    assert record["builder_version"] == records.BUILDER_VERSION
    assert record["built_at"].endswith("+00:00")
    assert record["beta"] == 1.0 and record["plugin"]["fields"] == {"beta": 1.0}


def test_fresh_record_is_not_stale(tmp_path: Path) -> None:
    _, expected, record, _ = _fresh(tmp_path)
    assert records.stale_reasons(record, True, expected) == []


def test_staleness_reasons(tmp_path: Path) -> None:
    model, expected, record, lib = _fresh(tmp_path)
    assert records.stale_reasons(record, False, expected) == ["no plan"]
    assert records.stale_reasons(None, True, expected) == ["no build record beside the plan"]

    def reasons_after(**changes: object) -> list[str]:
        return records.stale_reasons({**record, **changes}, True, expected)

    assert any("TensorRT" in r for r in reasons_after(tensorrt_version="11.1.0.106"))
    assert reasons_after(tensorrt_version="10.13.3") == [], "the build number alone does not make a plan stale"
    assert any("GPU" in r for r in reasons_after(gpu={"name": A100.name, "compute_capability": "8.0"}))
    assert any("profile" in r for r in reasons_after(profile={**record["profile"], "max": [32, 65536]}))
    assert any("config I/O" in r for r in reasons_after(io={**record["io"], "input": "x"}))
    assert any("builder version" in r for r in reasons_after(builder_version=0))
    assert any("fields" in r for r in reasons_after(plugin={**record["plugin"], "fields": {"beta": 2.0}}))
    assert reasons_after(beta=2.0) == ["beta 2.0 -> 1.0 (config.pbtxt)"]
    lib.write_bytes(b"v2")
    io = configs.model_io(model, MODEL_REPOSITORY)
    rebuilt_lib = records.expected_for(model, io, host.HostInfo(H100, "10.13.3.9"), lib)
    assert any("libswish.so changed" in r for r in records.stale_reasons(record, True, rebuilt_lib))


def test_unknown_host_facts_are_not_held_against_a_plan(tmp_path: Path) -> None:
    model, _, record, lib = _fresh(tmp_path)
    io = configs.model_io(model, MODEL_REPOSITORY)
    no_gpu_no_trt = records.expected_for(model, io, host.HostInfo(None, None), lib)
    assert records.stale_reasons(record, True, no_gpu_no_trt) == []
    assert records.host_mismatch("swish", record, host.HostInfo(None, None)) is None


def test_host_mismatch_line(tmp_path: Path) -> None:
    _, _, record, _ = _fresh(tmp_path)
    record["gpu"] = {"name": "NVIDIA A100", "compute_capability": "8.0"}
    line = records.host_mismatch("swish", record, host.HostInfo(host.GpuInfo("NVIDIA H100", "9.0"), "11.1.0.106"))
    assert line == (
        "swish: plan built for NVIDIA A100 (sm_80) with TensorRT 10.13.3; "
        "this host has NVIDIA H100 (sm_90) with TensorRT 11.1.0: rebuild with `make engines`"
    )
    assert "\n" not in line
    same = host.HostInfo(host.GpuInfo("NVIDIA A100", "8.0"), "10.13.3.9")
    assert records.host_mismatch("swish", record, same) is None
