"""Capacity planning from perf_analyzer sweep CSVs: how many replicas (GPUs) serve R requests/s at p99 <= L ms.

The model is deliberately simple and says what it assumes:

- one replica is one Triton server of the shape the sweep measured (its GPU(s), model configuration, protocol,
  payload); replicas do not share GPUs and throughput adds up across them;
- a replica's capacity is the highest throughput the sweep measured at a concurrency whose p99 stayed within the
  latency budget (measured points only, no interpolation; where a point was measured several times, its median
  throughput and its worst p99 count);
- the plan loads each replica to ``1 - headroom`` of that capacity (default 30 % headroom) to absorb uneven load
  balancing (kube-proxy balances connections, not requests), the autoscaler's reaction time and run-to-run spread,
  then adds ``spare`` replicas so that one can be drained or lost without breaking the budget.

Columns are read by name; extra columns (payload size, dtype, CPU cores, ...) are ignored unless used to filter.
Rows need at least ``model``, ``concurrency``, ``infer_per_s`` and ``p99_ms``. Rows that perf_analyzer could not
stabilise (``stable=no``) are left out unless asked for: their p99 is an average of disagreeing windows.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swish_triton.cli_help import HelpFormatter, usage_error
from swish_triton.errors import SwishError

REQUIRED_COLUMNS = ("model", "concurrency", "infer_per_s", "p99_ms")
# Columns that tell one measured configuration from another; absent ones count as empty.
SERIES_COLUMNS = ("label", "model", "protocol", "shared_memory", "batch_size", "gpu")
DEFAULT_HEADROOM = 0.3


class CapacityError(SwishError):
    """A sweep file or a question the planner cannot answer; the message says why."""


@dataclass(frozen=True)
class SweepPoint:
    """One concurrency level of one configuration (repeated measurements already merged)."""

    series: str
    concurrency: int
    requests_per_s: float  # inferences/s divided by the batch size: what clients send
    p99_ms: float
    runs: int
    queue_compute_ratio: float | None  # Triton's queue time / compute time at this point, where the CSV has it
    gpu: str


@dataclass(frozen=True)
class SeriesPlan:
    """The answer for one configuration."""

    series: str
    gpu: str
    feasible: bool
    reason: str
    point: SweepPoint | None = None
    per_replica_capacity: float = 0.0  # requests/s at p99 within budget, as measured
    per_replica_planned: float = 0.0  # the same with the headroom taken off
    replicas: int = 0  # for the rate, headroom included, spare included
    gpus: int = 0
    min_replicas: int = 0  # HPA bounds: base rate and peak rate, spare included
    max_replicas: int = 0


@dataclass(frozen=True)
class CapacityPlan:
    rate: float
    peak_rate: float
    p99_ms: float
    headroom: float
    spare: int
    gpus_per_replica: int
    assumptions: list[str]
    series: list[SeriesPlan] = field(default_factory=list)

    @property
    def best(self) -> SeriesPlan | None:
        feasible = [s for s in self.series if s.feasible]
        return min(feasible, key=lambda s: (s.replicas, -s.per_replica_capacity)) if feasible else None


def _number(row: dict[str, str], column: str, path: Path, line: int, kind: type = float) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text) if kind is float else int(float(text))
    except ValueError:
        raise CapacityError(f"{path}:{line}: column {column!r} is {text!r}, not a number") from None
    if not math.isfinite(value) or value < 0:
        raise CapacityError(f"{path}:{line}: column {column!r} is {text!r}: expected a finite number >= 0")
    return value


def _series_name(row: dict[str, str]) -> str:
    name = row.get("label") or row.get("model", "")
    parts = [name, row.get("protocol", "")]
    if row.get("shared_memory", "none") not in ("", "none"):
        parts.append(f"{row['shared_memory']} shm")
    if row.get("batch_size", "1") not in ("", "1"):
        parts.append(f"b={row['batch_size']}")
    return " ".join(p for p in parts if p)


def _queue_compute_ratio(row: dict[str, str], batch: int) -> float | None:
    """Triton's total queue time over total compute time at this point: the ratio the chart's autoscaler targets."""
    try:
        queue_us = float(row["queue_us"])
        compute_us = float(row["compute_us"])
    except (KeyError, ValueError):
        return None
    if "requests_per_s" in row:
        # Sweeps that write requests_per_s give queue and compute time both per request.
        return queue_us / compute_us if compute_us > 0 else None
    # Earlier sweeps gave compute time per execution (a batch): scale both back to totals.
    try:
        requests = max(float(row["inference_count"]) // max(batch, 1), 1)
        compute_total = compute_us * float(row["execution_count"])
    except (KeyError, ValueError):
        return None
    return queue_us * requests / compute_total if compute_total > 0 else None


@dataclass
class SweepData:
    points: dict[str, list[SweepPoint]]
    unstable_skipped: int = 0
    client_shared_cores: bool = False  # perf_analyzer ran beside the server and competed for its CPU cores


def read_sweep_csv(
    paths: Iterable[Path], filters: dict[str, str] | None = None, include_unstable: bool = False
) -> SweepData:
    """Points per configuration, from one or more sweep CSVs. ``filters`` keeps rows whose columns equal the values."""
    filters = filters or {}
    unstable = 0
    shared = False
    paths = [Path(p) for p in paths]
    raw: dict[tuple[str, int], list[tuple[float, float, float | None, str]]] = {}
    for path in paths:
        try:
            handle = open(path, newline="")
        except OSError as exc:
            raise CapacityError(f"cannot read the sweep file {path}: {exc.strerror}") from None
        with handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise CapacityError(
                    f"{path}: not a sweep CSV: columns {', '.join(missing)} are missing (it has: {', '.join(header)})"
                )
            unknown = [c for c in filters if c not in header]
            if unknown:
                raise CapacityError(f"{path}: cannot filter on {', '.join(unknown)}: no such column")
            for line, row in enumerate(reader, start=2):
                if any((row.get(c) or "") != v for c, v in filters.items()):
                    continue
                if row.get("stable", "yes") == "no" and not include_unstable:
                    unstable += 1
                    continue
                shared = shared or row.get("client_shares_cores") == "yes"
                batch = int(_number(row, "batch_size", path, line, int)) if row.get("batch_size") else 1
                if batch < 1:
                    raise CapacityError(f"{path}:{line}: batch_size must be at least 1")
                concurrency = int(_number(row, "concurrency", path, line, int))
                infer = _number(row, "infer_per_s", path, line)
                per_s = _number(row, "requests_per_s", path, line) if row.get("requests_per_s") else infer / batch
                p99 = _number(row, "p99_ms", path, line)
                ratio = _queue_compute_ratio(row, batch)
                raw.setdefault((_series_name(row), concurrency), []).append((per_s, p99, ratio, row.get("gpu", "")))
    if not raw:
        where = f" matching {filters}" if filters else ""
        skipped = f" ({unstable} unstable rows left out; --include-unstable keeps them)" if unstable else ""
        raise CapacityError(f"no sweep rows{where} in {', '.join(str(p) for p in paths)}{skipped}")
    points: dict[str, list[SweepPoint]] = {}
    for (series, concurrency), runs in sorted(raw.items()):
        ratios = [r for _, _, r, _ in runs if r is not None]
        points.setdefault(series, []).append(
            SweepPoint(
                series=series,
                concurrency=concurrency,
                requests_per_s=statistics.median(r for r, _, _, _ in runs),
                p99_ms=max(p for _, p, _, _ in runs),
                runs=len(runs),
                queue_compute_ratio=statistics.median(ratios) if ratios else None,
                gpu=runs[-1][3],
            )
        )
    return SweepData(points, unstable, shared)


def assumptions(headroom: float, spare: int, gpus_per_replica: int, data: SweepData | None = None) -> list[str]:
    notes = [
        f"one replica = one Triton server on {gpus_per_replica} GPU(s) of the type, configuration, protocol and "
        "payload the sweep measured; replicas add up linearly",
        "a replica's capacity = the highest measured throughput whose p99 met the budget (no interpolation; repeated "
        "points: median throughput, worst p99)",
        f"headroom {headroom:.0%}: each replica is planned at {1 - headroom:.0%} of that capacity (uneven "
        "connection-level balancing, autoscaler lag, run-to-run spread)",
        f"spare replicas: {spare} on top (a drain or a lost node keeps the budget)",
    ]
    if data is not None and data.unstable_skipped:
        notes.append(f"{data.unstable_skipped} sweep rows perf_analyzer could not stabilise were left out")
    if data is not None and data.client_shared_cores:
        notes.append(
            "perf_analyzer shared the server's CPU cores in (some of) this sweep: a dedicated client host measures "
            "more, so this plan errs on the safe side"
        )
    return notes


def plan_capacity(
    data: SweepData,
    rate: float,
    p99_ms: float,
    peak_rate: float | None = None,
    headroom: float = DEFAULT_HEADROOM,
    spare: int = 1,
    gpus_per_replica: int = 1,
) -> CapacityPlan:
    """Replicas per configuration for ``rate`` requests/s (and HPA bounds up to ``peak_rate``) at p99 <= ``p99_ms``."""
    if not rate > 0:
        raise CapacityError(f"the request rate must be > 0 requests/s, not {rate}")
    if not p99_ms > 0:
        raise CapacityError(f"the p99 budget must be > 0 ms, not {p99_ms}")
    if not 0 <= headroom < 1:
        raise CapacityError(f"headroom is a fraction in [0, 1), not {headroom}")
    if spare < 0 or gpus_per_replica < 1:
        raise CapacityError("spare must be >= 0 and gpus per replica >= 1")
    peak = rate if peak_rate is None else peak_rate
    if peak < rate:
        raise CapacityError(f"the peak rate ({peak}) is below the base rate ({rate})")
    plans: list[SeriesPlan] = []
    for series, pts in data.points.items():
        gpu = pts[-1].gpu
        within = [p for p in pts if p.p99_ms <= p99_ms and p.requests_per_s > 0]
        if not within:
            fastest = min(pts, key=lambda p: p.p99_ms)
            plans.append(
                SeriesPlan(
                    series=series,
                    gpu=gpu,
                    feasible=False,
                    reason=(
                        f"no measured point meets p99 <= {p99_ms:g} ms: the lowest p99 was {fastest.p99_ms:.2f} ms "
                        f"(c={fastest.concurrency}); more replicas do not lower a single request's latency"
                    ),
                )
            )
            continue
        best = max(within, key=lambda p: (p.requests_per_s, -p.p99_ms))
        planned = best.requests_per_s * (1 - headroom)
        replicas = math.ceil(rate / planned) + spare
        peak_replicas = math.ceil(peak / planned) + spare
        plans.append(
            SeriesPlan(
                series=series,
                gpu=gpu,
                feasible=True,
                reason="",
                point=best,
                per_replica_capacity=best.requests_per_s,
                per_replica_planned=planned,
                replicas=replicas,
                gpus=replicas * gpus_per_replica,
                min_replicas=replicas,
                max_replicas=peak_replicas,
            )
        )
    plans.sort(key=lambda s: (not s.feasible, s.replicas, s.series))
    return CapacityPlan(
        rate=rate,
        peak_rate=peak,
        p99_ms=p99_ms,
        headroom=headroom,
        spare=spare,
        gpus_per_replica=gpus_per_replica,
        assumptions=assumptions(headroom, spare, gpus_per_replica, data),
        series=plans,
    )


def format_text(plan: CapacityPlan) -> str:
    lines = [
        f"Capacity for {plan.rate:g} requests/s (peak {plan.peak_rate:g}) at p99 <= {plan.p99_ms:g} ms",
        "",
        f"{'configuration':<32} {'replicas':>8} {'GPUs':>5} {'HPA min/max':>11} {'capacity/replica':>17} "
        f"{'planned/replica':>16} {'at c':>5} {'p99 ms':>7} {'queue/compute':>13}",
    ]
    for s in plan.series:
        if not s.feasible:
            lines.append(f"{s.series:<32} {'-':>8} {'-':>5} {'-':>11}  {s.reason}")
            continue
        assert s.point is not None
        ratio = f"{s.point.queue_compute_ratio:.2f}" if s.point.queue_compute_ratio is not None else "-"
        lines.append(
            f"{s.series:<32} {s.replicas:>8} {s.gpus:>5} {f'{s.min_replicas}/{s.max_replicas}':>11} "
            f"{s.per_replica_capacity:>15.0f}/s {s.per_replica_planned:>14.0f}/s {s.point.concurrency:>5} "
            f"{s.point.p99_ms:>7.2f} {ratio:>13}"
        )
    best = plan.best
    lines.append("")
    if best is None:
        lines.append(f"No configuration meets p99 <= {plan.p99_ms:g} ms.")
    else:
        assert best.point is not None
        lines.append(
            f"Answer: {best.replicas} replicas ({best.gpus} GPUs) of '{best.series}'"
            + (f" on {best.gpu}" if best.gpu not in ("", "none") else " (measured without a GPU)")
            + f"; HPA minReplicas {best.min_replicas}, maxReplicas {best.max_replicas}."
        )
        if best.point.queue_compute_ratio is not None:
            lines.append(
                f"At that capacity Triton's queue/compute ratio was {best.point.queue_compute_ratio:.2f}: an HPA "
                f"target (autoscaling.target) below it scales out before the p99 budget is reached."
            )
    lines.append("Assumes:")
    lines += [f"  - {a}" for a in plan.assumptions]
    return "\n".join(lines)


def format_json(plan: CapacityPlan) -> str:
    data = asdict(plan)
    best = plan.best
    data["best"] = asdict(best) if best else None
    return json.dumps(data, indent=2)


def _parse_filter(text: str) -> tuple[str, str]:
    column, sep, value = text.partition("=")
    if not sep or not column:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE, not {text!r}")
    return column, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swish-capacity",
        description="How many replicas/GPUs serve R requests/s at p99 <= L ms, from perf sweep CSVs "
        "(client/perf_sweep.py).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("csv", nargs="+", type=Path, help="sweep CSV file(s)")
    parser.add_argument("-r", "--rate", type=float, required=True, help="requests/s to serve (the base load)")
    parser.add_argument("-l", "--p99-ms", type=float, required=True, help="p99 latency budget in milliseconds")
    parser.add_argument(
        "--peak-rate", type=float, default=None, help="peak requests/s (HPA maxReplicas); default: rate"
    )
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM, help="fraction of capacity kept free")
    parser.add_argument("--spare", type=int, default=1, help="replicas added on top (drains, node loss)")
    parser.add_argument("--gpus-per-replica", type=int, default=1, help="GPUs of one replica (gpusPerPod)")
    parser.add_argument(
        "-w",
        "--where",
        type=_parse_filter,
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only rows with this column value, e.g. model=swish_py or protocol=grpc (repeatable)",
    )
    parser.add_argument(
        "--include-unstable", action="store_true", help="use rows perf_analyzer could not stabilise (stable=no)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 answered, 2 no configuration meets the budget, 1 bad input."""
    args = build_parser().parse_args(argv)
    try:
        data = read_sweep_csv(args.csv, dict(args.where), include_unstable=args.include_unstable)
        plan = plan_capacity(
            data,
            rate=args.rate,
            p99_ms=args.p99_ms,
            peak_rate=args.peak_rate,
            headroom=args.headroom,
            spare=args.spare,
            gpus_per_replica=args.gpus_per_replica,
        )
    except CapacityError as exc:
        return usage_error(exc, "swish-capacity")
    print(format_json(plan) if args.format == "json" else format_text(plan))
    # The project's exit codes: 1 = the check (here: some configuration meets the objective) failed, 2 = bad input.
    return 0 if plan.best is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
