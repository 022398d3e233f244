"""The sweep command (swish_triton.perf.sweep_cli, client/perf_sweep.py) against the real embedded server: CSV, table
and plot; a point that fails is named, and the finished ones are kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

from swish_triton.perf.sweep import SweepRow, read_csv
from swish_triton.serving.launcher import TritonServer
from tests.support import run_cli


def run_sweep(server: TritonServer, *args: str) -> subprocess.CompletedProcess[str]:
    """client/perf_sweep.py against both of `server`'s protocols, with `args`."""
    return run_cli("client/perf_sweep.py", "-u", f"http={server.http_url}", "-u", f"grpc={server.grpc_url}", *args)


def test_sweep_cli_writes_csv_table_and_plot(triton_server: TritonServer, tmp_path: Path) -> None:
    prefix = tmp_path / "sweep"
    args = [
        "-m",
        "swish_py",
        "-i",
        "grpc",
        "-c",
        "1",
        "4",
        "--slo-ms",
        "50",
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
        proc = run_sweep(triton_server, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_csv(prefix.with_suffix(".csv"))
    assert len(rows) == 8 and all(isinstance(r, SweepRow) for r in rows)
    assert {r.shared_memory for r in rows} == {"none", "system"}
    assert prefix.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = prefix.with_suffix(".md").read_text()
    assert "swish_py grpc system shm" in table
    assert "Measured: swish_py · gRPC · 1×1024 FP32 · client and server on the same" in table


def test_sweep_cli_exits_nonzero_when_perf_analyzer_fails(triton_server: TritonServer, tmp_path: Path) -> None:
    proc = run_sweep(
        triton_server,
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
    assert "error: 1 of 1 sweep points missing:" in proc.stderr
    assert "identity_py grpc c=1: perf_analyzer failed" in proc.stderr
    assert not (tmp_path / "s.csv").exists()  # nothing finished, nothing written as if it had


def test_sweep_cli_keeps_finished_points_and_names_the_missing_ones(
    triton_server: TritonServer, tmp_path: Path
) -> None:
    """A model that is not served, in the middle of the sweep: the points before and after it are written, the
    command exits 1 and names each missing point with its reason."""
    prefix = tmp_path / "mid"
    proc = run_sweep(
        triton_server,
        "-m",
        "identity_py",
        "-m",
        "not_served",
        "-m",
        "swish_py",
        "-c",
        "1",
        "2",
        "--measurement-interval",
        "500",
        "--stability-percentage",
        "100",
        "-o",
        str(prefix),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: 2 of 6 sweep points missing:" in proc.stderr
    for c in (1, 2):
        assert f"not_served grpc c={c}: no metadata for not_served" in proc.stderr
    rows = read_csv(prefix.with_suffix(".csv"))
    assert [(r.model, r.concurrency) for r in rows] == [
        ("identity_py", 1),
        ("identity_py", 2),
        ("swish_py", 1),
        ("swish_py", 2),
    ]
    table = prefix.with_suffix(".md").read_text()
    assert "Missing points (2):" in table and "- not_served grpc c=2" in table
    assert prefix.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
