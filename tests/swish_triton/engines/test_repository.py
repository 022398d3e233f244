"""The builder's check of a model repository (swish_triton.engines.repository, build/build_engine.py --check):
one line per model, and the mismatch line for a plan built elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from swish_triton.engines import configs, host, records, repository
from tests.support import MODEL_REPOSITORY, REPO

H100 = host.GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
A100 = host.GpuInfo("NVIDIA A100-SXM4-80GB", "8.0")


def test_check_reports_each_model_in_one_line(tmp_path: Path) -> None:
    """--check without plans (this machine): one line a model, exit status 1."""
    repo = tmp_path / "repo"
    for name in configs.ENGINE_MODEL_NAMES:
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "config.pbtxt").write_text((MODEL_REPOSITORY / name / "config.pbtxt").read_text())
    done = subprocess.run(
        [sys.executable, str(REPO / "build" / "build_engine.py"), "--check", "--model-repository", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == list(configs.ENGINE_MODEL_NAMES)
    assert all("no plan" in line and "make engines" in line for line in lines)

    # A plan whose record says another GPU and TensorRT: the one-line mismatch, whatever this host has.
    plan = records.plan_path(repo, "relu")
    plan.write_bytes(b"plan")
    model = next(m for m in configs.ENGINE_MODELS if m.name == "relu")
    expected = records.expected_for(
        model, configs.model_io(model, repo), host.HostInfo(A100, "8.6.1"), tmp_path / "none.so"
    )
    records.record_path(plan).write_text(json.dumps(records.make_record(model, b"plan", expected, 1.0)))
    here = host.HostInfo(H100, "10.13.3.9")
    (outcome,) = repository.check_models(repo, [model], here, tmp_path / "none.so")
    assert outcome.status == "stale"
    assert outcome.message.startswith("relu: plan built for NVIDIA A100-SXM4-80GB (sm_80) with TensorRT 8.6.1; ")
