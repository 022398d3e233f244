"""The two entrypoint scripts (docker/triton-entrypoint.sh, docker/engines-entrypoint.sh), run with stand-ins for
tritonserver and python3: the API key is required, each plugin loading mode produces the right flags, LD_PRELOAD
reaches tritonserver only, a plugin that does not load is refused, models are selected as asked, and the engines
service refreshes the volume's configs without losing plans."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deployment_files import (
    ENGINES_ENTRYPOINT,
    TRITON_ENTRYPOINT,
    _rel,
)

API_KEY = "0123456789abcdef0123456789abcdef"
RESTRICTED_APIS = "model-repository,shared-memory,logging,trace"


@pytest.mark.parametrize("script", [TRITON_ENTRYPOINT, ENGINES_ENTRYPOINT], ids=_rel)
def test_entrypoints_are_executable(script: Path) -> None:
    # The Dockerfile sets the mode itself (COPY --chmod); this keeps `docker/x.sh` runnable from a checkout too.
    assert os.access(script, os.X_OK), f"chmod +x {_rel(script)}"


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


def _started(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """An entrypoint run with `env` that must succeed, and the tritonserver arguments it would start with."""
    proc = _run_triton_entrypoint(env)
    assert proc.returncode == 0, proc.stderr
    return proc, _tritonserver_args(proc)


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
    proc, args = _started(env)
    assert f"--backend-config=tensorrt,plugins={env['SWISH_PLUGIN_LIB']}" in args
    assert f"--http-restricted-api={RESTRICTED_APIS}:x-api-key={API_KEY}" in args
    assert f"--grpc-restricted-protocol={RESTRICTED_APIS}:x-api-key={API_KEY}" in args
    assert _preload(proc) == ""


def test_triton_entrypoint_none_keeps_serving_the_other_models(entrypoint_env: dict[str, Any]) -> None:
    env = {**entrypoint_env["env"], "SWISH_PLUGIN_LOADING": "none", "TRITON_ALLOW_CLIENT_SHM": "true"}
    proc, args = _started(env)
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
    proc, args = _started(env)
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
