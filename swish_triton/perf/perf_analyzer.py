"""Run perf_analyzer (found by ``perf_analyzer_binary``) and read what it measured, trusting nothing it omits.

perf_analyzer 2.50 exits 0 when a later concurrency level fails to stabilise and leaves its rows out: every requested
level is checked; unstable points are re-measured and kept as approximate or reported; a watchdog bounds its memory
and time.
"""

from __future__ import annotations

import csv
import logging
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swish_triton.errors import SwishError
from swish_triton.perf.perf_analyzer_binary import PerfAnalyzer, find_perf_analyzer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPoint:
    concurrency: int
    throughput: float  # inferences per second
    p50_ms: float
    p90_ms: float
    p99_ms: float


def parse_csv(path: Path) -> list[SweepPoint]:
    """Rows of perf_analyzer's ``-f`` CSV (latencies in microseconds)."""
    points = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            points.append(
                SweepPoint(
                    concurrency=int(row["Concurrency"]),
                    throughput=float(row["Inferences/Second"]),
                    p50_ms=float(row["p50 latency"]) / 1000,
                    p90_ms=float(row["p90 latency"]) / 1000,
                    p99_ms=float(row["p99 latency"]) / 1000,
                )
            )
    return sorted(points, key=lambda p: p.concurrency)


class PerfAnalyzerError(SwishError, RuntimeError):
    """perf_analyzer did not deliver what was asked; ``str()`` is one line, ``output`` the tail of its output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class UnstableMeasurement(PerfAnalyzerError):
    """perf_analyzer's windows never agreed within the stability percentage (its exit status 2)."""


class MissingLevels(PerfAnalyzerError):
    """perf_analyzer exited 0 but left requested concurrency levels out of its CSV (seen with 2.50)."""

    def __init__(self, message: str, missing: Sequence[int], output: str = "") -> None:
        super().__init__(message, output)
        self.missing = tuple(missing)


class WatchdogStopped(PerfAnalyzerError):
    """perf_analyzer ran past its time budget or its memory limit and was killed."""


@dataclass(frozen=True)
class MeasurementSettings:
    """How perf_analyzer decides that a point is measured.

    ``time_windows`` takes windows of ``window_ms``; ``count_windows`` takes windows of at least ``request_count``
    requests (steadier at low throughput). A point is stable when the last 3 windows agree within
    ``stability_percentage`` in throughput and latency; perf_analyzer gives up after ``max_trials`` windows.
    """

    mode: str = "time_windows"
    window_ms: int = 1000
    request_count: int = 200
    stability_percentage: float = 10
    max_trials: int = 10

    def __post_init__(self) -> None:
        if self.mode not in ("time_windows", "count_windows"):
            raise ValueError(f"measurement mode must be time_windows or count_windows, not {self.mode!r}")
        if self.window_ms <= 0 or self.request_count <= 0 or self.stability_percentage <= 0:
            raise ValueError("window, request count and stability percentage must be positive")
        if self.max_trials < 3:
            raise ValueError("perf_analyzer needs at least 3 trials (stability compares the last 3 windows)")

    def args(self) -> list[str]:
        args = [f"--measurement-mode={self.mode}", f"--stability-percentage={self.stability_percentage:g}"]
        args.append(f"--max-trials={self.max_trials}")
        if self.mode == "time_windows":
            args.append(f"--measurement-interval={self.window_ms}")
        else:
            args.append(f"--measurement-request-count={self.request_count}")
        return args

    def describe(self) -> str:
        if self.mode == "time_windows":
            window = f"{self.window_ms} ms windows"
        else:
            window = f"{self.request_count}-request windows"
        if self.stability_percentage >= APPROXIMATE_STABILITY:
            return f"three {window} averaged, no stability check (approximate)"
        return f"{window}, stable within {self.stability_percentage:g}%, at most {self.max_trials} windows"

    def approximate(self) -> MeasurementSettings:
        """Three windows whatever their spread: what an unstable point is re-measured with (and flagged).

        perf_analyzer still refuses a window in which nothing completed (a stall of the whole window on a loaded
        host: its throughput ratio is infinite), so it gets up to 6 windows to find 3 consecutive ones that each
        completed requests."""
        return replace(self, stability_percentage=APPROXIMATE_STABILITY, max_trials=6)

    def time_budget_s(self) -> float:
        """A generous bound on one point's run: beyond it perf_analyzer is stuck, not measuring."""
        if self.mode == "time_windows":
            return 30 + 2 * (self.max_trials + 2) * self.window_ms / 1000
        return 60 + 10 * self.max_trials


