"""swish_triton.settings: the registry of environment variables, its one precedence rule, the README's table, and
that nothing else in the code reads a registered variable; the commit benchmarks record."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from swish_triton import locations, settings
from swish_triton.clients import cli
from swish_triton.perf import run_environment
from swish_triton.serving import serve_command

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "swish_triton"
# Python that runs the product: the package, the client entry points, the benchmarks and the engine builder.
PYTHON_SOURCES = [*PACKAGE.rglob("*.py"), *(REPO / "client").glob("*.py"), *(REPO / "bench").glob("*.py")]
PYTHON_SOURCES += [*(REPO / "build").glob("*.py")]
ENTRYPOINTS = [REPO / "docker" / "triton-entrypoint.sh", REPO / "docker" / "engines-entrypoint.sh"]
# Read by the entrypoints but not configuration: set by the NGC base image.
NOT_SETTINGS = {"TRITON_SERVER_VERSION"}


# ------------------------------------------------------------------------------------------------ the README


def readme_table() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- environment table:[^\n]*-->\n(.*?)\n<!-- end of environment table -->", text, re.S)
    assert match, "README.md lost the markers around its table of environment variables"
    return match.group(1).strip()


def test_readme_table_is_the_registry() -> None:
    expected = settings.markdown_table()
    assert readme_table() == expected, (
        "README.md's environment table and swish_triton/settings.py disagree; paste the output of "
        "`python -m swish_triton.settings` between the markers"
    )


def test_readme_table_names_every_setting_once() -> None:
    names = re.findall(r"^\| `([A-Z0-9_]+)` \|", readme_table(), re.M)
    assert names == [s.name for s in settings.REGISTRY]
    assert len(set(names)) == len(names)


# ------------------------------------------------------------------------------ who reads the environment


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "TEXT" constants (ENV_VAR = "SWISH_KERNELS_LIB")."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.value
    return out


def _is_environ(node: ast.AST) -> bool:
    """os.environ, or a bare name environ / env / environment (aliases of it)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id in ("environ", "env", "environment")


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, variable) of every read of a registered variable: os.environ.get/[...]/getenv, os.getenv, and the
    same through an alias (``env = os.environ.get``) or a module constant holding the name."""
    tree = ast.parse(path.read_text(), str(path))
    constants = _module_strings(tree)
    aliases = set()
    for node in ast.walk(tree):
        # env = os.environ.get / env = os.environ
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
            if node.value.attr in ("get", "environ", "getenv") and isinstance(node.targets[0], ast.Name):
                aliases.add(node.targets[0].id)

    def name_of(arg: ast.AST) -> str | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.Name):
            return constants.get(arg.id)
        return None

    reads = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args:
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("get", "getenv", "pop", "setdefault"):
                if f.attr == "getenv" or _is_environ(f.value):
                    key = name_of(node.args[0])
            elif isinstance(f, ast.Name) and (f.id in aliases or f.id == "getenv"):
                key = name_of(node.args[0])
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            key = name_of(node.slice)
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            key = name_of(node.left)  # "NAME" in os.environ
        if key in settings.SETTINGS:
            reads.append((node.lineno, key))
    return reads


def test_only_the_settings_module_reads_registered_variables() -> None:
    readers = {
        f"{path.relative_to(REPO)}:{line} reads {name}"
        for path in PYTHON_SOURCES
        if path != PACKAGE / "settings.py"
        for line, name in environment_reads(path)
    }
    assert not readers, "read these through swish_triton.settings where the command starts:\n" + "\n".join(
        sorted(readers)
    )


def test_the_read_check_sees_every_form_of_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "ENV_VAR = 'SWISH_KERNELS_LIB'\n"
        "a = os.environ.get('SWISH_HTTP_PORT')\n"
        "b = os.environ['TRITON_URL']\n"
        "c = os.getenv('PERF_ANALYZER')\n"
        "d = os.environ.get(ENV_VAR)\n"
        "env = os.environ.get\n"
        "e = env('SWISH_COMMIT', '')\n"
        "f = 'SWISH_API_KEY' in os.environ\n"
        "g = os.environ.get('HOME')\n"
    )
    found = sorted(name for _, name in environment_reads(sample))
    assert found == sorted(
        ["SWISH_HTTP_PORT", "TRITON_URL", "PERF_ANALYZER", "SWISH_KERNELS_LIB", "SWISH_COMMIT", "SWISH_API_KEY"]
    )


def test_the_package_reads_no_environment_variable_outside_the_registry() -> None:
    """Any os.environ/getenv read in the package with a literal name is of a registered variable, or of the
    system's (LD_LIBRARY_PATH, for the child processes the package starts)."""
    system = {"LD_LIBRARY_PATH", "PYTHONPATH", "PATH", "LD_PRELOAD"}
    unknown = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "getenv")
                and (node.func.attr == "getenv" or _is_environ(node.func.value))
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.args[0].value)
            ):
                name = node.args[0].value
                if name not in settings.SETTINGS and name not in system:
                    unknown.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert not unknown, "register these in swish_triton/settings.py:\n" + "\n".join(unknown)


