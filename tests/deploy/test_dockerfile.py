"""docker/Dockerfile and .dockerignore against the rest of the deployment: the stages compose.yaml builds, and the
paths, ports and variables the Dockerfile, compose.yaml and the entrypoints share."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.deploy.deployment_files import (
    COMPOSE_CPU_FILE,
    ENGINES_ENTRYPOINT,
    TRITON_ENTRYPOINT,
    _rel,
    compose_document,
)
from tests.support import REPO


def dockerfile_stages() -> dict[str, list[str]]:
    """The Dockerfile's stages by name: their instructions, continuation lines joined, comments left out."""
    instructions: list[str] = []
    for line in (REPO / "docker" / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if instructions and instructions[-1].endswith("\\"):
            instructions[-1] = instructions[-1][:-1] + " " + line.strip()
        else:
            instructions.append(line.strip())
    stages: dict[str, list[str]] = {}
    for instruction in instructions:
        if instruction.startswith("FROM ") and " AS " in instruction:
            stages[instruction.split()[-1]] = []
        elif stages:
            stages[next(reversed(stages))].append(instruction)
    return stages


def stage_env(stage: list[str]) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", " ".join(i.removeprefix("ENV ") for i in stage if i.startswith("ENV "))))


def copied_to(stage: list[str], source: str) -> str:
    """Where a COPY instruction of the stage puts `source`."""
    for instruction in stage:
        words = instruction.split()
        if words[0] == "COPY" and source in words[1:-1]:
            return words[-1]
    raise AssertionError(f"the stage copies no {source}")


def shell_default(script: Path, variable: str) -> str:
    """The default of `name=${VARIABLE:-default}` in a script, with ${SWISH_HOME:-...} resolved as the script does."""
    text = script.read_text()
    defaults = dict(re.findall(r"^\w+=\$\{(\w+):-([^}]*(?:\}[^}\n]*)?)\}$", text, re.M))
    home = re.search(r"^home=\$\{SWISH_HOME:-([^}]+)\}$", text, re.M)
    value = defaults[variable]
    return value.replace("$home", home.group(1)) if home else value


@pytest.mark.parametrize(("stage", "entrypoint"), [("server", TRITON_ENTRYPOINT), ("engines", ENGINES_ENTRYPOINT)])
def test_the_plugin_is_installed_where_image_compose_and_entrypoint_look_for_it(stage: str, entrypoint: Path) -> None:
    stages = dockerfile_stages()
    env = stage_env(stages[stage])
    plugin_lib = env["SWISH_PLUGIN_LIB"]
    # The plugin stage builds into /out (docker/build-plugin.sh copies libswish.so there) and this stage copies /out.
    assert "RUN bash docker/build-plugin.sh /out" in stages["plugin"]
    assert (
        'cp .build/plugin/libswish.so .build/plugin/libswish_kernels.so "$out/"'
        in (REPO / "docker" / "build-plugin.sh").read_text()
    )
    installed = next(i.split()[-1] for i in stages[stage] if i.startswith("COPY --from=plugin /out/ "))
    assert plugin_lib == installed.rstrip("/") + "/libswish.so", (plugin_lib, installed)
    assert plugin_lib.startswith(env["SWISH_HOME"] + "/")
    # Without SWISH_PLUGIN_LIB the entrypoint finds the same file, and compose's default is that file too.
    assert shell_default(entrypoint, "SWISH_PLUGIN_LIB") == plugin_lib
    if stage == "server":
        assert compose_document()["services"]["triton"]["environment"]["SWISH_PLUGIN_LIB"] == (
            f"${{SWISH_PLUGIN_LIB:-{plugin_lib}}}"
        )
        assert env["SWISH_KERNELS_LIB"] == installed.rstrip("/") + "/libswish_kernels.so"


@pytest.mark.parametrize(("stage", "entrypoint"), [("server", TRITON_ENTRYPOINT), ("engines", ENGINES_ENTRYPOINT)])
def test_the_entrypoint_is_run_from_where_the_image_copies_it(stage: str, entrypoint: Path) -> None:
    instructions = dockerfile_stages()[stage]
    (entry,) = [i for i in instructions if i.startswith("ENTRYPOINT ")]
    command = json.loads(entry.removeprefix("ENTRYPOINT "))
    folder = copied_to(instructions, _rel(entrypoint))
    assert command[-1] == folder.rstrip("/") + "/" + entrypoint.name, (command, folder)
    # The Python stubs' environment file is sourced from the entrypoint's own folder (BASH_ENV="$here/stub-env.sh").
    assert copied_to(instructions, "docker/stub-env.sh") == folder
    if entrypoint == TRITON_ENTRYPOINT:
        assert 'BASH_ENV="$here/stub-env.sh"' in entrypoint.read_text()


def test_ports_agree_between_entrypoint_image_compose_and_healthcheck() -> None:
    args = TRITON_ENTRYPOINT.read_text()
    served = {name: int(port) for name, port in re.findall(r"--(http|grpc|metrics)-port=(\d+)", args)}
    assert set(served) == {"http", "grpc", "metrics"}, served
    (expose,) = [i for i in dockerfile_stages()["server"] if i.startswith("EXPOSE ")]
    assert {int(p) for p in expose.split()[1:]} == set(served.values())
    services = compose_document()["services"]
    triton = services["triton"]
    assert {int(p.rsplit(":", 1)[1]) for p in triton["ports"]} == set(served.values())
    health = triton["healthcheck"]["test"]
    assert health[health.index("--url") + 1] == f"127.0.0.1:{served['http']}"
    assert f"triton:{served['grpc']}" in services["perf"]["command"]
    yaml = pytest.importorskip("yaml")
    prometheus = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for s in job["static_configs"] for t in s["targets"]}
    assert targets == {f"triton:{served['metrics']}"}


