"""The hostile-requests command (swish_triton.clients.hostile, swish-hostile) against a real tritonserver: destructive
cases need their flag, and each case is reported with an exit status."""

from __future__ import annotations

from swish_triton.clients import hostile
from swish_triton.serving.launcher import TritonServer, free_port
from tests.served import (
    RECOVERY_BOUND_S,
    correct_answers,
)


def test_the_hostile_command_needs_its_flag_and_reports_each_case(keyed_server: TritonServer) -> None:
    urls = ["-u", f"http={keyed_server.http_url}", "-u", f"grpc={keyed_server.grpc_url}"]
    assert hostile.main([*urls, "--case", "malformed"]) == 2  # destructive: refused without --destructive
    assert hostile.main(["--list"]) == 0
    abuse = ["--case", "malformed JSON", "--case", "wrong datatype", "--case", "NaN"]
    assert hostile.main([*urls, *abuse, "--destructive"]) == 0
    assert hostile.main([*urls, "--case", "JSON shape [1, 2^34]", "--destructive"]) == 1  # it crashed (and came back)
    assert hostile.main(["-u", f"127.0.0.1:{free_port()}", "--destructive"]) == 3
    correct_answers(keyed_server, timeout_s=RECOVERY_BOUND_S)
