"""Everything the product can be configured with from the environment: one registry, one precedence rule.

Every environment variable swish-triton reads is a :class:`Setting` in :data:`REGISTRY`, with its type, default,
meaning and the flag that overrides it. The rule is the same everywhere: **a command-line flag wins over the
environment, which wins over the default**; an empty variable counts as unset.

This module is the only one in the package that reads ``os.environ`` for a registered name. Commands read the
environment once, where they start (a console script's ``main``, the launcher's command line, a Triton model's
``initialize``), and pass the values down as arguments. Variables read by the container images' entrypoints
(``docker/triton-entrypoint.sh``, ``docker/engines-entrypoint.sh``) are registered here too, with the default they
have in the images.

``python -m swish_triton.settings`` prints the table the README carries (``--markdown``, the default) or the
values in effect (``--show``; keys are never printed).

Imports only the standard library: the clients import it before gevent patches the standard library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swish_triton.errors import SwishError

# What a variable counts as in the table: the command-line tools of the package, or the container images.
PACKAGE = "package"
IMAGE = "image"


class SettingError(SwishError):
    """An environment variable holds a value of the wrong type; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: Callable[[str], Any]  # str, int or Path: turns the variable's text into the value
    default: Any  # the value without flag or variable (None: unset, or computed where documented)
    default_text: str  # the default as the table states it
    flag: str  # the flag that wins over the variable ("" where there is none)
    read_by: str  # the commands that read it
    meaning: str
    image_default: str = ""  # the default in the container images, where their entrypoints read it
    secret: bool = False  # never printed

    @property
    def scope(self) -> str:
        return IMAGE if self.read_by == "container images" else PACKAGE


# Triton's ports: the launcher serves on them and the clients call them.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
DEFAULT_KEY_HEADER = "swish-api-key"
DEFAULT_EXIT_TIMEOUT_S = 30

_CLIENTS = "clients (swish-validate, swish-concurrency, swish-perf-sweep, swish-hostile)"
_IMAGES = "container images"
_MODEL_REPO_IMAGE = "/var/lib/swish/model_repository"
_PLUGIN_IMAGE = "$SWISH_HOME/lib/libswish.so"

