"""Crash recovery of the served deployment (the launcher, its supervisor and a real tritonserver 2.51): every request
shape that crashes tritonserver is survived or recovered from within the bound, and a stub killed under load makes
readiness false until the model serves again, with no request failing before the kill. 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from swish_triton.clients import hostile
from swish_triton.serving import server_processes
from swish_triton.serving.control_api import http_call
from swish_triton.serving.launcher import TritonServer
from tests.served import (
    DETECT_BOUND_S,
    RECOVERY_BOUND_S,
    Load,
    correct_answers,
    nothing_left_behind,
)
from tests.support import wait_for


@pytest.mark.parametrize("case", hostile.CRASH_CASES, ids=[c.name for c in hostile.CRASH_CASES])
def test_a_crash_shape_is_survived_or_recovered_from_within_the_bound(
    keyed_server: TritonServer, case: hostile.Case
) -> None:
    target = hostile.Target(keyed_server.http_url, keyed_server.grpc_url, "swish_py")
    assert wait_for(lambda: hostile.serving(target), 30) is not None
    outcome = hostile.run_case(case, target, recovery_timeout_s=3 * RECOVERY_BOUND_S)
    print(outcome.line())
    if outcome.result == "died":
        assert outcome.back_after_s is not None and outcome.back_after_s <= RECOVERY_BOUND_S, outcome.line()
    correct_answers(keyed_server)
    nothing_left_behind(keyed_server)


class ReadinessLog:
    """Polls server and model readiness every 10 ms in a thread: (time, server 200, model 200)."""

    def __init__(self, url: str, model: str) -> None:
        self.url, self.model, self.samples = url, model, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            server = http_call(self.url, "/v2/health/ready", timeout_s=5)[0] == 200
            model = http_call(self.url, f"/v2/models/{self.model}/ready", timeout_s=5)[0] == 200
            self.samples.append((time.monotonic(), server, model))
            time.sleep(0.01)

    def __enter__(self) -> ReadinessLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_killed_stub_under_load_makes_readiness_false_until_the_model_serves_again(
    keyed_server: TritonServer,
) -> None:
    with ReadinessLog(keyed_server.http_url, "swish_py") as readiness, Load(keyed_server.grpc_url) as load:
        time.sleep(1.0)
        stubs = [s for s in server_processes.stub_processes(keyed_server.shm_prefix) if s.model == "swish_py"]
        assert len(stubs) == 2
        killed_at = time.monotonic()
        os.kill(stubs[0].pid, signal.SIGKILL)
        assert wait_for(lambda: not keyed_server.is_ready(), 5) is not None
        back = wait_for(keyed_server.is_ready, 3 * RECOVERY_BOUND_S)
        assert back is not None, "the model must be reloaded"
        time.sleep(2.0)
    down = [(t, s, m) for t, s, m in readiness.samples if t > killed_at and not (s and m)]
    assert down, "readiness must turn false while the model cannot serve"
    first_down, last_down = down[0][0], down[-1][0]
    print(
        f"killed stub: not ready {first_down - killed_at:.3f} s after the kill, ready again "
        f"{last_down - killed_at:.2f} s after it; {len(load.failures)} requests failed meanwhile"
    )
    assert first_down - killed_at < DETECT_BOUND_S
    assert last_down - killed_at < RECOVERY_BOUND_S
    # Readiness never said 200 while the model could not answer: between the first and the last not-ready sample
    # every sample is not ready, and no request failed after readiness came back.
    assert all(not (s and m) for t, s, m in readiness.samples if first_down <= t <= last_down)
    assert not [f for f in load.failures if f[0] > last_down + 0.05], load.failures[-3:]
    # Requests failed only after the kill: while readiness said so, in the moment it took to notice, or the request
    # the dead stub held (answered when its generation unloads).
    assert all(t >= killed_at for t, _ in load.failures)
    assert load.successes and load.successes[-1] > last_down
    assert keyed_server.supervisor is not None and keyed_server.supervisor.reloads >= 1
    alive = {s.pid for s in server_processes.stub_processes(keyed_server.shm_prefix)}
    assert not {s.pid for s in stubs} & alive, "the old generation of stubs is gone"
    correct_answers(keyed_server)
    nothing_left_behind(keyed_server)
