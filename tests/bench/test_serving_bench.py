"""bench/serving_bench.py's CPU lists (--server-cpus / --client-cpus), which keep perf_analyzer and tritonserver off
each other's cores."""

from __future__ import annotations

import argparse
from types import ModuleType

import pytest

from tests.support import load_script


def serving_bench() -> ModuleType:
    return load_script("bench/serving_bench.py")


def test_cpu_lists_read_and_print_like_taskset() -> None:
    bench = serving_bench()
    assert bench.cpu_list("0-3,6, 8-9") == {0, 1, 2, 3, 6, 8, 9}
    assert bench.cpu_list("5") == {5}
    assert bench.cpu_text({0, 1, 2, 3, 6, 8, 9}) == "0-3,6,8-9"
    assert bench.cpu_text(bench.cpu_list("12-15")) == "12-15"
    for bad in ("", "a", "3-1", "1-", "-2", "1,,2"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a CPU list"):
            bench.cpu_list(bad)


def test_cpus_the_host_lacks_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        serving_bench().main(["--server-cpus", "0", "--client-cpus", "100000"])
    assert exit_info.value.code == 2
    assert "--client-cpus: CPUs [100000] are not available" in capsys.readouterr().err
