"""Fetch and unpack NVIDIA's TensorRT lean runtime wheels from PyPI, for the plugin's real-TensorRT tests.

The lean runtime (`tensorrt-lean-cu13-libs`: libnvinfer_lean.so.<major>; `tensorrt-lean-cu13-bindings`: the Python
module `tensorrt_lean_bindings`) cannot build engines, but its plugin registry, creators and plugin objects are
TensorRT's own. Wheels are downloaded once with pip into a cache folder and unpacked next to it:

    <cache>/<version>/site/tensorrt_lean_libs/libnvinfer_lean.so.<major>
    <cache>/<version>/site/tensorrt_lean_bindings/...

The cache is $SWISH_TENSORRT_LEAN_CACHE, else ~/.cache/swish-triton/tensorrt-lean.

    python scripts/fetch_tensorrt_lean.py                  # the default versions, prints each lean library's path
    python scripts/fetch_tensorrt_lean.py 11.4.0.106 --no-bindings
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# One release per TensorRT major the plugin is tested against (headers 10.16 and 11.1; an 11.1 build runs in 11.4).
DEFAULT_VERSIONS = {"10": "10.16.1.11", "11": "11.4.0.106"}
PACKAGES = ("tensorrt-lean-cu13-libs", "tensorrt-lean-cu13-bindings")


class FetchError(RuntimeError):
    """The wheel could not be downloaded or unpacked (no network, no such version, no pip)."""


def cache_dir() -> Path:
    env = os.environ.get("SWISH_TENSORRT_LEAN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "swish-triton" / "tensorrt-lean"


def major_of(version: str) -> str:
    return version.split(".", maxsplit=1)[0]


def site_dir(version: str, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / version / "site"


def lean_library(version: str, cache: Path | None = None) -> Path:
    return site_dir(version, cache) / "tensorrt_lean_libs" / f"libnvinfer_lean.so.{major_of(version)}"


def fetch(version: str, *, bindings: bool = True, cache: Path | None = None) -> Path:
    """Download (once) and unpack the lean runtime `version`; returns the site folder holding both packages."""
    site = site_dir(version, cache)
    wanted = {"tensorrt_lean_libs": PACKAGES[0]}
    if bindings:
        wanted["tensorrt_lean_bindings"] = PACKAGES[1]
    missing = [pkg for module, pkg in wanted.items() if not (site / module / "__init__.py").is_file()]
    if not missing:
        return site
    wheels = site.parent / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for package in missing:
        # The bindings are CPython-version specific: pip picks the wheel of the interpreter running this script.
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        cmd += ["--dest", str(wheels), f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise FetchError(f"pip download {package}=={version} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        name = package.replace("-", "_")
        found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
        if not found:
            raise FetchError(f"pip download {package}=={version} left no wheel in {wheels}")
        # Unpack into a temporary folder first, so that an interrupted run never leaves a half-written package.
        with tempfile.TemporaryDirectory(dir=site.parent) as tmp:
            with zipfile.ZipFile(found[-1]) as archive:
                archive.extractall(tmp)
            module = next(m for m, p in wanted.items() if p == package)
            site.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(site / module, ignore_errors=True)
            shutil.move(str(Path(tmp) / module), str(site / module))
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("versions", nargs="*", default=list(DEFAULT_VERSIONS.values()), help="e.g. 10.16.1.11")
    parser.add_argument("--no-bindings", action="store_true", help="only the libraries (no Python module)")
    args = parser.parse_args(argv)
    try:
        for version in args.versions:
            fetch(version, bindings=not args.no_bindings)
            print(lean_library(version))
    except FetchError as error:
        print(f"fetch_tensorrt_lean: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
