"""Profiling recipes for the TensorRT engines: trtexec timings, an Nsight Systems timeline, Nsight Compute kernels.

Prints the commands (default) or runs them (``--run``, on a host with TensorRT's trtexec and the Nsight tools).
The plan, plugin library, input name and shapes come from the same places the engine builder uses, so the commands
match the engines in model_repository/. CLI: ``python -m swish_triton.engines.profiling [--run] [--model swish]``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swish_triton.cli_help import usage_error
from swish_triton.engines.configs import (
    DEFAULT_MODEL_REPOSITORY,
    ENGINE_MODELS,
    BuildError,
    EngineModel,
    model_io,
    select_models,
)
from swish_triton.engines.plugin import plugin_lib_path
from swish_triton.engines.records import plan_path
from swish_triton.limits import ENGINE_PROFILE
from swish_triton.locations import build_dir

DEFAULT_OUT_DIR = build_dir() / "profiles"
DEFAULT_SHAPE = (ENGINE_PROFILE.opt_batch, ENGINE_PROFILE.opt_length)
# The kernel-name filter for Nsight Compute: the plugin's kernels have "swish" in their names (any case).
PLUGIN_KERNEL_REGEX = "regex:[Ss]wish"
TRT11_NOTE = (
    "TensorRT 11's trtexec makes --useCudaGraph, --noDataTransfers and --separateProfileRun the default and only "
    "warns that they are deprecated; TensorRT 10 needs them spelled out, so the commands keep them."
)


@dataclass(frozen=True)
class Recipe:
    name: str
    purpose: str
    argv: tuple[str, ...]

    @property
    def tool(self) -> str:
        return self.argv[0]

    def command(self) -> str:
        return shlex.join(self.argv)


def _shape_arg(input_name: str, shape: tuple[int, int]) -> str:
    return f"{input_name}:{shape[0]}x{shape[1]}"


def check_shape(shape: tuple[int, int]) -> None:
    lo, _, hi = ENGINE_PROFILE.shapes()
    if not (lo[0] <= shape[0] <= hi[0] and lo[1] <= shape[1] <= hi[1]):
        raise BuildError(f"shape {shape[0]}x{shape[1]} is outside the engine profile {lo} .. {hi}")


def trtexec_argv(
    model: EngineModel,
    model_repository: Path,
    plugin_lib: Path,
    shape: tuple[int, int],
    *extra: str,
) -> tuple[str, ...]:
    """trtexec running a built plan at one shape, timing the GPU work only (no host copies), through a CUDA graph."""
    io = model_io(model, model_repository)
    argv = ["trtexec", f"--loadEngine={plan_path(model_repository, model.name)}"]
    if model.needs_plugin:
        argv.append(f"--staticPlugins={plugin_lib}")
    argv += [f"--shapes={_shape_arg(io.input_name, shape)}", "--noDataTransfers", "--useCudaGraph"]
    return (*argv, *extra)


def recipes(
    model_name: str = "swish",
    *,
    model_repository: Path = DEFAULT_MODEL_REPOSITORY,
    plugin_lib: Path | None = None,
    shape: tuple[int, int] = DEFAULT_SHAPE,
    out_dir: Path = DEFAULT_OUT_DIR,
) -> list[Recipe]:
    """The profiling commands for one model, then trtexec for the other engines at the same shape to compare with."""
    check_shape(shape)
    (model,) = select_models([model_name])
    lib = plugin_lib_path(plugin_lib)
    out = Path(out_dir)
    tag = f"{model.name}_{shape[0]}x{shape[1]}"
    run = [
        Recipe(
            f"trtexec-{model.name}",
            "latency/throughput percentiles and a per-layer profile (median GPU time per layer)",
            trtexec_argv(
                model,
                model_repository,
                lib,
                shape,
                "--warmUp=500",
                "--duration=10",
                "--separateProfileRun",
                "--dumpProfile",
                f"--exportTimes={out / f'{tag}_times.json'}",
                f"--exportProfile={out / f'{tag}_profile.json'}",
            ),
        ),
        Recipe(
            f"nsys-{model.name}",
            'timeline: kernels and launch gaps around each enqueue (the plugin\'s kernels have "swish" in their names)',
            (
                "nsys",
                "profile",
                "--trace=cuda,nvtx,osrt",
                "--force-overwrite=true",
                f"--output={out / f'{tag}_nsys'}",
                *trtexec_argv(model, model_repository, lib, shape, "--warmUp=200", "--duration=3"),
            ),
        ),
    ]
    ncu_filter = ["--kernel-name", PLUGIN_KERNEL_REGEX] if model.needs_plugin else []
    run.append(
        Recipe(
            f"ncu-{model.name}",
            "per-kernel metrics (DRAM throughput vs peak, achieved occupancy) of a few launches after warm-up",
            (
                "ncu",
                "--target-processes=all",
                *ncu_filter,
                "--launch-skip=10",
                "--launch-count=3",
                "--set=full",
                "--force-overwrite",
                f"--export={out / f'{tag}_ncu'}",
                *trtexec_argv(model, model_repository, lib, shape, "--warmUp=0", "--duration=0", "--iterations=20"),
            ),
        )
    )
    for other in ENGINE_MODELS:
        if other.name != model.name:
            run.append(
                Recipe(
                    f"trtexec-{other.name}",
                    f"the same timing for {other.name} ({other.graph.value}, {other.data_type}) to compare with",
                    trtexec_argv(other, model_repository, lib, shape, "--warmUp=500", "--duration=10"),
                )
            )
    return run


def run_recipes(selected: Sequence[Recipe], model_repository: Path, out_dir: Path) -> int:
    """Run each recipe whose tool is on PATH; returns the number that failed or could not run."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    failures = 0
    for recipe in selected:
        if shutil.which(recipe.tool) is None:
            print(f"skip {recipe.name}: {recipe.tool} is not on PATH", flush=True)
            failures += 1
            continue
        print(f"$ {recipe.command()}", flush=True)
        done = subprocess.run(recipe.argv, check=False)
        if done.returncode != 0:
            print(f"{recipe.name}: exit status {done.returncode}", flush=True)
            failures += 1
    return failures


