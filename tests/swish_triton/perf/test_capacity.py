"""Capacity planning (swish_triton.perf.capacity, client/capacity.py): hand-written sweep CSVs with known answers, bad
input, and a real sweep against the embedded tritonserver."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from swish_triton.errors import SwishError
from swish_triton.perf.capacity import CapacityError, plan_capacity, read_sweep_csv
from swish_triton.perf.sweep import append_csv, run_sweep
from swish_triton.serving.launcher import TritonServer
from tests.support import REPO

# Columns in another order than the sweep writes them, plus columns it does not write (payload, dtype, cores).
HAND_CSV = """\
cores,model,protocol,concurrency,infer_per_s,p50_ms,p99_ms,batch_size,payload_bytes,dtype,label,shared_memory,gpu,\
queue_us,compute_us,inference_count,execution_count
16,swish_py,grpc,1,1000,0.9,1.5,1,4096,FP32,,none,NVIDIA H100 80GB HBM3,10,100,1000,1000
16,swish_py,grpc,8,4000,1.8,4.0,1,4096,FP32,,none,NVIDIA H100 80GB HBM3,200,400,4000,1000
16,swish_py,grpc,32,10000,3.0,9.5,1,4096,FP32,,none,NVIDIA H100 80GB HBM3,900,800,10000,1250
16,swish_py,grpc,64,12000,6.0,21.0,1,4096,FP32,,none,NVIDIA H100 80GB HBM3,3000,900,12000,1200
16,swish_py,http,8,3000,2.0,6.0,1,4096,FP32,,none,NVIDIA H100 80GB HBM3,,,,
16,swish_py,http,32,5000,5.0,30.0,1,4096,FP32,,none,NVIDIA H100 80GB HBM3,,,,
16,swish_py,grpc,32,8000,3.0,9.5,4,16384,FP32,,none,NVIDIA H100 80GB HBM3,100,800,8000,1000
"""


@pytest.fixture
def hand_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.csv"
    path.write_text(HAND_CSV)
    return path


def test_replicas_for_a_rate_and_budget(hand_csv: Path) -> None:
    data = read_sweep_csv([hand_csv])
    assert set(data.points) == {"swish_py grpc", "swish_py http", "swish_py grpc b=4"}
    plan = plan_capacity(data, rate=20000, p99_ms=10, peak_rate=50000)
    by_series = {s.series: s for s in plan.series}

    grpc = by_series["swish_py grpc"]
    # c=32 is the fastest point within 10 ms (c=64 is over budget): 10000/s, planned at 70 % = 7000/s.
    assert grpc.point is not None and grpc.point.concurrency == 32
    assert grpc.per_replica_capacity == 10000 and grpc.per_replica_planned == pytest.approx(7000)
    assert grpc.replicas == math.ceil(20000 / 7000) + 1 == 4
    assert (grpc.min_replicas, grpc.max_replicas) == (4, math.ceil(50000 / 7000) + 1)
    # Triton's queue/compute ratio at that point: 900 us x 10000 requests / (800 us x 1250 executions) (a CSV without
    # requests_per_s gives compute time per execution).
    assert grpc.point.queue_compute_ratio == pytest.approx(9.0)

    # Batch 4: 8000 inferences/s are 2000 requests/s.
    batched = by_series["swish_py grpc b=4"]
    assert batched.per_replica_capacity == 2000 and batched.replicas == math.ceil(20000 / 1400) + 1

    http = by_series["swish_py http"]
    assert http.point is not None and http.point.concurrency == 8 and http.point.queue_compute_ratio is None
    assert plan.best is grpc


def test_headroom_and_spare_change_the_answer(hand_csv: Path) -> None:
    data = read_sweep_csv([hand_csv], {"protocol": "grpc", "batch_size": "1"})
    assert list(data.points) == ["swish_py grpc"]
    exact = plan_capacity(data, rate=20000, p99_ms=10, headroom=0, spare=0)
    assert exact.series[0].replicas == 2
    two_gpu = plan_capacity(data, rate=20000, p99_ms=10, headroom=0.5, spare=2, gpus_per_replica=2)
    assert two_gpu.series[0].replicas == 4 + 2 and two_gpu.series[0].gpus == 12
    assert any("headroom 50%" in a for a in two_gpu.assumptions)


def test_repeated_points_take_median_throughput_and_worst_p99(tmp_path: Path) -> None:
    path = tmp_path / "repeats.csv"
    path.write_text(
        "model,concurrency,infer_per_s,p99_ms\n"
        "m,4,1000,2.0\nm,4,1200,2.5\nm,4,900,4.0\n"  # median 1000/s, worst p99 4.0 ms
    )
    data = read_sweep_csv([path])
    (point,) = data.points["m"]
    assert (point.requests_per_s, point.p99_ms, point.runs) == (1000, 4.0, 3)
    assert not plan_capacity(data, rate=100, p99_ms=3).series[0].feasible
    assert plan_capacity(data, rate=100, p99_ms=4).series[0].feasible


def test_newer_sweep_columns(tmp_path: Path) -> None:
    """requests_per_s is used as given, compute time is per request, unstable rows are left out unless asked for, and
    a client that shared the server's cores is named in the assumptions."""
    path = tmp_path / "new.csv"
    path.write_text(
        "model,protocol,batch_size,concurrency,infer_per_s,requests_per_s,p99_ms,queue_us,compute_us,stable,"
        "client_shares_cores,length,dtype\n"
        "m,grpc,2,4,2000,1000,3.0,50,100,yes,yes,1024,FP32\n"
        "m,grpc,2,8,3000,1500,4.0,150,100,yes,yes,1024,FP32\n"
        "m,grpc,2,16,4000,2000,4.5,400,100,no,yes,1024,FP32\n"
    )
    data = read_sweep_csv([path])
    assert data.unstable_skipped == 1 and data.client_shared_cores
    (series,) = plan_capacity(data, rate=2100, p99_ms=5, headroom=0, spare=0).series
    assert series.point is not None and series.point.concurrency == 8
    assert series.per_replica_capacity == 1500 and series.replicas == 2
    assert series.point.queue_compute_ratio == pytest.approx(1.5)
    plan = plan_capacity(data, rate=2100, p99_ms=5)
    assert any("could not stabilise were left out" in a for a in plan.assumptions)
    assert any("shared the server's CPU cores" in a for a in plan.assumptions)
    everything = read_sweep_csv([path], include_unstable=True)
    assert plan_capacity(everything, rate=2100, p99_ms=5, headroom=0, spare=0).series[0].per_replica_capacity == 2000
    only_unstable = tmp_path / "unstable.csv"
    only_unstable.write_text("model,concurrency,infer_per_s,p99_ms,stable\nm,1,10,1,no\n")
    with pytest.raises(CapacityError, match="1 unstable rows left out"):
        read_sweep_csv([only_unstable])


