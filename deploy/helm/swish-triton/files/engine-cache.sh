#!/usr/bin/env bash
# Init container of the swish-triton chart (runs in the engines image, on the pod's GPU): build the TensorRT plans into
# a cache keyed by everything a plan depends on, reuse a complete build for the same key, and copy the model
# repository into the pod-local volume that tritonserver serves read-only.
#
# Key: <GPU product>-sm<compute capability>-trt<TensorRT version>-plugin<sha256(libswish.so)>-models<sha256(configs and
# model code)>. Within a key, docker/engines-entrypoint.sh and build/build_engine.py still check each plan's record, so
# an interrupted build resumes where it stopped. Pods building the same key on a shared volume take turns (flock).
#
#   SWISH_ENGINE_CACHE          cache root (default /cache)
#   SWISH_MODEL_REPOSITORY      where tritonserver reads the repository (default /var/lib/swish/model_repository)
#   SWISH_GPU_PRODUCT           the node label nvidia.com/gpu.product this pod was scheduled by (logged, compared)
#   SWISH_ENGINE_FORCE          1: rebuild although a complete build exists for the key
#   SWISH_ENGINE_LOCK_TIMEOUT   seconds to wait for another pod building the same key (default 1800)
#   SWISH_ENGINE_PRUNE_DAYS     remove cache keys unused for this many days (default 30; 0 keeps everything)
#   SWISH_ENGINES_ENTRYPOINT    the engines step (default /opt/swish/docker/engines-entrypoint.sh)
# Extra arguments go to build/build_engine.py.
set -euo pipefail
shopt -s nullglob

say() { printf 'engine-cache: %s\n' "$*" >&2; }
die() {
  printf 'engine-cache: error: %s\n' "$*" >&2
  exit 1
}

home=${SWISH_HOME:-/opt/swish}
cache_root=${SWISH_ENGINE_CACHE:-/cache}
out=${SWISH_MODEL_REPOSITORY:-/var/lib/swish/model_repository}
image_repo=${SWISH_IMAGE_MODEL_REPOSITORY:-$home/model_repository}
plugin=${SWISH_PLUGIN_LIB:-$home/lib/libswish.so}
engines=${SWISH_ENGINES_ENTRYPOINT:-$home/docker/engines-entrypoint.sh}
lock_timeout=${SWISH_ENGINE_LOCK_TIMEOUT:-1800}
prune_days=${SWISH_ENGINE_PRUNE_DAYS:-30}

[ -d "$image_repo" ] || die "no model repository in the image at $image_repo"
[ -f "$plugin" ] || die "no plugin at $plugin: the engines image is incomplete"
mkdir -p "$cache_root" "$out"

# The GPU this pod got (the first visible one: every GPU of a pod is on one node, of one product).
gpu_line=$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader -i 0 2>&1) ||
  die "nvidia-smi cannot see a GPU ($gpu_line): check the nvidia.com/gpu limit and the NVIDIA container runtime"
gpu_name=${gpu_line%,*}
gpu_cc=${gpu_line##*, }
gpu_name=${gpu_name%% }
[[ $gpu_cc =~ ^[0-9]+\.[0-9]+$ ]] || die "unexpected nvidia-smi output: '$gpu_line'"

trt=$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>&1) || die "TensorRT does not import: $trt"
plugin_sha=$(sha256sum "$plugin" | cut -c1-12)
# Configs and model code, by relative path, so that the same repository hashes the same in every image.
models_sha=$(cd "$image_repo" && find . -type f ! -name '*.plan' ! -name '*.plan.json' -print0 | LC_ALL=C sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-12)

# GPU Feature Discovery writes the product with '-' for spaces; compare in that form.
product=$(printf '%s' "$gpu_name" | tr -c 'A-Za-z0-9._-' '-')
if [ -n "${SWISH_GPU_PRODUCT:-}" ] && [ "$product" != "$SWISH_GPU_PRODUCT" ]; then
  say "warning: this GPU is '$gpu_name' but the pod was scheduled for nvidia.com/gpu.product=$SWISH_GPU_PRODUCT"
fi
key="$product-sm${gpu_cc/./}-trt$trt-plugin$plugin_sha-models$models_sha"
dir="$cache_root/$key"
say "GPU $gpu_name (sm_${gpu_cc/./}), TensorRT $trt, cache key $key"

exec 9>"$cache_root/$key.lock"
if ! flock -w "$lock_timeout" 9; then
  die "another pod has been building $key for more than ${lock_timeout}s (lock $cache_root/$key.lock)"
fi

if [ -f "$dir/complete" ] && [ "${SWISH_ENGINE_FORCE:-0}" != "1" ]; then
  say "reusing the plans in $dir (built $(cat "$dir/complete"))"
else
  rm -f "$dir/complete"
  mkdir -p "$dir"
  force=()
  if [ "${SWISH_ENGINE_FORCE:-0}" = "1" ]; then
    force=(--force)
  fi
  SWISH_MODEL_REPOSITORY="$dir/model_repository" SWISH_TRT_CACHE_DIR="$cache_root/timing-cache" \
    "$engines" "${force[@]}" "$@" || die "the engine build failed (lines above); nothing was cached for $key"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/complete"
  say "built $key"
fi
touch "$dir"

# A private copy: tritonserver reads it read-only, and another pod's rebuild cannot change it underneath.
find "$out" -mindepth 1 -delete
cp -R "$dir/model_repository/." "$out/"
flock -u 9

if [ "$prune_days" -gt 0 ]; then
  for old in "$cache_root"/*-sm*-trt*; do
    if [ -d "$old" ] && [ "$old" != "$dir" ] && [ -n "$(find "$old" -maxdepth 0 -mtime +"$prune_days")" ]; then
      say "removing $old: unused for more than $prune_days days"
      rm -rf "$old" "$old.lock"
    fi
  done
fi
say "model repository ready in $out"