def _parse_shape(text: str) -> tuple[int, int]:
    batch, sep, length = text.lower().partition("x")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected BATCHxLENGTH, e.g. 16x1024, got {text!r}")
    return int(batch), int(length)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--model", default="swish", help="engine to profile (default: %(default)s)")
    p.add_argument(
        "--shape",
        type=_parse_shape,
        default=DEFAULT_SHAPE,
        help="BATCHxLENGTH (default: the profile's opt shape, %(default)s)",
    )
    p.add_argument("--model-repository", type=Path, default=DEFAULT_MODEL_REPOSITORY, help="(default: %(default)s)")
    p.add_argument("--plugin-lib", type=Path, default=None, help="libswish.so (default: $SWISH_PLUGIN_LIB or .build)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="reports folder (default: %(default)s)")
    p.add_argument("--run", action="store_true", help="run the commands (needs trtexec, nsys, ncu and a built plan)")
    args = p.parse_args(argv)
    try:
        selected = recipes(
            args.model,
            model_repository=args.model_repository,
            plugin_lib=args.plugin_lib,
            shape=args.shape,
            out_dir=args.out,
        )
    except BuildError as e:
        return usage_error(e)
    if not args.run:
        print(f"# Profiling recipes for {args.model} at {args.shape[0]}x{args.shape[1]} (reports in {args.out}/)")
        print("# Build the plans first: make engines.")
        print(f"# {TRT11_NOTE}")
        print(f"mkdir -p {shlex.quote(str(args.out))}")
        for recipe in selected:
            print(f"\n# {recipe.name}: {recipe.purpose}\n{recipe.command()}")
        return 0
    plan = plan_path(args.model_repository, args.model)
    if not plan.is_file():
        print(f"error: no plan at {plan}: build it with `make engines`", file=sys.stderr)
        return 2
    return 1 if run_recipes(selected, args.model_repository, args.out) else 0


if __name__ == "__main__":
    raise SystemExit(main())