def entrypoint_reads(path: Path) -> dict[str, str]:
    """{variable: default} of every ``${NAME:-default}`` / ``${NAME}`` of a SWISH_/TRITON_ name in a script."""
    reads: dict[str, str] = {}
    for name, default in re.findall(r"\$\{((?:SWISH|TRITON)_[A-Z0-9_]+)(?::-([^}]*))?\}", path.read_text()):
        reads.setdefault(name, default.replace("$home", "$SWISH_HOME"))
    return reads


@pytest.mark.parametrize("script", ENTRYPOINTS, ids=lambda p: p.name)
def test_image_entrypoints_read_only_registered_variables_with_their_registered_defaults(script: Path) -> None:
    reads = entrypoint_reads(script)
    assert reads, f"{script.name} reads no variable: the pattern no longer matches its syntax"
    for name, default in reads.items():
        if name in NOT_SETTINGS:
            continue
        assert name in settings.SETTINGS, f"{script.name} reads {name}: register it in swish_triton/settings.py"
        registered = settings.SETTINGS[name].image_default
        assert registered, f"{name}: read by {script.name}, but the registry gives no default in the images"
        if registered.startswith("`"):
            assert default == registered.strip("`"), f"{name}: {script.name} defaults to {default!r}, not {registered}"
        else:  # (unset), (none: required)
            assert default == "", f"{name}: {script.name} defaults to {default!r}, the registry says {registered}"


def test_every_image_setting_is_read_by_an_entrypoint() -> None:
    read = set().union(*(entrypoint_reads(p) for p in ENTRYPOINTS))
    for s in settings.REGISTRY:
        if s.scope == settings.IMAGE:
            assert s.name in read, f"{s.name} is registered for the images, but no entrypoint reads it"


# ----------------------------------------------------------------------------------------------- precedence


def test_flag_wins_over_environment_which_wins_over_default() -> None:
    env = {"SWISH_HTTP_PORT": "9000"}
    assert settings.resolve("SWISH_HTTP_PORT", None, {}) == (8000, "default")
    assert settings.resolve("SWISH_HTTP_PORT", None, env) == (9000, "SWISH_HTTP_PORT")
    assert settings.resolve("SWISH_HTTP_PORT", 7, env) == (7, "flag")
    assert settings.value("SWISH_HTTP_PORT", {"SWISH_HTTP_PORT": "  "}) == 8000  # empty counts as unset
    assert settings.value("SWISH_MODEL_REPOSITORY", {}, Path("here")) == Path("here")
    assert settings.value("SWISH_MODEL_REPOSITORY", {"SWISH_MODEL_REPOSITORY": "/m"}, Path("x")) == Path("/m")
    with pytest.raises(settings.SettingError, match="SWISH_GRPC_PORT='x': expected a whole number"):
        settings.value("SWISH_GRPC_PORT", {"SWISH_GRPC_PORT": "x"})


