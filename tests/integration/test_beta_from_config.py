"""beta has one home, the model's config.pbtxt: a config with beta 1.5 reaches every reader, and nothing is built.

The engine builder's network description (plugin fields and the native graph), its staleness check (a plan built
at beta 1.0, plugin and native alike), the validation client (against a real tritonserver serving the Python model
at beta 1.5) and the Python model itself all see 1.5; a non-finite beta is refused in one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from swish_triton import model_config
from swish_triton.clients.validation import run_validation
from swish_triton.engines import configs, host, networks, records, repository
from tests.served import server_on_free_ports
from tests.support import MODEL_REPOSITORY, run_cli

SWISH_ENGINES = ("swish", "swish_fp16", "swish_native")
H100 = host.HostInfo(host.GpuInfo("NVIDIA H100 80GB HBM3", "9.0"), "10.13.3.9")
BETA_LINE = 'value: { string_value: "1.0" }'


def copy_model(name: str, repo: Path, beta: str | None = None) -> Path:
    shutil.copytree(MODEL_REPOSITORY / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.plan*"))
    config = repo / name / "config.pbtxt"
    if beta is not None:
        text = config.read_text()
        assert text.count(BETA_LINE) == 1, f"{name}: the beta parameter is not where this test expects it"
        config.write_text(text.replace(BETA_LINE, f'value: {{ string_value: "{beta}" }}'))
    return config


@pytest.fixture
def repo_at_1_5(tmp_path: Path) -> Path:
    repo = tmp_path / "model_repository"
    for name in (*SWISH_ENGINES, "relu"):
        copy_model(name, repo, None if name == "relu" else "1.5")
    return repo


def test_every_swish_config_carries_beta() -> None:
    for config in sorted(MODEL_REPOSITORY.glob("*/config.pbtxt")):
        cfg = model_config.read_model_config(config)
        if "swish" in cfg.name:
            assert model_config.string_parameter(cfg, "beta") == "1.0", f"{config}: no beta parameter"


def test_builder_network_description_sees_the_configs_beta(repo_at_1_5: Path) -> None:
    for model in configs.select_models(SWISH_ENGINES):
        io = configs.model_io(model, repo_at_1_5)
        description = networks.describe_network(model, io)
        assert description.beta == 1.5, model.name
        if model.needs_plugin:
            assert description.plugin_fields == {"beta": 1.5}
        else:
            assert description.plugin_fields is None
    (relu,) = configs.select_models(["relu"])
    assert networks.describe_network(relu, configs.model_io(relu, repo_at_1_5)).beta is None


def test_staleness_check_sees_the_configs_beta_for_plugin_and_native_alike(repo_at_1_5: Path, tmp_path: Path) -> None:
    """Plans recorded at beta 1.0 (the shipped configs) are stale once the configs say 1.5: plugin and native."""
    lib = tmp_path / "libswish.so"
    lib.write_bytes(b"the plugin")
    models = configs.select_models(["swish", "swish_native", "relu"])
    for model in models:
        at_1_0 = records.expected_for(model, configs.model_io(model, MODEL_REPOSITORY), H100, lib)
        plan = records.plan_path(repo_at_1_5, model.name)
        plan.write_bytes(b"plan")
        records.record_path(plan).write_text(json.dumps(records.make_record(model, b"plan", at_1_0, 1.0)))
    outcomes = {o.model: o for o in repository.check_models(repo_at_1_5, models, H100, lib)}
    for name in ("swish", "swish_native"):
        assert outcomes[name].status == "stale"
        assert "beta 1.0 -> 1.5 (config.pbtxt)" in outcomes[name].message
    assert outcomes["relu"].status == "fresh", outcomes["relu"].message


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "fast"])
def test_check_refuses_a_bad_beta_in_one_line_and_checks_the_other_models(tmp_path: Path, bad: str) -> None:
    repo = tmp_path / "model_repository"
    for name in configs.ENGINE_MODEL_NAMES:
        copy_model(name, repo, bad if name == "swish" else None)
    done = run_cli("-m", "swish_triton.engines.builder", "--check", "--model-repository", str(repo), timeout=120)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        str(repo / "swish" / "config.pbtxt"),
        *configs.ENGINE_MODEL_NAMES[1:],
    ], done.stdout
    expected = "must be finite" if bad != "fast" else "must be a number"
    assert f"beta {expected}, got '{bad}'" in lines[0]
    assert all("no plan" in line for line in lines[1:])


def test_validator_and_python_model_see_the_configs_beta(tmp_path: Path) -> None:
    """The Python model computes with beta 1.5 and the validator compares with beta 1.5 (it reads the served
    config): validation passes. A validator that assumed 1.0 would fail every random case."""
    repo = tmp_path / "model_repository"
    copy_model("swish_py", repo, "1.5")
    server = server_on_free_ports(repo, log_path=tmp_path / "tritonserver.log")
    with server:
        lines: list[str] = []
        report = run_validation(server.http_url, "http", "swish_py", log=lines.append)
    assert report.ok, report.summary() + "\n" + report.table()
    assert any("beta 1.5" in line for line in lines), lines
    assert "Swish with beta=1.5" in (tmp_path / "tritonserver.log").read_text()
