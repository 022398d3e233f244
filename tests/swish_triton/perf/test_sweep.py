"""The sweep (swish_triton.perf.sweep) against the real embedded server: every point recorded with what was measured,
no point lost or hidden when the server dies, CSVs of older versions read, the input data asked for sent."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from swish_triton.perf.perf_analyzer import (
    MeasurementSettings,
)
from swish_triton.perf.sweep import COLUMNS, SweepIncomplete, SweepRow, append_csv, markdown_table, read_csv, run_sweep
from swish_triton.serving.launcher import TritonServer, free_port
from tests.support import REPO

# Structure, not timings: a loose stability criterion keeps busy or fast hosts from failing the measurement.
LOOSE = MeasurementSettings(window_ms=500, stability_percentage=100, max_trials=10)


def test_sweep_records_every_point_with_batching_statistics(triton_server: TritonServer) -> None:
    rows = run_sweep(
        triton_server.http_url,
        triton_server.grpc_url,
        ["swish_py", "identity_py"],
        ["grpc", "http"],
        [1, 8],
        length=300,
        settings=LOOSE,
        progress=None,
    )
    assert [(r.model, r.protocol, r.concurrency) for r in rows] == [
        (m, p, c) for m in ("swish_py", "identity_py") for p in ("grpc", "http") for c in (1, 8)
    ]
    for r in rows:
        assert r.infer_per_s > 0 and 0 < r.p50_ms <= r.p90_ms <= r.p99_ms
        assert r.inference_count >= r.execution_count > 0
        assert r.triton_version == "2.51.0" and r.commit != ""
        # What was measured travels with every row.
        assert (r.length, r.dtype, r.batch_size) == (300, "FP32", 1)
        assert r.host_cores == len(os.sched_getaffinity(0)) and r.client_shares_cores == "yes"
        assert r.stable == "yes" and "500 ms windows" in r.measurement
        assert r.queue_us >= 0 and r.compute_us > 0
    batched = [r for r in rows if r.concurrency == 8]
    assert all(r.average_batch > 1 for r in batched), [(r.series, r.average_batch) for r in batched]
    assert "| swish_py grpc | 8 |" in markdown_table(rows)


def test_server_dying_mid_sweep_keeps_finished_points_and_names_the_rest(tmp_path: Path) -> None:
    """The injected failure is real: the server is stopped after the second point."""
    server = TritonServer(
        REPO / "model_repository",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=["identity_py"],
        log_path=tmp_path / "server.log",
        quiet=True,
    )
    written: list[SweepRow] = []
    csv_path = tmp_path / "sweep.csv"

    def on_row(row: SweepRow) -> None:
        append_csv([row], csv_path)
        written.append(row)
        if len(written) == 2:
            server.stop()

    with server:
        with pytest.raises(SweepIncomplete) as info:
            run_sweep(
                server.http_url,
                server.grpc_url,
                ["identity_py"],
                ["grpc"],
                [1, 2, 3, 4],
                settings=LOOSE,
                on_row=on_row,
                progress=None,
            )
    assert [r.concurrency for r in info.value.rows] == [1, 2]
    assert [f.point.concurrency for f in info.value.failures] == [3, 4]
    assert all(f.reason for f in info.value.failures)
    assert str(info.value).startswith("2 of 4 sweep points missing: identity_py grpc c=3: ")
    assert [r.concurrency for r in read_csv(csv_path)] == [1, 2]


def test_csv_from_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    old_columns = COLUMNS[: COLUMNS.index("commit") + 1]
    path = tmp_path / "old.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(old_columns)
        writer.writerow(
            [
                "2026-01-01T00:00:00+00:00",
                "",
                "swish_py",
                "grpc",
                "none",
                1,
                4,
                100.0,
                1,
                2,
                3,
                10,
                5,
                2.0,
                1.0,
                2.0,
                "none",
                "2.51.0",
                "none",
                "abc",
            ]
        )
    (old,) = read_csv(path)
    assert old.length == 0 and old.stable == "yes"
    new = SweepRow(**{**old.__dict__, "length": 1024, "dtype": "FP16", "stable": "no"})
    append_csv([new], path)
    rows = read_csv(path)
    assert [(r.length, r.dtype, r.approximate) for r in rows] == [(0, "", False), (1024, "FP16", True)]
    # The old row's compute time was per execution (5 executions for 10 requests): now per request, as new rows.
    assert rows[0].compute_us == 1.0 and rows[0].requests_per_s == 100.0
    assert next(csv.reader(open(path))) == COLUMNS


@pytest.mark.parametrize("kind", ["zero", "normal"])
def test_a_sweep_sends_the_input_data_asked_for(triton_server: TritonServer, tmp_path: Path, kind: str) -> None:
    rows = run_sweep(
        triton_server.http_url,
        triton_server.grpc_url,
        ["swish_py"],
        ["grpc"],
        [1],
        measurement_ms=500,
        stability_percentage=100,
        progress=None,
        input_data=kind,
    )
    assert [r.input_data for r in rows] == [kind] and rows[0].infer_per_s > 0