def test_environment_keeps_only_registered_variables_that_are_set() -> None:
    env = settings.environment({"SWISH_HTTP_PORT": "1", "SWISH_GRPC_PORT": "", "HOME": "/root"})
    assert env == {"SWISH_HTTP_PORT": "1"}


def test_serve_command_takes_its_defaults_from_the_environment_and_flags_win() -> None:
    env = {"SWISH_HTTP_PORT": "9000", "SWISH_TRITON_HOST": "10.0.0.1", "SWISH_EXIT_TIMEOUT": "5"}
    args = serve_command.build_parser(env).parse_args([])
    assert (args.http_port, args.grpc_port, args.host, args.exit_timeout) == (9000, 8001, "10.0.0.1", 5)
    assert args.model_repository == Path("model_repository")
    assert args.api_key_header == settings.DEFAULT_KEY_HEADER
    args = serve_command.build_parser(env).parse_args(["--http-port", "1"])
    assert args.http_port == 1


def test_the_clients_share_one_url_rule() -> None:
    assert cli.default_url is settings.client_url
    env = {"TRITON_URL": "h:1", "SWISH_GRPC_PORT": "2"}
    assert cli.parse_urls(None, ["http", "grpc"], env) == {
        "http": ("h:1", "TRITON_URL"),
        "grpc": ("h:2", "TRITON_URL's host and SWISH_GRPC_PORT"),
    }
    assert cli.parse_urls(["http=x:3"], ["http"], env) == {"http": ("x:3", "-u")}
    assert "Default now: HTTP h:1, gRPC h:2" in " ".join(cli.url_help("the -i protocol", env).split())


def test_every_registered_default_of_a_typed_setting_has_its_type() -> None:
    for s in settings.REGISTRY:
        if s.default is not None:
            assert isinstance(s.default, s.type), s.name
        assert s.meaning and s.read_by, s.name


# ------------------------------------------------------------------------------------- the recorded commit


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def enclosing_repo(tmp_path: Path) -> Path:
    """A git repository with a folder inside it that is not a checkout of its own (a copy without .git)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed (the recorded commit needs it)")
    _git(tmp_path, "init", "-q")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "f.txt").write_text("x\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "outer")
    return tmp_path


def test_commit_is_the_measured_checkouts_not_an_enclosing_repositorys(
    enclosing_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = _git(enclosing_repo, "rev-parse", "--short", "HEAD")
    assert run_environment.git_commit(enclosing_repo) == outer
    assert run_environment.git_commit(enclosing_repo / "inner") == "unknown"
    assert run_environment.git_commit(enclosing_repo / "inner", override="abc1234") == "abc1234"
    (enclosing_repo / "inner" / "f.txt").write_text("changed\n")
    assert run_environment.git_commit(enclosing_repo) == outer + "-dirty"


def test_default_commit_does_not_depend_on_the_working_directory(
    enclosing_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = locations.checkout_root()
    before = run_environment.git_commit()
    monkeypatch.chdir(enclosing_repo / "inner")
    assert run_environment.git_commit() == before
    assert before != _git(enclosing_repo, "rev-parse", "--short", "HEAD")
    if root is None or not (root / ".git").exists():
        assert before == "unknown"
    else:
        assert before.removesuffix("-dirty") == _git(root, "rev-parse", "--short", "HEAD")


def test_an_installed_package_records_the_commit_of_the_served_model_repositorys_checkout(
    enclosing_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_environment, "checkout_root", lambda: None)
    (enclosing_repo / "model_repository").mkdir()
    assert run_environment.measured_checkout(enclosing_repo / "model_repository") == enclosing_repo.resolve()
    assert run_environment.measured_checkout(None) is None
    assert run_environment.git_commit(None) == "unknown"


# ------------------------------------------------------------------------------------------ dead code, shims


def test_client_entry_points_do_not_edit_sys_path() -> None:
    for script in (REPO / "client").glob("*.py"):
        assert "sys.path" not in script.read_text(), script.name


def test_the_client_modules_do_not_import_the_server_launcher() -> None:
    for path in (PACKAGE / "clients").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "swish_triton.serving.launcher" not in imported, path.name
