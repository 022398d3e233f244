"""The pieces every command line shares: bad input reported as ``[prog: ]error: ...`` on stderr, exit status 2."""

from __future__ import annotations

import pytest

from swish_triton.cli_help import EXIT_USAGE, usage_error


def test_usage_error_prints_on_stderr_and_returns_the_usage_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert usage_error(ValueError("no such model")) == EXIT_USAGE == 2
    assert usage_error("bad rate", "swish-capacity") == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: no such model\nswish-capacity: error: bad rate\n"
