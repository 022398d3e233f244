#!/usr/bin/env python3
"""Serving benchmark: the Swish Python-backend model against an identity model of the same backend, batching on
and off, 1/2/4 instances, HTTP vs gRPC, system shared memory on and off. One embedded tritonserver serves every
variant side by side; each Swish variant is validated against swish_ref first; perf_analyzer measures each point;
Swish / identity ratios are computed from points of the same run (with --rounds N, per round and their median: the
variants are swept in turn, the order reversed every other round, so that drift on a shared host hits both sides).

    python bench/serving_bench.py --out results/serving          # make bench
    python bench/serving_bench.py --quick                         # a shorter run
    python bench/serving_bench.py --profile ...                   # models log where execute() spends its time

Writes <out>.csv (appended), <out>.md and <out>.png (and <out>-profile.txt with --profile) and prints the table and
the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from pathlib import Path

from swish_triton import settings
from swish_triton.cli_help import HelpFormatter
from swish_triton.clients.validation import run_validation
from swish_triton.perf.sweep import SweepRow, append_csv, markdown_table, plot, run_sweep
from swish_triton.serving.launcher import TritonServer, free_port
from swish_triton.serving.model_variants import Variant, write_repository

REPO = Path(__file__).resolve().parent.parent

# Names say instances (i) and dynamic-batching queue delay in microseconds (d). The shipped swish_py is swish_i2_d0.
VARIANTS = [
    Variant("swish_i2_d0", "swish_py", instances=2, queue_delay_us=0),
    Variant("identity_i2_d0", "identity_py", instances=2, queue_delay_us=0),
    Variant("swish_nobatch", "swish_py", instances=2, dynamic_batching=False),
    Variant("swish_i1_d0", "swish_py", instances=1, queue_delay_us=0),
    Variant("swish_i4_d0", "swish_py", instances=4, queue_delay_us=0),
    Variant("identity_i4_d0", "identity_py", instances=4, queue_delay_us=0),
    # A queue delay waits for fuller batches: it costs latency at low concurrency.
    Variant("swish_i2_d200", "swish_py", instances=2, queue_delay_us=200),
    Variant("identity_i2_d200", "identity_py", instances=2, queue_delay_us=200),
    # Attribution: the CPU path only (no GPU initialised), every batch on the GPU however small, and an identity
    # model that returns fresh arrays (as any computing model must) instead of views of its inputs.
    Variant("swish_cpu_i2_d0", "swish_py", instances=2, queue_delay_us=0, parameters=(("device", "cpu"),)),
    Variant("swish_numpy_i2_d0", "swish_py", instances=2, queue_delay_us=0, parameters=(("cpu_kernel", "numpy"),)),
    Variant("swish_gpu_i2_d0", "swish_py", instances=2, queue_delay_us=0, parameters=(("gpu_min_elements", "0"),)),
    Variant("swish_gpu_i4_d0", "swish_py", instances=4, queue_delay_us=0, parameters=(("gpu_min_elements", "0"),)),
    Variant("identity_copy_i2_d0", "identity_py", instances=2, queue_delay_us=0, parameters=(("copy", "yes"),)),
]
# --profile: every variant logs where its execute() time goes (the Python models' profile_every parameter).
PROFILE = (("profile_every", "5000"),)
PAIRS = (
    ("swish_i2_d0", "identity_i2_d0"),
    ("swish_i4_d0", "identity_i4_d0"),
    ("swish_gpu_i2_d0", "identity_i2_d0"),
    ("swish_gpu_i4_d0", "identity_i4_d0"),
    ("swish_cpu_i2_d0", "identity_i2_d0"),
    ("swish_i2_d200", "identity_i2_d200"),
    ("swish_i2_d0", "identity_copy_i2_d0"),
)


def point(
    rows: list[SweepRow], label: str, c: int, protocol: str = "grpc", shm: str = "none", round_: int = 0
) -> SweepRow | None:
    for r in rows:
        if (r.label, r.concurrency, r.protocol, r.shared_memory) == (label, c, protocol, shm) and (
            not round_ or f"round {round_}" in r.measurement.split("; ")
        ):
            return r
    return None


def ratios(rows: list[SweepRow], rounds: int = 1) -> list[str]:
    """Each Swish configuration against its identity twin (same instances, batching and delay), measured in the
    same run: throughput at c=32 and c=64, p50 at c=1, and dynamic batching against none at c=32."""
    lines = []

    def measured(what: str, values: list[float]) -> None:
        if not values:
            return
        if len(values) == 1:
            lines.append(f"{what}: {values[0]:.2f}")
        else:
            each = ", ".join(f"{v:.2f}" for v in values)
            lines.append(f"{what}: median {statistics.median(values):.2f} over {len(values)} rounds ({each})")

    round_numbers = list(range(1, rounds + 1)) if rounds > 1 else [0]
    for swish, identity in PAIRS:
        for c in (32, 64):
            values = []
            for k in round_numbers:
                s, i = point(rows, swish, c, round_=k), point(rows, identity, c, round_=k)
                if s and i:
                    values.append(s.infer_per_s / i.infer_per_s)
            measured(f"throughput {swish} / {identity} at c={c}", values)
        values = []
        for k in round_numbers:
            s, i = point(rows, swish, 1, round_=k), point(rows, identity, 1, round_=k)
            if s and i:
                values.append(s.p50_ms / i.p50_ms)
        measured(f"p50 at c=1 {swish} / {identity}", values)
    for swish in ("swish_i2_d0", "swish_i4_d0"):
        values = []
        for k in round_numbers:
            s, n = point(rows, swish, 32, round_=k), point(rows, "swish_nobatch", 32, round_=k)
            if s and n:
                values.append(s.infer_per_s / n.infer_per_s)
        measured(f"throughput {swish} / swish_nobatch at c=32", values)
    return lines


def cpu_list(text: str) -> set[int]:
    """CPUs named like taskset's list: "0-11,14" -> {0, ..., 11, 14}."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise argparse.ArgumentTypeError(f"not a CPU list: {text!r} (e.g. 0-11,14)")
        low, high = int(first), int(last or first)
        if high < low:
            raise argparse.ArgumentTypeError(f"not a CPU list: {text!r} ({part} runs backwards)")
        cpus.update(range(low, high + 1))
    return cpus


