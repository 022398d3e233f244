#!/usr/bin/env bash
# On an offline GPU host: the GPU tests of the Python-backend models against a real tritonserver,
# the two compute paths outside Triton (bench/gpu_path_micro.py) and the serving benchmark, in one go.
#
#   bench/gpu_serving_check.sh SITE_PACKAGES
#
# SITE_PACKAGES (or $SWISH_SITE_PACKAGES) holds the Python packages this host lacks, for its Python (nvidia-pytriton,
# tritonclient, perf-analyzer, gevent, geventhttpclient, brotli, python-rapidjson, NumPy 1.26). The stub of the
# bundled tritonserver 2.51 imports the NumPy of the python3 first on PATH and needs NumPy 1.x: where that python3
# has NumPy 2, SWISH_REPLACE_NUMPY=1 swaps in the folder's NumPy 1.x (numpy and numpy.libs) in its site-packages.
# Other settings: SWISH_KERNELS_LIB (a built libswish_kernels.so; otherwise this script builds one for CUDA_ARCH, default 90),
# TEST_MODULES (default: the GPU serving modules; empty skips the tests), SKIP_MICRO=1, BENCH_ARGS (default: every
# variant plus CUDA shared memory), SWISH_COMMIT (the commit recorded with the results, for a copy of a checkout
# without its history). Results go to $OUT (default results/).
set -euo pipefail
cd "$(dirname "$0")/.."
site_packages=${1:-${SWISH_SITE_PACKAGES:?give the site-packages folder as \$1 or SWISH_SITE_PACKAGES}}
out=${OUT:-results}
mkdir -p "$out"
export PYTHONPATH="$PWD:$site_packages${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export PATH="$site_packages/bin:$PATH"

interpreter_site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "${SWISH_REPLACE_NUMPY:-}" = 1 ] && [ -d "$site_packages/numpy" ]; then
  echo "== NumPy 1.x for the stub: $site_packages/numpy -> $interpreter_site"
  rm -rf "$interpreter_site/numpy" "$interpreter_site/numpy.libs" "$interpreter_site"/numpy-*.dist-info
  cp -r "$site_packages/numpy" "$site_packages/numpy.libs" "$interpreter_site/"
  cp -r "$site_packages"/numpy-*.dist-info "$interpreter_site/" 2>/dev/null || true
fi

echo "== $(date -u +%FT%TZ); GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader); $(nproc) cores"
python3 -c 'import numpy, sys; print(f"== Python {sys.version.split()[0]}, NumPy {numpy.__version__}")'
if [ -z "${SWISH_KERNELS_LIB:-}" ]; then
  echo "== kernels library (sm_${CUDA_ARCH:-90})"
  cmake -S plugin -B .build/gpu -DSWISH_BUILD_PLUGIN=OFF -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
    -DCMAKE_BUILD_TYPE=Release >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
  cmake --build .build/gpu -j --target swish_kernels >>"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
  SWISH_KERNELS_LIB=$(find "$PWD/.build/gpu" -name 'libswish_kernels.so' | head -1)
fi
export SWISH_KERNELS_LIB
echo "   $SWISH_KERNELS_LIB"

status=0
modules=${TEST_MODULES-tests/gpu/test_gpu_swish.py tests/gpu/test_served_gpu_model.py tests/integration/test_served_models.py
  tests/swish_triton/clients/test_validation.py tests/swish_triton/clients/test_concurrency.py
  tests/swish_triton/clients/test_http_wire.py tests/swish_triton/clients/test_cli.py tests/swish_triton/perf/test_sweep.py
  tests/swish_triton/perf/test_sweep_cli.py tests/swish_triton/perf/test_perf_analyzer.py
  tests/swish_triton/perf/test_input_data.py tests/swish_triton/test_reference.py}
if [ -n "$modules" ]; then
  echo "== pytest: $modules"
  # shellcheck disable=SC2086 # the module list is several words
  python3 -m pytest -q -p no:cacheprovider -rfE $modules >"$out/pytest-gpu.log" 2>&1 || status=1
  grep -E '^(FAILED|ERROR)|passed|failed' "$out/pytest-gpu.log" | tail -15
fi

if [ -z "${SKIP_MICRO:-}" ]; then
  echo "== compute paths outside Triton"
  python3 bench/gpu_path_micro.py | tee "$out/gpu-path-micro.md"
fi

echo "== serving benchmark"
# shellcheck disable=SC2086 # BENCH_ARGS holds several words
python3 bench/serving_bench.py --out "$out/serving" --log "$out/tritonserver-bench.log" ${BENCH_ARGS:---cuda-shm} || status=1
exit $status
