"""A per-phase stopwatch that the models' profile (swish_triton.models.execute_profile) hands to the kernels' code.

``NO_CLOCK`` is what unprofiled calls get: its methods do nothing, so the served path reads no clocks.
"""

from __future__ import annotations

import time


class PhaseClock:
    """Seconds per named phase of one execution: ``start()``, then ``lap(phase)`` at the end of each phase.
    ``note(name, seconds)`` records a time measured otherwise (GPU events), reported apart from the phases."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.notes: dict[str, float] = {}
        self._last = 0.0

    def start(self) -> None:
        self.phases = {}
        self.notes = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._last
        self._last = now

    def note(self, name: str, seconds: float) -> None:
        self.notes[name] = self.notes.get(name, 0.0) + seconds

    @property
    def timing(self) -> bool:
        return True


class _NoClock(PhaseClock):
    def start(self) -> None:
        pass

    def lap(self, phase: str) -> None:
        pass

    def note(self, name: str, seconds: float) -> None:
        pass

    @property
    def timing(self) -> bool:
        return False


NO_CLOCK: PhaseClock = _NoClock()