REGISTRY: tuple[Setting, ...] = (
    Setting(
        "SWISH_TRITON_HOST",
        str,
        DEFAULT_HOST,
        f"`{DEFAULT_HOST}`",
        "swish-serve `--host`; clients `-u`",
        f"swish-serve, {_CLIENTS}",
        "address swish-serve binds and the clients call (another than loopback needs `--expose`; `0.0.0.0` is "
        "called as `127.0.0.1`)",
    ),
    Setting(
        "SWISH_HTTP_PORT",
        int,
        DEFAULT_PORTS["http"],
        str(DEFAULT_PORTS["http"]),
        "swish-serve `--http-port`; clients `-u`",
        f"swish-serve, {_CLIENTS}",
        "HTTP port",
    ),
    Setting(
        "SWISH_GRPC_PORT",
        int,
        DEFAULT_PORTS["grpc"],
        str(DEFAULT_PORTS["grpc"]),
        "swish-serve `--grpc-port`; clients `-u`",
        f"swish-serve, {_CLIENTS}",
        "gRPC port",
    ),
    Setting(
        "SWISH_METRICS_PORT",
        int,
        DEFAULT_PORTS["metrics"],
        str(DEFAULT_PORTS["metrics"]),
        "swish-serve `--metrics-port`",
        "swish-serve",
        "metrics port",
    ),
    Setting(
        "TRITON_HTTP_URL",
        str,
        None,
        "(unset)",
        "clients `-u http=HOST:PORT`",
        _CLIENTS,
        "`HOST:PORT` of the HTTP endpoint; overrides host and port",
    ),
    Setting(
        "TRITON_GRPC_URL",
        str,
        None,
        "(unset)",
        "clients `-u grpc=HOST:PORT`",
        _CLIENTS,
        "`HOST:PORT` of the gRPC endpoint; overrides host and port",
    ),
    Setting(
        "TRITON_URL",
        str,
        None,
        "(unset)",
        "clients `-u`",
        _CLIENTS,
        "`HOST:PORT` of the HTTP endpoint, as perf_analyzer's `-u`; gRPC takes only its host (so "
        "`TRITON_URL=127.0.0.1:28000 make validate` sends gRPC to `127.0.0.1:8001`, or to `SWISH_GRPC_PORT`)",
    ),
    Setting(
        "SWISH_MODEL_REPOSITORY",
        Path,
        None,
        "swish-serve: `./model_repository`; engine builder, benchmarks: the checkout's `model_repository/`",
        "`--model-repository`",
        "swish-serve, swish-build-engines, benchmarks, container images",
        "the model repository",
        image_default=f"`{_MODEL_REPO_IMAGE}`",
    ),
    Setting(
        "SWISH_API_KEY",
        str,
        None,
        "a random key only the launcher knows",
        "`--api-key`",
        "swish-serve, `python -m swish_triton.serving.health`, container images",
        "key of the locked APIs ([docs/security.md](docs/security.md))",
        image_default="(none: required)",
        secret=True,
    ),
    Setting(
        "SWISH_API_KEY_HEADER",
        str,
        DEFAULT_KEY_HEADER,
        f"`{DEFAULT_KEY_HEADER}`",
        "`--api-key-header`",
        "swish-serve, `python -m swish_triton.serving.health`, container images",
        "HTTP header of the key (gRPC: `triton-grpc-protocol-<header>`)",
        image_default=f"`{DEFAULT_KEY_HEADER}`",
    ),
    Setting(
        "SWISH_EXIT_TIMEOUT",
        int,
        DEFAULT_EXIT_TIMEOUT_S,
        str(DEFAULT_EXIT_TIMEOUT_S),
        "`--exit-timeout`",
        "swish-serve",
        "seconds tritonserver gets to finish requests in flight when stopped",
    ),
    Setting(
        "PERF_ANALYZER",
        Path,
        None,
        "the perf_analyzer installed with the package",
        "",
        "swish-perf-sweep, swish-demo, benchmarks",
        "a perf_analyzer binary to use instead of the one found in the environment",
    ),
    Setting(
        "SWISH_BUILD_DIR",
        Path,
        None,
        "the checkout's `.build/`, else `./.build`",
        "",
        "plugin and kernels loading, engine builder, perf_analyzer's library links, sweeps",
        "build output (`make plugin` writes `plugin/` below it; timing caches, profiles)",
    ),
    Setting(
        "SWISH_KERNELS_LIB",
        Path,
        None,
        "`libswish_kernels.so`, else `libswish.so`, of `$SWISH_BUILD_DIR/plugin`",
        "bench_kernels `--lib`",
        "Python models (in Triton's stub), kernel benchmarks",
        "library with the Swish kernels' C ABI to load instead of the build folder's",
    ),
    Setting(
        "SWISH_PLUGIN_LIB",
        Path,
        None,
        "`$SWISH_BUILD_DIR/plugin/libswish.so`",
        "`--plugin-lib`",
        "swish-build-engines, engine profiling, container images",
        "`libswish.so` to load and fingerprint instead of the build folder's",
        image_default=f"`{_PLUGIN_IMAGE}`",
    ),
    Setting(
        "SWISH_TRT_CACHE_DIR",
        Path,
        None,
        "`$SWISH_BUILD_DIR/trt_cache`",
        "`--cache-dir`",
        "swish-build-engines, container images",
        "TensorRT timing caches, one per release and GPU",
        image_default="`/var/lib/swish/trt_cache`",
    ),
    Setting(
        "SWISH_COMMIT",
        str,
        None,
        "the commit of the checkout that holds the measured package",
        "",
        "benchmarks (bench/), sweeps' `commit` column",
        "commit recorded with benchmark results, for a checkout copied without its history",
    ),
    # Read only by the entrypoints of the container images (compose.yaml, the Helm chart; docker/README.md).
    Setting(
        "SWISH_HOME",
        str,
        None,
        "",
        "",
        _IMAGES,
        "where the image holds the package's files (models, plugin, entrypoints)",
        image_default="`/opt/swish`",
    ),
    Setting(
        "SWISH_IMAGE_MODEL_REPOSITORY",
        str,
        None,
        "",
        "",
        _IMAGES,
        "the image's model repository, copied to `SWISH_MODEL_REPOSITORY` with the built plans",
        image_default="`$SWISH_HOME/model_repository`",
    ),
    Setting(
        "SWISH_PLUGIN_LOADING",
        str,
        None,
        "",
        "",
        _IMAGES,
        "`backend-config`, `preload` or `none`: how tritonserver loads the plugin",
        image_default="`backend-config`",
    ),
    Setting(
        "SWISH_MODELS",
        str,
        None,
        "",
        "",
        _IMAGES,
        "`all`, `python` (the Python-backend models) or a comma-separated list of models to load",
        image_default="`all`",
    ),
    Setting(
        "SWISH_CHECK_ENGINES",
        str,
        None,
        "",
        "",
        _IMAGES,
        "`1`: log the engine builder's `--check` of each plan before the server starts",
        image_default="`1`",
    ),
    Setting(
        "SWISH_ALLOW_UNFIXED_TRITON",
        str,
        None,
        "",
        "",
        _IMAGES,
        "`1`: start a tritonserver older than the release with the fixes for hostile shapes",
        image_default="(unset)",
    ),
    Setting(
        "TRITON_LOG_VERBOSE",
        str,
        None,
        "",
        "",
        _IMAGES,
        "`tritonserver --log-verbose`",
        image_default="`0`",
    ),
    Setting(
        "TRITON_ALLOW_CLIENT_SHM",
        str,
        None,
        "",
        "",
        _IMAGES,
        "`true` adds `--allow-client-shm=true`",
        image_default="(unset)",
    ),
)

