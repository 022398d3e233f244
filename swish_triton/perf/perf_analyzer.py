"""Find a perf_analyzer binary that runs on this host, and run concurrency sweeps with it.

Where glibc >= 2.38 (Ubuntu 24.04, Debian 13) the PyPI ``perf-analyzer`` package (2.60+) has a working binary.
Elsewhere (Debian 12) pip silently installs a 0.1.0 placeholder without one, and the binary bundled in the
``tritonclient==2.50.0`` wheel (built for glibc 2.34) is used instead, given ``libb64.so.0d`` (the nvidia-pytriton
wheel carries a renamed copy, linked here under its real name) and ``libcudart.so.12`` (``nvidia-cuda-runtime-cu12``).
The binary is always called directly: the PyPI package's console script exits 0 whatever happens.
"""

from __future__ import annotations

import csv
import logging
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from swish_triton.errors import SwishError

logger = logging.getLogger(__name__)


class PerfAnalyzerNotFound(SwishError):
    pass


@dataclass(frozen=True)
class PerfAnalyzer:
    """A runnable perf_analyzer: the binary and the library path it needs."""

    binary: Path
    library_dirs: tuple[Path, ...]
    origin: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = [str(d) for d in self.library_dirs]
        if env.get("LD_LIBRARY_PATH"):
            dirs.append(env["LD_LIBRARY_PATH"])
        if dirs:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs)
        return env

    def run(self, args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own binary and arguments
            [str(self.binary), *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )


def glibc_version() -> tuple[int, ...]:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return (0,)
    return tuple(int(p) for p in version.split("."))


def _site_packages() -> list[Path]:
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path}
    return [Path(p) for p in paths if p and Path(p).is_dir()]


def _pypi_binary() -> Path | None:
    for site in _site_packages():
        candidate = site / "perf_analyzer" / "bin" / "perf_analyzer"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _tritonclient_binary() -> Path | None:
    # The tritonclient 2.50.0 wheel installs perf_analyzer as a script in the environment's bin folder.
    candidate = Path(sysconfig.get_paths()["scripts"]) / "perf_analyzer"
    if candidate.is_file() and candidate.read_bytes()[:4] == b"\x7fELF":
        return candidate
    return None


def _libb64_dir() -> Path | None:
    """A folder holding ``libb64.so.0d``: the system's, or a link to nvidia-pytriton's renamed copy."""
    for system_dir in (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64"), Path("/usr/lib")):
        if (system_dir / "libb64.so.0d").exists():
            return None  # found by the loader without help
    for site in _site_packages():
        copies = sorted((site / "nvidia_pytriton.libs").glob("libb64-*.so.0d"))
        if copies:
            link_dir = Path(tempfile.gettempdir()) / f"swish-perf-analyzer-libs-{os.getuid()}"
            link_dir.mkdir(exist_ok=True)
            link = link_dir / "libb64.so.0d"
            if not link.exists() or link.resolve() != copies[0].resolve():
                tmp = link_dir / f".libb64.{os.getpid()}"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(copies[0])
                tmp.replace(link)
            return link_dir
    raise PerfAnalyzerNotFound(
        "perf_analyzer needs libb64.so.0d: install nvidia-pytriton (which carries a copy) or, as root, "
        "`apt-get install -y libb64-0d`"
    )


def _cudart_dir() -> Path:
    for site in _site_packages():
        lib = site / "nvidia" / "cuda_runtime" / "lib"
        if (lib / "libcudart.so.12").exists():
            return lib
    raise PerfAnalyzerNotFound("perf_analyzer needs libcudart.so.12: pip install 'nvidia-cuda-runtime-cu12>=12,<13'")


def find_perf_analyzer() -> PerfAnalyzer:
    """The perf_analyzer for this host. Raises PerfAnalyzerNotFound with the install command when there is none."""
    override = os.environ.get("PERF_ANALYZER")
    if override:
        return PerfAnalyzer(Path(override), (), "PERF_ANALYZER")
    if glibc_version() >= (2, 38):
        binary = _pypi_binary()
        if binary is not None:
            return PerfAnalyzer(binary, (), "PyPI perf-analyzer")
    binary = _tritonclient_binary()
    if binary is not None:
        dirs = [d for d in (_libb64_dir(), _cudart_dir()) if d is not None]
        return PerfAnalyzer(binary, tuple(dirs), "tritonclient 2.50.0 wheel")
    if glibc_version() >= (2, 38):
        hint = "pip install 'perf-analyzer>=2.60'"
    else:
        hint = "pip install 'tritonclient[http,grpc]==2.50.0' 'nvidia-cuda-runtime-cu12>=12,<13'"
    raise PerfAnalyzerNotFound(f"no perf_analyzer that runs on this host (glibc {glibc_version()}): {hint}")


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
    shape: str = "INPUT0:1024",
    batch_size: int = 1,
    measurement_ms: int = 1000,
    extra_args: Sequence[str] = (),
    timeout: float | None = None,
    settings: MeasurementSettings | None = None,
    max_rss_mb: float = DEFAULT_MAX_RSS_MB,
) -> list[SweepPoint]:
    """Run one perf_analyzer concurrency sweep and return one point per requested level.

    Raises ``UnstableMeasurement`` when perf_analyzer gave up stabilising, ``MissingLevels`` when it exited 0 but
    left levels out, ``WatchdogStopped`` when it was killed, ``PerfAnalyzerError`` for any other failure.
    ``settings`` replaces ``measurement_ms``; ``extra_args`` go last (perf_analyzer takes the last of a repeated flag).
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
        where = f"{model} {protocol} c={start}" + (f"..{end}" if end != start else "")
        if run.stopped:
            raise WatchdogStopped(f"perf_analyzer failed ({where}): killed because {run.stopped}", tail)
        if run.returncode != 0:
            cls = UnstableMeasurement if UNSTABLE_MARKER in run.output else PerfAnalyzerError
            raise cls(f"perf_analyzer failed ({where}, exit status {run.returncode}): {_reason(run.output)}", tail)
        # Exit 0 is no promise: 2.50 leaves out levels after one that did not stabilise, or writes no CSV at all.
        points = parse_csv(out) if out.exists() else []
    got = {p.concurrency for p in points}
    missing = [c for c in requested if c not in got]
    if missing:
        raise MissingLevels(
            f"perf_analyzer failed ({where}): exited {run.returncode} without concurrency {missing}: "
            f"{_reason(run.output)}",
            missing,
            tail,
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


if __name__ == "__main__":
    found = find_perf_analyzer()
    print(f"{found.binary} ({found.origin})")
