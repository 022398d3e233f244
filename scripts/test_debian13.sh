#!/usr/bin/env bash
# `make test` on a second platform: Debian 13 (trixie: glibc 2.41, Python 3.13, NumPy 2, PyPI perf-analyzer 2.60),
# inside a container of a private Docker engine that this script starts and stops. `make test-debian13`; CI runs it
# after `make test`. Root only (debootstrap and dockerd need it).
#
# Steps: Debian's docker.io and debootstrap where missing (apt-get); a trixie minbase root file system made with
# debootstrap from Debian's mirror; a private dockerd in a temporary folder (no bridge, no iptables rules: containers
# use the host's network, so it touches no other engine's networks); `docker import`, then npm and cmake installed by
# apt-get in a container (debootstrap cannot resolve npm's dependencies) and the result exported as a tarball, kept in
# .build/debian13/ so later runs skip all this; a container of that image with its own /dev/shm gets a copy of this
# working tree (git's tracked and untracked, not ignored files) at /ci/main and of ../shared beside it where that
# exists, and runs `make test` there. Tests that need Docker, a GPU or TensorRT skip inside it, each with its reason.
# Afterwards, whatever happened: the containers are removed, the daemon stopped, its mounts and folder removed.
#
#   DEBIAN_MIRROR         default http://deb.debian.org/debian
#   DOCKER                the docker client (default: docker)
#   PYTEST_ARGS           passed to `make test` in the container
#   SWISH_DEBIAN13_LIMIT  seconds the suite may run in the container (default 3000), so CI's limit is never reached
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}
limit=${SWISH_DEBIAN13_LIMIT:-3000}
cache=$here/.build/debian13
# What `make test` needs from the system: python3 with venv, the shared libpython the Python-backend stub links,
# CA certificates for pip, make; ps for the soak test; a C compiler for the preload test; npm to fetch helm for the
# Helm chart tests; cmake, so the plugin build's tests name what is really missing (nvcc); git, which the benchmarks
# use to record the measured commit (and its tests to make repositories).
packages=python3,python3-venv,libpython3.13,ca-certificates,make,procps,gcc,libc6-dev,git
apt_packages="npm cmake"
image=swish-debian13/make-test:trixie
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

say() { printf 'test-debian13: %s\n' "$*" >&2; }
started=$(date +%s)

[ "$(id -u)" -eq 0 ] || { say "error: needs root (debootstrap, dockerd)"; exit 1; }
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v dockerd >/dev/null || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { say "error: ${missing[*]} missing and no apt-get"; exit 1; }
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the root file system ------------------------------------------------------------------------------------------
key=$(printf '%s %s' "$packages" "$mirror" | sha256sum | cut -c1-12)
rootfs=$cache/debian-trixie-minbase-$key.tar
image_key=$(printf '%s %s' "$key" "$apt_packages" | sha256sum | cut -c1-12)
image_tar=$cache/debian-trixie-make-test-$image_key.tar
if [ ! -s "$image_tar" ] && [ ! -s "$rootfs" ]; then
  mkdir -p "$cache"
  staging=$(mktemp -d "$cache/rootfs.XXXXXX")
  say "debootstrap --variant=minbase trixie ($packages) from $mirror"
  if ! debootstrap --variant=minbase --include="$packages" trixie "$staging/root" "$mirror" \
    >"$staging/debootstrap.log" 2>&1; then
    tail -n 30 "$staging/debootstrap.log" >&2
    rm -rf "$staging"
    exit 1
  fi
  rm -rf "$staging/root/var/cache/apt/archives/"*.deb "$staging/root/var/lib/apt/lists/"*
  tar -C "$staging/root" -cf "$rootfs.partial" .
  mv "$rootfs.partial" "$rootfs"
  rm -rf "$staging"
fi

# --- the private engine, and everything that undoes it ------------------------------------------------------------
run=$(mktemp -d /tmp/swish-debian13-XXXXXX)
# dockerd also writes outside its roots: its trust key (/etc/docker/key.json) and the plugin folder (/run/docker).
# What it creates there is removed afterwards; what was there before stays.
created=()
[ -e /etc/docker/key.json ] || created+=(/etc/docker/key.json)
[ -e /run/docker ] || created+=(/run/docker)
export DOCKER_HOST=unix://$run/docker.sock
name=swish-debian13-$$
prep=swish-debian13-prep-$$
dockerd_pid=

# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    "$docker" rm -f "$name" "$prep" >/dev/null 2>&1 || true
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      say "dockerd did not stop in 30 s: killing it"
      kill -KILL "$dockerd_pid" 2>/dev/null || true
    fi
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  # dockerd unmounts its layers on a clean stop; anything still mounted below the folder would keep it.
  awk -v dir="$run/" 'index($2, dir) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r mount; do
    umount -l "$mount" || true
  done
  rm -rf "$run"
  for path in "${created[@]}"; do
    if [ "$path" = /run/docker ]; then rmdir /run/docker/plugins /run/docker 2>/dev/null || true; else rm -f "$path"; fi
  done
  say "cleaned up (daemon stopped, $run removed); $(($(date +%s) - started)) s in all"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting a private dockerd in $run"
dockerd --data-root "$run/data" --exec-root "$run/exec" -H "$DOCKER_HOST" --pidfile "$run/dockerd.pid" \
  --bridge=none --iptables=false --ip-forward=false --ip-masq=false >"$run/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 120); do
  "$docker" version >/dev/null 2>&1 && break
  if ! kill -0 "$dockerd_pid" 2>/dev/null; then
    tail -n 30 "$run/dockerd.log" >&2
    say "error: dockerd exited"
    exit 1
  fi
  sleep 0.5
done
"$docker" version >/dev/null || { tail -n 30 "$run/dockerd.log" >&2; say "error: dockerd did not answer in 60 s"; exit 1; }

env_args=(-e HOME=/root -e LANG=C.UTF-8)
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!var:-}" ]; then env_args+=(-e "$var=${!var}"); fi
done
if [ ! -s "$image_tar" ]; then
  say "apt-get install $apt_packages in the trixie root file system"
  "$docker" import "$rootfs" swish-debian13/minbase:trixie >/dev/null
  # shellcheck disable=SC2016  # expanded by the container's shell
  "$docker" run --name "$prep" --network host "${env_args[@]}" -e "PACKAGES=$apt_packages" \
    swish-debian13/minbase:trixie sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends $PACKAGES >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
  "$docker" export -o "$image_tar.partial" "$prep"
  mv "$image_tar.partial" "$image_tar"
  "$docker" rm "$prep" >/dev/null
  rm -f "$rootfs"
fi
"$docker" import "$image_tar" "$image" >/dev/null
env_args+=(-e "PYTEST_ARGS=${PYTEST_ARGS:-}")
# The host's CA bundle goes in with the sources (pip and npm behind a TLS-inspecting proxy need it).
for var in SSL_CERT_FILE PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS; do
  env_args+=(-e "$var=/etc/ssl/certs/ca-certificates.crt")
done
"$docker" create --name "$name" --network host --init --shm-size 1g -w /ci/main "${env_args[@]}" "$image" \
  make test >/dev/null

say "copying the working tree into the container"
(cd "$here" && git ls-files -z --cached --others --exclude-standard) |
  tar -C "$here" --null --files-from - --ignore-failed-read --warning=no-failed-read \
    --transform 's,^,ci/main/,S' -cf - | "$docker" cp - "$name:/"
if [ -d "$here/../shared" ]; then
  tar -C "$here/.." --dereference --transform 's,^shared,ci/shared,S' -cf - shared | "$docker" cp - "$name:/"
fi
if [ -s "$ca_bundle" ]; then
  tar -C "$(dirname "$ca_bundle")" --dereference --transform "s,^$(basename "$ca_bundle")\$,etc/ssl/certs/ca-certificates.crt," \
    -cf - "$(basename "$ca_bundle")" | "$docker" cp - "$name:/"
fi

# shellcheck disable=SC2016  # expanded by the container's shell
probe='. /etc/os-release; printf "%s, %s, %s" "$PRETTY_NAME" "$(python3 --version)" "$(ldd --version | head -n 1)"'
say "make test in $("$docker" run --rm --network none "$image" sh -c "$probe")"
status=0
timeout "$limit" "$docker" start --attach "$name" || status=$?
if [ "$status" -eq 124 ]; then
  say "error: the suite ran past SWISH_DEBIAN13_LIMIT=$limit s"
fi
say "make test in Debian 13: exit $status after $(($(date +%s) - started)) s"
exit "$status"
