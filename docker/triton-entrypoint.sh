#!/usr/bin/env bash
# The compose `triton` service: start tritonserver on the model repository the `engines` service prepared.
#
#   SWISH_PLUGIN_LOADING  preload (default): LD_PRELOAD=libswish.so, set here for tritonserver only
#                         backend-config: --backend-config=tensorrt,plugins=libswish.so (a load failure is only logged)
#                         none: no plugin; swish and swish_fp16 fail to load, the other models serve (the baseline
#                         failure of Triton's plugin QA)
#   SWISH_API_KEY         required: the model-repository and shared-memory APIs (HTTP and gRPC) need the header
#                         SWISH_API_KEY_HEADER (default swish-api-key) with this value
#   SWISH_CHECK_ENGINES   1 (default): log build/build_engine.py --check's verdict on each plan before starting
#   TRITON_LOG_VERBOSE    tritonserver --log-verbose level (default 0)
#   TRITON_ALLOW_CLIENT_SHM  true: add --allow-client-shm=true (Triton 26.04 and later refuse client shared memory
#                         without it; earlier releases do not know the flag)
#
# Extra arguments are passed to tritonserver.
set -euo pipefail

say() { printf 'triton-entrypoint: %s\n' "$*" >&2; }
die() {
  printf 'triton-entrypoint: error: %s\n' "$*" >&2
  exit 64
}

home=${SWISH_HOME:-/opt/swish}
repo=${SWISH_MODEL_REPOSITORY:-/var/lib/swish/model_repository}
plugin=${SWISH_PLUGIN_LIB:-$home/lib/libswish.so}
mode=${SWISH_PLUGIN_LOADING:-preload}
key=${SWISH_API_KEY:-}
header=${SWISH_API_KEY_HEADER:-swish-api-key}

if [ -z "$key" ]; then
  die "SWISH_API_KEY is not set. The model-repository and shared-memory APIs are restricted to requests carrying" \
    "the header '$header: <key>'. Set a key of 16 or more characters, e.g. in the .env file beside compose.yaml:" \
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

restricted="model-repository,shared-memory:$header=$key"
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

preload=""
case "$mode" in
  preload)
    [ -f "$plugin" ] || die "SWISH_PLUGIN_LOADING=preload but the plugin $plugin does not exist in this container"
    # Try the preload first: the loader only warns about a library it cannot open (and the server would start
    # without the plugin), and a library whose dependency is missing (libnvinfer.so of another TensorRT major) stops
    # every program with exit status 127.
    if ! problem=$(LD_PRELOAD="$plugin" /bin/true 2>&1) || [[ $problem == *"cannot be preloaded"* ]]; then
      die "LD_PRELOAD=$plugin fails in this container: $problem"
    fi
    preload=$plugin
    say "plugin: LD_PRELOAD=$plugin (tritonserver and the processes it starts only)"
    ;;
  backend-config)
    [ -f "$plugin" ] || die "SWISH_PLUGIN_LOADING=backend-config but the plugin $plugin does not exist in this container"
    args+=(--backend-config="tensorrt,plugins=$plugin")
    say "plugin: --backend-config=tensorrt,plugins=$plugin"
    ;;
  none)
    # Keep serving the models that load, and report ready, so that the failure can be inspected.
    args+=(--exit-on-error=false --strict-readiness=false)
    say "plugin: not loaded (SWISH_PLUGIN_LOADING=none): swish and swish_fp16 will fail to load, as they must"
    ;;
  *)
    die "SWISH_PLUGIN_LOADING must be preload, backend-config or none, not '$mode'"
    ;;
esac

if [ "${SWISH_CHECK_ENGINES:-1}" = "1" ]; then
  # One line per plan: OK, or why it does not fit this GPU and TensorRT. Informational: the server starts anyway.
  python3 "$home/build/build_engine.py" --check --model-repository "$repo" --plugin-lib "$plugin" >&2 ||
    say "warning: some plans do not match this container (lines above); rerun the engines service"
fi

if [ -n "$preload" ]; then
  export LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}"
fi
exec tritonserver "${args[@]}" "$@"