def test_unreachable_budget_is_explained(hand_csv: Path) -> None:
    plan = plan_capacity(read_sweep_csv([hand_csv]), rate=1000, p99_ms=1)
    assert plan.best is None
    grpc = next(s for s in plan.series if s.series == "swish_py grpc")
    assert "lowest p99 was 1.50 ms (c=1)" in grpc.reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,concurrency,throughput\nm,1,5\n", "columns infer_per_s, p99_ms are missing"),
        ("model,concurrency,infer_per_s,p99_ms\nm,1,fast,2\n", "sweep.csv:2: column 'infer_per_s' is 'fast'"),
        ("model,concurrency,infer_per_s,p99_ms\nm,1,-5,2\n", "expected a finite number >= 0"),
        ("model,concurrency,infer_per_s,p99_ms\nm,1,nan,2\n", "expected a finite number >= 0"),
        ("model,concurrency,infer_per_s,p99_ms\n", "no sweep rows"),
    ],
)
def test_bad_csv_is_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text(text)
    with pytest.raises(CapacityError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_sweep_csv([path])
    assert isinstance(info.value, SwishError)


def test_bad_questions_are_refused(hand_csv: Path) -> None:
    data = read_sweep_csv([hand_csv])
    for kwargs, message in [
        ({"rate": 0, "p99_ms": 5}, "rate must be > 0"),
        ({"rate": 10, "p99_ms": -1}, "p99 budget must be > 0"),
        ({"rate": 10, "p99_ms": 5, "headroom": 1.0}, "headroom is a fraction"),
        ({"rate": 10, "p99_ms": 5, "peak_rate": 5}, "peak rate"),
    ]:
        with pytest.raises(CapacityError, match=message):
            plan_capacity(data, **kwargs)
    with pytest.raises(CapacityError, match="no such column"):
        read_sweep_csv([hand_csv], {"region": "eu"})
    with pytest.raises(CapacityError, match="cannot read the sweep file"):
        read_sweep_csv([hand_csv.parent / "missing.csv"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "client" / "capacity.py"), *args], capture_output=True, text=True, timeout=60
    )