# A stability percentage (1000x) that only a window without completed requests misses: perf_analyzer then reports the
# first 3 consecutive windows that each completed requests. 1000% was seen to fail on a 2-core host under load.
APPROXIMATE_STABILITY = 100000
UNSTABLE_MARKER = "Failed to obtain stable measurement"
# perf_analyzer's memory is a few hundred MB at most in a sane run; beyond this it is piling up (see run_watched).
DEFAULT_MAX_RSS_MB = 2048


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0.0


@dataclass(frozen=True)
class WatchedRun:
    returncode: int
    output: str
    stopped: str  # why the watchdog killed it, "" when it ended by itself
    peak_rss_mb: float
    elapsed_s: float


def run_watched(
    pa: PerfAnalyzer, args: Sequence[str], timeout_s: float, max_rss_mb: float = DEFAULT_MAX_RSS_MB
) -> WatchedRun:
    """Run perf_analyzer, killing it when it runs past ``timeout_s`` or its resident memory passes ``max_rss_mb``.

    perf_analyzer 2.50 over HTTP at c=32 on a 2-core host was seen growing ~2 GB per minute without ever reporting;
    the watchdog turns that into a failed point with a reason instead of an exhausted machine.
    """
    began = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [str(pa.binary), *args], env=pa.env(), stdout=log, stderr=subprocess.STDOUT, text=True
        )
        stopped = ""
        peak = 0.0
        try:
            while proc.poll() is None:
                peak = max(peak, _rss_mb(proc.pid))
                elapsed = time.monotonic() - began
                if peak > max_rss_mb:
                    stopped = f"its memory passed {max_rss_mb:.0f} MB ({peak:.0f} MB after {elapsed:.0f} s)"
                elif elapsed > timeout_s:
                    stopped = f"it ran past its time budget of {timeout_s:.0f} s"
                if stopped:
                    logger.warning("killing perf_analyzer (pid %d): %s", proc.pid, stopped)
                    proc.kill()
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
            returncode = proc.wait()
        log.seek(0)
        output = log.read()
    return WatchedRun(returncode, output, stopped, peak, time.monotonic() - began)


