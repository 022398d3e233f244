#!/usr/bin/env bash
# The compose `triton` service: start tritonserver on the model repository the `engines` service prepared (GPU way),
# or on the image's Python-backend models (CPU way, compose.cpu.yaml: SWISH_MODELS=python).
#
#   SWISH_PLUGIN_LOADING  backend-config (default): --backend-config=tensorrt,plugins=libswish.so; Triton's TensorRT
#                         backend dlopens it (a load failure there is only logged, so it is tried here first)
#                         preload: LD_PRELOAD=libswish.so for tritonserver only (not its Python-backend stubs)
#                         none: no plugin; with SWISH_MODELS=all swish and swish_fp16 fail to load and the other models
#                         serve (the baseline failure of Triton's plugin QA)
#   SWISH_MODELS          all (default): every model of the repository; python: only the models whose config.pbtxt
#                         says backend "python" (the CPU way); or a comma-separated list of model names
#   SWISH_API_KEY         required: the model-repository, shared-memory, logging and trace APIs (HTTP and gRPC) need
#                         it in the header SWISH_API_KEY_HEADER (default swish-api-key) over HTTP, and in
#                         triton-grpc-protocol-<SWISH_API_KEY_HEADER> over gRPC (Triton prefixes gRPC headers)
#   SWISH_CHECK_ENGINES   1 (default): log the engine builder's --check verdict on each plan before starting
#   TRITON_LOG_VERBOSE    tritonserver --log-verbose level (default 0)
#   TRITON_ALLOW_CLIENT_SHM  true: add --allow-client-shm=true (Triton 26.04 and later refuse client shared memory
#                         without it; earlier releases do not know the flag)
#   SWISH_ALLOW_UNFIXED_TRITON  1: start even when the image's tritonserver is older than 2.68.0 (NGC 26.04), the
#                         first with every fix for the tensor shapes that crash earlier releases (docs/security.md);
#                         for stand-in images in tests, never for a server others can reach
#
# Extra arguments are passed to tritonserver.
set -euo pipefail

say() { printf 'triton-entrypoint: %s\n' "$*" >&2; }
die() {
  printf 'triton-entrypoint: error: %s\n' "$*" >&2
  exit 64
}

home=${SWISH_HOME:-/opt/swish}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=${SWISH_MODEL_REPOSITORY:-/var/lib/swish/model_repository}
plugin=${SWISH_PLUGIN_LIB:-$home/lib/libswish.so}
mode=${SWISH_PLUGIN_LOADING:-backend-config}
models=${SWISH_MODELS:-all}
key=${SWISH_API_KEY:-}
header=${SWISH_API_KEY_HEADER:-swish-api-key}

# Image fact: NGC's Triton images set TRITON_SERVER_VERSION. Releases before 2.68.0 (26.04) crash on tensor shapes
# whose element count or byte size overflows (triton-inference-server/server#8182 in 2.58.0, common#151 with
# core#480 in 2.67.0, server#8676 in 2.68.0).
min_version=2.68.0
version=${TRITON_SERVER_VERSION:-}
if [ -z "$version" ]; then
  die "image fact failed: TRITON_SERVER_VERSION is not set; NGC's tritonserver images set it (e.g. 2.68.0)"
fi
if [ "$(printf '%s\n%s\n' "$min_version" "$version" | sort -V | head -n 1)" != "$min_version" ]; then
  if [ "${SWISH_ALLOW_UNFIXED_TRITON:-}" != "1" ]; then
    die "this image's tritonserver is $version; releases before $min_version (NGC 26.04) crash on some tensor" \
      "shapes a client can send (docs/security.md): build with NGC_RELEASE=26.04 or later" \
      "(SWISH_ALLOW_UNFIXED_TRITON=1 starts it anyway, for tests only)"
  fi
  say "warning: tritonserver $version crashes on some tensor shapes a client can send; started anyway" \
    "(SWISH_ALLOW_UNFIXED_TRITON=1)"
fi

if [ -z "$key" ]; then
  die "SWISH_API_KEY is not set. The model-repository, shared-memory, logging and trace APIs are restricted to" \
    "requests carrying the header '$header: <key>' (gRPC: 'triton-grpc-protocol-$header: <key>'). Set a key of" \
    "16 or more characters, e.g. in the .env file beside compose.yaml:" \
    "echo \"SWISH_API_KEY=\$(openssl rand -hex 32)\" >> .env (docker/README.md, 'API key')"
fi
# The key and header travel inside one tritonserver flag (API,API:HEADER=KEY): keep them free of , : = and spaces.
if ! [[ $key =~ ^[A-Za-z0-9._~-]{16,}$ ]]; then
  die "SWISH_API_KEY must be at least 16 characters from A-Z a-z 0-9 . _ ~ - (e.g. openssl rand -hex 32)"
fi
if ! [[ $header =~ ^[a-z0-9][a-z0-9-]*$ ]]; then
  die "SWISH_API_KEY_HEADER must be lower-case letters, digits and '-' (gRPC metadata keys are lower case)"
