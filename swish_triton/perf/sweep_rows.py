"""What a sweep measured: one ``SweepRow`` per point, and the points that could not be measured.

Shared by the sweep (``sweep.py``), its reports (``report.py``) and capacity planning (``capacity.py``).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields


@dataclass(frozen=True)
class SweepRow:
    """One measured point. Columns are only ever added (``swish_triton.perf.capacity`` reads them by name)."""

    timestamp: str
    label: str
    model: str
    protocol: str
    shared_memory: str
    batch_size: int
    concurrency: int
    infer_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    inference_count: int
    execution_count: int
    average_batch: float
    queue_us: float  # Triton's queue time per request
    compute_us: float  # Triton's compute_infer time per request (each request is charged its whole batch)
    gpu: str
    triton_version: str
    tensorrt_version: str
    commit: str
    # Added with issue 11; defaults let read_csv take older files.
    length: int = 0  # elements per batch row
    dtype: str = ""  # the model input's Triton datatype
    host_cores: int = 0  # CPU cores the client (perf_analyzer) could use
    client_shares_cores: str = "unknown"  # "yes" when the server runs on the same host and competes for them
    stable: str = "yes"  # "no": perf_analyzer's windows never agreed; the point is 3 windows' average
    measurement: str = ""  # perf_analyzer's settings for this point
    compute_input_us: float = 0.0
    compute_output_us: float = 0.0
    requests_per_s: float = 0.0  # infer_per_s / batch_size
    input_data: str = "random"  # what the input held: perf_analyzer's random bytes, zero, normal, or a file's name

    @property
    def series(self) -> str:
        """One line in the plot and one group in the table."""
        parts = [self.label or self.model, self.protocol]
        if self.shared_memory != "none":
            parts.append(f"{self.shared_memory} shm")
        if self.batch_size != 1:
            parts.append(f"b={self.batch_size}")
        return " ".join(parts)

    @property
    def approximate(self) -> bool:
        return self.stable != "yes"


COLUMNS = [f.name for f in fields(SweepRow)]
COLUMN_DEFAULTS = {f.name: f.default for f in fields(SweepRow) if f.default is not MISSING}


@dataclass(frozen=True)
class SweepPointSpec:
    """One requested point, for naming what is missing."""

    model: str
    protocol: str
    shared_memory: str
    concurrency: int

    def __str__(self) -> str:
        shm = "" if self.shared_memory == "none" else f" {self.shared_memory}-shm"
        return f"{self.model} {self.protocol}{shm} c={self.concurrency}"


@dataclass(frozen=True)
class PointFailure:
    point: SweepPointSpec
    reason: str

    def __str__(self) -> str:
        return f"{self.point}: {self.reason}"
