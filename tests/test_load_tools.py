"""The concurrency driver and the perf_analyzer sweep tool against the real embedded server: structure and sanity,
never timings."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from swish_triton.perf.sweep import SweepRow, markdown_table, read_csv, run_sweep
from swish_triton.serving.launcher import TritonServer

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO)


def test_concurrency_driver_validates_every_response_over_both_protocols(
    triton_server: TritonServer, tmp_path: Path
) -> None:
    out = tmp_path / "driver.json"
    for protocol, url in (("http", triton_server.http_url), ("grpc", triton_server.grpc_url)):
        proc = run_cli(
            "client/concurrency_driver.py",
            "-u",
            url,
            "-i",
            protocol,
            "-m",
            "swish_py",
            "-c",
            "1",
            "16",
            "--count",
            "200",
            "-n",
            "257",
            "-o",
            str(out),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = json.loads(out.read_text())
        assert [r["concurrency"] for r in results] == [1, 16]
        for r in results:
            assert r["protocol"] == protocol and r["requests"] == 200
            assert r["errors"] == 0 and r["mismatches"] == 0
            assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
            assert r["infer_per_s"] > 0


def test_concurrency_driver_reports_mismatches_and_exits_nonzero(triton_server: TritonServer, tmp_path: Path) -> None:
    out = tmp_path / "driver.csv"
    proc = run_cli(
        "client/concurrency_driver.py",
        "-u",
        triton_server.grpc_url,
        "-i",
        "grpc",
        "-m",
        "identity_py",
        "-c",
        "4",
        "--count",
        "40",
        "-o",
        str(out),
    )
    assert proc.returncode == 1
    assert "40 mismatches" in proc.stdout and "first problem: mismatch" in proc.stdout
    with open(out, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["mismatches"] == "40" and row["errors"] == "0"


def test_concurrency_driver_counts_errors_for_an_unknown_model(triton_server: TritonServer) -> None:
    proc = run_cli("client/concurrency_driver.py", "-u", triton_server.http_url, "-m", "no_such_model", "--count", "5")
    assert proc.returncode != 0
    assert "no_such_model is not ready" in proc.stdout + proc.stderr


def test_sweep_records_every_point_with_batching_statistics(triton_server: TritonServer) -> None:
    rows = run_sweep(
        triton_server.http_url,
        triton_server.grpc_url,
        ["swish_py", "identity_py"],
        ["grpc", "http"],
        [1, 8],
        measurement_ms=500,
        # Structure, not timings: a loose stability criterion keeps busy or fast hosts from failing the measurement.
        max_trials=10,
        stability_percentage=100,
        progress=None,
    )
    assert [(r.model, r.protocol, r.concurrency) for r in rows] == [
        (m, p, c) for m in ("swish_py", "identity_py") for p in ("grpc", "http") for c in (1, 8)
    ]
    for r in rows:
        assert r.infer_per_s > 0 and 0 < r.p50_ms <= r.p90_ms <= r.p99_ms
        assert r.inference_count >= r.execution_count > 0
        assert r.triton_version == "2.51.0" and r.commit != ""
    batched = [r for r in rows if r.concurrency == 8]
    assert all(r.average_batch > 1 for r in batched), [(r.series, r.average_batch) for r in batched]
    assert "| swish_py grpc | 8 |" in markdown_table(rows)


def test_sweep_cli_writes_csv_table_and_plot(triton_server: TritonServer, tmp_path: Path) -> None:
    prefix = tmp_path / "sweep"
    args = [
        "client/perf_sweep.py",
        "--http-url",
        triton_server.http_url,
        "--grpc-url",
        triton_server.grpc_url,
        "-m",
        "swish_py",
        "-i",
        "grpc",
        "-c",
        "1",
        "4",
        "--shared-memory",
        "none",
        "system",
        "--measurement-interval",
        "500",
        "--max-trials",
        "10",
        "--stability-percentage",
        "100",
        "-o",
        str(prefix),
    ]
    for _ in range(2):  # the CSV is appended to, so runs accumulate
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_csv(prefix.with_suffix(".csv"))
    assert len(rows) == 8 and all(isinstance(r, SweepRow) for r in rows)
    assert {r.shared_memory for r in rows} == {"none", "system"}
    assert prefix.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "swish_py grpc system shm" in prefix.with_suffix(".md").read_text()


def test_sweep_cli_exits_nonzero_when_perf_analyzer_fails(triton_server: TritonServer, tmp_path: Path) -> None:
    proc = run_cli(
        "client/perf_sweep.py",
        "--http-url",
        triton_server.http_url,
        "--grpc-url",
        triton_server.grpc_url,
        "-m",
        "identity_py",
        "-c",
        "1",
        "-b",
        "65",
        "--measurement-interval",
        "300",
        "-o",
        str(tmp_path / "s"),
    )
    assert proc.returncode == 1
    assert "perf_analyzer failed" in proc.stderr


def test_model_analyzer_config_names_real_models_within_the_engine_profile() -> None:
    import yaml

    from swish_triton.limits import ENGINE_PROFILE
    from swish_triton.model_config import read_model_config

    config = yaml.safe_load((REPO / "bench" / "model_analyzer.yaml").read_text())
    assert config["profile_models"]
    for name, spec in config["profile_models"].items():
        model = read_model_config(REPO / "model_repository" / name)
        assert model.platform == "tensorrt_plan"
        assert max(spec["model_config_parameters"]["max_batch_size"]) <= ENGINE_PROFILE.max_batch
    assert config["perf_analyzer_flags"]["shape"].startswith(f"{model.input[0].name}:")
    assert config["triton_server_environment"]["LD_PRELOAD"].endswith("libswish.so")
