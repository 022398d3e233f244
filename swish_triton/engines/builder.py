"""Command line of the engine builder: build the stale TensorRT plans of the model repository, or check them.

``python -m swish_triton.engines.builder [--check] [MODEL ...]``, ``python build/build_engine.py`` or the console
script ``swish-build-engines``. The work is done by the modules beside this one: ``configs`` (the model table and
what each config.pbtxt must say, beta included), ``host`` (GPU and TensorRT release), ``plugin`` (libswish.so and
its creator), ``networks`` (TensorRT networks and engines), ``records`` (build records and staleness) and
``repository`` (check or build every model). Only building needs TensorRT; ``--check`` runs in a Triton container.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from swish_triton import settings
from swish_triton.cli_help import usage_error
from swish_triton.engines.configs import DEFAULT_MODEL_REPOSITORY, ENGINE_MODEL_NAMES, BuildError, select_models
from swish_triton.engines.host import HostInfo
from swish_triton.engines.plugin import plugin_lib_path
from swish_triton.engines.repository import build_models, check_models
from swish_triton.locations import build_dir

# Outside the model repository: Triton treats every folder there as a model.
DEFAULT_CACHE_DIR = build_dir() / "trt_cache"


def build_arg_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line; defaults from ``environ`` (read once: ``settings.environment()``), which flags override."""
    p = argparse.ArgumentParser(
        prog="build_engine.py",
        description="Build the TensorRT plans of the model repository (only stale ones), or check them (--check). "
        "Each Swish network's beta is the `beta` parameter of the model's config.pbtxt.",
    )
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=f"models to build or check (default: all of {list(ENGINE_MODEL_NAMES)})",
    )
    p.add_argument(
        "--model-repository",
        type=Path,
        default=settings.value("SWISH_MODEL_REPOSITORY", environ, DEFAULT_MODEL_REPOSITORY),
        help="model repository (env SWISH_MODEL_REPOSITORY; default: %(default)s)",
    )
    p.add_argument(
        "--plugin-lib",
        type=Path,
        default=plugin_lib_path(None, environ),
        help="libswish.so to load and fingerprint (env SWISH_PLUGIN_LIB; default: %(default)s)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=settings.value("SWISH_TRT_CACHE_DIR", environ, DEFAULT_CACHE_DIR),
        help="TensorRT timing caches, one per release and GPU (env SWISH_TRT_CACHE_DIR; default: %(default)s)",
    )
    p.add_argument("--check", action="store_true", help="build nothing: report each plan as OK or why it is stale")
    p.add_argument("--force", action="store_true", help="rebuild even plans that are up to date")
    p.add_argument("-v", "--verbose", action="store_true", help="TensorRT's verbose log")
    return p


def _print_progress() -> None:
    """The library logs its progress; the command line prints it, one plain line a message, on stdout."""
    logger = logging.getLogger("swish_triton.engines")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser(settings.environment()).parse_args(argv)
    _print_progress()
    try:
        models = select_models(args.models)
        if args.check:
            outcomes = check_models(args.model_repository, models, HostInfo.detect(), args.plugin_lib)
            for o in outcomes:
                print(o.message)
            return 0 if all(o.status == "fresh" for o in outcomes) else 1
        outcomes = build_models(
            args.model_repository,
            models,
            plugin_lib=args.plugin_lib,
            cache_dir=args.cache_dir,
            force=args.force,
            verbose=args.verbose,
        )
    except BuildError as e:
        return usage_error(e)
    return 0 if all(o.status != "error" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
