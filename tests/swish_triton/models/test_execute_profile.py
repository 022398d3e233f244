"""The execute profile of the Python models (swish_triton.models.execute_profile): time per phase, per path and per
batch class."""

from __future__ import annotations

from swish_triton.models.execute_profile import ExecuteProfile, PhaseClock, batch_class


def test_profile_sums_phases_per_path_and_batch_class() -> None:
    profile = ExecuteProfile("swish_py", every=3)
    clock = PhaseClock()
    due = []
    for requests in (1, 1, 12):
        clock.start()
        clock.lap("inputs")
        clock.note("GPU busy", 1e-6)
        due.append(profile.record("cpu", requests, clock))
    assert due == [False, False, True]
    assert batch_class(1) == "1" and batch_class(12) == "8-15" and batch_class(64) == "32-64"
    lines = profile.report()
    assert len(lines) == 2
    assert lines[0].startswith("swish_py profile: path cpu, batch 1: 2 executions, avg batch 1.00; us per execution:")
    assert "batch 8-15: 1 executions, avg batch 12.00" in lines[1] and "GPU busy 1.0 us" in lines[1]
