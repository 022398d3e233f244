"""The health command (swish_triton.serving.health, the container's healthcheck) against a real tritonserver."""

from __future__ import annotations

import pytest

from swish_triton.serving.health import main as health_main
from swish_triton.serving.launcher import TritonServer, free_port
from tests.served import (
    API_KEY,
)


def test_health_command(keyed_server: TritonServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert health_main(["--url", keyed_server.http_url]) == 0
    assert health_main(["--url", keyed_server.http_url, "--api-key", API_KEY]) == 0
    assert "healthy" in capsys.readouterr().out
    assert health_main(["--url", keyed_server.http_url, "-m", "no_such_model"]) == 1
    assert health_main(["--url", f"127.0.0.1:{free_port()}", "--timeout", "2"]) == 1
    assert "not ready" in capsys.readouterr().out
