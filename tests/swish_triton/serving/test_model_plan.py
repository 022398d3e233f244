"""Which models the embedded server loads (swish_triton.serving.model_plan): the Python models of the repository, the
TensorRT ones skipped with a reason where the server has no TensorRT backend, unknown names refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swish_triton.serving.launcher import LauncherError, plan_models
from tests.support import REPO


def test_plan_skips_tensorrt_models_with_a_reason(tmp_path: Path) -> None:
    shutil.copytree(REPO / "model_repository" / "swish_py", tmp_path / "swish_py")
    (tmp_path / "swish").mkdir()
    (tmp_path / "swish" / "config.pbtxt").write_text('name: "swish"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n')
    plan = plan_models(tmp_path, {"python"})
    assert plan.load == ("swish_py",)
    assert plan.skipped == (("swish", "no TensorRT backend in this server"),)


def test_plan_of_the_project_repository_loads_every_python_model() -> None:
    plan = plan_models(REPO / "model_repository", {"python"})
    assert {"swish_py", "swish_py_fp16", "identity_py"} <= set(plan.load)
    assert all(why.startswith("no ") for _, why in plan.skipped)


def test_plan_rejects_an_unknown_model() -> None:
    with pytest.raises(LauncherError, match="no such model"):
        plan_models(REPO / "model_repository", {"python"}, only=["nope"])
