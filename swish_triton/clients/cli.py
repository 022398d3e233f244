"""The command-line clients: ``swish-validate``, ``swish-concurrency``, ``swish-perf-sweep`` (and ``client/*.py``).

One convention for all three:

- ``-u/--url [PROTOCOL=]HOST:PORT`` per protocol (``http=``/``grpc=`` or ``http://``/``grpc://`` say which; a bare
  ``HOST:PORT`` is the URL of the first ``-i`` protocol); ``-i/--protocol``; ``-m/--model`` (repeatable).
- Defaults come from the environment (``swish_triton.settings``, the README's table) and are shown in ``--help``;
  a flag wins over its variable, which wins over the default.
- Errors are one line on stderr, ``error: ...``; exit status 0 = everything passed, 1 = a check failed or a sweep
  point is missing, 2 = bad arguments, 3 = the server could not be reached or a tool is missing, 130 = interrupted.

This module imports nothing heavy at the top: ``swish-concurrency`` must patch the standard library for gevent
before tritonclient and gRPC are imported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from swish_triton import cli_help, settings
from swish_triton.cli_help import HelpFormatter
from swish_triton.errors import SwishError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = cli_help.EXIT_USAGE
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

PROTOCOLS = ("http", "grpc")
PROTOCOL_NAMES = {"http": "HTTP", "grpc": "gRPC"}
DEFAULT_PORTS = settings.DEFAULT_PORTS

# The variables the clients read, in their --help (swish_triton.settings has them all, the README's table).
ENVIRONMENT = (
    "SWISH_TRITON_HOST",
    "SWISH_HTTP_PORT",
    "SWISH_GRPC_PORT",
    "TRITON_HTTP_URL",
    "TRITON_GRPC_URL",
    "TRITON_URL",
)


class ServerUnreachable(SwishError):
    """No Triton answered at the URL; the message names the URL and where it came from."""


# The clients' one precedence rule (-u, then the environment, then the default) lives with the registry.
client_host = settings.client_host
default_url = settings.client_url


def parse_urls(
    values: Sequence[str] | None, protocols: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """``-u`` values -> {protocol: (url, source)} for every protocol in ``protocols``; the others from ``environ``
    (read once by the command: ``settings.environment()``; None reads the process's environment)."""
    given: dict[str, str] = {}
    for value in values or ():
        protocol, url = None, value.strip()
        for p in PROTOCOLS:
            for prefix in (f"{p}=", f"{p}://"):
                if url.lower().startswith(prefix):
                    protocol, url = p, url[len(prefix) :]
        if protocol is None:
            protocol = protocols[0]
            if protocol in given:
                raise SwishError(f"-u {value}: a second URL for {protocol}; write http=HOST:PORT or grpc=HOST:PORT")
        if not url or ":" not in url or "/" in url:
            raise SwishError(f"-u {value}: expected [http=|grpc=]HOST:PORT, e.g. -u 127.0.0.1:8000")
        given[protocol] = url
    return {p: ((given[p], "-u") if p in given else default_url(p, environ)) for p in protocols}


def url_help(protocols: str, environ: Mapping[str, str] | None = None) -> str:
    defaults = ", ".join(f"{PROTOCOL_NAMES[p]} {default_url(p, environ)[0]}" for p in PROTOCOLS)
    return (
        f"[http=|grpc=]HOST:PORT of the server, one per protocol ({protocols}); a bare HOST:PORT belongs to the "
        f"first -i protocol. Default now: {defaults} (from TRITON_HTTP_URL/TRITON_GRPC_URL, TRITON_URL, "
        "SWISH_TRITON_HOST and SWISH_HTTP_PORT/SWISH_GRPC_PORT; see the epilog)"
    )


def epilog() -> str:
    lines = ["environment variables (a flag wins over its variable; all of them: python -m swish_triton.settings):"]
    lines += settings.help_lines(ENVIRONMENT)
    lines += [
        "",
        "exit status: 0 everything passed, 1 a check failed or a point is missing, 2 bad arguments,",
        "  3 no server reachable or a tool missing, 130 interrupted",
    ]
    return "\n".join(lines)


def make_parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=description,
        epilog=epilog(),
        formatter_class=HelpFormatter,
    )


def check_reachable(url: str, protocol: str, source: str) -> None:
    """Raise ServerUnreachable (one line) unless a server answers ``live`` at ``url``."""
    from swish_triton.clients.validation import make_client

    name = PROTOCOL_NAMES[protocol]
    try:
        client = make_client(url, protocol)
    except Exception as exc:  # noqa: BLE001 - a malformed URL is refused by the client constructor
        raise ServerUnreachable(f"cannot call {name} at {url} ({source}): {_first_line(exc)}") from None
    try:
        live = client.is_server_live()
    except Exception as exc:  # noqa: BLE001 - refused, reset, timeout, DNS: all mean nobody is serving there
        where = "TRITON_HTTP_URL / TRITON_URL" if protocol == "http" else "TRITON_GRPC_URL / SWISH_GRPC_PORT"
        hint = f"start one with `make serve`, or give -u or {where} (see --help)"
        raise ServerUnreachable(f"no Triton answering {name} at {url} ({source}): {_first_line(exc)}; {hint}") from None
    finally:
        client.close()
    if not live:
        raise ServerUnreachable(f"Triton at {url} ({source}) answers but is not live")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def run_cli(body: Callable[[], int]) -> int:
    """Run a CLI body: SwishError and its kin become one ``error:`` line and an exit status."""
    try:
        return body()
    except ServerUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SwishError as exc:
        status = EXIT_UNREACHABLE if type(exc).__name__ == "PerfAnalyzerNotFound" else EXIT_FAILED
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return status


