#!/usr/bin/env bash
# Build a local stand-in for nvcr.io/nvidia/tritonserver:<release>-py3 on a Docker engine that cannot reach a registry
# (docker/standin/Dockerfile says what it has). Used by tests/deploy/test_docker_e2e.py; also by hand:
#
#   scripts/make_base_image.sh swish-standin/tritonserver:cpu
#   TRITON_IMAGE=swish-standin/tritonserver:cpu docker compose -f compose.yaml -f compose.cpu.yaml up --build --wait
#
# Steps: a Debian bookworm minbase root file system (debootstrap, root only; cached as a tarball in
# SWISH_STANDIN_CACHE, so later runs skip it), `docker import`, then docker/standin/Dockerfile with the tritonserver,
# libraries and Python-backend stub of the nvidia-pytriton wheel installed for PYTHON.
#
#   DOCKER              the docker client (default: docker); DOCKER_HOST picks the engine
#   PYTHON              a Python with nvidia-pytriton installed (default: .venv/bin/python, else python3)
#   SWISH_STANDIN_CACHE where the root file system tarball is kept (default: ~/.cache/swish-triton)
#   DEBIAN_MIRROR       default http://deb.debian.org/debian
set -euo pipefail

tag=${1:?usage: scripts/make_base_image.sh IMAGE_TAG}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
docker=${DOCKER:-docker}
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$here/.venv/bin/python" ]; then python=$here/.venv/bin/python; else python=python3; fi
fi
cache=${SWISH_STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swish-triton}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the NGC image offers that the Dockerfile and the Python backend use: python3 with pip and venv, the shared
# libpython the stub links, CA certificates for pip.
packages=python3,python3-pip,python3-venv,ca-certificates,libpython3.11
base_tag=swish-standin/debian-minbase:bookworm

say() { printf 'make_base_image: %s\n' "$*" >&2; }

key=$(printf '%s %s' "$packages" "$mirror" | sha256sum | cut -c1-12)
rootfs=$cache/debian-bookworm-minbase-$key.tar
if [ ! -s "$rootfs" ]; then
  command -v debootstrap >/dev/null || { say "error: debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
  [ "$(id -u)" -eq 0 ] || { say "error: debootstrap needs root"; exit 1; }
  mkdir -p "$cache"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  say "debootstrap --variant=minbase bookworm ($packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
  tar -C "$work/root" -cf "$rootfs.partial" .
  mv "$rootfs.partial" "$rootfs"
  rm -rf "$work"
  trap - EXIT
fi
if ! "$docker" image inspect "$base_tag" >/dev/null 2>&1; then
  say "docker import $rootfs as $base_tag"
  "$docker" import "$rootfs" "$base_tag" >/dev/null
fi

bundle=$("$python" -c 'import pathlib, pytriton; print(pathlib.Path(pytriton.__file__).resolve().parent)')
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/tritonserver/bin" "$ctx/tritonserver/lib" "$ctx/tritonserver/backends"
cp "$bundle/tritonserver/bin/tritonserver" "$ctx/tritonserver/bin/"
cp -R "$bundle/tritonserver/backends/python" "$ctx/tritonserver/backends/"
rm -rf "$ctx/tritonserver/backends/python/__pycache__"
# The stub for the image's Python (Debian 12: 3.11), where the NGC image keeps its own.
cp "$bundle/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub" "$ctx/tritonserver/backends/python/"
cp "$bundle/../nvidia_pytriton.libs/"* "$ctx/tritonserver/lib/"
if [ -d "$bundle/tritonserver/caches" ]; then cp -R "$bundle/tritonserver/caches" "$ctx/tritonserver/"; fi
printf '#!/bin/sh\n# Stand-in for NVIDIA'"'"'s entrypoint: no banner, no CUDA compatibility set-up.\nexec "$@"\n' \
  >"$ctx/nvidia_entrypoint.sh"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/ca-certificates.crt"
cp "$here/docker/standin/Dockerfile" "$ctx/Dockerfile"
say "docker build $tag (tritonserver from $bundle)"
"$docker" build --quiet --build-arg BASE_IMAGE="$base_tag" -t "$tag" "$ctx" >/dev/null
say "ready: $tag"
