"""bench/serving_bench.py's CPU lists (--server-cpus / --client-cpus), which keep perf_analyzer and tritonserver off
each other's cores."""

from __future__ import annotations

import argparse
import importlib.util
from types import ModuleType

import pytest

from tests.support import REPO


def serving_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serving_bench", REPO / "bench" / "serving_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
