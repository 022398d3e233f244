#!/usr/bin/env bash
# Create the project's virtual environment and install everything `make demo` and `make test` need.
# Usage: scripts/bootstrap.sh [VENV_DIR]   (PYTHON selects the interpreter, default python3)
# Installs a Debian/Ubuntu package only where nothing else works, and only as root; otherwise prints the command.
set -euo pipefail

venv=${1:-.venv}
python=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }

need_system_package() {
  # $1: package, $2: why
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing the system package $1 ($2)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "error: $2. Run: sudo apt-get install -y $1" >&2
    exit 1
  fi
}

command -v "$python" >/dev/null || { echo "error: $python not found" >&2; exit 1; }
pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtual environment $venv (Python $pyver)"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    need_system_package "python${pyver}-venv" "Python's venv module is missing"
    "$python" -m venv "$venv"
  fi
fi

say "installing the project and its test tools into $venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --editable '.[test,dev]'

# nvidia-pytriton's metadata asks for numpy<2, which has no wheels for Python 3.13 (pyproject.toml leaves the wheel
# out there). The project uses only the tritonserver it bundles, whose Python-backend stub serves NumPy 2 through
# DLPack (swish_triton/models/output_tensor.py): install the wheel without its dependencies.
if "$venv/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)'; then
  say "Python $pyver: installing nvidia-pytriton without its dependencies (its numpy<2 has no wheels for $pyver)"
  "$venv/bin/python" -m pip install --quiet --no-deps 'nvidia-pytriton>=0.7,<0.8'
fi

# Type stubs for checking the engine builder without TensorRT. --no-deps: the package requires a `tensorrt` source
# package that does not install from PyPI.
"$venv/bin/python" -m pip install --quiet --no-deps 'tensorrt-stubs>=10.13,<10.14'

# perf_analyzer: PyPI's perf-analyzer where glibc >= 2.38; elsewhere the tritonclient 2.50.0 wheel's binary
# (already installed) is used. See swish_triton/perf/perf_analyzer_binary.py.
if "$venv/bin/python" -c 'import platform, sys; v = platform.libc_ver()[1]; sys.exit(0 if v and tuple(map(int, v.split("."))) >= (2, 38) else 1)'; then
  say "glibc >= 2.38: installing PyPI perf-analyzer"
  "$venv/bin/python" -m pip install --quiet 'perf-analyzer>=2.60'
fi

# Python's headers let `make plugin` build the swish_batch extension, the Python models' one call per CPU batch
# (plugin/README.md; the models use ctypes without it). Installed as root where apt-get can; a note otherwise.
if ! "$python" -c 'import os, sys, sysconfig; sys.exit(0 if os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)'; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing the system package libpython${pyver}-dev (Python headers, for the swish_batch extension)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "libpython${pyver}-dev" >/dev/null; }; then
      say "libpython${pyver}-dev could not be installed: the Python models will call the C kernel through ctypes"
    fi
  else
    say "no Python headers: the Python models will call the C kernel through ctypes (sudo apt-get install -y libpython${pyver}-dev)"
  fi
fi

# The Python-backend stub links the interpreter's shared libpython.
# (Found without importing pytriton, whose Python API needs the dependencies left out on 3.13.)
stub=$("$venv/bin/python" -c 'import sys; from swish_triton.serving.bundled_triton import pytriton_bundle; print(pytriton_bundle() / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" / "triton_python_backend_stub")')
libdir=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
if LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$stub" | grep -q 'libpython.*not found'; then
  need_system_package "libpython${pyver}" "Triton's Python-backend stub needs libpython${pyver}.so"
fi

# nvidia-pytriton's 3.13 stub carries its own libpython (3.13.0, in nvidia_pytriton.libs), built with other modules
# compiled in than the interpreter's. With Debian 13's python3.13 (_datetime built in, so absent from lib-dynload)
# `import datetime` falls back to pure Python inside the stub and NumPy does not import there ("PyCapsule_Import could
# not import module "datetime""). The stub gets the interpreter's own libpython, which matches the standard library
# it imports.
bundled_libpython=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$stub" |
  awk '$1 ~ /^libpython/ && $3 ~ /nvidia_pytriton\.libs/ { print $3 }')
if [ -n "$bundled_libpython" ]; then
  own=$("$venv/bin/python" -c 'import os, sysconfig as s; print(os.path.join(s.get_config_var("LIBDIR") or "", s.get_config_var("INSTSONAME") or ""))')
  case "$own" in
    *.so*)
      [ -f "$own" ] || need_system_package "libpython${pyver}" "Triton's Python-backend stub needs libpython${pyver}.so"
      say "the Python-backend stub runs this interpreter's $own (not the libpython bundled with nvidia-pytriton)"
      ln -sf "$own" "$bundled_libpython"
      ;;
  esac
fi

"$venv/bin/python" -m swish_triton.perf.perf_analyzer_binary >/dev/null
say "environment ready: $venv"
