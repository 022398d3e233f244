"""The clients' command-line convention (swish_triton.clients.cli): default URLs from the environment, URL arguments
that name their protocol, one-line errors and help that explains options, environment and exit status."""

from __future__ import annotations

import os
import re

import pytest

from swish_triton.clients.cli import default_url, parse_urls
from swish_triton.errors import SwishError
from swish_triton.serving.launcher import free_port
from tests.support import run_cli


def test_gRPC_never_goes_to_the_http_port_of_TRITON_URL() -> None:
    env = {"TRITON_URL": "10.1.2.3:28000"}
    assert default_url("http", env) == ("10.1.2.3:28000", "TRITON_URL")
    assert default_url("grpc", env) == ("10.1.2.3:8001", "TRITON_URL's host")
    env |= {"SWISH_GRPC_PORT": "28001"}
    assert default_url("grpc", env) == ("10.1.2.3:28001", "TRITON_URL's host and SWISH_GRPC_PORT")
    env |= {"TRITON_GRPC_URL": "h:1"}
    assert default_url("grpc", env) == ("h:1", "TRITON_GRPC_URL")
    assert default_url("http", {"SWISH_TRITON_HOST": "0.0.0.0", "SWISH_HTTP_PORT": "9"}) == (
        "127.0.0.1:9",
        "SWISH_TRITON_HOST and SWISH_HTTP_PORT",
    )


def test_url_arguments_name_their_protocol() -> None:
    urls = parse_urls(["grpc=h:2", "http://h:1"], ["grpc", "http"])
    assert urls == {"grpc": ("h:2", "-u"), "http": ("h:1", "-u")}
    assert parse_urls(["h:5"], ["grpc"])["grpc"] == ("h:5", "-u")
    with pytest.raises(SwishError, match="a second URL for grpc"):
        parse_urls(["h:5", "h:6"], ["grpc", "http"])
    with pytest.raises(SwishError, match="expected"):
        parse_urls(["http=nohost"], ["http"])


@pytest.mark.parametrize("script", ["client/validate.py", "client/concurrency_driver.py", "client/perf_sweep.py"])
def test_every_client_reports_no_server_in_one_line(script: str) -> None:
    port = free_port()
    proc = run_cli(script, "-u", f"127.0.0.1:{port}", timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: no Triton answering ") and f"127.0.0.1:{port} (-u)" in line


@pytest.mark.parametrize("script", ["client/validate.py", "client/concurrency_driver.py", "client/perf_sweep.py"])
def test_every_client_help_explains_options_environment_and_exit_status(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRITON_", "SWISH_"))}
    proc = run_cli(script, "--help", env=env, timeout=60)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    # Python 3.13's argparse names the metavar once ("-u, --url URL"), earlier versions after each flag.
    assert re.search(r"-u( URL)?, --url URL", text) and re.search(r"-m( MODEL)?, --model MODEL", text) and "-i" in text
    assert "Default now: HTTP 127.0.0.1:8000, gRPC 127.0.0.1:8001" in text
    for variable in ("SWISH_TRITON_HOST", "SWISH_HTTP_PORT", "SWISH_GRPC_PORT", "TRITON_URL", "TRITON_GRPC_URL"):
        assert variable in text
    assert "exit status: 0 everything passed, 1 a check failed" in text
    assert "(default: None)" not in text and "(default 5) (default" not in text
