"""The ``swish-serve`` command line (``python -m swish_triton.serving``): flags with environment defaults.

Serves until Ctrl-C or SIGTERM, then drains and stops; exits non-zero when the server could not start or did not
stop cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swish_triton import settings
from swish_triton.cli_help import HelpFormatter, usage_error
from swish_triton.serving import control_api
from swish_triton.serving.launcher import LauncherError, TritonServer, free_port

SERVING_LINE = "Serving."
"""How the line printed once the server answers begins."""


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Flags whose defaults are the environment's values (read once: ``settings.environment()``); a flag wins."""

    def env(name: str, default: Any = None) -> Any:
        return settings.value(name, environ) if default is None else settings.value(name, environ, default)

    parser = argparse.ArgumentParser(
        description="Serve a model repository with the tritonserver bundled in nvidia-pytriton.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--model-repository",
        type=Path,
        default=env("SWISH_MODEL_REPOSITORY", Path("model_repository")),
        help="the repository to serve ($SWISH_MODEL_REPOSITORY)",
    )
    parser.add_argument(
        "--host", default=env("SWISH_TRITON_HOST"), help="address for every port (not loopback: --expose)"
    )
    parser.add_argument("--http-port", type=int, default=env("SWISH_HTTP_PORT"), help="$SWISH_HTTP_PORT")
    parser.add_argument("--grpc-port", type=int, default=env("SWISH_GRPC_PORT"), help="$SWISH_GRPC_PORT")
    parser.add_argument("--metrics-port", type=int, default=env("SWISH_METRICS_PORT"), help="$SWISH_METRICS_PORT")
    parser.add_argument("--model", action="append", dest="models", help="load only this model (repeatable)")
    parser.add_argument("--strict", action="store_true", help="fail on a broken model entry instead of skipping it")
    parser.add_argument(
        "--api-key",
        default=None,  # not env(): the key must not appear in --help
        help="key for the model-repository, shared-memory, logging and trace APIs (default: $SWISH_API_KEY, else "
        "a random key only this launcher knows; never shown here)",
    )
    parser.add_argument(
        "--api-key-header",
        default=env("SWISH_API_KEY_HEADER"),
        help="HTTP header of the key (gRPC: triton-grpc-protocol-<header>)",
    )
    parser.add_argument(
        "--open-api",
        action="append",
        default=[],
        choices=control_api.RESTRICTED_APIS,
        help="leave this API open without a key (repeatable)",
    )
    parser.add_argument(
        "--exit-timeout",
        type=int,
        default=env("SWISH_EXIT_TIMEOUT"),
        help="seconds requests in flight may take to finish on SIGTERM before the server is stopped anyway",
    )
    parser.add_argument(
        "--expose",
        action="store_true",
        help="allow a --host other than loopback: this tritonserver 2.51 crashes on some hostile tensor shapes "
        "(docs/security.md; the supervisor restarts it); production runs an NGC Triton release with the fixes",
    )
    parser.add_argument("--log-file", type=Path, default=None, help="server log (default: a temporary file)")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for readiness")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="tritonserver --log-verbose level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    environ = settings.environment()
    try:
        parser = build_parser(environ)
    except settings.SettingError as exc:
        return usage_error(exc)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[triton] %(message)s", stream=sys.stdout)
    server = TritonServer(
        args.model_repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        models=args.models,
        log_path=args.log_file,
        ready_timeout_s=args.ready_timeout,
        exit_timeout_s=args.exit_timeout,
        log_verbose=args.verbose,
        api_key=settings.resolve("SWISH_API_KEY", args.api_key or None, environ)[0],
        api_key_header=args.api_key_header,
        open_apis=args.open_api,
        strict=args.strict,
        expose=args.expose,
    )
    stop = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    code: int | None = 0
    try:
        server.start()
        print(f"{SERVING_LINE} HTTP: http://{server.http_url}  gRPC: {server.grpc_url}  Ctrl-C stops.", flush=True)
        while not stop:
            time.sleep(0.2)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = None
    except KeyboardInterrupt:
        pass
    finally:
        status = server.stop()
    if code is None or status not in (0, None):
        if status not in (0, None):
            print(f"error: the server did not stop cleanly (exit status {status})", file=sys.stderr)
        return 1
    return 0


def start_subprocess(
    model_repository: Path,
    model: str,
    http_port: int,
    grpc_port: int,
    *extra: str,
    cwd: Path | None = None,
) -> subprocess.Popen[str]:
    """``python -m swish_triton.serving`` serving `model` on these 127.0.0.1 ports (metrics on a free one), as its
    own process; stdout and stderr together in ``proc.stdout`` (text). What benchmarks and tests run."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swish_triton.serving",
            "--model-repository",
            str(model_repository),
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(free_port()),
            "--model",
            model,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )


def read_until_serving(proc: subprocess.Popen[str]) -> tuple[bool, list[str]]:
    """The output of a `start_subprocess` process up to its serving line: (whether it came, the lines read). False:
    the output ended first (the command exited)."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(SERVING_LINE):
            return True, lines
    return False, lines
