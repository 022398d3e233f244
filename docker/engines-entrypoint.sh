#!/usr/bin/env bash
# The compose `engines` service: refresh the model repository in the state volume from the image, then build the
# TensorRT plans that are missing or stale for this GPU, TensorRT release and libswish.so (swish_triton.engines
# decides; up-to-date plans are kept). Exits non-zero if any plan failed, so that `triton` does not start.
# Extra arguments go to the engine builder (python3 -m swish_triton.engines.builder) (e.g. --force, -v, a model name).
set -euo pipefail
shopt -s nullglob

say() { printf 'engines: %s\n' "$*" >&2; }

home=${SWISH_HOME:-/opt/swish}
image_repo=${SWISH_IMAGE_MODEL_REPOSITORY:-$home/model_repository}
repo=${SWISH_MODEL_REPOSITORY:-/var/lib/swish/model_repository}
cache=${SWISH_TRT_CACHE_DIR:-/var/lib/swish/trt_cache}
plugin=${SWISH_PLUGIN_LIB:-$home/lib/libswish.so}

mkdir -p "$repo" "$cache"

# Configs and Python models come from the image on every run, so an image update reaches the volume; plans and their
# build records are not in the image (.dockerignore) and stay.
for src in "$image_repo"/*/; do
  name=$(basename "$src")
  mkdir -p "$repo/$name"
  cp -R "$src." "$repo/$name/"
done
for dst in "$repo"/*/; do
  name=$(basename "$dst")
  if [ ! -d "$image_repo/$name" ]; then
    say "removing $name from the volume: the image's model repository no longer has it"
    rm -rf "$dst"
  fi
done

say "model repository $repo; plugin $plugin; timing caches $cache"
exec python3 -m swish_triton.engines.builder \
  --model-repository "$repo" --plugin-lib "$plugin" --cache-dir "$cache" "$@"
