"""What a measurement ran on: GPU and driver, Triton and TensorRT versions, commit, and the client's cores.

Every sweep row and benchmark record carries these, so results from different hosts and runs can be compared.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from swish_triton.locations import checkout_root


@dataclass(frozen=True)
class Environment:
    gpu: str
    triton_version: str
    tensorrt_version: str
    commit: str


def gpu_name() -> str:
    if shutil.which("nvidia-smi") is None:
        return "none"
    proc = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True
    )
    first = proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else ""
    return first.replace(", ", " driver ") if first else "none"


def tensorrt_version(model_repository: Path | None = None) -> str:
    """The TensorRT the served plans were built with (their JSON records), else the one this process can import."""
    if model_repository is not None:
        for record in sorted(model_repository.glob("*/1/model.plan.json")):
            try:
                return str(json.loads(record.read_text())["tensorrt_version"])
            except (ValueError, KeyError):
                continue
    try:
        import tensorrt

        return str(getattr(tensorrt, "__version__", "none"))
    except ImportError:
        return "none"


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)


def git_commit(checkout: Path | None = None, override: str | None = None) -> str:
    """The commit of the code being measured, ``-dirty`` when its tracked files differ from it.

    ``override`` (``$SWISH_COMMIT``, read by the command) wins: a checkout copied without its history knows its commit
    only from whoever copied it. Else the commit of ``checkout``, by default the checkout that holds the imported
    swish_triton package (``locations.checkout_root()``). ``"unknown"`` where that folder is not the top of a git
    checkout (an installed package, a copy without ``.git``): never the commit of a repository that merely encloses
    it, nor that of the working directory.
    """
    if override:
        return override
    root = checkout if checkout is not None else checkout_root()
    if root is None or shutil.which("git") is None:
        return "unknown"
    top = _git(root, "rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != Path(root).resolve():
        return "unknown"
    head = _git(root, "rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def measured_checkout(model_repository: Path | None = None) -> Path | None:
    """The checkout a measurement's commit is that of: the one holding the imported package, else (an installed
    package) the one holding the served model repository."""
    root = checkout_root()
    if root is None and model_repository is not None:
        root = Path(model_repository).resolve().parent
    return root


def environment(http_url: str, model_repository: Path | None = None) -> Environment:
    from swish_triton.perf.server_stats import http_client

    with http_client(http_url) as client:
        triton = str(client.get_server_metadata().get("version", "unknown"))
    commit = git_commit(measured_checkout(model_repository))
    return Environment(gpu_name(), triton, tensorrt_version(model_repository), commit)


def client_cores() -> int:
    """CPU cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 0


def server_is_local(url: str) -> str:
    """ "yes" when ``host:port`` names this host (client and server compete for the same cores), else "no"."""
    host = url.rsplit(":", 1)[0].strip("[]") if ":" in url else url
    if host in ("localhost", socket.gethostname(), socket.getfqdn()):
        return "yes"
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return "unknown"
    if address.is_loopback or address.is_unspecified:
        return "yes"
    try:
        own = {ipaddress.ip_address(a) for a in socket.gethostbyname_ex(socket.gethostname())[2]}
    except OSError:
        own = set()
    return "yes" if address in own else "no"