SETTINGS: dict[str, Setting] = {s.name: s for s in REGISTRY}

_UNSET: Any = object()


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The registered variables that are set and not empty: what a command reads once, where it starts.

    ``environ`` stands in for the process's environment (tests, or a caller that has read it already).
    """
    source = os.environ if environ is None else environ
    return {name: source[name] for name in SETTINGS if source.get(name, "").strip()}


def _convert(setting: Setting, text: str) -> Any:
    try:
        return setting.type(text.strip())
    except ValueError:
        kind = "a whole number" if setting.type is int else "a value"
        raise SettingError(f"{setting.name}={text!r}: expected {kind}") from None


def resolve(
    name: str, flag: Any = None, environ: Mapping[str, str] | None = None, default: Any = _UNSET
) -> tuple[Any, str]:
    """(value, where it came from) for setting ``name``: the flag's value unless None, else the variable, else the
    default (the registry's, or ``default`` where a command has a default of its own). Source: ``"flag"``, the
    variable's name or ``"default"``."""
    setting = SETTINGS[name]
    if flag is not None:
        return flag, "flag"
    env = environment(environ)
    if name in env:
        return _convert(setting, env[name]), name
    return (setting.default if default is _UNSET else default), "default"


def value(name: str, environ: Mapping[str, str] | None = None, default: Any = _UNSET) -> Any:
    """The variable's value (typed), else the default: what an argparse ``default=`` is (the flag then wins)."""
    return resolve(name, None, environ, default)[0]


# ------------------------------------------------------------------------------------------ the clients' URL rule


def client_host(environ: Mapping[str, str] | None = None) -> str:
    """The address clients call: ``SWISH_TRITON_HOST``, a server bound to every interface on the loopback address."""
    host = str(value("SWISH_TRITON_HOST", environ))
    return DEFAULT_HOST if host in ("0.0.0.0", "::", "[::]") else host  # noqa: S104 - compared, not bound


def client_url(protocol: str, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The URL a client uses for ``protocol`` when ``-u`` does not give one, and where it came from.

    ``TRITON_<PROTOCOL>_URL``, else (HTTP) ``TRITON_URL``, else ``SWISH_TRITON_HOST`` (gRPC: else ``TRITON_URL``'s
    host) with ``SWISH_<PROTOCOL>_PORT``, else 127.0.0.1 and Triton's port. gRPC never goes to ``TRITON_URL``'s port,
    which is the HTTP port.
    """
    env = environment(environ)
    specific = f"TRITON_{protocol.upper()}_URL"
    if specific in env:
        return env[specific], specific
    if protocol == "http" and "TRITON_URL" in env:
        return env["TRITON_URL"], "TRITON_URL"
    host, host_source = client_host(env), "SWISH_TRITON_HOST" if "SWISH_TRITON_HOST" in env else ""
    if protocol != "http" and "TRITON_URL" in env and not host_source:
        host, host_source = env["TRITON_URL"].rsplit(":", 1)[0], "TRITON_URL's host"
    port_var = f"SWISH_{protocol.upper()}_PORT"
    port = env.get(port_var, "").strip() or str(DEFAULT_PORTS[protocol])
    sources = [s for s in (host_source, port_var if port_var in env else "") if s]
    return f"{host}:{port}", " and ".join(sources) or "default"


# ----------------------------------------------------------------------------------------------------- the table


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "—"


def markdown_table(scope: str | None = None) -> str:
    """The README's table of environment variables (every setting, or those of one scope)."""
    lines = [
        "| variable | read by | default | overridden by | meaning | default in the images |",
        "|---|---|---|---|---|---|",
    ]
    for s in REGISTRY:
        if scope is None or s.scope == scope:
            cells = (f"`{s.name}`", s.read_by, s.default_text, s.flag, s.meaning, s.image_default)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def help_lines(names: Sequence[str]) -> list[str]:
    """``--help`` epilog lines for the named settings: name, meaning, default."""
    out = []
    for name in names:
        s = SETTINGS[name]
        default = f" (default {s.default_text.strip('`')})" if s.default is not None else ""
        out.append(f"  {name:<19} {s.meaning.replace('`', '')}{default}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in ([], ["--markdown"]):
        print(markdown_table())
        return 0
    if args == ["--show"]:
        env = environment()
        for s in REGISTRY:
            if s.scope == PACKAGE:
                shown = "(set)" if s.secret and s.name in env else env.get(s.name, f"(default: {s.default_text})")
                print(f"{s.name}={shown}")
        return 0
    print("usage: python -m swish_triton.settings [--markdown | --show]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
