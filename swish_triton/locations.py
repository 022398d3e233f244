"""Where the project's files are: the checkout this package runs from (if any), the build folder, the models.

Installed from a wheel, the package has no checkout around it: every path here then comes from an environment
variable (read through swish_triton.settings) or the current directory, and the plugin's definition
(``swish_plugin.json``) ships inside the package.
"""

from __future__ import annotations

from pathlib import Path

from swish_triton import settings

PACKAGE_DIR = Path(__file__).resolve().parent
PLUGIN_SPEC_PATH = PACKAGE_DIR / "swish_plugin.json"

BUILD_DIR_ENV = "SWISH_BUILD_DIR"
MODEL_REPOSITORY_ENV = "SWISH_MODEL_REPOSITORY"


def checkout_root() -> Path | None:
    """The source checkout around the package, or None when the package is installed elsewhere."""
    root = PACKAGE_DIR.parent
    if (root / "model_repository").is_dir() and (root / "plugin").is_dir():
        return root
    return None


def build_dir() -> Path:
    """The one folder for build output (CMake's ``plugin/`` build, timing caches, profiles): ``$SWISH_BUILD_DIR``,
    else ``<checkout>/.build``, else ``./.build``."""
    configured = settings.value(BUILD_DIR_ENV)
    if configured is not None:
        return Path(configured)
    root = checkout_root()
    return (root if root is not None else Path.cwd()) / ".build"


def plugin_build_dir() -> Path:
    """Where ``make plugin`` (CMake) writes libswish.so, libswish_dynamic.so and libswish_kernels.so."""
    return build_dir() / "plugin"


def default_model_repository() -> Path:
    """``$SWISH_MODEL_REPOSITORY``, else the checkout's ``model_repository/``, else ``./model_repository``."""
    configured = settings.value(MODEL_REPOSITORY_ENV)
    if configured is not None:
        return Path(configured)
    root = checkout_root()
    return (root if root is not None else Path.cwd()) / "model_repository"