def test_every_variable_compose_sets_is_read_where_it_is_meant() -> None:
    """A variable compose sets that the entrypoint never reads would be a setting that silently does nothing."""
    yaml = pytest.importorskip("yaml")
    entrypoint = TRITON_ENTRYPOINT.read_text()
    loader = type("ComposeLoader", (yaml.SafeLoader,), {})  # compose.cpu.yaml's !reset and !override tags
    loader.add_multi_constructor("!", lambda load, suffix, node: None)
    cpu = yaml.load(COMPOSE_CPU_FILE.read_text(), Loader=loader)["services"]["triton"]["environment"]
    environment = {**compose_document()["services"]["triton"]["environment"], **cpu}
    for name in environment:
        if name == "NVIDIA_DRIVER_CAPABILITIES":  # read by the NVIDIA Container Toolkit
            continue
        assert re.search(rf"\$\{{?{name}\b", entrypoint), f"compose sets {name}, the entrypoint never reads it"
    # The CPU way serves the repository the image carries; the GPU way the volume the engines service fills.
    server = dockerfile_stages()["server"]
    assert cpu["SWISH_MODEL_REPOSITORY"].rstrip("/") == copied_to(server, "model_repository/").rstrip("/")
    volume_target = {v.split(":")[1] for v in compose_document()["services"]["triton"]["volumes"]}
    (mount,) = volume_target
    for stage in ("server", "engines"):
        assert stage_env(dockerfile_stages()[stage])["SWISH_MODEL_REPOSITORY"].startswith(mount + "/")
    assert shell_default(TRITON_ENTRYPOINT, "SWISH_MODEL_REPOSITORY") == stage_env(server)["SWISH_MODEL_REPOSITORY"]


def test_dockerignore_keeps_secrets_and_host_builds_out() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".build", "third_party", ".git", "**/__pycache__", "**/*.plan", ".env"):
        assert needed in patterns, f".dockerignore lacks {needed}"


def test_dockerfile_stages_match_compose_targets() -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert "ARG NGC_RELEASE=" in text.split("FROM", 1)[0], "NGC_RELEASE is declared before the first FROM"
    stages = {line.split()[-1] for line in text.splitlines() if line.startswith("FROM ") and " AS " in line}
    assert {"plugin", "engines", "server"} <= stages
    preamble = text.split("\nFROM ", 1)[0]
    assert "ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:${NGC_RELEASE}-py3" in preamble
    assert "ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:${NGC_RELEASE}-py3" in preamble
    assert "FROM ${TENSORRT_IMAGE} AS plugin" in text
    assert "FROM ${TRITON_IMAGE} AS server" in text
    assert "FROM ${TENSORRT_IMAGE} AS engines" in text
    assert "-DSWISH_BUILD_PLUGIN=ON" in (REPO / "docker" / "build-plugin.sh").read_text()
    # The legacy builder (Compose without buildx) builds every stage before the target and knows neither a syntax
    # directive that needs Docker Hub nor COPY --chmod.
    order = [line.split()[-1] for line in text.splitlines() if line.startswith("FROM ")]
    assert order.index("server") < order.index("engines")
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert not [line for line in instructions if "--chmod" in line] and not text.startswith("# syntax=")
    for copied in ("pyproject.toml", "swish_triton/", "docker/stub-env.sh"):
        assert copied in text, f"the server image needs {copied}"
    assert "pip install --no-cache-dir --no-deps /tmp/swish-src" in text, "swish_triton is installed as a package"
    for stage in text.split("\nFROM ")[1:]:
        users = [line for line in stage.splitlines() if line.startswith("USER ")]
        if " AS engines" in stage.splitlines()[0] or " AS server" in stage.splitlines()[0]:
            assert users and "root" not in users[-1] and users[-1] != "USER 0", "the services run as non-root"