fi
if [ ! -d "$repo" ] || [ -z "$(ls -A "$repo")" ]; then
  die "no model repository at $repo: the engines service fills it (docker compose up runs engines first)"
fi

# Triton checks this header on HTTP as given and on gRPC as triton-grpc-protocol-<header>.
restricted="model-repository,shared-memory,logging,trace:$header=$key"
args=(
  --model-repository="$repo"
  --http-port=8000
  --grpc-port=8001
  --metrics-port=8002
  --allow-metrics=true
  --http-restricted-api="$restricted"
  --grpc-restricted-protocol="$restricted"
  --log-verbose="${TRITON_LOG_VERBOSE:-0}"
)
if [ "${TRITON_ALLOW_CLIENT_SHM:-}" = "true" ]; then
  args+=(--allow-client-shm=true)
fi

case "$models" in
  all) ;;
  python)
    # Explicit model control loads only these; the repository API (load/unload) stays behind the key.
    selected=()
    for config in "$repo"/*/config.pbtxt; do
      if grep -Eq '^[[:space:]]*backend:[[:space:]]*"python"' "$config"; then
        selected+=("$(basename "$(dirname "$config")")")
      fi
    done
    [ "${#selected[@]}" -gt 0 ] || die "SWISH_MODELS=python but no model in $repo has backend \"python\""
    args+=(--model-control-mode=explicit)
    for name in "${selected[@]}"; do args+=(--load-model="$name"); done
    say "models: ${selected[*]} (SWISH_MODELS=python)"
    ;;
  *)
    [[ $models =~ ^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$ ]] ||
      die "SWISH_MODELS must be all, python or a comma-separated list of model names, not '$models'"
    args+=(--model-control-mode=explicit)
    IFS=, read -r -a selected <<<"$models"
    for name in "${selected[@]}"; do
      [ -f "$repo/$name/config.pbtxt" ] || die "SWISH_MODELS names $name, but $repo/$name/config.pbtxt does not exist"
      args+=(--load-model="$name")
    done
    say "models: ${selected[*]}"
    ;;
esac

# Load the plugin once here, as the server would, so that a missing dependency (libnvinfer.so.N of another TensorRT
# major, or a Triton image that keeps libnvinfer off the loader path) stops the container with the loader's message
# instead of a log line and models that fail later.
check_plugin_loads() {
  [ -f "$plugin" ] || die "SWISH_PLUGIN_LOADING=$mode but the plugin $plugin does not exist in this container"
  local problem
  if ! problem=$(LD_PRELOAD="$plugin" /bin/true 2>&1) || [[ $problem == *"cannot be preloaded"* ]]; then
    if [[ $problem == *libnvinfer* ]]; then
      die "LD_PRELOAD=$plugin fails in this container: $problem. Image fact: the Triton image must have the" \
        "libnvinfer.so the plugin was linked against on the loader path; build all stages with one NGC_RELEASE"
    fi
    die "LD_PRELOAD=$plugin fails in this container: $problem"
  fi
}

preload=""
case "$mode" in
  preload)
    check_plugin_loads
    [ -f "$here/stub-env.sh" ] || die "$here/stub-env.sh is missing: it keeps the preload out of the Python-backend stubs"
    preload=$plugin
    say "plugin: LD_PRELOAD=$plugin (tritonserver only; its Python-backend stubs start without it)"
    ;;
  backend-config)
    check_plugin_loads
    args+=(--backend-config="tensorrt,plugins=$plugin")
    say "plugin: --backend-config=tensorrt,plugins=$plugin"
    ;;
  none)
    if [ "$models" = "all" ]; then
      # Keep serving the models that load, and report ready, so that the failure can be inspected.
      args+=(--exit-on-error=false --strict-readiness=false)
      say "plugin: not loaded (SWISH_PLUGIN_LOADING=none): swish and swish_fp16 will fail to load, as they must"
    else
      say "plugin: not loaded (SWISH_PLUGIN_LOADING=none)"
    fi
    ;;
  *)
    die "SWISH_PLUGIN_LOADING must be backend-config, preload or none, not '$mode'"
    ;;
esac

if [ "${SWISH_CHECK_ENGINES:-1}" = "1" ]; then
  # One line per plan: OK, or why it does not fit this GPU and TensorRT. Informational: the server starts anyway.
  python3 -m swish_triton.engines.builder --check --model-repository "$repo" --plugin-lib "$plugin" >&2 ||
    say "warning: some plans do not match this container (lines above); rerun the engines service"
fi

if [ -n "$preload" ]; then
  # The Python backend starts each stub as `bash -c "exec <stub> ..."` (python_backend src/stub_launcher.cc), and a
  # non-interactive bash first sources $BASH_ENV: that file restores the environment before the stub runs, so only
  # tritonserver itself has the plugin preloaded.
  export SWISH_LD_PRELOAD_BEFORE="${LD_PRELOAD-}"
  export BASH_ENV="$here/stub-env.sh"
  export LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}"
fi
exec tritonserver "${args[@]}" "$@"
