"""The processes and shared-memory files that belong to one embedded tritonserver, found through /proc and /dev/shm.

The launcher names every Python-backend shared-memory region with a per-launch prefix
(``--backend-config=python,shm-region-prefix-name=<prefix>``); each stub process carries its region name on its
command line (``triton_python_backend_stub <model.py> <prefix><uuid> ... <instance name> ...``). That prefix is
enough to find a server's stubs (alive, or orphaned after a crash: tritonserver 2.51 leaves them running, parent
PID 1, ignoring SIGTERM), end them and remove its ``/dev/shm`` files. ``listening_pids`` says which process
listens on a port, so a readiness check can tell our tritonserver from another server on the same port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")  # noqa: S108 - where POSIX shared memory lives, not a temporary file
STUB_NAME = "triton_python_backend_stub"


@dataclass(frozen=True)
class StubProcess:
    pid: int
    model: str  # the model's folder name, from the model.py path
    instance: str  # Triton's instance name, e.g. swish_py_0_1
    region: str = ""  # its shared-memory region name (the launch's prefix, then a unique part)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    """Running and not a zombie (a dead stub stays a zombie until tritonserver reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def stub_processes(prefix: str) -> list[StubProcess]:
    """Live stub processes whose shared-memory region starts with ``prefix``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = _cmdline(int(entry.name))
        if len(args) < 3 or not args[0].endswith(STUB_NAME) or not args[2].startswith(prefix):
            continue
        if not _alive(int(entry.name)):
            continue
        model = Path(args[1]).parent.parent.name
        instance = args[-2] if len(args) >= 10 else "?"
        found.append(StubProcess(int(entry.name), model, instance, args[2]))
    return found


def end_processes(pids: list[int]) -> None:
    """SIGKILL: stubs of a crashed server ignore SIGTERM, and their state is of no use to anyone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def end_stubs(prefix: str) -> list[StubProcess]:
    stubs = stub_processes(prefix)
    end_processes([s.pid for s in stubs])
    return stubs


def shm_regions(prefix: str) -> list[Path]:
    try:
        return [p for p in SHM_DIR.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []


def remove_shm_regions(prefix: str) -> list[Path]:
    """Delete this server's /dev/shm files (unlink is safe while a process still maps one)."""
    removed = []
    for path in shm_regions(prefix):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def remove_shm_regions_named(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (SHM_DIR / name).unlink()


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address is HEXIP:HEXPORT; state 0A is LISTEN
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def listening_pids(port: int, candidates: list[int]) -> set[int]:
    """Which of ``candidates`` hold a listening socket on ``port`` (only their fds are read, so it stays cheap)."""
    inodes = {f"socket:[{i}]" for i in _listening_inodes(port)}
    owners = set()
    for pid in candidates:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        owners.add(pid)
                        break
    return owners


# A launch's prefix carries the launcher's PID: swish_p<pid>_<random>_ (launcher.TritonServer.shm_prefix).
LAUNCH_PREFIX = re.compile(r"^(swish_p(\d+)_[0-9a-f]+_)")


def orphaned_prefixes() -> set[str]:
    """Prefixes of launches whose launcher is gone (killed with SIGKILL, so it could not clean up): stubs or
    /dev/shm files named with them are leftovers. A launcher that still runs (or a new process that got its PID)
    keeps its own."""
    names = [p.name for p in shm_regions("swish_p")] + [s.region for s in stub_processes("swish_p")]
    prefixes = set()
    for name in names:
        match = LAUNCH_PREFIX.match(name)
        if match and not _alive(int(match.group(2))):
            prefixes.add(match.group(1))
    return prefixes


def clean_orphans() -> tuple[int, int]:
    """End the stubs and remove the /dev/shm files of launches whose launcher is gone; (stubs, files)."""
    stubs = files = 0
    for prefix in orphaned_prefixes():
        stubs += len(end_stubs(prefix))
        files += len(remove_shm_regions(prefix))
    return stubs, files