def _add_target(parser: argparse.ArgumentParser, what: str, environ: Mapping[str, str]) -> None:
    """-u, -i and -m: the server, the protocol and the models of a one-protocol client."""
    parser.add_argument("-u", "--url", action="append", metavar="URL", help=url_help("the -i protocol", environ))
    parser.add_argument("-i", "--protocol", choices=PROTOCOLS, default="http", help="protocol to call the server with")
    parser.add_argument(
        "-m",
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help=f"model to {what}, repeatable (default: swish_py)",
    )


# --------------------------------------------------------------------------------------------------------- validate


def validate_main(argv: Sequence[str] | None = None) -> int:
    """``swish-validate``: live -> ready -> model ready -> metadata -> outputs against swish_ref."""
    environ = settings.environment()
    parser = make_parser(
        "Validate Swish models served by Triton against the float64 reference: health, metadata, random inputs at\n"
        "several batch sizes and lengths, NaN/inf and extreme values. Prints a table and PASS: <model> per model.\n\n"
        "  swish-validate -u 127.0.0.1:8000 -i http -m swish_py\n"
        "  swish-validate -u 127.0.0.1:8001 -i grpc -m swish_py -m swish_py_fp16"
    )
    _add_target(parser, "validate", environ)
    parser.add_argument("-s", "--seed", type=int, default=0, help="random seed for the inputs")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every request and response")
    args = parser.parse_args(argv)

    def body() -> int:
        from swish_triton.clients.validation import run_validation

        url, source = parse_urls(args.url, [args.protocol], environ)[args.protocol]
        check_reachable(url, args.protocol, source)
        failed = 0
        for model in args.models or ["swish_py"]:
            print(f"validating {model} over {PROTOCOL_NAMES[args.protocol]} at {url} ({source})", flush=True)
            report = run_validation(url, args.protocol, model, seed=args.seed, verbose=args.verbose, log=print)
            print(report.table())
            print(report.summary(), flush=True)
            failed += not report.ok
        return EXIT_FAILED if failed else EXIT_OK

    return run_cli(body)


# ------------------------------------------------------------------------------------------------------ concurrency


def prepare_gevent() -> None:
    """Patch the standard library for gevent and let gRPC cooperate with it, before either is used."""
    from gevent import monkey

    monkey.patch_all()
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()


def concurrency_main(argv: Sequence[str] | None = None) -> int:
    """``swish-concurrency``: N requests in flight, every response checked against swish_ref."""
    prepare_gevent()  # first: nothing may have opened sockets or threads unpatched
    environ = settings.environment()
    parser = make_parser(
        "Keep N requests in flight against a Swish model (gevent; HTTP and gRPC) and check every response against\n"
        "the float64 reference. Prints throughput and p50/p90/p99 latency per concurrency; exits 1 if any request\n"
        "failed or any response differed.\n\n"
        "  swish-concurrency -u 127.0.0.1:8001 -i grpc -m swish_py -c 1 8 32 --duration 10\n"
        "  swish-concurrency -u 127.0.0.1:8000 -i http -c 16 --count 5000 -o results/driver.csv"
    )
    _add_target(parser, "drive", environ)
    parser.add_argument(
        "-c", "--concurrency", type=int, nargs="+", default=[1, 8], metavar="N", help="requests in flight, one run each"
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, default=5.0, help="seconds per concurrency level")
    stop.add_argument("--count", type=int, default=None, help="requests per concurrency level (instead of --duration)")
    parser.add_argument("-b", "--batch-size", type=int, default=1, help="rows per request")
    parser.add_argument("-n", "--length", type=int, default=1024, help="elements per row")
    parser.add_argument("-o", "--output", type=Path, help="results file: .json (written) or .csv (rows appended)")
    parser.add_argument("-s", "--seed", type=int, default=0, help="random seed for the inputs")
    args = parser.parse_args(argv)
    if any(c < 1 for c in args.concurrency) or args.batch_size < 1 or args.length < 1:
        parser.error("concurrency, batch size and length must be at least 1")

    def body() -> int:
        from swish_triton.clients.concurrency import run_driver, write_results

        url, source = parse_urls(args.url, [args.protocol], environ)[args.protocol]
        check_reachable(url, args.protocol, source)
        results = []
        for model in args.models or ["swish_py"]:
            for c in args.concurrency:
                result = run_driver(
                    url,
                    args.protocol,
                    model,
                    c,
                    duration_s=None if args.count is not None else args.duration,
                    count=args.count,
                    batch_size=args.batch_size,
                    length=args.length,
                    seed=args.seed,
                )
                print(result.summary(), flush=True)
                if result.first_error:
                    print(f"  first problem: {result.first_error}", flush=True)
                results.append(result)
        if args.output:
            write_results(results, args.output)
        return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(validate_main())