def test_cli_answers_and_exit_codes(hand_csv: Path) -> None:
    ok = _cli(str(hand_csv), "-r", "20000", "-l", "10", "--peak-rate", "50000", "-w", "protocol=grpc")
    assert ok.returncode == 0, ok.stderr
    assert "Answer: 4 replicas (4 GPUs) of 'swish_py grpc' on NVIDIA H100 80GB HBM3" in ok.stdout
    assert "HPA minReplicas 4, maxReplicas 9" in ok.stdout
    assert "headroom 30%" in ok.stdout
    as_json = json.loads(_cli(str(hand_csv), "-r", "20000", "-l", "10", "--format", "json").stdout)
    assert as_json["best"]["replicas"] == 4 and as_json["headroom"] == 0.3
    none = _cli(str(hand_csv), "-r", "100", "-l", "0.5")
    assert none.returncode == 1 and "No configuration meets p99 <= 0.5 ms" in none.stdout
    bad = _cli(str(hand_csv), "-r", "100", "-l", "5", "-w", "nope")
    assert bad.returncode == 2 and "expected COLUMN=VALUE" in bad.stderr  # argparse's usage error
    missing = _cli(str(hand_csv.parent / "nothing.csv"), "-r", "100", "-l", "5")
    assert missing.returncode == 2 and "swish-capacity: error: cannot read the sweep file" in missing.stderr


def test_capacity_from_a_real_sweep(triton_server: TritonServer, tmp_path: Path) -> None:
    """A short perf_analyzer sweep of the embedded server, written as the sweep tool writes it, then planned."""
    rows = run_sweep(
        triton_server.http_url,
        triton_server.grpc_url,
        ["swish_py"],
        ["grpc"],
        [1, 4],
        # Structure, not timings: long-enough windows and a loose stability criterion, so that a busy 2-core host
        # still gets its measurement.
        measurement_ms=1000,
        max_trials=10,
        stability_percentage=100,
        progress=None,
    )
    csv_path = tmp_path / "sweep.csv"
    append_csv(rows, csv_path)
    best_rate = max(r.infer_per_s for r in rows)
    worst_p99 = max(r.p99_ms for r in rows)
    rate = 3 * best_rate
    # Structure, not timings: points perf_analyzer could not stabilise on a busy host count too.
    budget = ["-r", f"{rate:.1f}", "-l", f"{worst_p99 * 2:.3f}", "--include-unstable"]
    proc = _cli(str(csv_path), *budget, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    best = json.loads(proc.stdout)["best"]
    # Every point is within a budget of twice the worst p99, so the fastest point is the replica's capacity.
    assert best["per_replica_capacity"] == pytest.approx(best_rate)
    assert best["replicas"] == math.ceil(rate / (best_rate * 0.7)) + 1
    assert best["point"]["queue_compute_ratio"] is not None and best["point"]["queue_compute_ratio"] >= 0
    text = _cli(str(csv_path), *budget)
    print(text.stdout)
    assert "Answer:" in text.stdout
