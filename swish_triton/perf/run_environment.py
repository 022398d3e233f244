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

import tritonclient.http as httpclient

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


def git_commit() -> str:
    if shutil.which("git") is None:
        return "unknown"
    head = subprocess.run(
        ["git", "-C", str(checkout_root() or Path.cwd()), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(checkout_root() or Path.cwd()), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def environment(http_url: str, model_repository: Path | None = None) -> Environment:
    client = httpclient.InferenceServerClient(http_url)
    try:
        triton = str(client.get_server_metadata().get("version", "unknown"))
    finally:
        client.close()
    return Environment(gpu_name(), triton, tensorrt_version(model_repository), git_commit())


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
