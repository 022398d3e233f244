#!/usr/bin/env bash
# Build step of both images (docker/Dockerfile): the non-root user UID:GID that runs the container, owning
# /var/lib/swish (an empty named volume mounted there takes this owner on first use). NGC's images already have uid
# 1000 (triton-server); a group or user is created only where it is missing. Also makes the image's scripts
# executable.
#
#   add-user.sh UID GID
set -euo pipefail
uid=${1:?usage: add-user.sh UID GID}
gid=${2:?usage: add-user.sh UID GID}
chmod 0755 /opt/swish/docker/*.sh
if ! getent group "$gid" >/dev/null; then groupadd --gid "$gid" swish; fi
if ! getent passwd "$uid" >/dev/null; then
  useradd --uid "$uid" --gid "$gid" --create-home --shell /usr/sbin/nologin swish
fi
mkdir -p /var/lib/swish
chown "$uid:$gid" /var/lib/swish
