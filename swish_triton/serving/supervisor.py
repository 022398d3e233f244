"""Keeps an embedded tritonserver serving: restarts it after a crash, reloads models whose stub processes died.

tritonserver 2.51 neither restarts a Python-backend stub that died (``kill -9``, or a request that crashed it) nor
reports it: ``/v2/health/ready`` stays 200 while about half the requests to that model fail. The supervisor
watches, once per ``interval_s``:

- the tritonserver process: when it has exited, it logs why (exit status or signal, last log line), ends the stubs
  and /dev/shm regions it left, and starts it again after a backoff (1 s, doubling to 30 s; reset after a minute up);
- the stub processes recorded for each model after it loaded: when one is gone, it loads that model again with the
  launcher's key (a reload: the old instances serve until the new ones are ready), and waits for the old generation
  of stubs to be gone;
- every ``canary_every`` rounds, a canary inference per model (``health.canary``): two failures in a row reload it.

Meanwhile ``ServingState.ready`` is false, so the front answers ``/v2/health/ready`` with 503 and health checks see
it. Everything is logged through ``logging`` (logger ``swish_triton.serving.supervisor``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from swish_triton.errors import SwishError
from swish_triton.serving import server_processes
from swish_triton.serving.health import canary

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0


class Supervisor:
    """Runs on its own daemon thread; ``server`` is the launcher's TritonServer."""

    def __init__(self, server: Any, interval_s: float = 1.0, canary_every: int = 5) -> None:
        self.server, self.interval_s, self.canary_every = server, interval_s, canary_every
        self.state = server.state
        self.stubs: dict[str, set[int]] = {}
        self.canary_failures: dict[str, int] = {}
        self.restarts = 0
        self.reloads = 0
        # A model that dies again soon after its reload waits before the next one: 1 s, doubling to 30 s.
        self.last_reload: dict[str, float] = {}
        self.reload_backoff: dict[str, float] = {}
        self.retry_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swish-supervisor", daemon=True)

    def start(self) -> None:
        self.record_stubs()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)

    def record_stubs(self, model: str | None = None, exclude: set[int] | None = None) -> None:
        """Remember the stub processes of a model (of every loaded one); ``exclude``: an old generation that may
        still be exiting, which must not be taken for the new one (its exit would look like a death)."""
        current: dict[str, set[int]] = {}
        for stub in server_processes.stub_processes(self.server.shm_prefix):
            current.setdefault(stub.model, set()).add(stub.pid)
        for name in [model] if model else self.server.loaded_models():
            self.stubs[name] = current.get(name, set()) - (exclude or set())

    def follow_loaded_models(self) -> None:
        """Watch what is loaded now: a model unloaded with the key is left alone, a newly loaded one is watched."""
        loaded = set(self.server.loaded_models())
        for gone in set(self.stubs) - loaded:
            del self.stubs[gone]
        for new in loaded - set(self.stubs):
            self.record_stubs(new)

    def dead_models(self) -> dict[str, set[int]]:
        alive = {s.pid for s in server_processes.stub_processes(self.server.shm_prefix)}
        return {m: pids - alive for m, pids in self.stubs.items() if pids - alive}

    def _run(self) -> None:
        backoff = 1.0
        up_since = time.monotonic()
        rounds = 0
        while not self._stop.wait(self.interval_s):
            if not self.server.process_running():
                self.state.ready = False
                log.error(
                    "tritonserver stopped unexpectedly: %s; restarting in %.0f s", self.server.exit_reason(), backoff
                )
                self.server.end_leftovers()
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                try:
                    self.server.spawn()
                except SwishError as exc:
                    log.error("restart failed: %s", exc)
                    continue
                self.restarts += 1
                up_since = time.monotonic()
                self.record_stubs()
                log.warning("tritonserver restarted (restart %d); serving again", self.restarts)
                self.state.ready = True
                continue
            if self.server.restart_front_if_dead():
                log.warning("the front is serving again")
            if time.monotonic() - up_since > STABLE_AFTER_S:
                backoff = 1.0
            rounds += 1
            self.follow_loaded_models()
            sick = {m: f"stub process {', '.join(map(str, sorted(p)))} is gone" for m, p in self.dead_models().items()}
            if self.canary_every and rounds % self.canary_every == 0:
                for model in self.stubs:
                    why = None if model in sick else canary(self.server.upstream_http_url, model, timeout_s=10)
                    self.canary_failures[model] = self.canary_failures.get(model, 0) + 1 if why else 0
                    if why and self.canary_failures[model] >= 2:
                        sick[model] = f"canary inference failed twice ({why})"
            for model, why in sick.items():
                self.reload(model, why)

    def reload(self, model: str, why: str) -> None:
        started = time.monotonic()
        if model not in self.state.unhealthy_models or self.state.ready:
            self.state.unhealthy_models.add(model)
            self.state.ready = False
        if started < self.retry_at.get(model, 0.0):
            return  # backing off: still not ready, reloaded once the wait is over
        last = self.last_reload.get(model)
        recent = last is not None and started - last < STABLE_AFTER_S
        waited = last is not None and self.retry_at.get(model, 0.0) > last  # the wait for this death is over
        if recent and not waited:
            backoff = min(max(2 * self.reload_backoff.get(model, 0.0), 1.0), MAX_BACKOFF_S)
            self.reload_backoff[model], self.retry_at[model] = backoff, started + backoff
            log.warning(
                "model %s cannot serve again %.0f s after its reload (%s): reloading it in %.0f s",
                model, started - (last or 0.0), why, backoff,
            )  # fmt: skip
            return
        if not recent:
            self.reload_backoff[model] = 0.0
        log.warning("model %s cannot serve (%s): reloading it", model, why)
        old = self.stubs.get(model, set())
        try:
            self.server.reload_model(model, old)
        except SwishError as exc:
            log.error("reloading %s failed: %s; retrying", model, exc)
            return
        self.record_stubs(model, exclude=old)
        self.last_reload[model] = time.monotonic()
        self.canary_failures[model] = 0
        self.reloads += 1
        self.state.unhealthy_models.discard(model)
        self.state.ready = not self.state.unhealthy_models and self.server.process_running()
        log.warning("model %s reloaded in %.1f s; serving again", model, time.monotonic() - started)
