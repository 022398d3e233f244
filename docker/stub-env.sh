# shellcheck shell=bash
# Sourced by the non-interactive bash that Triton's Python backend runs each stub through ($BASH_ENV, set by
# docker/triton-entrypoint.sh in preload mode): the stubs get the environment tritonserver had before LD_PRELOAD.
if [ -n "${SWISH_LD_PRELOAD_BEFORE-}" ]; then
  export LD_PRELOAD="$SWISH_LD_PRELOAD_BEFORE"
else
  unset LD_PRELOAD
fi
unset SWISH_LD_PRELOAD_BEFORE BASH_ENV