def cpu_text(cpus: set[int]) -> str:
    """The inverse of cpu_list, with ranges: {0, 1, 2, 5} -> "0-2,5"."""
    ordered = sorted(cpus)
    runs: list[list[int]] = []
    for cpu in ordered:
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "serving")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--measurement-interval", type=int, default=1000, help="ms per perf_analyzer window")
    parser.add_argument("--quick", action="store_true", help="fewer variants and points (a smoke run)")
    parser.add_argument(
        "--input-data",
        default="random",
        help="random (perf_analyzer's random bytes, as the published tables), zero, normal (N(0, 1) values, like "
        "activations) or a perf_analyzer input file",
    )
    parser.add_argument("--log", type=Path, default=None, help="tritonserver log file")
    parser.add_argument("--cuda-shm", action="store_true", help="also sweep with CUDA shared memory (GPU hosts)")
    parser.add_argument("--variants", nargs="+", help="only these variants (default: all)")
    parser.add_argument("--profile", action="store_true", help="models log their execute() phases (server log)")
    parser.add_argument("--no-protocol-sweeps", action="store_true", help="skip the HTTP and shared-memory sweeps")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="sweep the gRPC variants N times, in turn, the order reversed each round",
    )
    parser.add_argument(
        "--server-cpus",
        type=cpu_list,
        help="CPUs for tritonserver and its stubs, e.g. 0-11 (default: all); with --client-cpus the two sides stop "
        "taking cores from each other",
    )
    parser.add_argument("--client-cpus", type=cpu_list, help="CPUs for perf_analyzer, e.g. 12-15 (default: all)")
    args = parser.parse_args(argv)
    all_cpus = os.sched_getaffinity(0)
    for name in ("server_cpus", "client_cpus"):
        if getattr(args, name) and not getattr(args, name) <= all_cpus:
            parser.error(f"--{name.replace('_', '-')}: CPUs {sorted(getattr(args, name) - all_cpus)} are not available")

    wanted = ("swish_i2_d0", "swish_nobatch", "identity_i2_d0") if args.quick else args.variants
    variants = [v for v in VARIANTS if not wanted or v.name in wanted]
    if args.profile:
        variants = [dataclasses.replace(v, parameters=v.parameters + PROFILE) for v in variants]
    concurrency = [1, 8] if args.quick else args.concurrency
    with tempfile.TemporaryDirectory() as tmp:
        repo = write_repository(REPO / "model_repository", Path(tmp) / "repo", variants)
        server = TritonServer(
            repo,
            http_port=free_port(),
            grpc_port=free_port(),
            metrics_port=free_port(),
            # Kept until the end: the models write their profile into it when they unload.
            log_path=args.log or Path(tmp) / "tritonserver.log",
            # The shared-memory sweeps register regions: that API is locked by default (docs/security.md).
            open_apis=("shared-memory",),
        )
        rows: list[SweepRow] = []
        failures: list[str] = []
        server_cpus, client_cpus = cpu_text(args.server_cpus or all_cpus), cpu_text(args.client_cpus or all_cpus)
        pinned = (
            f"server on CPUs {server_cpus}, perf_analyzer on {client_cpus}"
            if args.server_cpus or args.client_cpus
            else ""
        )

        def sweep(name: str, protocol: str, shm: str = "none", round_: int = 0) -> None:
            try:
                swept = run_sweep(
                    server.http_url,
                    server.grpc_url,
                    [name],
                    [protocol],
                    concurrency,
                    shared_memory=[shm],
                    label=name,
                    measurement_ms=args.measurement_interval,
                    max_trials=10,
                    stability_percentage=20,
                    input_data=args.input_data,
                )
                if round_:
                    swept = [dataclasses.replace(r, measurement=f"{r.measurement}; round {round_}") for r in swept]
                if pinned:
                    swept = [dataclasses.replace(r, measurement=f"{r.measurement}; {pinned}") for r in swept]
                rows.extend(swept)
            except RuntimeError as exc:  # one failed point must not lose the others
                failures.append(f"{name} {protocol} shm={shm}: {str(exc).splitlines()[-1]}")
                print(f"FAILED: {failures[-1]}", flush=True)

        # tritonserver and the stubs it starts inherit the CPUs this process has when it starts them; perf_analyzer,
        # started later, those it has then (a server restarted by the supervisor mid-run would get the client's).
        os.sched_setaffinity(0, args.server_cpus or all_cpus)
        with server:
            os.sched_setaffinity(0, args.client_cpus or all_cpus)
            # What is measured must be right first: each Swish variant against swish_ref (swish_triton.reference).
            for v in variants:
                if v.base.startswith("swish"):
                    report = run_validation(server.grpc_url, "grpc", v.name)
                    print(report.summary(), flush=True)
                    if not report.ok:
                        failures.append(report.summary())
            for k in range(1, args.rounds + 1):
                for v in variants if k % 2 else variants[::-1]:
                    sweep(v.name, "grpc", round_=k if args.rounds > 1 else 0)
            # Protocol and shared memory, on the main configuration and the identity model.
            for name in () if args.no_protocol_sweeps else ("swish_i2_d0", "identity_i2_d0"):
                sweep(name, "http")
                sweep(name, "grpc", "system")
                if args.cuda_shm:
                    sweep(name, "grpc", "cuda")
            where = [line for line in server.log_tail(2000).splitlines() if "Swish with beta" in line]
        # The models log their profile when they unload, so the log is read after the server has stopped.
        profile = [line.split("] ", 1)[-1] for line in server.log_tail(20_000).splitlines() if " profile: " in line]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The commit recorded is the measured checkout's (perf.run_environment.git_commit); SWISH_COMMIT names it for a
    # checkout copied to a host without its history: the copier knows what it copied.
    commit = settings.value("SWISH_COMMIT")
    if commit:
        rows = [dataclasses.replace(r, commit=commit) for r in rows]
    append_csv(rows, args.out.with_suffix(".csv"))
    summary = ratios(rows, args.rounds)
    text = markdown_table(rows) + "\n\n" + "\n".join(f"- {line}" for line in summary + failures) + "\n"
    args.out.with_suffix(".md").write_text(text)
    if profile:
        args.out.with_name(args.out.name + "-profile.txt").write_text("\n".join(profile) + "\n")
    try:
        plot(
            [r for r in rows if r.protocol == "grpc" and r.shared_memory == "none"],
            args.out.with_suffix(".png"),
            "Python backend, gRPC, 1x1024 FP32: throughput vs p99",
        )
    except ImportError as exc:  # no matplotlib: the CSV holds everything, plot it elsewhere
        print(f"no plot ({exc})")
    print(text)
    print("\n".join(where[:2]))
    if profile:
        # The last report of each model holds its sums since it loaded.
        print("\n".join(profile[-60:]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
