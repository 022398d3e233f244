"""Where the Python-backend models' ``execute()`` spends its time, measured inside Triton's stub.

With the model parameter ``profile_every: N`` each execution's phases are timed with ``time.perf_counter`` and summed
per path (``cpu``, ``gpu``, ``identity``) and batch-size class (1, 2-3, 4-7, 8-15, 16-31, 32-64 requests); every N
executions, and when the model unloads, the server log gets one line per path and class with the mean of each phase.
Without the parameter the models use ``NO_CLOCK``, whose laps do nothing, so the served path reads no clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swish_triton.kernels.phase_clock import NO_CLOCK, PhaseClock

__all__ = ["NO_CLOCK", "ExecuteProfile", "PhaseClock", "batch_class"]

BATCH_CLASSES = ((1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 1 << 30))


@dataclass
class _Sums:
    executions: int = 0
    requests: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    notes: dict[str, float] = field(default_factory=dict)


def batch_class(requests: int) -> str:
    for low, high in BATCH_CLASSES:
        if low <= requests <= high:
            return str(low) if low == high else f"{low}-{min(high, 64)}"
    return "0"


class ExecuteProfile:
    """Sums of phase times per (path, batch class) since the model loaded."""

    def __init__(self, model_name: str, every: int) -> None:
        self.model_name = model_name
        self.every = every
        self.executions = 0
        self.sums: dict[tuple[str, str], _Sums] = {}

    def record(self, path: str, requests: int, clock: PhaseClock) -> bool:
        """Add one execution; True when a report is due."""
        sums = self.sums.setdefault((path, batch_class(requests)), _Sums())
        sums.executions += 1
        sums.requests += requests
        for name, seconds in clock.phases.items():
            sums.phases[name] = sums.phases.get(name, 0.0) + seconds
        for name, seconds in clock.notes.items():
            sums.notes[name] = sums.notes.get(name, 0.0) + seconds
        self.executions += 1
        return self.executions % self.every == 0

    def report(self) -> list[str]:
        """One line per path and batch class: mean microseconds per execution of each phase, and their total."""
        lines = []
        for (path, klass), s in sorted(self.sums.items(), key=lambda item: (item[0][0], _class_order(item[0][1]))):
            n = s.executions
            phases = ", ".join(f"{name} {t / n * 1e6:.1f}" for name, t in s.phases.items())
            total = sum(s.phases.values()) / n * 1e6
            notes = "".join(f"; {name} {t / n * 1e6:.1f} us" for name, t in s.notes.items())
            lines.append(
                f"{self.model_name} profile: path {path}, batch {klass}: {n} executions, avg batch "
                f"{s.requests / n:.2f}; us per execution: {phases}; total {total:.1f} "
                f"({total * n / s.requests:.1f} per request){notes}"
            )
        return lines


def _class_order(klass: str) -> int:
    return int(klass.split("-", maxsplit=1)[0])