def _reason(output: str) -> str:
    """The line of perf_analyzer's output that says why it failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in (UNSTABLE_MARKER, "went over", "error", "Error", "failed", "Failed", "unable", "Unable"):
        for line in lines:
            if marker in line:
                return line
    return lines[-1] if lines else "no output"


def _requested_levels(concurrency: tuple[int, int, int]) -> list[int]:
    start, end, step = concurrency
    if start < 1 or end < start or step < 1:
        raise ValueError(f"concurrency range must be start>=1, end>=start, step>=1; got {start}:{end}:{step}")
    return list(range(start, end + 1, step))


def concurrency_sweep(
    model: str,
    url: str,
    protocol: str = "grpc",
    concurrency: tuple[int, int, int] = (1, 8, 1),
    **options: Any,
) -> list[SweepPoint]:
    """Run one perf_analyzer concurrency sweep and return one point per requested level.

    ``options`` are those of ``run_concurrency_range`` (shape, batch size, measurement settings, limits). Raises
    ``UnstableMeasurement`` when perf_analyzer gave up stabilising, ``MissingLevels`` when it exited 0 but left levels
    out, ``WatchdogStopped`` when it was killed, ``PerfAnalyzerError`` for any other failure.
    """
    requested = _requested_levels(concurrency)
    run, points = run_concurrency_range(model, url, protocol, concurrency, **options)
    return require_levels(requested, points, run, sweep_label(model, protocol, concurrency))


def sweep_label(model: str, protocol: str, concurrency: tuple[int, int, int]) -> str:
    start, end, _ = concurrency
    return f"{model} {protocol} c={start}" + (f"..{end}" if end != start else "")


def run_concurrency_range(
    model: str,
    url: str,
    protocol: str = "grpc",
    concurrency: tuple[int, int, int] = (1, 8, 1),
    shape: str = "INPUT0:1024",
    batch_size: int = 1,
    measurement_ms: int = 1000,
    extra_args: Sequence[str] = (),
    timeout: float | None = None,
    settings: MeasurementSettings | None = None,
    max_rss_mb: float = DEFAULT_MAX_RSS_MB,
) -> tuple[WatchedRun, list[SweepPoint]]:
    """One perf_analyzer run over a concurrency range: its run and the points of its CSV, as many as it wrote.

    ``settings`` replaces ``measurement_ms``; ``extra_args`` go last (perf_analyzer takes the last of a repeated flag).
    Raises as ``concurrency_sweep`` does, except for levels left out (``require_levels`` checks those).
    """
    requested = _requested_levels(concurrency)
    settings = settings or MeasurementSettings(window_ms=measurement_ms)
    budget = timeout if timeout is not None else settings.time_budget_s() * len(requested)
    pa = find_perf_analyzer()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep.csv"
        start, end, step = concurrency
        args = [
            "-m",
            model,
            "-u",
            url,
            "-i",
            protocol,
            "-b",
            str(batch_size),
            "--shape",
            shape,
            f"--concurrency-range={start}:{end}:{step}",
            *settings.args(),
            "-f",
            str(out),
            *extra_args,
        ]
        run = run_watched(pa, args, budget, max_rss_mb)
        tail = run.output[-3000:]
        where = sweep_label(model, protocol, concurrency)
        if run.stopped:
            raise WatchdogStopped(f"perf_analyzer failed ({where}): killed because {run.stopped}", tail)
        if run.returncode != 0:
            cls = UnstableMeasurement if UNSTABLE_MARKER in run.output else PerfAnalyzerError
            raise cls(f"perf_analyzer failed ({where}, exit status {run.returncode}): {_reason(run.output)}", tail)
        return run, parse_csv(out) if out.exists() else []


def require_levels(
    requested: Sequence[int], points: Sequence[SweepPoint], run: WatchedRun, where: str
) -> list[SweepPoint]:
    """The points of the requested levels, or ``MissingLevels`` naming every level perf_analyzer left out.

    Its exit 0 is no promise: 2.50 leaves out levels after one that did not stabilise, or writes no CSV at all.
    """
    got = {p.concurrency for p in points}
    missing = [c for c in requested if c not in got]
    if missing:
        raise MissingLevels(
            f"perf_analyzer failed ({where}): exited {run.returncode} without concurrency {missing}: "
            f"{_reason(run.output)}",
            missing,
            run.output[-3000:],
        )
    return [p for p in points if p.concurrency in requested]


@dataclass(frozen=True)
class MeasuredPoint:
    point: SweepPoint
    stable: bool
    note: str  # why it is approximate, "" when stable


def measure_point(
    model: str,
    url: str,
    protocol: str,
    concurrency: int,
    shape: str,
    batch_size: int = 1,
    settings: MeasurementSettings | None = None,
    extra_args: Sequence[str] = (),
    on_unstable: str = "approximate",
    max_rss_mb: float = DEFAULT_MAX_RSS_MB,
    timeout: float | None = None,
) -> MeasuredPoint:
    """One concurrency level. An unstable level is re-measured over 3 windows and flagged (``on_unstable=
    "approximate"``), or raised (``"fail"``)."""
    if on_unstable not in ("approximate", "fail"):
        raise ValueError(f"on_unstable must be approximate or fail, not {on_unstable!r}")
    settings = settings or MeasurementSettings()
    common = dict(shape=shape, batch_size=batch_size, extra_args=extra_args, max_rss_mb=max_rss_mb, timeout=timeout)
    try:
        (point,) = concurrency_sweep(model, url, protocol, (concurrency, concurrency, 1), settings=settings, **common)
        return MeasuredPoint(point, True, "")
    except UnstableMeasurement as exc:
        if on_unstable == "fail":
            raise
        logger.info("%s; re-measuring over 3 windows as an approximate point", exc)
        (point,) = concurrency_sweep(
            model, url, protocol, (concurrency, concurrency, 1), settings=settings.approximate(), **common
        )
        return MeasuredPoint(point, False, f"not stable within {settings.stability_percentage:g}%")


def format_sweep(points: Sequence[SweepPoint]) -> str:
    lines = ["| concurrency | infer/s | p50 ms | p90 ms | p99 ms |", "|---:|---:|---:|---:|---:|"]
    for p in points:
        lines.append(f"| {p.concurrency} | {p.throughput:.0f} | {p.p50_ms:.2f} | {p.p90_ms:.2f} | {p.p99_ms:.2f} |")
    return "\n".join(lines)
