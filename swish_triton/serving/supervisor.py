"""Keeps an embedded tritonserver serving: restarts it after a crash, reloads a model whose stub process died.

tritonserver 2.51 neither restarts a Python-backend stub that died (``kill -9``, or a request that crashed it) nor
reports it: ``/v2/health/ready`` stays 200 while about half the requests to that model fail. The supervisor holds a
pidfd (Linux 5.3+) for tritonserver and for every stub process, so it learns of an exit the moment it happens:

- tritonserver exited: it logs why (exit status or signal, last log line), ends the stubs and /dev/shm regions the
  crashed server left, and starts it again at once. Meanwhile the ports refuse connections. Only a server that does
  not come up (exits or is not ready in time) is retried with a backoff, 1 s doubling to 30 s: that is a crash loop
  at start, which restarting faster would not mend;
- a stub exited: it reloads that model (``TritonServer.reload_model``: unload, then load, so Triton itself reports
  the model and the server not ready until the new instances are); a reload that fails is tried again after 1 s,
  doubling to 30 s (Triton reports the model unavailable meanwhile);
- every ``canary_every`` rounds of ``interval_s``, a canary inference per model (``health.canary``): two failures
  in a row reload it (a stub that hangs rather than dies).

Everything is logged through ``logging`` (logger ``swish_triton.serving.supervisor``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from typing import Any

from swish_triton.errors import SwishError
from swish_triton.serving.health import canary

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


class ExitWatch:
    """pidfds of the processes being watched; ``wait`` returns the PIDs that exited (a process that is already gone
    when it is added counts as exited at once)."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}
        self._gone: set[int] = set()

    def watch(self, pids: set[int]) -> None:
        for pid in set(self._fds) - pids:
            os.close(self._fds.pop(pid))
        self._gone &= pids
        for pid in pids - set(self._fds) - self._gone:
            try:
                self._fds[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                self._gone.add(pid)

    def wait(self, timeout_s: float) -> set[int]:
        if self._gone:
            gone, self._gone = self._gone, set()
            return gone
        poller = select.poll()
        by_fd = {fd: pid for pid, fd in self._fds.items()}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        if not by_fd:
            time.sleep(timeout_s)
            return set()
        return {by_fd[fd] for fd, _ in poller.poll(timeout_s * 1000)}

    def close(self) -> None:
        self.watch(set())


class Supervisor:
    """Runs on its own daemon thread; ``server`` is the launcher's TritonServer."""

    def __init__(self, server: Any, interval_s: float = 1.0, canary_every: int = 5) -> None:
        self.server, self.interval_s, self.canary_every = server, interval_s, canary_every
        self.canary_failures: dict[str, int] = {}
        self.restarts = 0
        self.reloads = 0
        # Generations of models whose stub died: tritonserver 2.51 never finishes unloading them (launcher's stop).
        self.stuck_generations = 0
        self.start_backoff = 0.0  # 0 while the last start succeeded
        # Models whose reload failed (why), tried again at retry_at after reload_backoff (1 s doubling to 30 s).
        self.failed: dict[str, str] = {}
        self.reload_backoff: dict[str, float] = {}
        self.retry_at: dict[str, float] = {}
        self._exits = ExitWatch()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swish-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)
        self._exits.close()

    def stubs_of(self, model: str) -> set[int]:
        return {pid for pid, stub in self.server.stubs_seen.items() if stub.model == model}

    def follow_loaded_models(self) -> None:
        """A model unloaded with the key is left alone: its stubs are no longer watched. (A model loaded with the key
        is watched from its first stub on: ``scan_stubs`` records every new one.)"""
        loaded = set(self.server.loaded_models())
        for pid, stub in list(self.server.stubs_seen.items()):
            if stub.model not in loaded:
                del self.server.stubs_seen[pid]

    def dead_models(self) -> dict[str, set[int]]:
        """Models with a stub that was seen running and is gone (every stub is seen from the moment tritonserver
        starts it, before the server is ready: ``TritonServer.scan_stubs``)."""
        live = self.server.scan_stubs()
        dead: dict[str, set[int]] = {}
        for pid, stub in self.server.stubs_seen.items():
            if pid not in live:
                dead.setdefault(stub.model, set()).add(pid)
        return dead

    def _run(self) -> None:
        rounds = 0
        while not self._stop.is_set():
            if not self.server.process_running():
                self.restart()
                continue
            pid = self.server.pid
            self._exits.watch(self.server.scan_stubs() | ({pid} if pid else set()))
            self._exits.wait(self.interval_s)
            if self._stop.is_set() or not self.server.process_running():
                continue
            rounds += 1
            dead = self.dead_models()
            if dead:  # an admin's unload ends stubs too: only models still loaded count
                with contextlib.suppress(SwishError):
                    self.follow_loaded_models()
                dead = {model: pids for model, pids in dead.items() if self.stubs_of(model)}
            sick = {m: f"stub process {', '.join(map(str, sorted(p)))} is gone" for m, p in dead.items()}
            if self.canary_every and rounds % self.canary_every == 0:
                for model in {stub.model for stub in self.server.stubs_seen.values()}:
                    why = None if model in sick else canary(self.server.local_http_url, model, timeout_s=10)
                    self.canary_failures[model] = self.canary_failures.get(model, 0) + 1 if why else 0
                    if why and self.canary_failures[model] >= 2:
                        sick[model] = f"canary inference failed twice ({why})"
            now = time.monotonic()
            sick.update({m: why for m, why in self.failed.items() if now >= self.retry_at.get(m, 0.0)})
            for model, why in sick.items():
                self.reload(model, why, bool(dead.get(model)))

    def restart(self) -> None:
        """Start tritonserver again: at once after a crash of a server that had come up, with a backoff while it
        does not come up at all."""
        if self.start_backoff == 0.0:
            log.error("tritonserver stopped unexpectedly: %s; restarting it", self.server.exit_reason())
        self.server.end_leftovers()
        if self.start_backoff and self._stop.wait(self.start_backoff):
            return
        started = time.monotonic()
        try:
            self.server.spawn()
        except SwishError as exc:
            self.server.kill()
            self.start_backoff = min(max(2 * self.start_backoff, 1.0), MAX_BACKOFF_S)
            log.error("restart failed: %s; trying again in %.0f s", exc, self.start_backoff)
            return
        self.start_backoff = 0.0
        self.restarts += 1
        log.warning(
            "tritonserver restarted in %.1f s (restart %d); serving again", time.monotonic() - started, self.restarts
        )

    def reload(self, model: str, why: str, stub_died: bool = False) -> None:
        """Reload a model that cannot serve; a reload that fails is tried again after 1 s, doubling to 30 s (the
        model stays not ready meanwhile: Triton reports a model whose load failed as unavailable)."""
        started = time.monotonic()
        log.warning("model %s cannot serve (%s): reloading it", model, why)
        old = self.stubs_of(model)
        if stub_died:
            self.stuck_generations += 1
        try:
            self.server.reload_model(model, old)
        except SwishError as exc:
            backoff = min(max(2 * self.reload_backoff.get(model, 0.0), 1.0), MAX_BACKOFF_S)
            self.reload_backoff[model], self.retry_at[model] = backoff, time.monotonic() + backoff
            self.failed[model] = f"its reload failed ({exc})"
            log.error("reloading %s failed: %s; trying again in %.0f s", model, exc, backoff)
            return
        finally:
            for pid in old:
                self.server.stubs_seen.pop(pid, None)
        self.server.scan_stubs()
        self.failed.pop(model, None)
        self.reload_backoff.pop(model, None)
        self.canary_failures[model] = 0
        self.reloads += 1
        log.warning("model %s reloaded in %.1f s; serving again", model, time.monotonic() - started)
