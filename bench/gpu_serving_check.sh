#!/usr/bin/env bash
# On a GPU host without a package registry: build the kernels library, run the GPU tests of the Python-backend model
# against a real tritonserver, and run the serving benchmark. Python packages come from a site-packages folder
# for this host's Python (nvidia-pytriton, tritonclient, perf-analyzer, pytest, gevent) given as $1 or
# $SWISH_SITE_PACKAGES.
# Results go to $OUT (default results/).
set -euo pipefail
cd "$(dirname "$0")/.."
site_packages=${1:-${SWISH_SITE_PACKAGES:?give the site-packages folder as \$1 or SWISH_SITE_PACKAGES}}
out=${OUT:-results}
mkdir -p "$out"
export PYTHONPATH="$PWD:$site_packages${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

echo "== GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
echo "== kernels library (sm_90)"
cmake -S plugin -B .build/gpu -DSWISH_BUILD_PLUGIN=OFF -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DCMAKE_BUILD_TYPE=Release >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build .build/gpu -j >>"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
SWISH_KERNELS_LIB=$(find "$PWD/.build/gpu" -name 'libswish_kernels.so' | head -1)
export SWISH_KERNELS_LIB
echo "   $SWISH_KERNELS_LIB"

if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== pytest: GPU model + serving against tritonserver"
  python3 -m pytest -q -p no:cacheprovider tests/test_gpu_python_model.py tests/test_serving.py \
    tests/test_load_tools.py 2>&1 | tee "$out/pytest-gpu.log" | tail -15
fi

echo "== serving benchmark"
# shellcheck disable=SC2086 # BENCH_ARGS holds several words
python3 bench/serving_bench.py --out "$out/serving" --log "$out/tritonserver-bench.log" ${BENCH_ARGS:---cuda-shm}
