"""The profiling recipes (swish_triton.engines.profiling): trtexec, nsys and ncu commands for the built plans."""

from __future__ import annotations

import pytest

from swish_triton.engines import configs, profiling, records
from swish_triton.limits import ENGINE_PROFILE
from tests.support import run_cli


def test_profiling_recipes_match_engines() -> None:
    recipes = profiling.recipes("swish")
    tools = [r.tool for r in recipes]
    assert tools[:3] == ["trtexec", "nsys", "ncu"]
    plan = str(records.plan_path(configs.DEFAULT_MODEL_REPOSITORY, "swish"))
    shape = f"--shapes=INPUT0:{ENGINE_PROFILE.opt_batch}x{ENGINE_PROFILE.opt_length}"
    for r in recipes[:3]:
        assert f"--loadEngine={plan}" in r.argv and shape in r.argv
        assert any(a.startswith("--staticPlugins=") for a in r.argv)
    relu = next(r for r in recipes if r.name == "trtexec-relu")
    assert not any(a.startswith("--staticPlugins=") for a in relu.argv)
    with pytest.raises(configs.BuildError, match="outside the engine profile"):
        profiling.recipes("swish", shape=(ENGINE_PROFILE.max_batch + 1, 16))


def test_profiling_cli_prints_commands() -> None:
    done = run_cli("-m", "swish_triton.engines.profiling", "--model", "swish_fp16", "--shape", "8x4096", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "NVTX" not in done.stdout, "the plugin has no NVTX build option; the recipes must not advertise one"
    assert "--shapes=INPUT0:8x4096" in done.stdout
    assert "nsys profile" in done.stdout and "ncu " in done.stdout
